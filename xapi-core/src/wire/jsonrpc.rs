//! JSON-RPC v1 and v2 encoding and decoding.
//!
//! ```
//! use xapi_core::wire::{jsonrpc, Limits};
//!
//! let body = br#"{"jsonrpc": "2.0", "result": {"OpaqueRef:a": 9007199254740993}, "id": 1}"#;
//! let sizes: std::collections::HashMap<String, i64> =
//!     jsonrpc::decode_response(body, &Limits::default())?.expect("success");
//! assert_eq!(sizes["OpaqueRef:a"], 9_007_199_254_740_993);
//! # Ok::<(), xapi_core::wire::DecodeError>(())
//! ```

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny, IntoDeserializer, Visitor};

use super::error::DecodeErrorKind;
use super::json_de::JsonDeserializer;
use super::json_write::{write_str, write_value};
use super::{DecodeError, Failure, Limits, Value};

/// The JSON-RPC protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// JSON-RPC 1.0.
    V1,
    /// JSON-RPC 2.0.
    #[default]
    V2,
}

/// Encode a request: `{"jsonrpc":"2.0","method":..,"params":[..],"id":..}` (v2) or the same
/// without `jsonrpc` (v1).
pub fn encode_call(method: &str, params: &[Value], id: u64, version: Version) -> Vec<u8> {
    let mut out = String::with_capacity(64 + 48 * params.len());
    out.push('{');
    if version == Version::V2 {
        out.push_str("\"jsonrpc\":\"2.0\",");
    }
    out.push_str("\"method\":");
    write_str(&mut out, method);
    out.push_str(",\"params\":[");
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(&mut out, param);
    }
    out.push_str("],\"id\":");
    out.push_str(itoa::Buffer::new().format(id));
    out.push('}');
    out.into_bytes()
}

