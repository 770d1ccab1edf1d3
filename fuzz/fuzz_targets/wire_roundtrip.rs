//! Writer round trips on both wires: for any value, what the encoders write decodes back to the
//! same value (less what each wire is documented to lose: untyped XML-RPC ints come back as
//! strings, XML drops control characters, JSON carries datetimes and base64 as strings).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xapi_core::wire::{Limits, Value, jsonrpc, xmlrpc};
use xapi_fuzz::arbitrary_value::{ArbitraryValue, after_jsonrpc, after_xmlrpc};

fuzz_target!(|input: (String, Vec<ArbitraryValue>, i64)| {
    let (method, params, id) = input;
    let params: Vec<Value> = params.iter().map(ArbitraryValue::to_value).collect();
    let limits = Limits::default();
    let result = Value::Array(params.clone());

    // Server response, as xapi writes it.
    let xml = xmlrpc::encode_response(Ok(&result));
    let back = xmlrpc::decode_response::<Value>(&xml, &limits)
        .unwrap_or_else(|err| panic!("encoded XML-RPC response does not decode: {err}"))
        .unwrap_or_else(|failure| panic!("a success came back as {failure:?}"));
    assert_eq!(back, after_xmlrpc(&result), "XML-RPC response round trip");

    // Client call, decoded by the server side.
    let method = method
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect::<String>();
    let call = xmlrpc::encode_call(&method, &params);
    let (got_method, got_params) = xmlrpc::decode_call(&call, &limits)
        .unwrap_or_else(|err| panic!("encoded XML-RPC call does not decode: {err}"));
    assert_eq!(got_method, method);
    assert_eq!(
        Value::Array(got_params),
        after_xmlrpc(&result),
        "XML-RPC call round trip"
    );

    for version in [jsonrpc::Version::V1, jsonrpc::Version::V2] {
        let json = jsonrpc::encode_response(version, &Value::Int(id), Ok(&result));
        let back = jsonrpc::decode_response::<Value>(&json, &limits)
            .unwrap_or_else(|err| panic!("encoded JSON-RPC response does not decode: {err}"))
            .unwrap_or_else(|failure| panic!("a success came back as {failure:?}"));
        assert_eq!(
            back,
            after_jsonrpc(&result),
            "JSON-RPC {version:?} response round trip"
        );

        // Request ids are counters; the server reads them as XAPI ints (at most i64::MAX).
        let call = jsonrpc::encode_call(&method, &params, id.unsigned_abs() >> 1, version);
        let decoded = jsonrpc::decode_call(&call, &limits)
            .unwrap_or_else(|err| panic!("encoded JSON-RPC call does not decode: {err}"));
        assert_eq!(decoded.method, method);
        assert_eq!(decoded.version, version);
        assert_eq!(
            Value::Array(decoded.params),
            after_jsonrpc(&result),
            "JSON-RPC {version:?} call round trip"
        );
    }
});
