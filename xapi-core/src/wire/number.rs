//! Number text as XAPI writes and reads it: `%.16g` doubles (with `inf`/`nan`), Yojson floats
//! (bare `NaN`/`Infinity`), and lenient parsing of numbers carried in strings.

use std::fmt::Write as _;

use super::error::{DecodeError, DecodeErrorKind};

/// Appends `x` as C's `%.<precision>g` would print it (finite `x` only).
fn write_general(out: &mut String, x: f64, precision: usize) {
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let mut sci = String::with_capacity(32);
    write!(sci, "{:.*e}", precision - 1, x).expect("writing to a String cannot fail");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("Rust's {:e} output always has an exponent");
    let exp: i32 = exp
        .parse()
        .expect("Rust's {:e} exponent is a decimal integer");
    if exp < -4 || exp >= precision as i32 {
        out.push_str(strip_fraction_zeros(mantissa));
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        write!(out, "{:02}", exp.unsigned_abs()).expect("writing to a String cannot fail");
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        let mut fixed = String::with_capacity(32);
        write!(fixed, "{x:.decimals$}").expect("writing to a String cannot fail");
        out.push_str(strip_fraction_zeros(&fixed));
    }
}

fn strip_fraction_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Appends a finite `x` with 16 significant digits as xapi does (`%.16g`), or 17 when 16 would
/// not read back as the same double, so that no value is lost.
fn write_shortest_g(out: &mut String, x: f64) {
    let start = out.len();
    write_general(out, x, 16);
    if out[start..].parse::<f64>().ok() != Some(x) {
        out.truncate(start);
        write_general(out, x, 17);
    }
}

/// Appends a double as xapi's XML-RPC `<double>` text: `%.16g`, `inf`, `-inf`, `nan`.
pub(crate) fn write_xmlrpc_double(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else {
        write_shortest_g(out, x);
    }
}

/// Appends a double as Yojson (xapi's JSON-RPC) prints it: bare `NaN`, `Infinity`,
/// `-Infinity`, and finite values that always read as floats (`1.0`, not `1`).
pub(crate) fn write_json_double(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let start = out.len();
        write_shortest_g(out, x);
        if out[start..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-')
        {
            out.push_str(".0");
        }
    }
}

/// Parses an integer from text, leniently: surrounding whitespace is ignored and a float text
/// with no fractional part (`"5.0"`) is accepted.
pub(crate) fn parse_i64(text: &str) -> Result<i64, DecodeError> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Ok(n);
    }
    match trimmed.parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x >= -(2f64.powi(63)) && x < 2f64.powi(63) => Ok(x as i64),
        _ => Err(invalid_number(text, "i64")),
    }
}

/// Parses an unsigned integer from text, leniently (see [`parse_i64`]).
pub(crate) fn parse_u64(text: &str) -> Result<u64, DecodeError> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<u64>() {
        return Ok(n);
    }
    match trimmed.parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x >= 0.0 && x < 2f64.powi(64) => Ok(x as u64),
        _ => Err(invalid_number(text, "u64")),
    }
}

/// Parses a double from text: decimal and exponent forms, `inf`, `-inf`, `nan`, `Infinity`,
/// `-Infinity`, `NaN` (any case).
pub(crate) fn parse_f64(text: &str) -> Result<f64, DecodeError> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| invalid_number(text, "f64"))
}

/// Parses a boolean: `1`, `0`, `true`, `false`.
pub(crate) fn parse_bool(text: &str) -> Result<bool, DecodeError> {
    match text.trim() {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        _ => Err(DecodeError::unplaced(DecodeErrorKind::InvalidBool(
            text.to_owned(),
        ))),
    }
}

pub(crate) fn invalid_number(text: &str, ty: &'static str) -> DecodeError {
    DecodeError::unplaced(DecodeErrorKind::InvalidNumber {
        text: text.chars().take(64).collect(),
        ty,
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the codec must be exact: floats are compared bit for bit
mod tests {
    use super::*;

    fn xml(x: f64) -> String {
        let mut s = String::new();
        write_xmlrpc_double(&mut s, x);
        s
    }

    fn json(x: f64) -> String {
        let mut s = String::new();
        write_json_double(&mut s, x);
        s
    }

    #[test]
    fn doubles_print_like_percent_16g() {
        assert_eq!(xml(0.0), "0");
        assert_eq!(xml(-0.0), "-0");
        assert_eq!(xml(1.0), "1");
        assert_eq!(xml(0.5), "0.5");
        assert_eq!(xml(100.0), "100");
        assert_eq!(xml(1e16), "1e+16");
        assert_eq!(xml(1e15), "1000000000000000");
        assert_eq!(xml(1.5e-5), "1.5e-05");
        assert_eq!(xml(0.0001), "0.0001");
        assert_eq!(xml(123_456.789), "123456.789");
        assert_eq!(xml(1e300), "1e+300");
        assert_eq!(xml(f64::INFINITY), "inf");
        assert_eq!(xml(f64::NEG_INFINITY), "-inf");
        assert_eq!(xml(f64::NAN), "nan");
    }

    #[test]
    fn doubles_that_need_17_digits_keep_them() {
        assert_eq!(xml(0.1), "0.1");
        let tricky = 0.1 + 0.2;
        assert_eq!(xml(tricky).parse::<f64>().ok(), Some(tricky));
        assert_eq!(xml(f64::MAX).parse::<f64>().ok(), Some(f64::MAX));
        assert_eq!(
            xml(f64::MIN_POSITIVE).parse::<f64>().ok(),
            Some(f64::MIN_POSITIVE)
        );
    }

    #[test]
    fn json_doubles_print_like_yojson() {
        assert_eq!(json(1.0), "1.0");
        assert_eq!(json(-3.0), "-3.0");
        assert_eq!(json(0.25), "0.25");
        assert_eq!(json(1e20), "1e+20");
        assert_eq!(json(f64::NAN), "NaN");
        assert_eq!(json(f64::INFINITY), "Infinity");
        assert_eq!(json(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn numbers_in_text_parse_leniently() {
        assert_eq!(parse_i64("9223372036854775807").ok(), Some(i64::MAX));
        assert_eq!(parse_i64(" 42 ").ok(), Some(42));
        assert_eq!(parse_i64("5.0").ok(), Some(5));
        assert!(parse_i64("5.5").is_err());
        assert!(parse_i64("12ab").is_err());
        assert_eq!(parse_f64("0.0").ok(), Some(0.0));
        assert_eq!(parse_f64("-inf").ok(), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64("Infinity").ok(), Some(f64::INFINITY));
        assert!(parse_f64("nan").is_ok_and(f64::is_nan));
        assert!(parse_f64("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_bool("1").ok(), Some(true));
        assert!(parse_bool("yes").is_err());
    }
}
