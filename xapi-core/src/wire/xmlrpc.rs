//! XML-RPC encoding and decoding, with every quirk real xapi has.
//!
//! Client side: [`encode_call`], [`decode_response`] (the `{Status, Value | ErrorDescription}`
//! envelope straight into `T`), [`decode_value`] (a bare `<value>` such as `task.result`).
//! Server side: [`decode_call`], [`encode_response`], [`encode_value`].
//!
//! ```
//! use xapi_core::wire::{xmlrpc, Limits};
//!
//! let body = b"<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
//!     <member><name>Status</name><value>Success</value></member>\
//!     <member><name>Value</name><value>4294967296</value></member>\
//!     </struct></value></param></params></methodResponse>";
//! let memory: i64 = xmlrpc::decode_response(body, &Limits::default())?.expect("success");
//! assert_eq!(memory, 4_294_967_296);
//! # Ok::<(), xapi_core::wire::DecodeError>(())
//! ```

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::document::write_ordered;
use super::error::DecodeErrorKind;
use super::text::TextDeserializer;
use super::xml_de::XmlDeserializer;
use super::xml_write::{write_escaped, write_value};
use super::{DecodeError, Failure, Limits, OrderedValue, Value};

const XML_DECL: &str = "<?xml version=\"1.0\"?>";

/// Encode a `methodCall` document.
pub fn encode_call(method: &str, params: &[Value]) -> Vec<u8> {
    let mut out = String::with_capacity(128 + 64 * params.len());
    out.push_str(XML_DECL);
    out.push_str("<methodCall><methodName>");
    write_escaped(&mut out, method);
    out.push_str("</methodName><params>");
    for param in params {
        out.push_str("<param>");
        write_value(&mut out, param);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>");
    out.into_bytes()
}

/// `faultCode` / `faultString` of a `<fault>`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fault {
    #[serde(rename = "faultCode")]
    code: i64,
    #[serde(rename = "faultString")]
    message: String,
}

/// Reads `<?xml?><methodResponse>` up to the value inside `<params><param>`; a `<fault>`
/// becomes [`DecodeErrorKind::Fault`].
fn open_response(de: &mut XmlDeserializer<'_>) -> Result<(), DecodeError> {
    de.expect_start("methodResponse")?;
    if de.next_is_start_of("fault")? {
        de.expect_start("fault")?;
        let start = de.position();
        let fault = Fault::deserialize(&mut *de)?;
        return Err(DecodeError::new(
            start,
            DecodeErrorKind::Fault {
                code: fault.code,
                message: fault.message,
            },
        ));
    }
    de.expect_start("params")?;
    de.expect_start("param")
}

fn close_response(de: &mut XmlDeserializer<'_>) -> Result<(), DecodeError> {
    de.expect_end("param")?;
    de.expect_end("params")?;
    de.expect_end("methodResponse")?;
    de.expect_eof()
}

/// Decode a `methodResponse` carrying the XAPI `{Status, Value | ErrorDescription}` envelope
/// straight into `T`.
///
/// `Status` may come after `Value` or `ErrorDescription`. A missing `Status`, or a missing
/// `Value` on success (`ErrorDescription` on failure), is [`DecodeErrorKind::MissingMember`];
/// a `<fault>` is [`DecodeErrorKind::Fault`].
pub fn decode_response<T: DeserializeOwned>(
    body: &[u8],
    limits: &Limits,
) -> Result<Result<T, Failure>, DecodeError> {
    let mut de = XmlDeserializer::new(body, limits)?;
    open_response(&mut de)?;
    let envelope_start = de.position();
    let mut status: Option<String> = None;
    let mut value: Option<T> = None;
    let mut description: Option<Vec<String>> = None;
    if de.open_struct()? {
        while let Some(name) = de.next_member_name()? {
            match &*name {
                "Status" => status = Some(String::deserialize(&mut de)?),
                "Value" if status.as_deref() != Some("Failure") => {
                    value = Some(T::deserialize(&mut de)?);
                }
                "ErrorDescription" if status.as_deref() != Some("Success") => {
                    description = Some(Vec::<String>::deserialize(&mut de)?);
                }
                _ => {
                    IgnoredAny::deserialize(&mut de)?;
                }
            }
            de.expect_end("member")?;
        }
        de.close_struct()?;
    }
    close_response(&mut de)?;
    let missing = |name| DecodeError::new(envelope_start, DecodeErrorKind::MissingMember(name));
    match status.as_deref() {
        Some("Success") => value.map(Ok).ok_or_else(|| missing("Value")),
        Some("Failure") => {
            let description = description.ok_or_else(|| missing("ErrorDescription"))?;
            Failure::from_description(description)
                .map(Err)
                .ok_or_else(|| DecodeError::new(envelope_start, DecodeErrorKind::EmptyFailure))
        }
        Some(other) => Err(DecodeError::new(
            envelope_start,
            DecodeErrorKind::InvalidStatus(other.to_owned()),
        )),
        None => Err(missing("Status")),
    }
}

