//! Reconciliation over copies read from real files: an XML dump and a redo-log image of the
//! same pool at different generations.

use std::io::Write;

use xapi_dr::metadata::{Manifest, RedoLogWriter, db_xml_bytes};
use xapi_dr::reconcile::{
    Outcome, Preferences, ReasonCode, Recovered, TargetState, TargetVm, reconcile,
};
use xapi_dr::source::{MetadataCopy, Origin};

use crate::inspect::pool;

#[test]
fn the_newer_of_two_files_wins_and_the_target_decides_per_vm() {
    // The stale copy: a redo-log image at generation 480 in which "web 01" had another name.
    let mut stale_db = pool();
    stale_db.manifest = Manifest {
        generation: 480,
        ..stale_db.manifest.clone()
    };
    let web_ref = stale_db
        .find_by_uuid("VM", "web-uuid")
        .map(|(r, _)| r.to_owned())
        .expect("the fixture has web-uuid");
    stale_db.set_field("VM", &web_ref, "name__label", "web (old name)");
    let image = tempfile::NamedTempFile::new().unwrap();
    let mut writer = RedoLogWriter::create(
        image.reopen().unwrap(),
        "0b9c3e0a-1111-4222-8333-444455556666",
    )
    .unwrap();
    writer.write_database(&stale_db, 480).unwrap();
    drop(writer);
    let stale = MetadataCopy::from_file(image.path()).unwrap();

    // The current copy: an XML dump at generation 500.
    let mut dump = tempfile::NamedTempFile::new().unwrap();
    dump.write_all(&db_xml_bytes(&pool())).unwrap();
    let current = MetadataCopy::from_file(dump.path()).unwrap();
    assert!(matches!(current.origin, Origin::File { .. }));

    let target = TargetState {
        vms: vec![TargetVm {
            uuid: "db-uuid".into(),
            version: 7,
            power_state: xapi_core::api::VmPowerState::Halted,
        }],
        ..TargetState::default()
    };
    let result = reconcile(
        &[stale, current],
        &target,
        &Recovered::default(),
        &Preferences::default(),
    );
    let pool = &result.pools[0];
    assert_eq!(pool.chosen.as_ref().map(|c| c.generation), Some(500));
    assert_eq!(
        pool.copies
            .iter()
            .filter(|(_, r)| r.code == ReasonCode::OlderGeneration)
            .count(),
        1
    );
    let names: Vec<(&str, Outcome)> = result
        .vms
        .iter()
        .map(|d| (d.name_label.as_str(), d.outcome))
        .collect();
    assert_eq!(
        names,
        [("db 01", Outcome::Blocked), ("web 01", Outcome::Recover)],
        "names from generation 500; db is newer in the target"
    );
    let json = serde_json::to_string_pretty(&result).unwrap();
    assert!(json.contains("\"newer_in_target\""), "{json}");
}
