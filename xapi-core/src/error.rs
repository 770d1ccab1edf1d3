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

use crate::wire::{DecodeError, EncodeError, ErrorCode, Failure};

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
    /// The connection could not be opened (refused, unreachable, DNS, closed before the request
    /// went out): nothing was sent, so any call may be tried again ([`Retry::Safe`]).
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, without credentials.
        url: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The connection broke after the request was sent (reset, closed before the whole
    /// answer): the call may have run on the server ([`Retry::IfIdempotent`]).
    #[error("transport error with {url} (the call may have run): {source}")]
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

/// Whether an operation that failed may be tried again, and on what condition.
///
/// The line is whether the request reached the server: a `VM.snapshot` whose answer was lost
/// to a reset may have run, and repeating it blindly leaves two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// Nothing ran: the request was never sent (connection refused, DNS, TLS handshake, connect
    /// timeout), or the server refused it before running it (502, 503, 504,
    /// `TOO_MANY_PENDING_TASKS`, `HOST_STILL_BOOTING`). Any call may be repeated.
    Safe,
    /// The request was sent and the answer lost (reset, call or inactivity timeout): the call
    /// may have run. Repeat reads and other idempotent calls; check the server's state before
    /// repeating anything else.
    IfIdempotent,
    /// Trying again gives the same answer (a XAPI failure, a refused certificate, bad input).
    No,
}

impl Error {
    /// Whether and when this operation may be tried again: see [`Retry`].
    pub fn retry(&self) -> Retry {
        match self {
            Self::Connect { .. }
            | Self::Timeout {
                kind: TimeoutKind::Connect,
                ..
            }
            | Self::Http {
                status: 502..=504, ..
            } => Retry::Safe,
            Self::Api(failure) if is_retryable_code(&failure.code) => Retry::Safe,
            Self::Timeout { .. } | Self::Transport { .. } => Retry::IfIdempotent,
            _ => Retry::No,
        }
    }

    /// Whether any call, idempotent or not, may simply be tried again: nothing ran
    /// ([`Retry::Safe`]).
    pub fn is_retryable(&self) -> bool {
        self.retry() == Retry::Safe
    }

    /// Whether an idempotent call (a read, `event.from`, a `get_record`) may be tried again:
    /// [`Retry::Safe`] or [`Retry::IfIdempotent`].
    pub fn is_retryable_if_idempotent(&self) -> bool {
        matches!(self.retry(), Retry::Safe | Retry::IfIdempotent)
    }

    /// Whether the request may have reached the server and run there.
    pub fn may_have_run(&self) -> bool {
        !matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout {
                    kind: TimeoutKind::Connect,
                    ..
                }
                | Self::Tls { .. }
                | Self::TlsConfig(_)
                | Self::InvalidUrl { .. }
                | Self::Encode(_)
                | Self::ParamsNotASequence { .. }
        )
    }

    /// The XAPI failure, when this error is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// Whether this is the XAPI failure `code` (such as [`ErrorCode::VmBadPowerState`]).
    pub fn is_code(&self, code: &ErrorCode) -> bool {
        self.failure().is_some_and(|f| f.code == *code)
    }
}

impl From<Error> for std::io::Error {
    /// For `AsyncRead` adapters over the data plane: timeouts keep their kind, the rest is
    /// `Other` with the error inside.
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::Timeout { .. } => std::io::ErrorKind::TimedOut,
            Error::Connect { .. } => std::io::ErrorKind::ConnectionRefused,
            Error::Transport { .. } => std::io::ErrorKind::ConnectionReset,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
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
        code,
        ErrorCode::TooManyPendingTasks | ErrorCode::HostStillBooting
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: ErrorCode) -> Error {
        Error::Api(Failure {
            code,
            params: vec![],
        })
    }

    #[test]
    fn nothing_sent_is_safe_to_retry() {
        let refused = Error::Connect {
            url: "https://10.0.0.1/".into(),
            source: "connection refused".into(),
        };
        assert_eq!(refused.retry(), Retry::Safe);
        assert!(refused.is_retryable());
        assert!(!refused.may_have_run());
        let connect_timeout = Error::Timeout {
            url: "https://10.0.0.1/".into(),
            kind: TimeoutKind::Connect,
            after: Duration::from_secs(1),
        };
        assert_eq!(connect_timeout.retry(), Retry::Safe);
        assert!(!connect_timeout.may_have_run());
    }

    #[test]
    fn a_lost_answer_may_have_run_and_is_retried_only_when_idempotent() {
        let reset = Error::Transport {
            url: "https://10.0.0.1/".into(),
            source: "connection reset".into(),
        };
        assert_eq!(reset.retry(), Retry::IfIdempotent);
        assert!(
            !reset.is_retryable(),
            "a VM.snapshot must not be repeated blindly"
        );
        assert!(reset.is_retryable_if_idempotent());
        assert!(reset.may_have_run());
        let call_timeout = Error::Timeout {
            url: "https://10.0.0.1/".into(),
            kind: TimeoutKind::Call,
            after: Duration::from_secs(1),
        };
        assert_eq!(call_timeout.retry(), Retry::IfIdempotent);
        assert!(call_timeout.may_have_run());
    }

    #[test]
    fn gateway_statuses_are_retryable_other_statuses_are_not() {
        let http = |status| Error::Http {
            status,
            url: "http://h/".into(),
        };
        assert_eq!(http(503).retry(), Retry::Safe);
        assert_eq!(http(502).retry(), Retry::Safe);
        assert_eq!(http(404).retry(), Retry::No);
        assert_eq!(http(500).retry(), Retry::No);
    }

    #[test]
    fn only_transient_xapi_codes_are_retryable() {
        assert!(api(ErrorCode::TooManyPendingTasks).is_retryable());
        assert!(api(ErrorCode::HostStillBooting).is_retryable());
        assert!(!api(ErrorCode::SessionAuthenticationFailed).is_retryable());
        assert!(!api(ErrorCode::VmBadPowerState).is_retryable_if_idempotent());
        assert!(!api(ErrorCode::SessionInvalid).is_retryable());
    }

    #[test]
    fn tls_decode_and_cancellation_are_not_retryable() {
        let tls = Error::Tls {
            url: "https://h/".into(),
            reason: "pin mismatch".into(),
        };
        assert_eq!(tls.retry(), Retry::No);
        assert!(!tls.may_have_run());
        assert_eq!(Error::TaskCancelled { task: "t".into() }.retry(), Retry::No);
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
        assert!(api(ErrorCode::VmIsTemplate).is_code(&ErrorCode::VmIsTemplate));
        assert!(!api(ErrorCode::VmIsTemplate).is_code(&ErrorCode::VmBadPowerState));
    }

    #[test]
    fn io_errors_keep_the_kind_and_the_error() {
        let timeout = Error::Timeout {
            url: "https://h/export".into(),
            kind: TimeoutKind::Inactivity,
            after: Duration::from_secs(300),
        };
        let io: std::io::Error = timeout.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert!(io.to_string().contains("https://h/export"));
    }
}
