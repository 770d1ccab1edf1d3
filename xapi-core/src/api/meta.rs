//! Placeholder for the generated, machine-readable description of the datamodel (classes,
//! fields with their types, qualifiers and defaults, messages, enums). The simulator and the
//! DB XML reader use it to handle every class generically.

/// A datamodel type, as the grammar of `datamodel.json` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `string`
    String,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `bool`
    Bool,
    /// `datetime`
    DateTime,
    /// `enum NAME`
    Enum(&'static str),
    /// `CLASS ref`
    Ref(&'static str),
    /// `CLASS record`
    Record(&'static str),
    /// `T set`
    Set(&'static Ty),
    /// `(K -> V) map`
    Map(&'static Ty, &'static Ty),
    /// `T option`
    Option(&'static Ty),
    /// `void` results
    Void,
    /// The `event.from` result (`an event batch`).
    EventBatch,
    /// The `event.snapshot` field (`<class> record`).
    AnyRecord,
}

/// Who may write a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `RW`: settable with `set_<field>`.
    ReadWrite,
    /// `RO/constructor`: given at creation, read-only afterwards.
    ReadOnlyConstructor,
    /// `RO/runtime`: maintained by the server.
    ReadOnlyRuntime,
}

/// A field of a class.
#[derive(Debug, Clone, Copy)]
pub struct FieldMeta {
    /// Wire name (`name_label`, `memory_static_max`).
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Who may write it.
    pub qualifier: Qualifier,
    /// The default in the datamodel's printed form, when the datamodel gives one.
    pub default: Option<&'static str>,
}

/// A parameter of a message.
#[derive(Debug, Clone, Copy)]
pub struct ParamMeta {
    /// Wire name.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
}

/// A message of a class.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta {
    /// Name without the class (`start`, `get_record`).
    pub name: &'static str,
    /// Parameters in wire order, `session_id` included where the message takes it.
    pub params: &'static [ParamMeta],
    /// Result type.
    pub result: Ty,
    /// Whether `Async.<class>.<name>` exists.
    pub is_async: bool,
    /// Whether the datamodel generates it (getters, setters, constructors...).
    pub implicit: bool,
}

/// An enum.
#[derive(Debug, Clone, Copy)]
pub struct EnumMeta {
    /// Datamodel name (`vm_power_state`).
    pub name: &'static str,
    /// Wire values in datamodel order.
    pub values: &'static [&'static str],
}

/// A class.
#[derive(Debug, Clone, Copy)]
pub struct ClassMeta {
    /// Datamodel name (`VM`, `VDI`, `pool`).
    pub name: &'static str,
    /// Fields in datamodel order.
    pub fields: &'static [FieldMeta],
    /// Messages in datamodel order (removed ones left out).
    pub messages: &'static [MessageMeta],
}

/// Every class.
pub static CLASSES: &[ClassMeta] = &[];

/// Every enum.
pub static ENUMS: &[EnumMeta] = &[];

/// The class with this datamodel name, compared case-insensitively (`vm` finds `VM`).
pub fn class(name: &str) -> Option<&'static ClassMeta> {
    CLASSES.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}
