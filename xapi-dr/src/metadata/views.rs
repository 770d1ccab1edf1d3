//! Typed views of the rows DR works with. Each view reads its columns from the stored strings;
//! a column missing from the dump takes the datamodel default (empty string, `0`, `false`, empty
//! set or map, `OpaqueRef:NULL`); a column that is present but malformed is an error naming the
//! table, row and column.
//!
//! A view holds the columns DR reads, not the whole record: `VmView` is a subset of
//! [`xapi_core::api::VmRecord`]. Its references and enums are xapi-core's ([`Ref<Vm>`],
//! [`VmPowerState`], [`VdiType`], ...), so a view and a record of the same object compare
//! field by field without conversion.

use serde::Serialize;
use xapi_core::api::{
    Host, Network, Pbd, Pool, Sr, Vbd, VbdMode, VbdType, Vdi, VdiType, Vif, Vm, VmAppliance,
    VmPowerState,
};
use xapi_core::wire::Ref;

use super::database::{Database, Row};
use super::sexpr::{SExprError, parse_map, parse_set};

/// The null object reference, as stored.
pub const NULL_REF: &str = xapi_core::wire::reference::NULL_REF;

/// A stored value that does not have the form its column requires.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// A scalar (int, float, bool, datetime) that does not parse.
    #[error("table {table}, row {reference}, column {column}: {value:?} is not {expected}")]
    BadValue {
        /// Table name.
        table: &'static str,
        /// Row reference.
        reference: String,
        /// Column name.
        column: &'static str,
        /// The stored text.
        value: String,
        /// What the column holds (`"an int"`, `"a bool"`, ...).
        expected: &'static str,
    },
    /// A set or map that does not parse.
    #[error("table {table}, row {reference}, column {column}: {source}")]
    BadSExpr {
        /// Table name.
        table: &'static str,
        /// Row reference.
        reference: String,
        /// Column name.
        column: &'static str,
        /// The parser's error.
        #[source]
        source: SExprError,
    },
}

/// Reads typed columns of one row, with datamodel defaults for missing columns.
pub struct Fields<'a> {
    table: &'static str,
    reference: &'a str,
    row: &'a Row,
}

impl<'a> Fields<'a> {
    /// A reader over `row` of `table`.
    pub fn new(table: &'static str, reference: &'a str, row: &'a Row) -> Fields<'a> {
        Fields {
            table,
            reference,
            row,
        }
    }

    fn bad(&self, column: &'static str, value: &str, expected: &'static str) -> ViewError {
        ViewError::BadValue {
            table: self.table,
            reference: self.reference.to_owned(),
            column,
            value: value.to_owned(),
            expected,
        }
    }

    /// A string column (`""` if missing).
    pub fn string(&self, column: &'static str) -> String {
        self.row.get(column).unwrap_or_default().to_owned()
    }

    /// A reference column (`OpaqueRef:NULL` if missing or empty).
    pub fn reference<T>(&self, column: &'static str) -> Ref<T> {
        match self.row.get(column) {
            None | Some("") => Ref::null(),
            Some(r) => Ref::new(r),
        }
    }

    /// A set-of-references column (empty if missing).
    pub fn references<T>(&self, column: &'static str) -> Result<Vec<Ref<T>>, ViewError> {
        Ok(self.set(column)?.into_iter().map(Ref::new).collect())
    }

    /// An enum column, as xapi-core's enum: a stored value the enum does not know is kept as
    /// its `Unknown` variant, never an error.
    pub fn enumeration<E>(&self, column: &'static str, from_wire: fn(&str) -> E) -> E {
        from_wire(self.row.get(column).unwrap_or_default())
    }

    /// An int column (`0` if missing).
    pub fn int(&self, column: &'static str) -> Result<i64, ViewError> {
        match self.row.get(column) {
            None => Ok(0),
            Some(text) => text.parse().map_err(|_| self.bad(column, text, "an int")),
        }
    }

    /// A float column (`0.` if missing); accepts OCaml's trailing dot and `inf`/`nan`.
    pub fn float(&self, column: &'static str) -> Result<f64, ViewError> {
        match self.row.get(column) {
            None => Ok(0.0),
            Some(text) => text.parse().map_err(|_| self.bad(column, text, "a float")),
        }
    }

    /// A bool column (`false` if missing).
    pub fn bool(&self, column: &'static str) -> Result<bool, ViewError> {
        match self.row.get(column) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(text) => Err(self.bad(column, text, "a bool")),
        }
    }

