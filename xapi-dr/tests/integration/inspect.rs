//! `inspect` over an XML dump and over a redo-log image of the same small pool.

use std::io::Write;

use xapi_core::api::VmPowerState as PowerState;
use xapi_dr::metadata::{
    Database, Delta, Diagnostic, Manifest, RedoLogWriter, db_xml_bytes, inspect, inspect_bytes,
};

const MARKER: &str = "6f1e8c52-0d1a-4b8e-9c3f-2a7d5e4b1c90";

/// A pool with one vApp VM (two disks on a shared SR, a CD from an ISO SR), one standalone VM,
/// a template, a snapshot, and a table this crate does not know. One-to-many sets are left
/// empty or wrong on purpose: inspect must rebuild them.
pub(crate) fn pool() -> Database {
    let mut db = Database::new(Manifest {
        generation: 500,
        ..Manifest::default()
    });
    db.insert_row(
        "pool",
        "OpaqueRef:pool",
        1,
        1,
        [
            ("uuid", "pool-uuid"),
            ("name__label", ""),
            ("master", "OpaqueRef:h1"),
        ],
    );
    db.insert_row(
        "host",
        "OpaqueRef:h1",
        1,
        1,
        [("uuid", "h1"), ("name__label", "host-01")],
    );
    db.insert_row(
        "SR",
        "OpaqueRef:sr",
        1,
        1,
        [
            ("uuid", "sr-uuid"),
            ("name__label", "LUN 1"),
            ("type", "lvmoiscsi"),
            ("shared", "true"),
            ("content_type", "user"),
        ],
    );
    db.insert_row(
        "SR",
        "OpaqueRef:iso",
        1,
        1,
        [
            ("uuid", "iso-uuid"),
            ("name__label", "ISOs"),
            ("type", "iso"),
            ("shared", "true"),
            ("content_type", "iso"),
        ],
    );
    db.insert_row(
        "SR",
        "OpaqueRef:unused",
        1,
        1,
        [
            ("uuid", "unused-uuid"),
            ("name__label", "Unused"),
            ("type", "nfs"),
            ("shared", "true"),
        ],
    );
    for (vdi, sr, size) in [
        ("OpaqueRef:d0", "OpaqueRef:sr", "10737418240"),
        ("OpaqueRef:d1", "OpaqueRef:sr", "2147483648"),
        ("OpaqueRef:cd", "OpaqueRef:iso", "1000"),
    ] {
        let uuid = format!("{}-uuid", &vdi[10..]);
        db.insert_row(
            "VDI",
            vdi,
            1,
            1,
            [
                ("uuid", uuid.as_str()),
                ("SR", sr),
                ("virtual_size", size),
                ("name__label", "disk"),
            ],
        );
    }
    for (vbd, vdi, userdevice, kind) in [
        ("OpaqueRef:b1", "OpaqueRef:d1", "1", "Disk"),
        ("OpaqueRef:b0", "OpaqueRef:d0", "0", "Disk"),
        ("OpaqueRef:b3", "OpaqueRef:cd", "3", "CD"),
    ] {
        db.insert_row(
            "VBD",
            vbd,
            1,
            1,
            [
                ("VM", "OpaqueRef:web"),
                ("VDI", vdi),
                ("userdevice", userdevice),
                ("type", kind),
            ],
        );
    }
    db.insert_row(
        "VM_appliance",
        "OpaqueRef:app",
        1,
        1,
        [("uuid", "app-uuid"), ("name__label", "Shop"), ("VMs", "()")],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:web",
        1,
        1,
        [
            ("uuid", "web-uuid"),
            ("name__label", "web 01"),
            ("power_state", "Running"),
            ("appliance", "OpaqueRef:app"),
            ("order", "2"),
            ("start_delay", "30"),
            ("version", "1"),
            ("VBDs", "('OpaqueRef:stale')"),
        ],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:db",
        1,
        1,
        [
            ("uuid", "db-uuid"),
            ("name__label", "db 01"),
            ("power_state", "Halted"),
        ],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:tpl",
        1,
        1,
        [("uuid", "tpl"), ("is_a_template", "true")],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:snap",
        1,
        1,
        [("uuid", "snap"), ("is_a_snapshot", "true")],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:dom0",
        1,
        1,
        [("uuid", "dom0"), ("is_control_domain", "true")],
    );
    db.insert_row("Frobnicator", "OpaqueRef:f", 1, 1, [("uuid", "f")]);
    db
}

