//! JSON-RPC v1 and v2 encoding and decoding.

use serde::de::DeserializeOwned;

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

/// Encode a request.
pub fn encode_call(_method: &str, _params: &[Value], _id: u64, _version: Version) -> Vec<u8> {
    todo!("wire: jsonrpc::encode_call")
}

/// Decode a response (either version, either error shape) straight into `T`.
pub fn decode_response<T: DeserializeOwned>(
    _body: &[u8],
    _limits: &Limits,
) -> Result<Result<T, Failure>, DecodeError> {
    todo!("wire: jsonrpc::decode_response")
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

/// Server side: decode a request.
pub fn decode_call(_body: &[u8], _limits: &Limits) -> Result<Call, DecodeError> {
    todo!("wire: jsonrpc::decode_call")
}

/// Server side: encode a response in the request's version and error shape, as xapi does.
pub fn encode_response(
    _version: Version,
    _id: &Value,
    _result: Result<&Value, &Failure>,
) -> Vec<u8> {
    todo!("wire: jsonrpc::encode_response")
}
