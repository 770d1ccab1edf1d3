//! XML-RPC encoding and decoding, with every quirk real xapi has.

use serde::de::DeserializeOwned;

use super::{DecodeError, Failure, Limits, Value};

/// Encode a `methodCall` document.
pub fn encode_call(_method: &str, _params: &[Value]) -> Vec<u8> {
    todo!("wire: xmlrpc::encode_call")
}

/// Decode a `methodResponse` carrying the XAPI `{Status, Value | ErrorDescription}` envelope
/// straight into `T`.
pub fn decode_response<T: DeserializeOwned>(
    _body: &[u8],
    _limits: &Limits,
) -> Result<Result<T, Failure>, DecodeError> {
    todo!("wire: xmlrpc::decode_response")
}

/// Decode a bare `<value>...</value>` fragment (such as `task.result`) into `T`.
pub fn decode_value<T: DeserializeOwned>(
    _fragment: &[u8],
    _limits: &Limits,
) -> Result<T, DecodeError> {
    todo!("wire: xmlrpc::decode_value")
}