/// Decode a bare `<value>...</value>` fragment (such as `task.result`) into `T`. An empty or
/// whitespace-only fragment is the empty string (xapi's `void`).
pub fn decode_value<T: DeserializeOwned>(
    fragment: &[u8],
    limits: &Limits,
) -> Result<T, DecodeError> {
    if fragment.iter().all(u8::is_ascii_whitespace) {
        if fragment.len() > limits.max_response_bytes {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::TooLarge {
                    size: fragment.len(),
                    limit: limits.max_response_bytes,
                },
            ));
        }
        return T::deserialize(TextDeserializer::untyped("".into())).map_err(|e| e.placed_at(0));
    }
    let mut de = XmlDeserializer::new(fragment, limits)?;
    let value = T::deserialize(&mut de)?;
    de.expect_eof()?;
    Ok(value)
}

/// Server side: decode a `methodCall` into its method name and parameters. Untyped values and
/// `<string>` become [`Value::String`]; `<int>`/`<i4>`/`<i8>` become [`Value::Int`].
pub fn decode_call(body: &[u8], limits: &Limits) -> Result<(String, Vec<Value>), DecodeError> {
    let mut de = XmlDeserializer::new(body, limits)?;
    de.expect_start("methodCall")?;
    de.expect_start("methodName")?;
    let method = de.read_text("methodName")?.trim().to_owned();
    let mut params = Vec::new();
    if de.next_is_start_of("params")? && de.expect_start_or_empty("params")? {
        while de.next_is_start_of("param")? {
            de.expect_start("param")?;
            params.push(Value::deserialize(&mut de)?);
            de.expect_end("param")?;
        }
        de.expect_end("params")?;
    }
    de.expect_end("methodCall")?;
    de.expect_eof()?;
    Ok((method, params))
}

/// Server side: encode a `methodResponse` with the XAPI envelope, exactly as xapi writes it
/// (strings and ints untyped, doubles `%.16g`, booleans `0`/`1`).
pub fn encode_response(result: Result<&Value, &Failure>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(XML_DECL);
    out.push_str("<methodResponse><params><param><value><struct>");
    match result {
        Ok(value) => {
            out.push_str("<member><name>Status</name><value>Success</value></member>");
            out.push_str("<member><name>Value</name>");
            write_value(&mut out, value);
            out.push_str("</member>");
        }
        Err(failure) => {
            out.push_str("<member><name>Status</name><value>Failure</value></member>");
            out.push_str("<member><name>ErrorDescription</name><value><array><data>");
            out.push_str("<value>");
            write_escaped(&mut out, failure.code.as_str());
            out.push_str("</value>");
            for param in &failure.params {
                out.push_str("<value>");
                write_escaped(&mut out, param);
                out.push_str("</value>");
            }
            out.push_str("</data></array></value></member>");
        }
    }
    out.push_str("</struct></value></param></params></methodResponse>");
    out.into_bytes()
}

/// Encode one `<value>...</value>` fragment exactly as xapi writes it (used for `task.result`).
pub fn encode_value(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Decode a document whose root is one `<value>` (an XVA's `ova.xml`) into an [`OrderedValue`]:
/// struct members in document order, datetimes as text. The same parser, DOCTYPE refusal and
/// limits as every response; nothing may follow the root value.
pub fn decode_document(xml: &[u8], limits: &Limits) -> Result<OrderedValue, DecodeError> {
    let mut de = XmlDeserializer::new(xml, limits)?;
    let value = OrderedValue::deserialize(&mut de)?;
    de.expect_eof()?;
    Ok(value)
}

/// Encode an [`OrderedValue`] as one `<value>` exactly as xapi writes it (no declaration, no
/// whitespace, ints untyped, `<i4>` for [`OrderedValue::Int32`]).
pub fn encode_document(value: &OrderedValue) -> String {
    let mut out = String::new();
    write_ordered(&mut out, value);
    out
}

#[cfg(test)]
#[path = "xmlrpc_tests.rs"]
mod tests;
