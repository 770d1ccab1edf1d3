//! Floats as xapi's database writes them: stored values with `Printf.sprintf "%0.18g"` (C's
//! `%g` with precision 18), datamodel defaults with OCaml's `string_of_float` (`%.12g`, then a
//! trailing dot when the text would read as an integer: `1.`, `0.`).

/// Precision of stored floats (`gen_db_actions.ml`: `Printf.sprintf "%0.18g"`).
const STORED_PRECISION: usize = 18;
/// Precision of OCaml's `string_of_float`.
const OCAML_PRECISION: usize = 12;

/// A stored float value: `Printf.sprintf "%0.18g"` (`0.1` → `0.100000000000000006`,
/// `1.0` → `1`, `1e-5` → `1.00000000000000008e-05`).
pub(crate) fn stored_float(value: f64) -> String {
    printf_g(value, STORED_PRECISION)
}

/// A datamodel default as OCaml's `string_of_float` prints it (`1.`, `0.`, `0.5`, `1e+20`).
pub(crate) fn ocaml_string_of_float(value: f64) -> String {
    let mut text = printf_g(value, OCAML_PRECISION);
    // `valid_float_lexem`: a text of digits (and a sign) only gets a dot
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        text.push('.');
    }
    text
}

/// C's `printf("%.*g", precision, value)`: `precision` significant digits, scientific notation
/// when the decimal exponent is below -4 or at least `precision`, trailing zeros (and a
/// trailing dot) removed, an exponent of at least two digits with its sign. `inf`, `-inf`,
/// `nan` as glibc prints them.
pub(crate) fn printf_g(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return if value.is_sign_negative() {
            "-nan".to_owned()
        } else {
            "nan".to_owned()
        };
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    let precision = precision.max(1);
    // Rust's `{:e}` is exact and rounds half to even on the exact binary value, as glibc does
    let scientific = format!("{:.*e}", precision - 1, value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i64 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut out = String::with_capacity(precision + 8);
    if value.is_sign_negative() {
        out.push('-');
    }
    let precision_exp = i64::try_from(precision).expect("a precision fits an i64");
    if exponent < -4 || exponent >= precision_exp {
        out.push(char::from(digits[0]));
        push_fraction(&mut out, &digits[1..]);
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        out.push_str(&magnitude.to_string());
    } else if exponent >= 0 {
        let whole = usize::try_from(exponent).expect("0 <= exponent < precision") + 1;
        out.extend(digits[..whole].iter().map(|&d| char::from(d)));
        push_fraction(&mut out, &digits[whole..]);
    } else {
        out.push('0');
        let leading_zeros = usize::try_from(-exponent - 1).expect("-4 <= exponent < 0");
        let mut fraction = vec![b'0'; leading_zeros];
        fraction.extend_from_slice(&digits);
        push_fraction(&mut out, &fraction);
    }
    out
}

/// Append `.` and `fraction` without its trailing zeros (nothing when all are zeros).
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn stored_floats_match_c_printf_g18() {
        for &(value, g18, _) in TABLE {
            assert_eq!(stored_float(value), g18, "%0.18g of {value:e}");
        }
    }

    #[test]
    fn precision_12_matches_c_printf_g12() {
        for &(value, _, g12) in TABLE {
            assert_eq!(printf_g(value, 12), g12, "%.12g of {value:e}");
        }
    }

    #[test]
    fn defaults_print_as_ocaml_string_of_float() {
        assert_eq!(ocaml_string_of_float(1.0), "1.");
        assert_eq!(ocaml_string_of_float(0.0), "0.");
        assert_eq!(ocaml_string_of_float(-3.0), "-3.");
        assert_eq!(ocaml_string_of_float(0.5), "0.5");
        assert_eq!(ocaml_string_of_float(1e20), "1e+20");
        assert_eq!(ocaml_string_of_float(f64::INFINITY), "inf");
        assert_eq!(ocaml_string_of_float(f64::NAN), "nan");
    }

    #[test]
    fn printed_floats_read_back_to_the_same_value() {
        for &(value, g18, _) in TABLE {
            let parsed: f64 = g18.parse().unwrap();
            assert_eq!(parsed.to_bits(), value.to_bits(), "{g18}");
        }
    }
}
