//! The delta-record decoder on arbitrary payloads; a decoded delta encodes back to a payload
//! that decodes to the same delta.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_dr::metadata::Delta;

fuzz_target!(|data: &[u8]| {
    let Ok(delta) = Delta::decode(data) else {
        return;
    };
    let encoded = delta.encode();
    assert_eq!(Delta::decode(&encoded), Ok(delta), "delta round trip");
});