    /// A set column (empty if missing).
    pub fn set(&self, column: &'static str) -> Result<Vec<String>, ViewError> {
        match self.row.get(column) {
            None | Some("") => Ok(Vec::new()),
            Some(text) => parse_set(text).map_err(|source| self.sexpr(column, source)),
        }
    }

    /// A map column (empty if missing), pairs in stored order.
    pub fn map(&self, column: &'static str) -> Result<Vec<(String, String)>, ViewError> {
        match self.row.get(column) {
            None | Some("") => Ok(Vec::new()),
            Some(text) => parse_map(text).map_err(|source| self.sexpr(column, source)),
        }
    }

    /// A datetime column kept as stored (`19700101T00:00:00Z` if missing), checked for form.
    pub fn datetime(&self, column: &'static str) -> Result<String, ViewError> {
        match self.row.get(column) {
            None => Ok("19700101T00:00:00Z".to_owned()),
            Some(text) if is_datetime(text) => Ok(text.to_owned()),
            Some(text) => Err(self.bad(column, text, "a datetime (YYYYMMDDTHH:MM:SS[Z])")),
        }
    }

    fn sexpr(&self, column: &'static str, source: SExprError) -> ViewError {
        ViewError::BadSExpr {
            table: self.table,
            reference: self.reference.to_owned(),
            column,
            source,
        }
    }
}

/// Whether `text` is xapi's datetime form `YYYYMMDDTHH:MM:SS`, with an optional `Z` or
/// numeric offset, as written by `Date.to_rfc3339` or by older releases without timezone.
pub fn is_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 17 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let base = digits(0..8)
        && b[8] == b'T'
        && digits(9..11)
        && b[11] == b':'
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17);
    if !base {
        return false;
    }
    // bytes 0..17 are ASCII, so 17 is a char boundary
    let zone = &b[17..];
    zone.is_empty()
        || zone == b"Z"
        || (zone.len() == 6
            && matches!(zone[0], b'+' | b'-')
            && zone[3] == b':'
            && zone
                .iter()
                .enumerate()
                .all(|(i, c)| i == 0 || i == 3 || c.is_ascii_digit()))
}

/// A row type with a typed view.
pub trait View: Sized {
    /// The database table the view reads.
    const TABLE: &'static str;
    /// Builds the view from one row.
    fn from_fields(reference: &str, fields: &Fields<'_>) -> Result<Self, ViewError>;
}

impl Database {
    /// Every row of `V`'s table as a typed view, in reference order.
    pub fn view<V: View>(&self) -> Result<Vec<V>, ViewError> {
        self.rows(V::TABLE)
            .map(|(reference, row)| {
                V::from_fields(reference, &Fields::new(V::TABLE, reference, row))
            })
            .collect()
    }

