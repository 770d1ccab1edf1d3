//! The `%` escaping layer xapi applies to every column value of the XML dump (`Xml_spaces`).
//!
//! Written values have space → `%.`, TAB → `%t`, LF → `%n`, CR → `%r` and `%` → `%%`; XML
//! attribute escaping comes on top of that. Reading also accepts the legacy `%_` (two spaces) and
//! leaves any other `%x` sequence, and a lone trailing `%`, as they are.

use std::borrow::Cow;

/// Applies xapi's `%` protection to a stored value (the inverse of [`unprotect`]).
pub fn protect(value: &str) -> Cow<'_, str> {
    if !value
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'%'))
    {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            ' ' => out.push_str("%."),
            '\t' => out.push_str("%t"),
            '\n' => out.push_str("%n"),
            '\r' => out.push_str("%r"),
            '%' => out.push_str("%%"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Removes xapi's `%` protection from a value read from the XML dump.
///
/// Lenient like the upstream reader: `%_` is two spaces (pre-2017 dumps); an unknown `%x` and a
/// lone trailing `%` are kept verbatim.
pub fn unprotect(value: &str) -> Cow<'_, str> {
    if !value.contains('%') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    unprotect_into(value, &mut out);
    Cow::Owned(out)
}

/// [`unprotect`], appending the result to `out` (the XML reader's row buffer) instead of
/// allocating.
pub(crate) fn unprotect_into(value: &str, out: &mut String) {
    let bytes = value.as_bytes();
    let mut start = 0;
    while let Some(found) = memchr::memchr(b'%', &bytes[start..]) {
        let at = start + found;
        // `at` and `at + 1` or `at + 2` below sit next to ASCII bytes: character boundaries
        out.push_str(&value[start..at]);
        let replacement = match bytes.get(at + 1) {
            Some(b'.') => " ",
            Some(b't') => "\t",
            Some(b'n') => "\n",
            Some(b'r') => "\r",
            Some(b'%') => "%",
            Some(b'_') => "  ",
            _ => {
                out.push('%');
                start = at + 1;
                continue;
            }
        };
        out.push_str(replacement);
        start = at + 2;
    }
    out.push_str(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spaces_percent_newlines_and_quotes_are_protected() {
        let value = "50% full\tof \"quotes\" and 'ticks'\r\nend";
        let protected = protect(value);
        assert_eq!(protected, "50%%%.full%tof%.\"quotes\"%.and%.'ticks'%r%nend");
        assert_eq!(unprotect(&protected), value);
    }

    #[test]
    fn legacy_double_space_and_unknown_sequences_are_read() {
        assert_eq!(unprotect("a%_b"), "a  b");
        assert_eq!(unprotect("100%"), "100%");
        assert_eq!(unprotect("%x%."), "%x ");
        assert_eq!(unprotect("Metadata%.for%.DR"), "Metadata for DR");
    }

    /// The rule of xapi's `Xml_spaces.unprotect`, one character at a time: the reference the
    /// byte-scanning [`unprotect_into`] is checked against.
    fn unprotect_by_chars(value: &str) -> String {
        let mut out = String::new();
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some('.') => out.push(' '),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('%') => out.push('%'),
                Some('_') => out.push_str("  "),
                _ => {
                    out.push('%');
                    continue;
                }
            }
            chars.next();
        }
        out
    }

    #[test]
    fn plain_values_are_not_copied() {
        assert!(matches!(protect("OpaqueRef:abc"), Cow::Borrowed(_)));
        assert!(matches!(unprotect("Halted"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn unprotect_inverts_protect(value in any::<String>()) {
            let protected = protect(&value);
            prop_assert_eq!(unprotect(&protected), value.as_str());
        }

        #[test]
        fn unprotect_reads_any_text_like_the_character_by_character_rule(value in "[%._tnr_a é\t]{0,24}") {
            prop_assert_eq!(unprotect(&value), unprotect_by_chars(&value));
        }

        #[test]
        fn protected_values_hold_no_whitespace(value in any::<String>()) {
            let protected = protect(&value);
            prop_assert!(!protected.contains([' ', '\t', '\n', '\r']));
        }
    }
}
