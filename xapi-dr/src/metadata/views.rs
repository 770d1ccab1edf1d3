//! Typed views of the rows DR works with. Each view reads its columns from the stored strings;
//! a column missing from the dump takes the datamodel default (empty string, `0`, `false`, empty
//! set or map, `OpaqueRef:NULL`); a column that is present but malformed is an error naming the
//! table, row and column.
//!
//! A view holds the columns DR reads, not the whole record: `VmView` is a subset of
//! [`xapi_core::api::VmRecord`]. Its references and enums are xapi-core's ([`Ref<Vm>`],
//! [`VmPowerState`], [`VdiType`], ...), so a view and a record of the same object compare
//! field by field without conversion.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use xapi_core::api::{
    Host, Network, Pbd, Pool, Sr, Vbd, VbdMode, VbdType, Vdi, VdiType, Vif, Vm, VmAppliance,
    VmPowerState,
};
use xapi_core::wire::{DateTime, Ref, Value};

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
    /// A field of an API record (`get_all_records`) that does not have the form its type
    /// requires.
    #[error("class {class}, ref {reference}, field {field}: {found} is not {expected}")]
    BadField {
        /// API class name (the table name: `VM`, `pool`, `VM_appliance`, ...).
        class: &'static str,
        /// The object's reference.
        reference: String,
        /// API field name (`VCPUs_max`, `name_label`, ...).
        field: String,
        /// What the wire carried: the text of a scalar, or the kind of a compound value.
        found: String,
        /// What the field holds (`"an int"`, `"a set"`, ...).
        expected: &'static str,
    },
    /// An entry of a `get_all_records` answer that is not a struct.
    #[error("class {class}, ref {reference}: the record is a {found}, not a struct")]
    NotARecord {
        /// API class name.
        class: &'static str,
        /// The object's reference.
        reference: String,
        /// The kind of value found.
        found: &'static str,
    },
}

