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
    Cow::Owned(out)
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
        fn protected_values_hold_no_whitespace(value in any::<String>()) {
            let protected = protect(&value);
            prop_assert!(!protected.contains([' ', '\t', '\n', '\r']));
        }
    }
}
