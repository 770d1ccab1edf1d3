//! `<class>.get_all_records_where(expr)`: the hidden message every xapi class answers, with
//! the database's filter language.
//!
//! The language (xapi's `Db_filter`): `field "<column>" = "<literal>"` (either side may be a
//! field or a literal), `not e`, `e and e`, `e or e` (one precedence level, left to right),
//! `true`, `false`, parentheses. Literals have no escapes. Columns are database column names
//! (`name__label`, `power_state`) and values their stored strings (`true`, `Running`,
//! `OpaqueRef:...`), so `field "name__label" = "web"` matches a VM named `web`.

use std::collections::BTreeMap;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use crate::api_error::failure;
use crate::model::db_form::to_row;
use crate::model::store::{Db, record_of};

/// One operand of `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Field(String),
    Literal(String),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    True,
    False,
    Eq(Operand, Operand),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Eq,
    True,
    False,
    Field,
    And,
    Or,
    Not,
    Open,
    Close,
    Ident(String),
}

/// The records of `class` whose row satisfies `expression`, by reference.
pub(crate) fn records_where(db: &Db, class: &str, expression: &str) -> Result<Value, Failure> {
    let expr = parse(expression).map_err(|why| {
        failure(
            ErrorCode::InternalError,
            [format!("cannot parse the filter {expression:?}: {why}")],
        )
    })?;
    let table = db.table(class)?;
    let mut matches = BTreeMap::new();
    for (reference, object) in &table.objects {
        let row: BTreeMap<String, String> =
            to_row(table.meta, reference, object).into_iter().collect();
        if eval(&expr, &row)? {
            matches.insert(reference.clone(), record_of(object));
        }
    }
    Ok(Value::Struct(matches))
}

fn eval(expr: &Expr, row: &BTreeMap<String, String>) -> Result<bool, Failure> {
    Ok(match expr {
        Expr::True => true,
        Expr::False => false,
        Expr::Eq(a, b) => operand(a, row)? == operand(b, row)?,
        Expr::Not(e) => !eval(e, row)?,
        Expr::And(a, b) => eval(a, row)? && eval(b, row)?,
        Expr::Or(a, b) => eval(a, row)? || eval(b, row)?,
    })
}

fn operand<'a>(op: &'a Operand, row: &'a BTreeMap<String, String>) -> Result<&'a str, Failure> {
    match op {
        Operand::Literal(text) => Ok(text),
        Operand::Field(column) => row.get(column).map(String::as_str).ok_or_else(|| {
            failure(
                ErrorCode::InternalError,
                [format!(
                    "the filter names a column that does not exist: {column}"
                )],
            )
        }),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\n']);
        let Some(first) = rest.chars().next() else {
            return Ok(tokens);
        };
        let offset = text.len() - rest.len();
        let (token, len) = match first {
            '=' => (Token::Eq, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            '"' => {
                let end = rest[1..]
                    .find('"')
                    .ok_or_else(|| format!("unterminated literal at byte {offset}"))?;
                (Token::Ident(rest[1..=end].to_owned()), end + 2)
            }
            _ => {
                let keyword = [
                    ("true", Token::True),
                    ("false", Token::False),
                    ("field", Token::Field),
                    ("and", Token::And),
                    ("or", Token::Or),
                    ("not", Token::Not),
                ]
                .into_iter()
                .find(|(word, _)| rest.starts_with(word));
                match keyword {
                    Some((word, token)) => (token, word.len()),
                    None => return Err(format!("unexpected character {first:?} at byte {offset}")),
                }
            }
        };
        tokens.push(token);
        rest = &rest[len..];
    }
}

fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.expr()?;
    match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected {token:?} after a complete expression")),
    }
}

/// A recursive-descent reading of the grammar: `and`/`or` share one left-associative level,
/// `not` binds tighter.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(Token::And) => {
                    self.at += 1;
                    left = Expr::And(Box::new(left), Box::new(self.unary()?));
                }
                Some(Token::Or) => {
                    self.at += 1;
                    left = Expr::Or(Box::new(left), Box::new(self.unary()?));
                }
                _ => return Ok(left),
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Token::Not) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Token::True) => {
                self.at += 1;
                Ok(Expr::True)
            }
            Some(Token::False) => {
                self.at += 1;
                Ok(Expr::False)
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.expr()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    other => Err(format!("expected ')', found {other:?}")),
                }
            }
            _ => {
                let left = self.operand()?;
                match self.next() {
                    Some(Token::Eq) => Ok(Expr::Eq(left, self.operand()?)),
                    other => Err(format!("expected '=', found {other:?}")),
                }
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Token::Ident(text)) => Ok(Operand::Literal(text)),
            Some(Token::Field) => match self.next() {
                Some(Token::Ident(column)) => Ok(Operand::Field(column)),
                other => Err(format!(
                    "expected a quoted column after `field`, found {other:?}"
                )),
            },
            other => Err(format!("expected a literal or `field`, found {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: &str) -> Operand {
        Operand::Field(c.to_owned())
    }

    fn lit(c: &str) -> Operand {
        Operand::Literal(c.to_owned())
    }

    #[test]
    fn parses_the_filter_language() {
        assert_eq!(
            parse(r#"field "power_state" = "Running""#).unwrap(),
            Expr::Eq(field("power_state"), lit("Running"))
        );
        assert_eq!(
            parse(r#""Running" = field "power_state""#).unwrap(),
            Expr::Eq(lit("Running"), field("power_state"))
        );
        // one precedence level, left to right; not binds tighter
        assert_eq!(
            parse(r#"true or false and not field "a" = "b""#).unwrap(),
            Expr::And(
                Box::new(Expr::Or(Box::new(Expr::True), Box::new(Expr::False))),
                Box::new(Expr::Not(Box::new(Expr::Eq(field("a"), lit("b")))))
            )
        );
        assert_eq!(
            parse("( true )\n").unwrap(),
            Expr::True,
            "whitespace and parentheses"
        );
    }

    #[test]
    fn malformed_filters_say_where() {
        assert!(parse(r#"field "a" = "b"#).unwrap_err().contains("byte 12"));
        assert!(parse(r#"field a = "b""#).unwrap_err().contains("byte 6"));
        assert!(parse("true true").unwrap_err().contains("after a complete"));
        assert!(parse("(true").unwrap_err().contains("expected ')'"));
        assert!(parse("").is_err());
    }

    #[test]
    fn evaluates_against_stored_strings() {
        let row: BTreeMap<String, String> = [("name__label", "web"), ("is_a_template", "false")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let check = |text: &str| eval(&parse(text).unwrap(), &row).unwrap();
        assert!(check(r#"field "name__label" = "web""#));
        assert!(!check(r#"field "name__label" = "db""#));
        assert!(check(
            r#"field "is_a_template" = "false" and not field "name__label" = "db""#
        ));
        let err = eval(&parse(r#"field "nope" = "x""#).unwrap(), &row).unwrap_err();
        assert_eq!(err.code, ErrorCode::InternalError);
    }
}
