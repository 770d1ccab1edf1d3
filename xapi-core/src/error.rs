//! The one error type of xapi-core.
//!
//! Every variant names the place it happened (the XAPI method, or the URL with credentials
//! removed) so that a log line says what to look at. A XAPI failure stays data
//! ([`Failure`]: the code plus its parameters). [`Error::is_retryable`] tells retry loops which
//! errors may go away on their own.
//!
//! # Which call failed
//!
//! [`Error::Api`] holds the [`Failure`] alone, not the method that produced it: callers across
//! the workspace match on `Error::Api(failure)`, and a second variant carrying the method
//! would make those matches miss failures silently. The method is recorded instead where a
//! log reader looks: every call runs in a `call` tracing span with a `method` field, and a
//! failure answer emits a debug event `xapi failure` with its `code` inside that span, so a
//! subscriber prints `call{method=VM.start}: ... xapi failure code=VM_BAD_POWER_STATE`. A task's
//! failure is emitted the same way inside the `task` span, with the task reference. Callers
//! that report errors themselves know the method they called.

use std::time::Duration;

use crate::api::ErrorCode;
use crate::wire::{DecodeError, EncodeError, Failure};

/// A boxed error from a lower layer (hyper, IO, a caller's body stream).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening the TCP / Unix connection and the TLS handshake.
    Connect,
    /// A whole RPC call (request sent, response read).
    Call,
    /// A data-plane transfer: no byte moved for this long.
    Inactivity,
    /// Waiting for a task to finish.
    Task,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Call => "call",
            Self::Inactivity => "inactivity",
            Self::Task => "task wait",
        })
    }
}

/// Everything that can go wrong talking to XAPI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// XAPI answered with a failure (`ErrorDescription` / JSON-RPC `error` / task `error_info`).
    ///
    /// The method is not part of the value: it is on the `call` tracing span (see the
    /// [module documentation](self#which-call-failed)).
    #[error("xapi failure {}: {:?}", .0.code.as_str(), .0.params)]
    Api(Failure),
    /// A response could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The response to `method` could not be decoded.
    #[error("{method}: cannot decode the response: {source}")]
    DecodeResponse {
        /// The XAPI method (or `task.result of <task>`).
        method: String,
        /// The codec's error, with its byte offset.
        #[source]
        source: DecodeError,
    },
    /// A request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The parameters of `method` are not a tuple or a sequence.
    #[error("{method}: parameters must serialize to a sequence (a tuple, a slice or a Vec)")]
    ParamsNotASequence {
        /// The XAPI method.
        method: String,
    },
    /// The connection failed or broke (refused, reset, closed early, DNS).
    #[error("transport error with {url}: {source}")]
    Transport {
        /// The URL, without credentials.
        url: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The TLS handshake failed or the certificate was refused by the [`TlsPolicy`].
    ///
    /// [`TlsPolicy`]: crate::client::TlsPolicy
    #[error("tls error with {url}: {reason}")]
    Tls {
        /// The URL, without credentials.
        url: String,
        /// What was refused, and why.
        reason: String,
    },
    /// A TLS configuration could not be built (unreadable CA bundle, bad pin).
    #[error("tls configuration: {0}")]
    TlsConfig(String),
    /// A deadline expired.
    #[error("{kind} timeout after {after:?} with {url}")]
    Timeout {
        /// The URL (or task) the deadline was for.
        url: String,
        /// Which deadline.
        kind: TimeoutKind,
        /// The configured duration.
        after: Duration,
    },
    /// The server answered something that is not the protocol (an HTML 500 page, a missing
    /// header, a redirect loop).
    #[error("protocol error with {url}: {reason}")]
    Protocol {
        /// The URL, without credentials.
        url: String,
        /// What was unexpected.
        reason: String,
    },
    /// An HTTP status the operation does not accept.
    #[error("http status {status} from {url}")]
    Http {
        /// The status code.
        status: u16,
        /// The URL, without credentials.
        url: String,
    },
    /// A response body exceeded [`Limits::max_response_bytes`](crate::wire::Limits).
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The URL, without credentials.
        url: String,
        /// The configured limit.
        limit: usize,
    },
    /// An upload body did not carry the number of bytes announced in `Content-Length`.
    #[error("upload to {url}: body length mismatch (announced {expected} bytes, got {actual})")]
    BodyLength {
        /// The URL, without credentials.
        url: String,
        /// The announced length.
        expected: u64,
        /// The bytes the stream produced (so far).
        actual: u64,
    },
    /// The caller's upload body stream failed.
    #[error("upload to {url}: the body stream failed: {source}")]
    Body {
        /// The URL, without credentials.
        url: String,
        /// The stream's error.
        #[source]
        source: BoxError,
    },
    /// A URL could not be used.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (credentials removed).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A task was cancelled before it finished.
    #[error("task {task} was cancelled")]
    TaskCancelled {
        /// The task reference.
        task: String,
    },
    /// The session was logged out, or has no stored credentials to log in again.
    #[error("session is not logged in: {reason}")]
    NotLoggedIn {
        /// What happened.
        reason: String,
    },
}

