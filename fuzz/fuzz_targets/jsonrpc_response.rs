//! The JSON-RPC decoders on arbitrary bytes: a response (v1 or v2, either error shape) into a
//! dynamic `Value` and into typed VM records, and a server-side request.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, Value, jsonrpc};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = jsonrpc::decode_response::<Value>(data, &limits);
    let _ = jsonrpc::decode_response::<HashMap<Ref<Vm>, VmRecord>>(data, &limits);
    let _ = jsonrpc::decode_response::<Vec<Ref<Vm>>>(data, &limits);
    let _ = jsonrpc::decode_call(data, &limits);
});