/// Reads typed columns of one object, whatever holds it: a database row ([`Fields`]) or an
/// API record ([`RecordFields`]). Missing columns take the datamodel default.
pub trait Columns {
    /// A string column (`""` if missing).
    fn string(&self, column: &'static str) -> Result<String, ViewError>;
    /// A reference column (`OpaqueRef:NULL` if missing or empty).
    fn reference<T>(&self, column: &'static str) -> Result<Ref<T>, ViewError>;
    /// A set-of-references column (empty if missing).
    fn references<T>(&self, column: &'static str) -> Result<Vec<Ref<T>>, ViewError> {
        Ok(self.set(column)?.into_iter().map(Ref::new).collect())
    }
    /// An enum column, as xapi-core's enum: a value the enum does not know is kept as its
    /// `Unknown` variant, never an error.
    fn enumeration<E>(
        &self,
        column: &'static str,
        from_wire: fn(&str) -> E,
    ) -> Result<E, ViewError>;
    /// An int column (`0` if missing).
    fn int(&self, column: &'static str) -> Result<i64, ViewError>;
    /// A float column (`0.` if missing).
    fn float(&self, column: &'static str) -> Result<f64, ViewError>;
    /// A bool column (`false` if missing).
    fn bool(&self, column: &'static str) -> Result<bool, ViewError>;
    /// A set column (empty if missing).
    fn set(&self, column: &'static str) -> Result<Vec<String>, ViewError>;
    /// A map column (empty if missing).
    fn map(&self, column: &'static str) -> Result<Vec<(String, String)>, ViewError>;
    /// A datetime column in xapi's stored form (`19700101T00:00:00Z` if missing).
    fn datetime(&self, column: &'static str) -> Result<String, ViewError>;
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

    fn sexpr(&self, column: &'static str, source: SExprError) -> ViewError {
        ViewError::BadSExpr {
            table: self.table,
            reference: self.reference.to_owned(),
            column,
            source,
        }
    }
}

impl Fields<'_> {
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
            None => Ok(EPOCH_TEXT.to_owned()),
            Some(text) if is_datetime(text) => Ok(text.to_owned()),
            Some(text) => Err(self.bad(column, text, "a datetime (YYYYMMDDTHH:MM:SS[Z])")),
        }
    }
}

impl Columns for Fields<'_> {
    fn string(&self, column: &'static str) -> Result<String, ViewError> {
        Ok(Fields::string(self, column))
    }
    fn reference<T>(&self, column: &'static str) -> Result<Ref<T>, ViewError> {
        Ok(Fields::reference(self, column))
    }
    fn enumeration<E>(
        &self,
        column: &'static str,
        from_wire: fn(&str) -> E,
    ) -> Result<E, ViewError> {
        Ok(Fields::enumeration(self, column, from_wire))
    }
    fn int(&self, column: &'static str) -> Result<i64, ViewError> {
        Fields::int(self, column)
    }
    fn float(&self, column: &'static str) -> Result<f64, ViewError> {
        Fields::float(self, column)
    }
    fn bool(&self, column: &'static str) -> Result<bool, ViewError> {
        Fields::bool(self, column)
    }
    fn set(&self, column: &'static str) -> Result<Vec<String>, ViewError> {
        Fields::set(self, column)
    }
    fn map(&self, column: &'static str) -> Result<Vec<(String, String)>, ViewError> {
        Fields::map(self, column)
    }
    fn datetime(&self, column: &'static str) -> Result<String, ViewError> {
        Fields::datetime(self, column)
    }
}

/// The datetime xapi stores for "never".
const EPOCH_TEXT: &str = "19700101T00:00:00Z";

/// Reads typed fields of one API record (an entry of `get_all_records` as a wire [`Value`]).
///
/// Column names map to field names by replacing `__` with `_` (`name__label` → `name_label`,
/// `VCPUs__max` → `VCPUs_max`). Both encodings are read: XML-RPC sends ints as strings and
/// JSON-RPC as numbers; references are strings, sets arrays, maps structs, enums their wire
/// names. A missing field (an older host) takes the datamodel default, as a missing column
/// does; a field of the wrong form is a [`ViewError::BadField`] naming class, ref and field.
pub struct RecordFields<'a> {
    class: &'static str,
    reference: &'a str,
    fields: &'a BTreeMap<String, Value>,
}

impl<'a> RecordFields<'a> {
    /// A reader over `record`, the object `reference` of `class`; fails unless the record is
    /// a struct.
    pub fn new(
        class: &'static str,
        reference: &'a str,
        record: &'a Value,
    ) -> Result<RecordFields<'a>, ViewError> {
        match record {
            Value::Struct(fields) => Ok(RecordFields {
                class,
                reference,
                fields,
            }),
            other => Err(ViewError::NotARecord {
                class,
                reference: reference.to_owned(),
                found: other.kind_name(),
            }),
        }
    }

    /// The API field name of a database column.
    fn field_name(column: &str) -> Cow<'_, str> {
        if column.contains("__") {
            Cow::Owned(column.replace("__", "_"))
        } else {
            Cow::Borrowed(column)
        }
    }

    /// The field of `column`, `None` when missing or nil.
    fn get(&self, column: &'static str) -> Option<&'a Value> {
        match self.fields.get(Self::field_name(column).as_ref()) {
            None | Some(Value::Nil) => None,
            found => found,
        }
    }

    fn bad(&self, column: &'static str, value: &Value, expected: &'static str) -> ViewError {
        ViewError::BadField {
            class: self.class,
            reference: self.reference.to_owned(),
            field: Self::field_name(column).into_owned(),
            found: describe(value),
            expected,
        }
    }

    /// A scalar as text: strings as they are, numbers and booleans in their stored form.
    fn text(
        &self,
        column: &'static str,
        value: &Value,
        expected: &'static str,
    ) -> Result<String, ViewError> {
        scalar_text(value).ok_or_else(|| self.bad(column, value, expected))
    }
}

/// A scalar as the text the database stores for it; `None` for compound values.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Double(x) => Some(x.to_string()),
        Value::DateTime(dt) => Some(dt.to_string()),
        Value::Array(_) | Value::Struct(_) | Value::Nil | Value::Base64(_) => None,
    }
}

/// A value for an error message: a scalar's text (quoted), or the kind of a compound value.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Int(_) | Value::Bool(_) | Value::Double(_) | Value::DateTime(_) => {
            format!(
                "{} {}",
                value.kind_name(),
                scalar_text(value).unwrap_or_default()
            )
        }
        other => {
            let kind = other.kind_name();
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            format!("{article} {kind}")
        }
    }
}

