//! The XML-RPC decoders on arbitrary bytes: a response into a dynamic `Value` and into typed VM
//! records (the hot path), a bare value fragment, and a server-side `methodCall`. Each must
//! return a result or an error, never panic.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, Value, xmlrpc};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = xmlrpc::decode_response::<Value>(data, &limits);
    let _ = xmlrpc::decode_response::<HashMap<Ref<Vm>, VmRecord>>(data, &limits);
    let _ = xmlrpc::decode_response::<Vec<Ref<Vm>>>(data, &limits);
    let _ = xmlrpc::decode_value::<Value>(data, &limits);
    let _ = xmlrpc::decode_call(data, &limits);
});
