//! XAPI datetimes in every form servers emit.
//!
//! xapi writes `20250319T04:16:24Z` (and the same without `Z` for values stored without a zone);
//! older hosts and JSON-RPC paths also produce RFC 3339 (`2025-03-19T04:16:24+02:00`, with
//! fractions) and Unix seconds. [`DateTime`] keeps what the text said (fraction digits, zone or
//! no zone) so that what is read can be written back unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The serde newtype-struct name that marks a datetime, so that [`to_value`](super::to_value)
/// produces [`Value::DateTime`](super::Value::DateTime) and XML-RPC writes
/// `<dateTime.iso8601>`, while other serializers (JSON) see a plain string.
pub const DATETIME_TOKEN: &str = "$xapi::DateTime";

/// The zone of a [`DateTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    /// No zone was given (`20250319T04:16:24`): the instant is unknown.
    Unspecified,
    /// UTC, written `Z`.
    Utc,
    /// A fixed offset east of UTC, in minutes (`+02:00` is `120`).
    Offset(i16),
}

/// A XAPI datetime (`20250319T04:16:24Z` and the other forms real hosts emit).
///
/// Equality and ordering compare the fields as written (date, time, fraction, zone), not the
/// instant: use [`DateTime::to_unix_seconds`] to compare instants across zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    /// How many fraction digits the text carried (0: none), so Display writes them back.
    fraction_digits: u8,
    zone: Zone,
}

impl Default for DateTime {
    /// The epoch in UTC, `19700101T00:00:00Z`: xapi's "unset" value.
    fn default() -> Self {
        Self::EPOCH
    }
}

/// Why a text is not a datetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datetime {text:?}: {reason}")]
pub struct DateTimeParseError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl DateTime {
    /// `19700101T00:00:00Z`, the value xapi uses for "unset".
    pub const EPOCH: Self = Self {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        fraction_digits: 0,
        zone: Zone::Utc,
    };

    /// A datetime from its parts; `None` if a part is out of range (year 0..=9999, a real
    /// calendar day, hour < 24, minute < 60, second <= 60, nanos < 1e9, offset within ±24 h).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanos: u32,
        zone: Zone,
    ) -> Option<Self> {
        let valid = year <= 9999
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second <= 60
            && nanos < 1_000_000_000
            && match zone {
                Zone::Offset(minutes) => minutes.unsigned_abs() < 24 * 60,
                _ => true,
            };
        valid.then(|| Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            fraction_digits: fraction_digits_for(nanos),
            zone,
        })
    }

    /// The UTC datetime of a Unix timestamp (seconds since 1970-01-01T00:00:00Z); `None` outside
    /// years 0..=9999.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        Self::from_unix_parts(seconds, 0, 0)
    }

    fn from_unix_parts(seconds: i64, nanos: u32, fraction_digits: u8) -> Option<Self> {
        let days = seconds.div_euclid(86_400);
        let secs_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days)?;
        Some(Self {
            year,
            month,
            day,
            hour: (secs_of_day / 3600) as u8,
            minute: (secs_of_day / 60 % 60) as u8,
            second: (secs_of_day % 60) as u8,
            nanos,
            fraction_digits,
            zone: Zone::Utc,
        })
    }

    /// Seconds since the Unix epoch, or `None` when the zone is [`Zone::Unspecified`] (the
    /// instant is unknown; see [`DateTime::to_unix_seconds_assuming_utc`]).
    pub fn to_unix_seconds(&self) -> Option<i64> {
        match self.zone {
            Zone::Unspecified => None,
            Zone::Utc | Zone::Offset(_) => Some(self.to_unix_seconds_assuming_utc()),
        }
    }

    /// Seconds since the Unix epoch, reading a zone-less value as UTC (what xapi itself does);
    /// an offset is applied.
    pub fn to_unix_seconds_assuming_utc(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let offset = match self.zone {
            Zone::Offset(minutes) => i64::from(minutes) * 60,
            _ => 0,
        };
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - offset
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }
    /// The month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// The day of the month, 1..=31.
    pub fn day(&self) -> u8 {
        self.day
    }
    /// The hour, 0..=23.
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// The minute, 0..=59.
    pub fn minute(&self) -> u8 {
        self.minute
    }
    /// The second, 0..=60 (60 is a leap second).
    pub fn second(&self) -> u8 {
        self.second
    }
    /// The fraction of a second, in nanoseconds.
    pub fn nanosecond(&self) -> u32 {
        self.nanos
    }
    /// The zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// Parses every form XAPI hosts emit: `YYYYMMDDTHH:MM:SS` with `Z`, an offset or no zone;
    /// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, also with a space or without the zone);
    /// compact times (`HHMMSS`); and Unix seconds (`1742358984`, `-5`, `1742358984.25`).
    pub fn parse(text: &str) -> Result<Self, DateTimeParseError> {
        parse_datetime(text.trim()).map_err(|reason| DateTimeParseError {
            text: text.to_owned(),
            reason,
        })
    }
}

