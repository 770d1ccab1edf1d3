//! Dumps written by older xapi releases and by hand: every leniency the reference asks for.

use xapi_dr::metadata::views::{Fields, VdiView, VmView};
use xapi_dr::metadata::{Diagnostic, load_reader, read_db_xml};

/// A Boston-era (schema 5.63) dump: no `%` protection (raw spaces, a raw `%`), the legacy `%_`,
/// a double-quoted SExpr map with entities, a datetime without `Z`, a float with a trailing
/// dot, rows written as start/end pairs and indented, an unknown table and an unknown column,
/// and no VM_appliance table at all.
const BOSTON: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<database>
  <manifest>
    <pair key="schema_major_vsn" value="5"/>
    <pair key="schema_minor_vsn" value="63"/>
    <pair key="generation_count" value="4242"/>
  </manifest>
  <table name="VM">
    <row ref="OpaqueRef:vm" __ctime="1" __mtime="4000" uuid="vm-uuid" name__label="old style name"
         name__description="50% full%_twice" power_state="Halted" VBDs="()"
         other_config="((&quot;location&quot; &quot;&quot;) (&quot;k&quot; &quot;a b&quot;))"
         snapshot_time="20110101T10:00:00" HVM__shadow_multiplier="1." frobnication="yes">
    </row>
  </table>
  <table name="VBD">
    <row ref="OpaqueRef:vbd" __ctime="2" __mtime="2" VM="OpaqueRef:vm" VDI="OpaqueRef:vdi" userdevice="0" type="Disk"/>
  </table>
  <table name="VDI">
    <row ref="OpaqueRef:vdi" __ctime="2" __mtime="2" uuid="vdi-uuid" SR="OpaqueRef:sr" virtual_size="1024"
         sm_config="(('vdi_type' vhd))"/>
  </table>
  <table name="SR"><row ref="OpaqueRef:sr" uuid="sr-uuid" name__label="SR"/></table>
  <table name="pool"><row ref="OpaqueRef:pool" uuid="pool-uuid"/></table>
  <table name="host"/><table name="PBD"/><table name="VIF"/><table name="network"/>
  <table name="Gadget"><row ref="OpaqueRef:g" uuid="g"/></table>
</database>
"#;

#[test]
fn boston_dump_is_read_leniently() {
    let db = read_db_xml(BOSTON.as_bytes()).unwrap();
    assert_eq!((db.manifest.schema_minor, db.generation()), (63, 4242));
    let row = db.row("VM", "OpaqueRef:vm").unwrap();
    assert_eq!(row.get("name__label"), Some("old style name"));
    assert_eq!(row.get("name__description"), Some("50% full  twice"));
    assert_eq!(
        row.get("frobnication"),
        Some("yes"),
        "unknown columns are kept"
    );
    assert_eq!((row.ctime, row.mtime), (1, 4000));

    let vm = db.view_one::<VmView>("OpaqueRef:vm").unwrap().unwrap();
    assert_eq!(
        vm.other_config,
        vec![
            ("location".to_owned(), String::new()),
            ("k".to_owned(), "a b".to_owned())
        ]
    );
    assert_eq!(vm.snapshot_time, "20110101T10:00:00");
    assert_eq!(
        (vm.order, vm.start_delay, vm.version),
        (0, 0, 0),
        "missing columns take defaults"
    );
    let fields = Fields::new("VM", "OpaqueRef:vm", row);
    assert!((fields.float("HVM__shadow_multiplier").unwrap() - 1.0).abs() < f64::EPSILON);

    let vdi = db.view_one::<VdiView>("OpaqueRef:vdi").unwrap().unwrap();
    assert_eq!(
        vdi.sm_config,
        vec![("vdi_type".to_owned(), "vhd".to_owned())],
        "bare symbols are read"
    );
}

#[test]
fn loading_rebuilds_sets_and_reports_unknown_and_missing_tables() {
    let loaded = load_reader(std::io::Cursor::new(BOSTON.as_bytes()), "boston.db").unwrap();
    let vm = loaded
        .database
        .view_one::<VmView>("OpaqueRef:vm")
        .unwrap()
        .unwrap();
    assert_eq!(vm.vbds, [xapi_core::wire::Ref::new("OpaqueRef:vbd")]);
    assert!(loaded.diagnostics.contains(&Diagnostic::UnknownTable {
        name: "Gadget".into(),
        rows: 1
    }));
    assert!(loaded.diagnostics.contains(&Diagnostic::MissingTable {
        name: "VM_appliance".into()
    }));
    assert!(
        loaded.database.row("Gadget", "OpaqueRef:g").is_some(),
        "unknown tables are kept"
    );
}
