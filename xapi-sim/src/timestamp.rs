//! Datetime values for the fields the simulator stamps (`task.created`, `session.last_active`,
//! the `date` of an export).

use xapi_core::wire::{DateTime, Value};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The current time (UTC, whole seconds) as a datetime.
pub(crate) fn now_datetime() -> DateTime {
    DateTime::from_unix_seconds(unix_now()).unwrap_or_default()
}

/// The current time as a datetime value.
pub(crate) fn now() -> Value {
    Value::DateTime(now_datetime())
}

/// A moment (such as the simulated clock's [`crate::SimClock::now`]) as a datetime value, in
/// whole seconds as xapi stores them.
pub(crate) fn at(moment: std::time::SystemTime) -> Value {
    let seconds = moment
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Value::DateTime(DateTime::from_unix_seconds(seconds).unwrap_or_default())
}

/// The epoch, the "unset" datetime.
pub(crate) fn epoch() -> Value {
    Value::DateTime(DateTime::default())
}

/// A datetime in xapi's `YYYYMMDDTHH:MM:SSZ` form.
pub(crate) fn datetime_text(value: DateTime) -> String {
    value.to_string()
}

/// The current time in xapi's `YYYYMMDDTHH:MM:SSZ` form.
pub(crate) fn now_text() -> String {
    now_datetime().to_string()
}

/// Seconds since the Unix epoch, as the string `event.from` puts in `timestamp`.
pub(crate) fn unix_seconds_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    format!("{secs:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_prints_in_xapi_form() {
        let text = now_text();
        assert_eq!(text.len(), 18, "{text}");
        assert!(text.ends_with('Z'));
        assert_eq!(datetime_text(DateTime::default()), "19700101T00:00:00Z");
    }
}