/// A string, or any scalar turned into its text (failure parameters are strings on the wire,
/// but a lenient reader does not fail on a number).
struct LenientString(String);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LenientString, E> {
                Ok(LenientString(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<LenientString, E> {
                Ok(LenientString(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LenientString, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LenientString, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LenientString, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<LenientString, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<LenientString, E> {
                Ok(LenientString(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The v2 error object `{"code": 1, "message": CODE, "data": [params]}`.
#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    #[allow(dead_code)]
    code: IgnoredAny,
    message: LenientString,
    #[serde(default)]
    data: Option<Vec<LenientString>>,
}

fn strings(items: Vec<LenientString>) -> Vec<String> {
    items.into_iter().map(|s| s.0).collect()
}

/// Decode a response (either version, either error shape) straight into `T`.
///
/// Success is `result`; failure is v1 `error: [code, params...]` or v2
/// `error: {code: 1, message: CODE, data: [params]}` (a bare `error: "CODE"` is read as a code
/// without parameters). A missing `result` (with no error) is
/// [`DecodeErrorKind::MissingMember`]; a `"result": null` decodes as `()` / `None`.
pub fn decode_response<T: DeserializeOwned>(
    body: &[u8],
    limits: &Limits,
) -> Result<Result<T, Failure>, DecodeError> {
    let mut de = JsonDeserializer::new(body, limits)?;
    de.expect(b'{', "a JSON object")?;
    let mut result: Option<T> = None;
    let mut result_is_null = false;
    let mut failure: Option<Failure> = None;
    let mut first = true;
    loop {
        match de.peek() {
            Some(b'}') => break,
            Some(b',') if !first => de.expect(b',', "','")?,
            _ if first => {}
            _ => return Err(de_unexpected(&mut de)),
        }
        first = false;
        let name = de.parse_str()?;
        de.expect(b':', "':'")?;
        match &*name {
            "result" if de.peek() == Some(b'n') => {
                IgnoredAny::deserialize(&mut de)?;
                result_is_null = true;
            }
            "result" if failure.is_none() => result = Some(T::deserialize(&mut de)?),
            "error" => {
                let start = de.position();
                match de.peek() {
                    Some(b'[') => {
                        let description = strings(Vec::<LenientString>::deserialize(&mut de)?);
                        failure =
                            Some(Failure::from_description(description).ok_or_else(|| {
                                DecodeError::new(start, DecodeErrorKind::EmptyFailure)
                            })?);
                    }
                    Some(b'{') => {
                        let object = ErrorObject::deserialize(&mut de)?;
                        failure = Some(Failure::new(
                            &object.message.0,
                            strings(object.data.unwrap_or_default()),
                        ));
                    }
                    Some(b'"') => {
                        let code = de.parse_str()?;
                        failure = Some(Failure::new(&code, Vec::<String>::new()));
                    }
                    _ => {
                        IgnoredAny::deserialize(&mut de)?;
                    }
                }
            }
            _ => {
                IgnoredAny::deserialize(&mut de)?;
            }
        }
    }
    de.expect(b'}', "'}'")?;
    de.expect_end()?;
    if let Some(failure) = failure {
        return Ok(Err(failure));
    }
    if let Some(result) = result {
        return Ok(Ok(result));
    }
    if result_is_null {
        return T::deserialize(().into_deserializer())
            .map(Ok)
            .map_err(|e: DecodeError| e.placed_at(0));
    }
    Err(DecodeError::new(
        0,
        DecodeErrorKind::MissingMember("result"),
    ))
}

fn de_unexpected(de: &mut JsonDeserializer<'_>) -> DecodeError {
    match de.expect(b'}', "',' or '}'") {
        Err(e) => e,
        Ok(()) => DecodeError::new(
            de.position(),
            DecodeErrorKind::Syntax("',' expected".into()),
        ),
    }
}

/// A decoded JSON-RPC request (server side).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method name.
    pub method: String,
    /// The positional parameters.
    pub params: Vec<Value>,
    /// The request id (a [`Value::Int`] or a [`Value::String`]), echoed in the response.
    pub id: Value,
    /// The protocol version the request used (`"jsonrpc": "2.0"` means [`Version::V2`]).
    pub version: Version,
}

#[derive(Deserialize)]
struct RawCall {
    method: Option<String>,
    #[serde(default)]
    params: Option<Vec<Value>>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    jsonrpc: Option<String>,
}

/// Server side: decode a request. `method` and a non-null `id` are required (xapi accepts no
/// notifications); missing `params` means none.
pub fn decode_call(body: &[u8], limits: &Limits) -> Result<Call, DecodeError> {
    let mut de = JsonDeserializer::new(body, limits)?;
    let raw = RawCall::deserialize(&mut de)?;
    de.expect_end()?;
    let method = raw.method.ok_or(DecodeError::new(
        0,
        DecodeErrorKind::MissingMember("method"),
    ))?;
    let id = match raw.id {
        None | Some(Value::Nil) => {
            return Err(DecodeError::new(0, DecodeErrorKind::MissingMember("id")));
        }
        Some(id) => id,
    };
    Ok(Call {
        method,
        params: raw.params.unwrap_or_default(),
        id,
        version: if raw.jsonrpc.as_deref() == Some("2.0") {
            Version::V2
        } else {
            Version::V1
        },
    })
}

/// Server side: encode a response in the request's version and error shape, as xapi does.
pub fn encode_response(version: Version, id: &Value, result: Result<&Value, &Failure>) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    out.push('{');
    if version == Version::V2 {
        out.push_str("\"jsonrpc\":\"2.0\",");
    }
    match (version, result) {
        (Version::V1, Ok(value)) => {
            out.push_str("\"result\":");
            write_value(&mut out, value);
            out.push_str(",\"error\":null");
        }
        (Version::V1, Err(failure)) => {
            out.push_str("\"result\":null,\"error\":[");
            write_str(&mut out, failure.code.as_str());
            for param in &failure.params {
                out.push(',');
                write_str(&mut out, param);
            }
            out.push(']');
        }
        (Version::V2, Ok(value)) => {
            out.push_str("\"result\":");
            write_value(&mut out, value);
        }
        (Version::V2, Err(failure)) => {
            out.push_str("\"error\":{\"code\":1,\"message\":");
            write_str(&mut out, failure.code.as_str());
            out.push_str(",\"data\":[");
            for (i, param) in failure.params.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(&mut out, param);
            }
            out.push_str("]}");
        }
    }
    out.push_str(",\"id\":");
    write_value(&mut out, id);
    out.push('}');
    out.into_bytes()
}

#[cfg(test)]
#[path = "jsonrpc_tests.rs"]
mod tests;
