//! How `xapictl` ends: a documented exit code and one line saying what went wrong.

use std::fmt;
use std::process::ExitCode;

/// The exit codes `xapictl` documents (README, `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done.
    Done = 0,
    /// Failed.
    Failed = 1,
    /// The command line was wrong (clap exits with this code by itself).
    Usage = 2,
    /// Partly done: some steps failed, the others went ahead (some VMs did not start).
    PartlyDone = 3,
    /// Pre-checks blocked: nothing was changed.
    Blocked = 4,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failure to report: one line for the person, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    /// A failed command.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Failed,
            message: message.into(),
        }
    }

    /// A usage error found after parsing (a missing password, a bad pin).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A XAPI or transport error as one line that says what to do next.
pub(crate) fn explain(url: &str, error: &xapi_core::Error) -> Failure {
    use xapi_core::Error;
    use xapi_core::api::ErrorCode;
    let message = match error {
        Error::Api(failure) if failure.code == ErrorCode::SessionAuthenticationFailed => {
            format!("{url}: wrong user name or password (check XAPI_USER and XAPI_PASSWORD)")
        }
        Error::Api(failure) => format!(
            "{url}: the pool refused the call: {} {:?}",
            failure.code, failure.params
        ),
        Error::Connect { .. } => {
            format!("{url}: cannot connect ({error}); is the address right and the pool up?")
        }
        Error::Tls { reason, .. } => format!("{url}: TLS refused: {reason}"),
        Error::InvalidUrl { reason, .. } => {
            format!("{url}: not a usable URL ({reason}); use https://HOST or http://HOST")
        }
        other => format!("{url}: {other}"),
    };
    Failure::failed(message)
}