fn check_pool_summary(report: &xapi_dr::metadata::InspectReport) {
    assert_eq!(report.pool.uuid, "pool-uuid");
    assert_eq!(report.pool.master_name, "host-01");
    assert_eq!(report.schema_version, "5.909");
    assert_eq!(report.other_vm_rows, 3);
    let names: Vec<&str> = report.vms.iter().map(|v| v.name_label.as_str()).collect();
    assert_eq!(names, ["db 01", "web 01"]);
    let web = &report.vms[1];
    assert_eq!(web.power_state, PowerState::Running);
    assert_eq!(web.vapp.as_deref(), Some("app-uuid"));
    assert_eq!((web.order, web.start_delay, web.version), (2, 30, 1));
    let disks: Vec<(&str, &str, i64)> = web
        .disks
        .iter()
        .map(|d| (d.userdevice.as_str(), d.sr_uuid.as_str(), d.virtual_size))
        .collect();
    assert_eq!(
        disks,
        [
            ("0", "sr-uuid", 10_737_418_240),
            ("1", "sr-uuid", 2_147_483_648),
            ("3", "iso-uuid", 1000)
        ]
    );
    assert_eq!(report.vapps.len(), 1);
    assert_eq!(report.vapps[0].vms, ["web-uuid"]);
    let required: Vec<(&str, bool)> = report
        .srs
        .iter()
        .map(|s| (s.uuid.as_str(), s.required))
        .collect();
    assert_eq!(
        required,
        [
            ("iso-uuid", false),
            ("sr-uuid", true),
            ("unused-uuid", false)
        ]
    );
    assert!(report.diagnostics.contains(&Diagnostic::UnknownTable {
        name: "Frobnicator".into(),
        rows: 1
    }));
    assert!(
        report
            .diagnostics
            .contains(&Diagnostic::MissingTable { name: "VIF".into() })
    );
}

#[test]
fn xml_dump_is_summarised() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&db_xml_bytes(&pool())).unwrap();
    let report = inspect(file.path()).unwrap();
    assert_eq!(report.generation, 500);
    check_pool_summary(&report);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["source"]["format"], "xml_dump");
    assert_eq!(json["vms"][1]["power_state"], "Running");
}

#[test]
fn redo_log_image_is_summarised_with_its_replay() {
    let mut db = pool();
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut writer = RedoLogWriter::create(file.reopen().unwrap(), MARKER).unwrap();
    writer.write_database(&db, 500).unwrap();
    let rename = Delta::WriteField {
        table: "VM".into(),
        reference: "OpaqueRef:db".into(),
        column: "name__label".into(),
        value: "db 02".into(),
    };
    rename.apply(&mut db, 503).unwrap();
    writer.append(&rename, 503, &db).unwrap();
    let stale = Delta::WriteField {
        table: "VM".into(),
        reference: "OpaqueRef:db".into(),
        column: "name__label".into(),
        value: "db 00".into(),
    };
    writer.append(&stale, 502, &db).unwrap();
    drop(writer);

    let report = inspect(file.path()).unwrap();
    assert_eq!(report.generation, 503);
    assert_eq!(report.vms[0].name_label, "db 02");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["source"]["format"], "redo_log");
    assert_eq!(json["source"]["validity"], "first");
    assert_eq!(json["source"]["deltas_applied"], 1);
    assert_eq!(json["source"]["deltas_skipped"], 1);
    assert!(report.diagnostics.iter().any(|d| matches!(
        d,
        Diagnostic::StaleDeltaSkipped {
            generation: 502,
            expected: 504,
            ..
        }
    )));
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| matches!(d, Diagnostic::OtherHalf { .. }))
    );
}

#[test]
fn unknown_formats_are_refused() {
    let err = inspect_bytes(b"PK\x03\x04 not a dump").unwrap_err();
    assert!(matches!(err, xapi_dr::Error::UnknownFormat { .. }), "{err}");
    let err = inspect_bytes(b"\x1f\x8b\x08 broken gzip").unwrap_err();
    assert!(matches!(err, xapi_dr::Error::DbXml(_)), "{err}");
    let err = inspect("/nonexistent/metadata.img").unwrap_err();
    assert!(matches!(err, xapi_dr::Error::Io { .. }), "{err}");
}

#[test]
fn gzipped_state_db_is_summarised() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&db_xml_bytes(&pool())).unwrap();
    let report = inspect_bytes(&gz.finish().unwrap()).unwrap();
    check_pool_summary(&report);
    assert_eq!(
        serde_json::to_value(&report).unwrap()["source"]["format"],
        "gzip_xml_dump"
    );
}

#[test]
fn load_rebuilds_one_to_many_sets() {
    let loaded =
        xapi_dr::metadata::load_reader(std::io::Cursor::new(db_xml_bytes(&pool())), "pool.xml")
            .unwrap();
    assert_eq!(
        loaded
            .database
            .row("VM", "OpaqueRef:web")
            .unwrap()
            .get("VBDs"),
        Some("('OpaqueRef:b0' 'OpaqueRef:b1' 'OpaqueRef:b3')"),
        "the stale stored set is replaced by the VBDs that point at the VM"
    );
    assert_eq!(
        loaded
            .database
            .row("VM_appliance", "OpaqueRef:app")
            .unwrap()
            .get("VMs"),
        Some("('OpaqueRef:web')")
    );
}
