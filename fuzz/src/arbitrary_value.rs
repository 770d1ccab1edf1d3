//! Arbitrary [`Value`]s for the wire round-trip targets, and what each wire is documented to
//! change on the way (so that a round trip is compared with what must come back).

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use xapi_core::wire::{DateTime, Value};

/// Deepest nesting generated; the decoders refuse 64 levels by default.
const MAX_DEPTH: usize = 24;

/// A fuzzer-chosen value, turned into a [`Value`] by [`ArbitraryValue::to_value`].
#[derive(Debug, Arbitrary)]
pub enum ArbitraryValue {
    /// Any string.
    String(String),
    /// Any integer.
    Int(i64),
    /// `mantissa / 10^(exp % 16)`: decimals with at most 10 significant digits, which the
    /// `%.16g` XML-RPC form carries exactly.
    Decimal(i32, u8),
    /// Infinities and signed zero.
    SpecialDouble(u8),
    /// A boolean.
    Bool(bool),
    /// A UTC datetime, seconds after 1970.
    DateTime(u32),
    /// An array.
    Array(Vec<ArbitraryValue>),
    /// A struct.
    Struct(Vec<(String, ArbitraryValue)>),
    /// Nil.
    Nil,
    /// Binary data.
    Base64(Vec<u8>),
}

impl ArbitraryValue {
    /// The value, nesting capped at [`MAX_DEPTH`] (deeper parts become `Nil`).
    pub fn to_value(&self) -> Value {
        self.build(0)
    }

    fn build(&self, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::Nil;
        }
        match self {
            Self::String(s) => Value::String(s.clone()),
            Self::Int(n) => Value::Int(*n),
            Self::Decimal(m, e) => Value::Double(f64::from(*m) / 10f64.powi(i32::from(e % 16))),
            Self::SpecialDouble(k) => Value::Double(match k % 3 {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                _ => -0.0,
            }),
            Self::Bool(b) => Value::Bool(*b),
            Self::DateTime(secs) => Value::DateTime(
                DateTime::from_unix_seconds(i64::from(*secs))
                    .expect("a u32 of seconds after 1970 is a valid datetime"),
            ),
            Self::Array(items) => Value::Array(items.iter().map(|v| v.build(depth + 1)).collect()),
            Self::Struct(members) => Value::Struct(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.build(depth + 1)))
                    .collect(),
            ),
            Self::Nil => Value::Nil,
            Self::Base64(bytes) => Value::Base64(bytes.clone()),
        }
    }
}

fn strip_xml_controls(text: &str) -> String {
    text.chars()
        .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// What XML-RPC as xapi writes it gives back for `value`: ints are untyped (so they come back
/// as strings) and control characters XML cannot carry are dropped.
pub fn after_xmlrpc(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(strip_xml_controls(s)),
        Value::Int(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(after_xmlrpc).collect()),
        Value::Struct(members) => {
            let mut out = BTreeMap::new();
            for (k, v) in members {
                out.insert(strip_xml_controls(k), after_xmlrpc(v));
            }
            Value::Struct(out)
        }
        other => other.clone(),
    }
}

/// What JSON-RPC gives back for `value` decoded as a [`Value`]: datetimes and binary data travel
/// as strings.
pub fn after_jsonrpc(value: &Value) -> Value {
    match value {
        Value::DateTime(dt) => Value::String(dt.to_string()),
        Value::Base64(bytes) => Value::String(base64_text(bytes)),
        Value::Array(items) => Value::Array(items.iter().map(after_jsonrpc).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(k, v)| (k.clone(), after_jsonrpc(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn base64_text(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= group.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}
