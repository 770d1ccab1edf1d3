//! The S-expression parser of set and map columns on arbitrary text; what parses as a set or a
//! map is written back and must parse to the same items.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_dr::metadata::sexpr::{SExpr, parse_map, parse_set, write_map, write_set};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = SExpr::parse(text);
    if let Ok(items) = parse_set(text) {
        let written = write_set(&items);
        assert_eq!(
            parse_set(&written).as_ref(),
            Ok(&items),
            "set round trip via {written:?}"
        );
    }
    if let Ok(pairs) = parse_map(text) {
        let written = write_map(&pairs);
        assert_eq!(
            parse_map(&written).as_ref(),
            Ok(&pairs),
            "map round trip via {written:?}"
        );
    }
});
