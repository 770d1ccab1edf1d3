//! The S-expression text xapi uses for set and map values (`SExpr`, `String_marshall_helper`).
//!
//! A set is `('a' 'b')`, a map `(('k1' 'v1') ('k2' 'v2'))`, both empty forms are `()`. Strings are
//! written single-quoted; when a string holds `\` or `'`, each of those is prefixed with a
//! backslash (`"` is written as it is, like xapi's `SExpr.escape_buf`). The reader also takes double-quoted strings and bare symbols, and drops the
//! backslash before any character.

use std::fmt;

/// A parsed S-expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SExpr {
    /// A parenthesised list.
    Node(Vec<SExpr>),
    /// A quoted string, unescaped.
    String(String),
    /// A bare word (written back as a quoted string, as xapi does).
    Symbol(String),
}

/// Why a set or map value is not a valid S-expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SExprError {
    /// The text ended inside a list or a quoted string.
    #[error("sexpr: unexpected end of text at byte {offset} (inside {inside})")]
    UnexpectedEnd {
        /// Byte offset in the value.
        offset: usize,
        /// `"a list"` or `"a quoted string"`.
        inside: &'static str,
    },
    /// A `)` with no matching `(`.
    #[error("sexpr: unbalanced ')' at byte {offset}")]
    UnbalancedClose {
        /// Byte offset in the value.
        offset: usize,
    },
    /// Something follows the first complete expression.
    #[error("sexpr: trailing text at byte {offset}")]
    TrailingText {
        /// Byte offset in the value.
        offset: usize,
    },
    /// The value is empty.
    #[error("sexpr: empty value")]
    Empty,
    /// The expression is not of the expected shape (a set of strings or a map of pairs).
    #[error("sexpr: expected {expected}, found {found}")]
    Shape {
        /// What the caller expected (`"a set"`, `"a map"`, `"a key/value pair"`).
        expected: &'static str,
        /// A short rendering of what was found.
        found: String,
    },
}

impl SExpr {
    /// Parses one S-expression from `text`.
    pub fn parse(text: &str) -> Result<SExpr, SExprError> {
        let mut parser = Parser { text, pos: 0 };
        parser.skip_space();
        if parser.pos >= text.len() {
            return Err(SExprError::Empty);
        }
        let expr = parser.expr()?;
        parser.skip_space();
        if parser.pos < text.len() {
            return Err(SExprError::TrailingText { offset: parser.pos });
        }
        Ok(expr)
    }

    fn atom(&self) -> Option<&str> {
        match self {
            SExpr::String(s) | SExpr::Symbol(s) => Some(s),
            SExpr::Node(_) => None,
        }
    }

    fn describe(&self) -> String {
        let mut text = self.to_string();
        if text.len() > 40 {
            let mut cut = 40;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        text
    }
}

impl fmt::Display for SExpr {
    /// Writes the expression as xapi does (`SExpr.string_of`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SExpr::Node(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str(")")
            }
            SExpr::String(s) | SExpr::Symbol(s) => {
                f.write_str("'")?;
                write_escaped(f, s)?;
                f.write_str("'")
            }
        }
    }
}

fn write_escaped(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    if !s.contains(['\\', '\'']) {
        return out.write_str(s);
    }
    for c in s.chars() {
        if matches!(c, '\\' | '\'') {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        let rest = &self.text.as_bytes()[self.pos..];
        self.pos += rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
    }

    fn expr(&mut self) -> Result<SExpr, SExprError> {
        let bytes = self.text.as_bytes();
        match bytes[self.pos] {
            b'(' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match bytes.get(self.pos) {
                        None => {
                            return Err(SExprError::UnexpectedEnd {
                                offset: self.pos,
                                inside: "a list",
                            });
                        }
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(SExpr::Node(items));
                        }
                        Some(_) => items.push(self.expr()?),
                    }
                }
            }
            b')' => Err(SExprError::UnbalancedClose { offset: self.pos }),
            quote @ (b'\'' | b'"') => {
                let start = self.pos + 1;
                let mut i = start;
                let mut has_escape = false;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(SExprError::UnexpectedEnd {
                                offset: i,
                                inside: "a quoted string",
                            });
                        }
                        Some(b'\\') => {
                            has_escape = true;
                            i += 2;
                        }
                        Some(&b) if b == quote => break,
                        Some(_) => i += 1,
                    }
                }
                let raw = &self.text[start..i];
                self.pos = i + 1;
                Ok(SExpr::String(if has_escape {
                    unescape(raw)
                } else {
                    raw.to_owned()
                }))
            }
            _ => {
                let start = self.pos;
                let len = bytes[start..]
                    .iter()
                    .take_while(|b| {
                        !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'\'' | b'"')
                    })
                    .count();
                self.pos += len;
                Ok(SExpr::Symbol(self.text[start..start + len].to_owned()))
            }
        }
    }
}

