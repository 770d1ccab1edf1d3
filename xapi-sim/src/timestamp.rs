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

/// The epoch, the "unset" datetime.
pub(crate) fn epoch() -> Value {
    Value::DateTime(DateTime::default())
}

/// A datetime in xapi's `YYYYMMDDTHH:MM:SSZ` form.
///
/// The contract `DateTime` has no accessor yet, so every value prints as the epoch until the
/// wire module lands.
pub(crate) fn datetime_text(_value: DateTime) -> String {
    "19700101T00:00:00Z".to_owned()
}

/// The current time in xapi's `YYYYMMDDTHH:MM:SSZ` form (UTC).
pub(crate) fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(now_text().len(), 18);
    }
}
