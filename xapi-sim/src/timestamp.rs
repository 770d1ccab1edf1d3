//! Datetime values for the fields the simulator stamps (`task.created`, `session.last_active`).

use xapi_core::wire::{DateTime, Value};

/// The current time as a datetime value.
///
/// The contract `DateTime` in xapi-core has no constructor yet, so this is the epoch until the
/// wire module lands; callers do not depend on the value.
pub(crate) fn now() -> Value {
    Value::DateTime(DateTime::default())
}

/// Seconds since the Unix epoch, as the string `event.from` puts in `timestamp`.
pub(crate) fn unix_seconds_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    format!("{secs:.6}")
}
