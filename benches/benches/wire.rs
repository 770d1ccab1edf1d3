//! Decoding `VM.get_all_records` of 5,000 generated VMs (92 fields each) into
//! `HashMap<Ref<Vm>, VmRecord>`, over XML-RPC and JSON-RPC, from the bytes the server encoders
//! write; and the encoders themselves.

use std::collections::HashMap;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xapi_benches::api_records::all_records;
use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, Value, jsonrpc, xmlrpc};

const VMS: usize = 5000;

type AllVms = HashMap<Ref<Vm>, VmRecord>;

fn wire(c: &mut Criterion) {
    let records = all_records("VM", VMS, 7);
    let limits = Limits::default();
    let xml = xmlrpc::encode_response(Ok(&records));
    let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records));
    let mut group = c.benchmark_group("get_all_records_5000_vms");
    group.sample_size(10);

    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("xmlrpc_decode_typed", |b| {
        b.iter(|| {
            let vms: AllVms = xmlrpc::decode_response(&xml, &limits)
                .expect("generated XML-RPC decodes")
                .expect("a success envelope");
            assert_eq!(vms.len(), VMS);
            vms
        });
    });
    group.bench_function("xmlrpc_decode_value", |b| {
        b.iter(|| {
            xmlrpc::decode_response::<Value>(&xml, &limits)
                .expect("generated XML-RPC decodes")
                .expect("a success envelope")
        });
    });
    group.bench_function("xmlrpc_encode", |b| {
        b.iter(|| xmlrpc::encode_response(Ok(&records)));
    });

    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("jsonrpc_decode_typed", |b| {
        b.iter(|| {
            let vms: AllVms = jsonrpc::decode_response(&json, &limits)
                .expect("generated JSON-RPC decodes")
                .expect("a success result");
            assert_eq!(vms.len(), VMS);
            vms
        });
    });
    group.bench_function("jsonrpc_encode", |b| {
        b.iter(|| jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records)));
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
