//! `host.*` messages that are not accessors: the host's clock.
//!
//! Clients compare `host.get_servertime` with their own clock to find skew (Xen Orchestra
//! does); the simulated hosts run on this machine's clock, in UTC.

use xapi_core::wire::Value;

use super::Call;
use crate::timestamp;

/// Whether `message` is a host message this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(message, "get_servertime" | "get_server_localtime")
}

/// Answer a host clock call: the current time (whole seconds, UTC).
pub(crate) fn handle(call: &Call) -> Value {
    debug_assert!(handles(call.message.name));
    timestamp::now()
}
