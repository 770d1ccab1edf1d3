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

/// Server side: decode a `methodCall` into its method name and parameters. Untyped values and
/// `<string>` become [`Value::String`]; `<int>`/`<i4>`/`<i8>` become [`Value::Int`].
pub fn decode_call(_body: &[u8], _limits: &Limits) -> Result<(String, Vec<Value>), DecodeError> {
    todo!("wire: xmlrpc::decode_call")
}

/// Server side: encode a `methodResponse` with the XAPI envelope, exactly as xapi writes it
/// (strings and ints untyped, doubles `%.16g`, booleans `0`/`1`).
pub fn encode_response(_result: Result<&Value, &Failure>) -> Vec<u8> {
    todo!("wire: xmlrpc::encode_response")
}

/// Encode one `<value>...</value>` fragment exactly as xapi writes it (used for `task.result`).
pub fn encode_value(_value: &Value) -> String {
    todo!("wire: xmlrpc::encode_value")
}