impl Columns for RecordFields<'_> {
    fn string(&self, column: &'static str) -> Result<String, ViewError> {
        match self.get(column) {
            None => Ok(String::new()),
            Some(value) => self.text(column, value, "a string"),
        }
    }

    fn reference<T>(&self, column: &'static str) -> Result<Ref<T>, ViewError> {
        match self.get(column) {
            None => Ok(Ref::null()),
            Some(Value::String(r)) if r.is_empty() => Ok(Ref::null()),
            Some(Value::String(r)) => Ok(Ref::new(r.as_str())),
            Some(other) => Err(self.bad(column, other, "a reference")),
        }
    }

    fn enumeration<E>(
        &self,
        column: &'static str,
        from_wire: fn(&str) -> E,
    ) -> Result<E, ViewError> {
        match self.get(column) {
            None => Ok(from_wire("")),
            Some(Value::String(name)) => Ok(from_wire(name)),
            Some(other) => Err(self.bad(column, other, "an enum name")),
        }
    }

    fn int(&self, column: &'static str) -> Result<i64, ViewError> {
        match self.get(column) {
            None => Ok(0),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| self.bad(column, value, "an int")),
        }
    }

    fn float(&self, column: &'static str) -> Result<f64, ViewError> {
        match self.get(column) {
            None => Ok(0.0),
            Some(Value::String(text)) => text
                .parse()
                .map_err(|_| self.bad(column, &Value::String(text.clone()), "a float")),
            Some(value) => value
                .as_f64()
                .ok_or_else(|| self.bad(column, value, "a float")),
        }
    }

    fn bool(&self, column: &'static str) -> Result<bool, ViewError> {
        match self.get(column) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            // JSON-RPC event records and some clients carry booleans as text
            Some(Value::String(text)) if text == "true" => Ok(true),
            Some(Value::String(text)) if text == "false" => Ok(false),
            Some(other) => Err(self.bad(column, other, "a bool")),
        }
    }

    fn set(&self, column: &'static str) -> Result<Vec<String>, ViewError> {
        match self.get(column) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| self.text(column, item, "a set of scalars"))
                .collect(),
            Some(other) => Err(self.bad(column, other, "a set")),
        }
    }

    /// Pairs in key order (a wire struct has no other).
    fn map(&self, column: &'static str) -> Result<Vec<(String, String)>, ViewError> {
        match self.get(column) {
            None => Ok(Vec::new()),
            Some(Value::Struct(pairs)) => pairs
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.text(column, v, "a map of scalars")?)))
                .collect(),
            Some(other) => Err(self.bad(column, other, "a map")),
        }
    }

    /// In xapi's stored form (`YYYYMMDDTHH:MM:SSZ`), from a `dateTime.iso8601` or a string.
    fn datetime(&self, column: &'static str) -> Result<String, ViewError> {
        match self.get(column) {
            None => Ok(EPOCH_TEXT.to_owned()),
            Some(Value::DateTime(dt)) => Ok(dt.to_string()),
            Some(Value::String(text)) if is_datetime(text) => Ok(text.clone()),
            Some(Value::String(text)) => DateTime::parse(text)
                .map(|dt| dt.to_string())
                .map_err(|_| self.bad(column, &Value::String(text.clone()), "a datetime")),
            Some(other) => Err(self.bad(column, other, "a datetime")),
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

/// A typed view of one object, built from a database row or from an API record: the columns
/// are declared once and read through [`Columns`].
pub trait View: Sized {
    /// The database table the view reads; also the API class name.
    const TABLE: &'static str;
    /// Builds the view from any column reader.
    fn from_columns<C: Columns>(reference: &str, columns: &C) -> Result<Self, ViewError>;

    /// Builds the view from one database row.
    fn from_fields(reference: &str, fields: &Fields<'_>) -> Result<Self, ViewError> {
        Self::from_columns(reference, fields)
    }

    /// Builds the view from one API record (an entry of `<class>.get_all_records`).
    fn from_record(reference: &str, record: &Value) -> Result<Self, ViewError> {
        Self::from_columns(
            reference,
            &RecordFields::new(Self::TABLE, reference, record)?,
        )
    }
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
            fn from_columns<C: Columns>(reference: &str, f: &C) -> Result<Self, ViewError> {
                Ok($name {
                    reference: Ref::new(reference),
                    $( $field: view_struct!(@read f, $kind $(<$e>)?, $column), )*
                })
            }
        }
    };
    (@read $f:ident, string, $c:literal) => { $f.string($c)? };
    (@read $f:ident, reference, $c:literal) => { $f.reference($c)? };
    (@read $f:ident, int, $c:literal) => { $f.int($c)? };
    (@read $f:ident, float, $c:literal) => { $f.float($c)? };
    (@read $f:ident, bool, $c:literal) => { $f.bool($c)? };
    (@read $f:ident, set, $c:literal) => { $f.set($c)? };
    (@read $f:ident, map, $c:literal) => { $f.map($c)? };
    (@read $f:ident, datetime, $c:literal) => { $f.datetime($c)? };
    (@read $f:ident, references, $c:literal) => { $f.references($c)? };
    (@read $f:ident, enumeration<$e:ty>, $c:literal) => { $f.enumeration($c, <$e>::from_wire)? };
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

    fn record(pairs: Vec<(&str, Value)>) -> Value {
        Value::Struct(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    #[test]
    fn a_record_in_either_encoding_gives_the_view_of_its_row() {
        let db = db_with_vm(&[
            ("uuid", "u-1"),
            ("name__label", "web 01"),
            ("power_state", "Halted"),
            ("VCPUs__max", "4"),
            ("memory__static_max", "4294967296"),
            ("is_a_template", "false"),
            ("appliance", "OpaqueRef:app"),
            ("VBDs", "('OpaqueRef:b1' 'OpaqueRef:b2')"),
            ("tags", "('gold')"),
            ("other_config", "(('a' '1') ('b' '2'))"),
            ("snapshot_time", "20250319T04:16:24Z"),
        ]);
        let from_row: VmView = db.view_one("OpaqueRef:v").unwrap().unwrap();
        let common = |vcpus: Value, memory: Value, snapshot_time: Value| {
            record(vec![
                ("uuid", s("u-1")),
                ("name_label", s("web 01")),
                ("power_state", s("Halted")),
                ("VCPUs_max", vcpus),
                ("memory_static_max", memory),
                ("is_a_template", Value::Bool(false)),
                ("appliance", s("OpaqueRef:app")),
                (
                    "VBDs",
                    Value::Array(vec![s("OpaqueRef:b1"), s("OpaqueRef:b2")]),
                ),
                ("tags", Value::Array(vec![s("gold")])),
                (
                    "other_config",
                    Value::Struct(BTreeMap::from([
                        ("a".to_owned(), s("1")),
                        ("b".to_owned(), s("2")),
                    ])),
                ),
                ("snapshot_time", snapshot_time),
                ("a_field_of_a_newer_host", Value::Array(Vec::new())),
            ])
        };
        // XML-RPC: ints as untyped text, datetimes typed
        let xml = common(
            s("4"),
            s("4294967296"),
            Value::DateTime(DateTime::parse("20250319T04:16:24Z").unwrap()),
        );
        // JSON-RPC: ints as numbers, datetimes as strings
        let json = common(
            Value::Int(4),
            Value::Int(4_294_967_296),
            s("20250319T04:16:24Z"),
        );
        assert_eq!(VmView::from_record("OpaqueRef:v", &xml).unwrap(), from_row);
        assert_eq!(VmView::from_record("OpaqueRef:v", &json).unwrap(), from_row);
    }

    #[test]
    fn a_bad_record_field_names_class_ref_and_field() {
        let bad = record(vec![("VCPUs_max", s("four"))]);
        let err = VmView::from_record("OpaqueRef:v", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "class VM, ref OpaqueRef:v, field VCPUs_max: \"four\" is not an int"
        );
        let bad = record(vec![("VBDs", s("OpaqueRef:b"))]);
        assert!(matches!(
            VmView::from_record("OpaqueRef:v", &bad),
            Err(ViewError::BadField { class: "VM", ref field, expected: "a set", .. })
                if field == "VBDs"
        ));
        let bad = record(vec![(
            "other_config",
            Value::Struct(BTreeMap::from([("k".to_owned(), Value::Array(Vec::new()))])),
        )]);
        let err = VmView::from_record("OpaqueRef:v", &bad).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("field other_config: an array is not a map of scalars"),
            "{err}"
        );
        let err = VmView::from_record("OpaqueRef:v", &s("not a struct")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "class VM, ref OpaqueRef:v: the record is a string, not a struct"
        );
    }

    #[test]
    fn missing_and_nil_record_fields_take_defaults() {
        let sparse = record(vec![("uuid", s("u")), ("suspend_VDI", Value::Nil)]);
        let vm = VmView::from_record("OpaqueRef:v", &sparse).unwrap();
        assert_eq!(vm.uuid, "u");
        assert!(vm.suspend_vdi.is_null());
        assert_eq!(vm.snapshot_time, EPOCH_TEXT);
        assert_eq!(vm.power_state, VmPowerState::from_wire(""));
    }

    proptest::proptest! {
        #[test]
        fn datetime_check_never_panics(text in proptest::prelude::any::<String>()) {
            let _ = is_datetime(&text);
        }
    }
}