fn fraction_digits_for(nanos: u32) -> u8 {
    if nanos == 0 {
        return 0;
    }
    let mut digits = 9;
    let mut n = nanos;
    while n.is_multiple_of(10) {
        n /= 10;
        digits -= 1;
    }
    digits
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: u16, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01; `None` outside years 0..=9999.
fn civil_from_days(days: i64) -> Option<(u16, u8, u8)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (0..=9999)
        .contains(&year)
        .then_some((year as u16, month, day))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, count: usize) -> Result<u32, &'static str> {
        let end = self.pos + count;
        let slice = self.bytes.get(self.pos..end).ok_or("too short")?;
        let mut n = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return Err("digit expected");
            }
            n = n * 10 + u32::from(b - b'0');
        }
        self.pos = end;
        Ok(n)
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
}

fn parse_unix_seconds(text: &str) -> Result<DateTime, &'static str> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let seconds: i64 = int_part.parse().map_err(|_| "bad Unix seconds")?;
    let (nanos, digits) = match frac_part {
        None => (0, 0),
        Some(f) => parse_fraction(f.as_bytes())?,
    };
    let (seconds, nanos) = if seconds < 0 && nanos > 0 {
        (
            seconds.checked_sub(1).ok_or("Unix seconds out of range")?,
            1_000_000_000 - nanos,
        )
    } else {
        (seconds, nanos)
    };
    DateTime::from_unix_parts(seconds, nanos, if nanos == 0 { 0 } else { digits.max(1) })
        .ok_or("Unix seconds out of range")
}

/// Nanoseconds and digit count (at most 9 kept) of a fraction's digits.
fn parse_fraction(digits: &[u8]) -> Result<(u32, u8), &'static str> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("bad fraction");
    }
    let kept = &digits[..digits.len().min(9)];
    let mut nanos = 0u32;
    for &b in kept {
        nanos = nanos * 10 + u32::from(b - b'0');
    }
    for _ in kept.len()..9 {
        nanos *= 10;
    }
    Ok((nanos, kept.len() as u8))
}

fn parse_datetime(text: &str) -> Result<DateTime, &'static str> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err("empty");
    }
    let looks_numeric = bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-'));
    if looks_numeric {
        return parse_unix_seconds(text);
    }
    let mut c = Cursor { bytes, pos: 0 };
    let year = c.digits(4)? as u16;
    let dashed = c.eat(b'-');
    let month = c.digits(2)? as u8;
    if dashed && !c.eat(b'-') {
        return Err("'-' expected after the month");
    }
    let day = c.digits(2)? as u8;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err("'T' expected after the date");
    }
    let hour = c.digits(2)? as u8;
    let coloned = c.eat(b':');
    let minute = c.digits(2)? as u8;
    if coloned && !c.eat(b':') {
        return Err("':' expected after the minutes");
    }
    let second = c.digits(2)? as u8;
    let (mut nanos, mut fraction_digits) = (0, 0);
    if c.eat(b'.') || c.eat(b',') {
        let start = c.pos;
        while c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.pos += 1;
        }
        (nanos, fraction_digits) = parse_fraction(&bytes[start..c.pos])?;
    }
    let zone = match c.peek() {
        None => Zone::Unspecified,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            Zone::Utc
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hours = c.digits(2)? as i16;
            let minutes = if c.peek().is_none() {
                0
            } else {
                c.eat(b':');
                c.digits(2)? as i16
            };
            if minutes >= 60 {
                return Err("zone minutes out of range");
            }
            let total = hours * 60 + minutes;
            Zone::Offset(if sign == b'-' { -total } else { total })
        }
        Some(_) => return Err("unexpected character after the time"),
    };
    if c.pos != bytes.len() {
        return Err("trailing characters");
    }
    let mut dt = DateTime::new(year, month, day, hour, minute, second, nanos, zone)
        .ok_or("date or time out of range")?;
    dt.fraction_digits = fraction_digits;
    Ok(dt)
}