impl Error {
    /// Whether the same operation may succeed if simply tried again later: broken
    /// connections, timeouts, gateway statuses (502, 503, 504) and XAPI's
    /// `TOO_MANY_PENDING_TASKS`.
    ///
    /// A non-idempotent call (such as `VM.clone`) may have run on the server even when the
    /// answer was lost; retry those only when the caller can tell.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => matches!(status, 502..=504),
            Self::Api(failure) => is_retryable_code(&failure.code),
            _ => false,
        }
    }

    /// The XAPI failure, when this error is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// Whether this is the XAPI failure with the wire code `code` (such as `"VM_BAD_POWER_STATE"`).
    pub fn is_code(&self, code: &str) -> bool {
        self.failure().is_some_and(|f| f.code.as_str() == code)
    }
}

/// [`Error::Api`] for a failure answer, with a debug event `xapi failure` naming its code in
/// the current (`call` or `task`) span. Parameters are not logged: some carry references
/// (`SESSION_INVALID` carries the session's).
pub(crate) fn api_failure(failure: Failure) -> Error {
    tracing::debug!(
        code = failure.code.as_str(),
        params = failure.params.len(),
        "xapi failure"
    );
    Error::Api(failure)
}

fn is_retryable_code(code: &ErrorCode) -> bool {
    matches!(
        code.as_str(),
        "TOO_MANY_PENDING_TASKS" | "HOST_STILL_BOOTING"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> Error {
        Error::Api(Failure {
            code: ErrorCode::from_code(code),
            params: vec![],
        })
    }

    #[test]
    fn connection_errors_and_timeouts_are_retryable() {
        let transport = Error::Transport {
            url: "https://10.0.0.1/".into(),
            source: "connection reset".into(),
        };
        assert!(transport.is_retryable());
        let timeout = Error::Timeout {
            url: "https://10.0.0.1/".into(),
            kind: TimeoutKind::Call,
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_retryable());
    }

    #[test]
    fn gateway_statuses_are_retryable_other_statuses_are_not() {
        let http = |status| Error::Http {
            status,
            url: "http://h/".into(),
        };
        assert!(http(503).is_retryable());
        assert!(http(502).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(500).is_retryable());
    }

    #[test]
    fn only_transient_xapi_codes_are_retryable() {
        assert!(api("TOO_MANY_PENDING_TASKS").is_retryable());
        assert!(!api("SESSION_AUTHENTICATION_FAILED").is_retryable());
        assert!(!api("VM_BAD_POWER_STATE").is_retryable());
        assert!(!api("SESSION_INVALID").is_retryable());
    }

    #[test]
    fn tls_decode_and_cancellation_are_not_retryable() {
        let tls = Error::Tls {
            url: "https://h/".into(),
            reason: "pin mismatch".into(),
        };
        assert!(!tls.is_retryable());
        assert!(!Error::TaskCancelled { task: "t".into() }.is_retryable());
    }

    #[test]
    fn messages_are_lower_case_and_name_the_place() {
        let e = Error::Http {
            status: 404,
            url: "https://10.0.0.1/jsonrpc".into(),
        };
        assert_eq!(
            e.to_string(),
            "http status 404 from https://10.0.0.1/jsonrpc"
        );
        assert!(api("VM_IS_TEMPLATE").is_code("VM_IS_TEMPLATE"));
    }
}
