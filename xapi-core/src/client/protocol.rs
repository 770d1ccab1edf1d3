//! The two RPC encodings on the wire: request bodies, endpoints, and reading the answers
//! (including the signs that a host has no `/jsonrpc`).

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

use super::transport::Reply;
use crate::Error;
use crate::wire::{self, Failure, Limits, Value};

/// Which RPC encoding a [`Client`](super::Client) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// JSON-RPC 2.0 on `POST /jsonrpc`, falling back to XML-RPC once, for good, when the host
    /// has no `/jsonrpc` (404, or an answer that is not JSON).
    #[default]
    Auto,
    /// JSON-RPC 2.0 on `POST /jsonrpc` only.
    JsonRpc,
    /// XML-RPC on `POST /` only (what `XenAPI.py` speaks).
    XmlRpc,
}

/// The encoding used for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Xml,
}

impl Encoding {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Json => "/jsonrpc",
            Self::Xml => "/",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Xml => "text/xml",
        }
    }

    pub(crate) fn encode(self, method: &str, params: &[Value], id: u64) -> Bytes {
        match self {
            Self::Json => {
                wire::jsonrpc::encode_call(method, params, id, wire::jsonrpc::Version::V2).into()
            }
            Self::Xml => wire::xmlrpc::encode_call(method, params).into(),
        }
    }
}

/// What one exchange produced.
pub(crate) enum Answer<T> {
    /// A decoded XAPI answer.
    Decoded(Result<T, Failure>),
    /// The host does not serve JSON-RPC at this path.
    NoJsonRpc(String),
}

/// Interpret an RPC reply.
pub(crate) fn read_answer<T: DeserializeOwned>(
    encoding: Encoding,
    method: &str,
    url: &str,
    reply: &Reply,
    limits: &Limits,
) -> Result<Answer<T>, Error> {
    let content_type = reply
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    match reply.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
            if encoding == Encoding::Json =>
        {
            return Ok(Answer::NoJsonRpc(format!(
                "http status {}",
                reply.status.as_u16()
            )));
        }
        status if status.is_server_error() && !reply.body.is_empty() => {
            return Err(Error::Protocol {
                url: url.to_owned(),
                reason: format!(
                    "{method}: http status {} with body: {}",
                    status.as_u16(),
                    body_excerpt(&reply.body)
                ),
            });
        }
        status => {
            return Err(Error::Http {
                status: status.as_u16(),
                url: url.to_owned(),
            });
        }
    }
    let first = reply
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    let decoded = match encoding {
        Encoding::Json => {
            if !content_type.contains("json") && first != Some(b'{') {
                return Ok(Answer::NoJsonRpc(format!(
                    "answer is not json (content-type {content_type:?})"
                )));
            }
            wire::jsonrpc::decode_response::<T>(&reply.body, limits)
        }
        Encoding::Xml => {
            if first != Some(b'<') {
                return Err(Error::Protocol {
                    url: url.to_owned(),
                    reason: format!("{method}: answer is not xml: {}", body_excerpt(&reply.body)),
                });
            }
            wire::xmlrpc::decode_response::<T>(&reply.body, limits)
        }
    };
    decoded
        .map(Answer::Decoded)
        .map_err(|source| Error::DecodeResponse {
            method: method.to_owned(),
            source,
        })
}

/// The first 200 characters of a body, on one line, for error messages.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

/// Serialize call parameters (a tuple or a sequence) into positional values. `()` means no
/// parameters (the serde bridge writes unit as XAPI's void, `""`).
pub(crate) fn params_to_values(
    method: &str,
    params: &impl serde::Serialize,
) -> Result<Vec<Value>, Error> {
    match wire::to_value(params)? {
        Value::Array(values) => Ok(values),
        Value::Nil => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        _ => Err(Error::ParamsNotASequence {
            method: method.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_single_line() {
        let body = format!("<html>\n<body>{}</body></html>", "x".repeat(1000));
        let excerpt = body_excerpt(body.as_bytes());
        assert!(excerpt.len() <= 200);
        assert!(!excerpt.contains('\n'));
        assert!(excerpt.starts_with("<html>"));
    }

    #[test]
    fn each_encoding_has_its_endpoint() {
        assert_eq!(Encoding::Json.path(), "/jsonrpc");
        assert_eq!(Encoding::Xml.path(), "/");
        assert_eq!(Encoding::Xml.content_type(), "text/xml");
    }
}