/// Drops the backslash before any character; a lone trailing backslash is kept.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a stored set value (`('a' 'b')`) into its strings, in stored order.
pub fn parse_set(text: &str) -> Result<Vec<String>, SExprError> {
    match SExpr::parse(text)? {
        SExpr::Node(items) => items
            .into_iter()
            .map(|item| match item {
                SExpr::String(s) | SExpr::Symbol(s) => Ok(s),
                node @ SExpr::Node(_) => Err(SExprError::Shape {
                    expected: "a set element",
                    found: node.describe(),
                }),
            })
            .collect(),
        other => Err(SExprError::Shape {
            expected: "a set",
            found: other.describe(),
        }),
    }
}

/// Parses a stored map value (`(('k' 'v') ...)`) into its pairs, in stored order.
pub fn parse_map(text: &str) -> Result<Vec<(String, String)>, SExprError> {
    match SExpr::parse(text)? {
        SExpr::Node(items) => items
            .into_iter()
            .map(|item| match item {
                SExpr::Node(pair) if pair.len() == 2 && pair.iter().all(|p| p.atom().is_some()) => {
                    let mut it = pair.into_iter();
                    let (
                        Some(SExpr::String(k) | SExpr::Symbol(k)),
                        Some(SExpr::String(v) | SExpr::Symbol(v)),
                    ) = (it.next(), it.next())
                    else {
                        unreachable!("a pair of two atoms was checked just above")
                    };
                    Ok((k, v))
                }
                other => Err(SExprError::Shape {
                    expected: "a key/value pair",
                    found: other.describe(),
                }),
            })
            .collect(),
        other => Err(SExprError::Shape {
            expected: "a map",
            found: other.describe(),
        }),
    }
}

/// Writes a set value as xapi stores it.
pub fn write_set<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("(");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_quoted(&mut out, item.as_ref());
    }
    out.push(')');
    out
}

/// Writes a map value as xapi stores it.
pub fn write_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::from("(");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('(');
        push_quoted(&mut out, k.as_ref());
        out.push(' ');
        push_quoted(&mut out, v.as_ref());
        out.push(')');
    }
    out.push(')');
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('\'');
    write_escaped(out, s).expect("writing to a String never fails");
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn map_is_read_from_stored_text() {
        let pairs = parse_map("(('type' 'raw') ('location' 'a b'))").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("type".to_owned(), "raw".to_owned()),
                ("location".to_owned(), "a b".to_owned())
            ]
        );
    }

    #[test]
    fn double_quotes_symbols_and_escapes_are_accepted() {
        assert_eq!(
            parse_map(r#"(("location" ""))"#).unwrap(),
            vec![("location".to_owned(), String::new())]
        );
        assert_eq!(parse_set("(a 'b' \"c\")").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            parse_set(r"('it\'s' 'back\\slash' '\q')").unwrap(),
            ["it's", r"back\slash", "q"]
        );
        assert_eq!(parse_set("()").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn writer_matches_xapi() {
        assert_eq!(write_map(&[("type", "raw")]), "(('type' 'raw'))");
        assert_eq!(write_set(&["a", "b"]), "('a' 'b')");
        assert_eq!(write_set::<&str>(&[]), "()");
        assert_eq!(
            write_set(&[r#"say "hi" it's \"#]),
            r#"('say "hi" it\'s \\')"#
        );
    }

    #[test]
    fn double_quotes_are_written_unescaped_like_xapi() {
        // xapi's SExpr.escape_buf escapes only `\` and `'`: a map value holding `"` is stored
        // with the quote as it is, and a string without `\` or `'` is copied verbatim.
        assert_eq!(
            write_map(&[("cmd", r#"echo "a""#)]),
            r#"(('cmd' 'echo "a"'))"#
        );
        assert_eq!(
            parse_map(r#"(('cmd' 'echo "a"'))"#).unwrap(),
            vec![("cmd".to_owned(), r#"echo "a""#.to_owned())]
        );
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        assert_eq!(
            parse_set("('a' 'b'"),
            Err(SExprError::UnexpectedEnd {
                offset: 8,
                inside: "a list"
            })
        );
        assert_eq!(
            parse_set("('a)"),
            Err(SExprError::UnexpectedEnd {
                offset: 4,
                inside: "a quoted string"
            })
        );
        assert_eq!(
            parse_set("('a'))"),
            Err(SExprError::TrailingText { offset: 5 })
        );
        assert_eq!(
            parse_set(")"),
            Err(SExprError::UnbalancedClose { offset: 0 })
        );
        assert_eq!(parse_set(""), Err(SExprError::Empty));
        assert!(matches!(
            parse_map("('a' 'b')"),
            Err(SExprError::Shape { .. })
        ));
    }

    proptest! {
        #[test]
        fn set_round_trips(items in proptest::collection::vec(any::<String>(), 0..6)) {
            prop_assert_eq!(parse_set(&write_set(&items)).unwrap(), items);
        }

        #[test]
        fn map_round_trips(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..6)) {
            prop_assert_eq!(parse_map(&write_map(&pairs)).unwrap(), pairs);
        }

        #[test]
        fn parser_never_panics(text in any::<String>()) {
            let _ = SExpr::parse(&text);
        }
    }
}