impl FromStr for DateTime {
    type Err = DateTimeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DateTime {
    /// xapi's form: `YYYYMMDDTHH:MM:SS`, then the fraction if there was one, then `Z`, the
    /// offset (`+02:00`) or nothing for a zone-less value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.fraction_digits > 0 {
            let digits = u32::from(self.fraction_digits.min(9));
            let scaled = self.nanos / 10u32.pow(9 - digits);
            write!(f, ".{scaled:0width$}", width = digits as usize)?;
        }
        match self.zone {
            Zone::Unspecified => Ok(()),
            Zone::Utc => f.write_str("Z"),
            Zone::Offset(minutes) => {
                let sign = if minutes < 0 { '-' } else { '+' };
                let abs = minutes.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)
            }
        }
    }
}

/// Serializes a [`DateTime`]'s display text without allocating.
struct DisplayText<'a>(&'a DateTime);

impl Serialize for DisplayText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl Serialize for DateTime {
    /// A newtype struct named [`DATETIME_TOKEN`] around the display text: XAPI's own encoders
    /// turn it into a datetime value, others (JSON) write the string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(DATETIME_TOKEN, &DisplayText(self))
    }
}

struct DateTimeVisitor;

impl<'de> serde::de::Visitor<'de> for DateTimeVisitor {
    type Value = DateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a datetime (20250319T04:16:24Z, RFC 3339 or Unix seconds)")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DateTime, E> {
        DateTime::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DateTime, E> {
        DateTime::from_unix_seconds(v).ok_or_else(|| E::custom("Unix seconds out of range"))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DateTime, E> {
        i64::try_from(v)
            .ok()
            .and_then(DateTime::from_unix_seconds)
            .ok_or_else(|| E::custom("Unix seconds out of range"))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DateTime, E> {
        if !v.is_finite() {
            return Err(E::custom("Unix seconds must be finite"));
        }
        let seconds = v.floor();
        let nanos = ((v - seconds) * 1e9).round().min(999_999_999.0) as u32;
        DateTime::from_unix_parts(seconds as i64, nanos, fraction_digits_for(nanos))
            .ok_or_else(|| E::custom("Unix seconds out of range"))
    }

    /// The inner value is text or a number (Unix seconds), whatever the format says it is.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<DateTime, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(DATETIME_TOKEN, DateTimeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;

    use super::*;

    fn parse(text: &str) -> DateTime {
        DateTime::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn xapi_form_with_z_is_utc() {
        let dt = parse("20250319T04:16:24Z");
        assert_eq!(
            (
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
            (2025, 3, 19, 4, 16, 24)
        );
        assert_eq!(dt.zone(), Zone::Utc);
        assert_eq!(dt.to_unix_seconds(), Some(1_742_357_784));
        assert_eq!(dt.to_string(), "20250319T04:16:24Z");
    }

    #[test]
    fn xapi_form_without_z_has_no_zone() {
        let dt = parse("20250319T04:16:24");
        assert_eq!(dt.zone(), Zone::Unspecified);
        assert_eq!(dt.to_unix_seconds(), None);
        assert_eq!(dt.to_unix_seconds_assuming_utc(), 1_742_357_784);
        assert_eq!(dt.to_string(), "20250319T04:16:24");
    }

    #[test]
    fn offsets_shift_the_instant() {
        let dt = parse("20250319T06:16:24+02:00");
        assert_eq!(dt.zone(), Zone::Offset(120));
        assert_eq!(dt.to_unix_seconds(), Some(1_742_357_784));
        assert_eq!(dt.to_string(), "20250319T06:16:24+02:00");
        assert_eq!(
            parse("2025-03-19T00:16:24-0400").to_unix_seconds(),
            Some(1_742_357_784)
        );
        assert_eq!(parse("2025-03-19T06:16:24+02").zone(), Zone::Offset(120));
    }

    #[test]
    fn rfc3339_forms_parse() {
        assert_eq!(parse("2025-03-19T04:16:24Z"), parse("20250319T04:16:24Z"));
        let dt = parse("2025-03-19T04:16:24.123456+02:00");
        assert_eq!(dt.nanosecond(), 123_456_000);
        assert_eq!(dt.to_string(), "20250319T04:16:24.123456+02:00");
        assert_eq!(parse("2025-03-19 04:16:24z").zone(), Zone::Utc);
        assert_eq!(parse("20250319T041624Z"), parse("20250319T04:16:24Z"));
    }

    #[test]
    fn unix_seconds_parse_as_utc() {
        assert_eq!(parse("1742357784"), parse("20250319T04:16:24Z"));
        assert_eq!(parse("0"), DateTime::EPOCH);
        assert_eq!(parse("-1").to_string(), "19691231T23:59:59Z");
        let dt = parse("1742357784.5");
        assert_eq!(dt.nanosecond(), 500_000_000);
        assert_eq!(dt.to_unix_seconds(), Some(1_742_357_784));
    }

    #[test]
    fn out_of_range_parts_are_refused() {
        assert!(DateTime::new(2025, 2, 29, 0, 0, 0, 0, Zone::Utc).is_none());
        assert!(DateTime::new(2024, 2, 29, 0, 0, 0, 0, Zone::Utc).is_some());
        assert!(DateTime::new(2025, 1, 1, 0, 0, 0, 0, Zone::Offset(i16::MIN)).is_none());
        assert!(DateTime::new(2025, 1, 1, 0, 0, 0, 1_000_000_000, Zone::Utc).is_none());
        assert!(DateTime::from_unix_seconds(i64::MIN).is_none());
        assert!(DateTime::from_unix_seconds(i64::MAX).is_none());
    }

    #[test]
    fn epoch_is_the_default() {
        assert_eq!(DateTime::default().to_string(), "19700101T00:00:00Z");
        assert_eq!(DateTime::default().to_unix_seconds(), Some(0));
    }

    #[test]
    fn bad_datetimes_are_rejected() {
        for text in [
            "",
            "2025-03",
            "20251319T04:16:24Z",
            "20250230T04:16:24Z",
            "20250319T24:16:24Z",
            "20250319T04:16:24Q",
            "20250319T04:16:24Zjunk",
            "2025-0319T04:16:24Z",
            "20250319T04:16:24.Z",
            "20250319T04:16:24+02:77",
            "99999999999999999999",
            "-9223372036854775808.5",
            "9223372036854775807",
        ] {
            assert!(DateTime::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn unix_seconds_round_trip_over_the_calendar() {
        for seconds in [
            0,
            951_782_400,
            1_709_251_199,
            4_102_444_800,
            -62_135_596_800,
            253_402_300_799,
        ] {
            let dt = DateTime::from_unix_seconds(seconds).expect("in range");
            assert_eq!(dt.to_unix_seconds(), Some(seconds));
            assert_eq!(parse(&dt.to_string()), dt);
        }
        assert!(DateTime::from_unix_seconds(253_402_300_800).is_none());
    }

    #[test]
    fn serde_uses_the_datetime_marker_and_reads_strings_and_numbers() {
        let dt = parse("20250319T04:16:24Z");
        assert_eq!(
            serde_json::to_string(&dt).ok().as_deref(),
            Some("\"20250319T04:16:24Z\"")
        );
        assert_eq!(
            serde_json::from_str::<DateTime>("\"2025-03-19T04:16:24Z\"").ok(),
            Some(dt)
        );
        assert_eq!(
            serde_json::from_str::<DateTime>("1742357784").ok(),
            Some(dt)
        );
        assert_eq!(
            serde_json::from_str::<DateTime>("1742357784.5")
                .ok()
                .map(|d| d.nanosecond()),
            Some(500_000_000)
        );
        assert!(serde_json::from_str::<DateTime>("\"yesterday\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_is_identity(
            seconds in -62_135_596_800_i64..253_402_300_799,
            nanos in proptest::prop_oneof![proptest::strategy::Just(0_u32), 0_u32..1_000_000_000],
            zone in proptest::prop_oneof![
                proptest::strategy::Just(Zone::Utc),
                proptest::strategy::Just(Zone::Unspecified),
                (-1439_i16..=1439).prop_map(Zone::Offset),
            ],
        ) {
            let utc = DateTime::from_unix_seconds(seconds).expect("in range");
            let dt = DateTime::new(
                utc.year(), utc.month(), utc.day(), utc.hour(), utc.minute(), utc.second(), nanos, zone,
            ).expect("valid parts");
            let text = dt.to_string();
            proptest::prop_assert_eq!(DateTime::parse(&text), Ok(dt));
            if zone == Zone::Utc {
                proptest::prop_assert_eq!(dt.to_unix_seconds(), Some(seconds));
                let rfc3339 = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second()
                );
                proptest::prop_assert_eq!(
                    DateTime::parse(&rfc3339).map(|d| d.to_unix_seconds()),
                    Ok(Some(seconds))
                );
            }
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,32}") {
            let _ = DateTime::parse(&text);
        }
    }
}
