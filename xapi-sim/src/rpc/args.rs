//! Reading positional arguments (already coerced to their declared types).

use xapi_core::wire::{Failure, Value};

use crate::api_error::internal;

/// Argument `i` as a string (refs, enums, strings).
pub(crate) fn string(args: &[Value], i: usize) -> Result<String, Failure> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(internal(format!(
            "argument {i}: expected a string, got {other:?}"
        ))),
    }
}

/// Argument `i` as a bool.
pub(crate) fn boolean(args: &[Value], i: usize) -> Result<bool, Failure> {
    match args.get(i) {
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(internal(format!(
            "argument {i}: expected a bool, got {other:?}"
        ))),
    }
}

/// Argument `i` as a float.
pub(crate) fn float(args: &[Value], i: usize) -> Result<f64, Failure> {
    match args.get(i) {
        Some(Value::Double(f)) => Ok(*f),
        Some(Value::Int(n)) => Ok(*n as f64),
        other => Err(internal(format!(
            "argument {i}: expected a float, got {other:?}"
        ))),
    }
}

/// Argument `i` as a list of strings.
pub(crate) fn strings(args: &[Value], i: usize) -> Result<Vec<String>, Failure> {
    match args.get(i) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(internal(format!(
                    "argument {i}: expected strings, got {other:?}"
                ))),
            })
            .collect(),
        other => Err(internal(format!(
            "argument {i}: expected a set, got {other:?}"
        ))),
    }
}

/// A set of strings.
pub(crate) fn text_set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}