    /// One row of `V`'s table by reference, as a typed view.
    pub fn view_one<V: View>(&self, reference: &str) -> Option<Result<V, ViewError>> {
        let row = self.row(V::TABLE, reference)?;
        Some(V::from_fields(
            reference,
            &Fields::new(V::TABLE, reference, row),
        ))
    }
}

macro_rules! view_struct {
    (
        $(#[$meta:meta])*
        $name:ident, $class:ty, $table:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $kind:ident $(<$e:ty>)? ($column:literal) ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct $name {
            /// The row's object reference.
            pub reference: Ref<$class>,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl View for $name {
            const TABLE: &'static str = $table;
            fn from_fields(reference: &str, f: &Fields<'_>) -> Result<Self, ViewError> {
                Ok($name {
                    reference: Ref::new(reference),
                    $( $field: view_struct!(@read f, $kind $(<$e>)?, $column), )*
                })
            }
        }
    };
    (@read $f:ident, string, $c:literal) => { $f.string($c) };
    (@read $f:ident, reference, $c:literal) => { $f.reference($c) };
    (@read $f:ident, int, $c:literal) => { $f.int($c)? };
    (@read $f:ident, float, $c:literal) => { $f.float($c)? };
    (@read $f:ident, bool, $c:literal) => { $f.bool($c)? };
    (@read $f:ident, set, $c:literal) => { $f.set($c)? };
    (@read $f:ident, map, $c:literal) => { $f.map($c)? };
    (@read $f:ident, datetime, $c:literal) => { $f.datetime($c)? };
    (@read $f:ident, references, $c:literal) => { $f.references($c)? };
    (@read $f:ident, enumeration<$e:ty>, $c:literal) => { $f.enumeration($c, <$e>::from_wire) };
}

view_struct! {
    /// A pool (`pool` table).
    PoolView, Pool, "pool" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name (often empty: clients then show the master's name).
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// The master host.
        master: Ref<Host> = reference("master"),
        /// Default SR.
        default_sr: Ref<Sr> = reference("default_SR"),
        /// Metadata VDIs holding this pool's database.
        metadata_vdis: Vec<Ref<Vdi>> = references("metadata_VDIs"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A host (`host` table).
    HostView, Host, "host" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// Host name.
        hostname: String = string("hostname"),
        /// Management address.
        address: String = string("address"),
        /// PBDs of the host.
        pbds: Vec<Ref<Pbd>> = references("PBDs"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A storage repository (`SR` table).
    SrView, Sr, "SR" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// SM driver type (`lvmoiscsi`, `nfs`, ...).
        sr_type: String = string("type"),
        /// Content type (`iso` SRs are not required for recovery).
        content_type: String = string("content_type"),
        /// Whether the SR is shared.
        shared: bool = bool("shared"),
        /// Physical size in bytes.
        physical_size: i64 = int("physical_size"),
        /// VDIs on the SR.
        vdis: Vec<Ref<Vdi>> = references("VDIs"),
        /// PBDs of the SR.
        pbds: Vec<Ref<Pbd>> = references("PBDs"),
        /// The DR task that introduced the SR.
        introduced_by: Ref<xapi_core::api::DrTask> = reference("introduced_by"),
        /// `sm_config`.
        sm_config: Vec<(String, String)> = map("sm_config"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A physical block device (`PBD` table): how a host attaches an SR.
    PbdView, Pbd, "PBD" {
        /// UUID.
        uuid: String = string("uuid"),
        /// The host.
        host: Ref<Host> = reference("host"),
        /// The SR.
        sr: Ref<Sr> = reference("SR"),
        /// Device configuration (target, LUN, server path...).
        device_config: Vec<(String, String)> = map("device_config"),
        /// Whether it was plugged.
        currently_attached: bool = bool("currently_attached"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A virtual disk (`VDI` table).
    VdiView, Vdi, "VDI" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// The SR holding it.
        sr: Ref<Sr> = reference("SR"),
        /// Size seen by the VM, in bytes.
        virtual_size: i64 = int("virtual_size"),
        /// Bytes used on the SR.
        physical_utilisation: i64 = int("physical_utilisation"),
        /// VDI type (`user`, `system`, `metadata`, `redo_log`, `suspend`, ...).
        vdi_type: VdiType = enumeration<VdiType>("type"),
        /// Whether it may be attached to several VMs at once.
        sharable: bool = bool("sharable"),
        /// Whether it is read-only.
        read_only: bool = bool("read_only"),
        /// Location on the SR (how recovery finds it).
        location: String = string("location"),
        /// Whether it is a snapshot.
        is_a_snapshot: bool = bool("is_a_snapshot"),
        /// The VDI it is a snapshot of.
        snapshot_of: Ref<Vdi> = reference("snapshot_of"),
        /// For a metadata VDI, the pool whose database it holds.
        metadata_of_pool: Ref<Pool> = reference("metadata_of_pool"),
        /// For a metadata VDI, whether it is the newest copy known.
        metadata_latest: bool = bool("metadata_latest"),
        /// VBDs using it.
        vbds: Vec<Ref<Vbd>> = references("VBDs"),
        /// `sm_config`.
        sm_config: Vec<(String, String)> = map("sm_config"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A virtual block device (`VBD` table): a disk or CD slot of a VM.
    VbdView, Vbd, "VBD" {
        /// UUID.
        uuid: String = string("uuid"),
        /// The VM.
        vm: Ref<Vm> = reference("VM"),
        /// The VDI (`OpaqueRef:NULL` for an empty CD drive).
        vdi: Ref<Vdi> = reference("VDI"),
        /// Device name in the guest (`xvda`).
        device: String = string("device"),
        /// User-facing device number (`0`, `autodetect`).
        userdevice: String = string("userdevice"),
        /// Whether it is bootable.
        bootable: bool = bool("bootable"),
        /// `RO` or `RW`.
        mode: VbdMode = enumeration<VbdMode>("mode"),
        /// `Disk`, `CD` or `Floppy`.
        vbd_type: VbdType = enumeration<VbdType>("type"),
        /// Whether a CD drive is empty.
        empty: bool = bool("empty"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A virtual machine, template or snapshot (`VM` table).
    VmView, Vm, "VM" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// Power state.
        power_state: VmPowerState = enumeration<VmPowerState>("power_state"),
        /// Whether it is a template.
        is_a_template: bool = bool("is_a_template"),
        /// Whether it is a default (built-in) template.
        is_default_template: bool = bool("is_default_template"),
        /// Whether it is a snapshot.
        is_a_snapshot: bool = bool("is_a_snapshot"),
        /// Whether it is a host's control domain.
        is_control_domain: bool = bool("is_control_domain"),
        /// The VM it is a snapshot of.
        snapshot_of: Ref<Vm> = reference("snapshot_of"),
        /// When the snapshot was taken.
        snapshot_time: String = datetime("snapshot_time"),
        /// The vApp it belongs to.
        appliance: Ref<VmAppliance> = reference("appliance"),
        /// Start order within its vApp (ascending).
        order: i64 = int("order"),
        /// Seconds to wait after starting it before the next order group.
        start_delay: i64 = int("start_delay"),
        /// Seconds to wait after shutting it down.
        shutdown_delay: i64 = int("shutdown_delay"),
        /// Times the VM was recovered: the newest-wins key against a target pool.
        version: i64 = int("version"),
        /// HA restart priority (`restart`, `best-effort` or empty).
        ha_restart_priority: String = string("ha_restart_priority"),
        /// Host it runs on.
        resident_on: Ref<Host> = reference("resident_on"),
        /// Suspend image of a suspended VM.
        suspend_vdi: Ref<Vdi> = reference("suspend_VDI"),
        /// Static maximum memory in bytes.
        memory_static_max: i64 = int("memory__static_max"),
        /// Maximum number of vCPUs.
        vcpus_max: i64 = int("VCPUs__max"),
        /// Disk and CD slots.
        vbds: Vec<Ref<Vbd>> = references("VBDs"),
        /// Network interfaces.
        vifs: Vec<Ref<Vif>> = references("VIFs"),
        /// Snapshots of this VM.
        snapshots: Vec<Ref<Vm>> = references("snapshots"),
        /// User tags (backup and DR selections use them).
        tags: Vec<String> = set("tags"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A virtual network interface (`VIF` table).
    VifView, Vif, "VIF" {
        /// UUID.
        uuid: String = string("uuid"),
        /// The VM.
        vm: Ref<Vm> = reference("VM"),
        /// The network.
        network: Ref<Network> = reference("network"),
        /// Device number in the guest.
        device: String = string("device"),
        /// MAC address.
        mac: String = string("MAC"),
        /// MTU.
        mtu: i64 = int("MTU"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A network (`network` table).
    NetworkView, Network, "network" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// Bridge name in dom0.
        bridge: String = string("bridge"),
        /// MTU.
        mtu: i64 = int("MTU"),
        /// VIFs on the network.
        vifs: Vec<Ref<Vif>> = references("VIFs"),
        /// `other_config`.
        other_config: Vec<(String, String)> = map("other_config"),
    }
}

view_struct! {
    /// A vApp (`VM_appliance` table).
    VmApplianceView, VmAppliance, "VM_appliance" {
        /// UUID.
        uuid: String = string("uuid"),
        /// Name.
        name_label: String = string("name__label"),
        /// Description.
        name_description: String = string("name__description"),
        /// Member VMs.
        vms: Vec<Ref<Vm>> = references("VMs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_vm(columns: &[(&str, &str)]) -> Database {
        let mut db = Database::default();
        db.insert_row("VM", "OpaqueRef:v", 1, 2, columns.iter().copied());
        db
    }

    #[test]
    fn vm_view_reads_typed_columns_and_defaults() {
        let db = db_with_vm(&[
            ("uuid", "u-1"),
            ("name__label", "web 01"),
            ("power_state", "Running"),
            ("order", "3"),
            ("start_delay", "20"),
            ("version", "2"),
            ("is_a_template", "false"),
            ("other_config", "(('k' 'v w'))"),
            ("VBDs", "('OpaqueRef:b')"),
            ("snapshot_time", "20250319T04:16:24Z"),
        ]);
        let vm: VmView = db.view_one("OpaqueRef:v").unwrap().unwrap();
        assert_eq!(vm.name_label, "web 01");
        assert_eq!(vm.power_state, VmPowerState::Running);
        assert_eq!(
            (vm.order, vm.start_delay, vm.shutdown_delay, vm.version),
            (3, 20, 0, 2)
        );
        assert!(vm.appliance.is_null());
        assert_eq!(vm.other_config, vec![("k".to_owned(), "v w".to_owned())]);
        assert_eq!(vm.vbds, vec![Ref::<Vbd>::new("OpaqueRef:b")]);
    }

    #[test]
    fn malformed_columns_name_their_place() {
        let db = db_with_vm(&[("order", "first")]);
        let err = db.view::<VmView>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "table VM, row OpaqueRef:v, column order: \"first\" is not an int"
        );
        let db = db_with_vm(&[("VBDs", "('x'")]);
        assert!(matches!(
            db.view::<VmView>(),
            Err(ViewError::BadSExpr { column: "VBDs", .. })
        ));
    }

    #[test]
    fn unknown_power_state_is_kept() {
        let db = db_with_vm(&[("power_state", "Migrating")]);
        let vm: VmView = db.view_one("OpaqueRef:v").unwrap().unwrap();
        assert_eq!(vm.power_state, VmPowerState::Unknown("Migrating".into()));
    }

    #[test]
    fn floats_and_datetimes_take_every_upstream_form() {
        let mut db = Database::default();
        db.insert_row(
            "x",
            "r",
            0,
            0,
            [("a", "1."), ("b", "inf"), ("c", "nan"), ("d", "-0.5")],
        );
        let row = db.row("x", "r").unwrap();
        let f = Fields::new("x", "r", row);
        assert!((f.float("a").unwrap() - 1.0).abs() < f64::EPSILON);
        assert!(f.float("b").unwrap().is_infinite());
        assert!(f.float("c").unwrap().is_nan());
        assert!((f.float("d").unwrap() + 0.5).abs() < f64::EPSILON);
        assert!(is_datetime("20250319T04:16:24Z"));
        assert!(is_datetime("20250319T04:16:24"));
        assert!(is_datetime("20250319T04:16:24+01:00"));
        assert!(!is_datetime("2025-03-19T04:16:24Z"));
        assert!(
            !is_datetime("2025031xT04:16:2éé"),
            "multi-byte text after a bad prefix"
        );
        assert!(!is_datetime("20250319T04:16:24é"));
    }

    proptest::proptest! {
        #[test]
        fn datetime_check_never_panics(text in proptest::prelude::any::<String>()) {
            let _ = is_datetime(&text);
        }
    }
}
