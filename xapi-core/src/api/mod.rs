//! The XAPI datamodel. Placeholder until `cargo xtask codegen` writes the generated modules.
//!
//! The generated code keeps this interface: one marker type per class (`Vm`, `Task`, ...),
//! records, enums, a per-class call handle, and [`ErrorCode`].

pub mod meta;

/// Marker for the `task` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Task;

/// Marker for the `session` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session;

/// Marker for the `pool` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool;

/// Marker for the `host` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Host;

/// A XAPI error code (placeholder subset).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `SESSION_INVALID`
    SessionInvalid,
    /// `HOST_IS_SLAVE`
    HostIsSlave,
    /// `SESSION_AUTHENTICATION_FAILED`
    SessionAuthenticationFailed,
    /// `EVENTS_LOST`
    EventsLost,
    /// `MESSAGE_METHOD_UNKNOWN`
    MessageMethodUnknown,
    /// `HANDLE_INVALID`
    HandleInvalid,
    /// A code this client does not know.
    Other(String),
}

impl ErrorCode {
    /// The code for its wire text.
    pub fn from_code(code: &str) -> Self {
        match code {
            "SESSION_INVALID" => Self::SessionInvalid,
            "HOST_IS_SLAVE" => Self::HostIsSlave,
            "SESSION_AUTHENTICATION_FAILED" => Self::SessionAuthenticationFailed,
            "EVENTS_LOST" => Self::EventsLost,
            "MESSAGE_METHOD_UNKNOWN" => Self::MessageMethodUnknown,
            "HANDLE_INVALID" => Self::HandleInvalid,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SessionInvalid => "SESSION_INVALID",
            Self::HostIsSlave => "HOST_IS_SLAVE",
            Self::SessionAuthenticationFailed => "SESSION_AUTHENTICATION_FAILED",
            Self::EventsLost => "EVENTS_LOST",
            Self::MessageMethodUnknown => "MESSAGE_METHOD_UNKNOWN",
            Self::HandleInvalid => "HANDLE_INVALID",
            Self::Other(code) => code,
        }
    }

    /// The declared parameter names (empty for unknown codes).
    pub fn param_names(&self) -> &'static [&'static str] {
        match self {
            Self::SessionInvalid => &["handle"],
            Self::HostIsSlave => &["master"],
            Self::HandleInvalid => &["class", "handle"],
            Self::MessageMethodUnknown => &["method"],
            _ => &[],
        }
    }
}
