//! Inputs the fuzz targets in `fuzz/` found to crash a decoder, kept so the fixes stay fixed.
//! Each test names its target and says what went wrong.

use std::collections::HashMap;

use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{DecodeErrorKind, Limits, Ref, Value, jsonrpc};

/// Target `jsonrpc_response`: a string in an error array ending in a lone backslash at the very
/// end of the body made the skipping of an ignored value index one byte past the input.
#[test]
fn jsonrpc_string_ending_in_a_backslash_at_end_of_input_is_an_eof_error() {
    let body: &[u8] =
        b"{\"result\":null,\"Urt\":null,\"error\":[\"HANDL2_I\\\\\\\\\\\\\\\xb1\\\\\\";
    assert_eq!(body.len(), 55);
    let limits = Limits::default();
    for result in [
        jsonrpc::decode_response::<Value>(body, &limits).map(|_| ()),
        jsonrpc::decode_response::<HashMap<Ref<Vm>, VmRecord>>(body, &limits).map(|_| ()),
        jsonrpc::decode_response::<Vec<Ref<Vm>>>(body, &limits).map(|_| ()),
    ] {
        let err = result.expect_err("a body cut inside a string is refused");
        assert!(
            matches!(
                err.kind,
                DecodeErrorKind::UnexpectedEof | DecodeErrorKind::Syntax(_)
            ),
            "unexpected error: {err}"
        );
        assert!(
            err.offset <= body.len() as u64,
            "offset {} past the body",
            err.offset
        );
    }
    assert!(jsonrpc::decode_call(body, &limits).is_err());
}
