//! The dynamic XAPI value.

use std::collections::BTreeMap;

use super::DateTime;

/// Any value XAPI can carry on either wire encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (XML-RPC untyped text or `<string>`).
    String(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double, possibly infinite or NaN.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A datetime.
    DateTime(DateTime),
    /// An array (a set).
    Array(Vec<Value>),
    /// A struct (a map or a record); keys are always strings on the wire.
    Struct(BTreeMap<String, Value>),
    /// `<nil/>` / JSON `null`.
    Nil,
    /// Binary data (`<base64>`).
    Base64(Vec<u8>),
}
