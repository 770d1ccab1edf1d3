//! XAPI datetimes in every form servers emit.

/// A XAPI datetime (`20250319T04:16:24Z` and the other forms real hosts emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DateTime {
    // placeholder representation; the wire module defines the real one
    unix_seconds: i64,
}
