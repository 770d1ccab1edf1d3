//! Number text as XAPI writes and reads it: `%.16g` doubles (with `inf`/`nan`), Yojson floats
//! (bare `NaN`/`Infinity`), and lenient parsing of numbers carried in strings.

use std::fmt::Write as _;

use super::error::{DecodeError, DecodeErrorKind};

/// `x` as C's `printf("%.*g", precision, x)` prints it: `precision` significant digits (at
/// least 1), scientific notation when the decimal exponent is below -4 or at least
/// `precision`, trailing zeros and a trailing dot removed, an exponent of at least two digits
/// with its sign; `inf`, `-inf`, `nan` for the non-finite values (as OCaml's `Printf` prints
/// them). xapi writes XML-RPC doubles with `%.16g` and database floats with `%0.18g`.
///
/// ```
/// use xapi_core::wire::format_g;
/// assert_eq!(format_g(0.1, 18), "0.100000000000000006");
/// assert_eq!(format_g(1e20, 18), "1e+20");
/// assert_eq!(format_g(1e-5, 16), "1e-05");
/// assert_eq!(format_g(2.5, 16), "2.5");
/// ```
pub fn format_g(x: f64, precision: usize) -> String {
    let mut out = String::with_capacity(precision + 8);
    write_g(&mut out, x, precision);
    out
}

/// Appends [`format_g`]'s text.
fn write_g(out: &mut String, x: f64, precision: usize) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let precision = precision.max(1);
    // Rust's `{:e}` is exact and rounds half to even on the exact binary value, as glibc does
    let mut scientific = String::with_capacity(precision + 8);
    write!(scientific, "{:.*e}", precision - 1, x.abs()).expect("writing to a String cannot fail");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} output always has an exponent");
    let exponent: i64 = exponent
        .parse()
        .expect("Rust's {:e} exponent is a decimal integer");
    let digits = mantissa.as_bytes();
    // the mantissa is `d` or `d.ddd`: its digits without the dot
    let (first, rest) = (digits[0], digits.get(2..).unwrap_or_default());
    if x.is_sign_negative() {
        out.push('-');
    }
    let precision_exp = i64::try_from(precision).expect("a precision fits an i64");
    if exponent < -4 || exponent >= precision_exp {
        out.push(char::from(first));
        push_fraction(out, rest);
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        write!(out, "{:02}", exponent.unsigned_abs()).expect("writing to a String cannot fail");
    } else if exponent >= 0 {
        let whole = usize::try_from(exponent).expect("0 <= exponent < precision");
        out.push(char::from(first));
        out.extend(rest[..whole].iter().map(|&d| char::from(d)));
        push_fraction(out, &rest[whole..]);
    } else {
        out.push('0');
        let leading_zeros = usize::try_from(-exponent - 1).expect("-4 <= exponent < 0");
        let mut fraction = vec![b'0'; leading_zeros];
        fraction.push(first);
        fraction.extend_from_slice(rest);
        push_fraction(out, &fraction);
    }
}

/// Appends `.` and `fraction` without its trailing zeros (nothing when all are zeros).
fn push_fraction(out: &mut String, fraction: &[u8]) {
    let kept = fraction
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |i| i + 1);
    if kept > 0 {
        out.push('.');
        out.extend(fraction[..kept].iter().map(|&d| char::from(d)));
    }
}

/// Appends a finite `x` with 16 significant digits as xapi does (`%.16g`), or 17 when 16 would
/// not read back as the same double, so that no value is lost.
fn write_shortest_g(out: &mut String, x: f64) {
    let start = out.len();
    write_g(out, x, 16);
    if out[start..].parse::<f64>().ok() != Some(x) {
        out.truncate(start);
        write_g(out, x, 17);
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

    /// Expected strings printed by C printf (`python3 -c 'print("%0.18g" % x, "%.12g" % x)'`,
    /// whose `%` operator follows the same rules).
    const TABLE: &[(f64, &str, &str)] = &[
        (0.1, "0.100000000000000006", "0.1"),
        (1.0, "1", "1"),
        (1e20, "1e+20", "1e+20"),
        (1e-5, "1.00000000000000008e-05", "1e-05"),
        (0.0, "0", "0"),
        (-0.0, "-0", "-0"),
        (-1.0, "-1", "-1"),
        (2.5, "2.5", "2.5"),
        (
            1.234_567_890_123_456_8e17,
            "123456789012345680",
            "1.23456789012e+17",
        ),
        (1e17, "100000000000000000", "1e+17"),
        (1e18, "1e+18", "1e+18"),
        (1e-4, "0.000100000000000000005", "0.0001"),
        (1.5e-4, "0.000149999999999999987", "0.00015"),
        (0.3, "0.299999999999999989", "0.3"),
        (1.0 / 3.0, "0.333333333333333315", "0.333333333333"),
        (
            9_007_199_254_740_992.0,
            "9007199254740992",
            "9.00719925474e+15",
        ),
        (
            9_223_372_036_854_775_808.0,
            "9.22337203685477581e+18",
            "9.22337203685e+18",
        ),
        (1e300, "1.00000000000000005e+300", "1e+300"),
        (5e-324, "4.94065645841246544e-324", "4.94065645841e-324"),
        (f64::MAX, "1.79769313486231571e+308", "1.79769313486e+308"),
        (-2.5e-7, "-2.49999999999999989e-07", "-2.5e-07"),
        (100.0, "100", "100"),
        (
            0.000_123_456_789,
            "0.000123456788999999997",
            "0.000123456789",
        ),
        (1e15, "1000000000000000", "1e+15"),
        (12_345.678, "12345.6779999999999", "12345.678"),
        (0.5, "0.5", "0.5"),
        (1e21, "1e+21", "1e+21"),
    ];

    #[test]
    fn format_g_matches_c_printf_at_precisions_18_and_12() {
        for &(value, g18, g12) in TABLE {
            assert_eq!(format_g(value, 18), g18, "%0.18g of {value:e}");
            assert_eq!(format_g(value, 12), g12, "%.12g of {value:e}");
            let parsed: f64 = g18.parse().unwrap();
            assert_eq!(parsed.to_bits(), value.to_bits(), "{g18} reads back");
        }
        assert_eq!(format_g(f64::NEG_INFINITY, 16), "-inf");
        assert_eq!(format_g(f64::NAN, 16), "nan");
        assert_eq!(format_g(9.96, 2), "10", "rounding moves the exponent");
        assert_eq!(format_g(99_500.0, 2), "1e+05");
        assert_eq!(format_g(0.5, 0), "0.5", "precision 0 counts as 1");
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
