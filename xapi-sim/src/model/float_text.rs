//! Floats as xapi's database writes them: stored values with `Printf.sprintf "%0.18g"` (C's
//! `%g` with precision 18), datamodel defaults with OCaml's `string_of_float` (`%.12g`, then a
//! trailing dot when the text would read as an integer: `1.`, `0.`).

use xapi_core::wire::format_g;

/// Precision of stored floats (`gen_db_actions.ml`: `Printf.sprintf "%0.18g"`).
const STORED_PRECISION: usize = 18;
/// Precision of OCaml's `string_of_float`.
const OCAML_PRECISION: usize = 12;

/// A stored float value: `Printf.sprintf "%0.18g"` (`0.1` → `0.100000000000000006`,
/// `1.0` → `1`, `1e-5` → `1.00000000000000008e-05`).
pub(crate) fn stored_float(value: f64) -> String {
    format_g(value, STORED_PRECISION)
}

/// A datamodel default as OCaml's `string_of_float` prints it (`1.`, `0.`, `0.5`, `1e+20`).
pub(crate) fn ocaml_string_of_float(value: f64) -> String {
    let mut text = format_g(value, OCAML_PRECISION);
    // `valid_float_lexem`: a text of digits (and a sign) only gets a dot
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_floats_are_printf_g18() {
        // the full C printf table is in xapi_core::wire::number's tests
        assert_eq!(stored_float(0.1), "0.100000000000000006");
        assert_eq!(stored_float(1.0), "1");
        assert_eq!(stored_float(1e20), "1e+20");
        assert_eq!(stored_float(1e-5), "1.00000000000000008e-05");
    }

    #[test]
    fn defaults_print_as_ocaml_string_of_float() {
        assert_eq!(ocaml_string_of_float(1.0), "1.");
        assert_eq!(ocaml_string_of_float(0.0), "0.");
        assert_eq!(ocaml_string_of_float(-3.0), "-3.");
        assert_eq!(ocaml_string_of_float(0.5), "0.5");
        assert_eq!(ocaml_string_of_float(1.0 / 3.0), "0.333333333333");
        assert_eq!(ocaml_string_of_float(1e20), "1e+20");
        assert_eq!(ocaml_string_of_float(f64::INFINITY), "inf");
        assert_eq!(ocaml_string_of_float(f64::NAN), "nan");
    }
}
