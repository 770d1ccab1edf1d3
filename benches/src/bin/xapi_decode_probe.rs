//! A small measuring binary for instruction counts of the typed `get_all_records` decode.
//!
//! `xapi-decode-probe xml|json [VMS] [ROUNDS]` generates `VMS` (default 500) realistic VM
//! records, encodes them once, then decodes them `ROUNDS` (default 1) times into
//! `HashMap<Ref<Vm>, VmRecord>` inside [`decode_xml`] / [`decode_json`] and prints the best
//! wall-clock times of the decode and of dropping its result, apart (`xapi-decode-probe sizes`
//! prints the in-memory sizes); callgrind's count of `decode_*` leaves the drop out. The decode functions are
//! never inlined, so that a profiler can count them alone:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*decode_json*' \
//!     target/release/xapi-decode-probe json 500
//! ```

use std::process::ExitCode;

use xapi_benches::api_records::all_records;
use xapi_benches::typed_decode::{AllVms, jsonrpc_all_vms, xmlrpc_all_vms};
use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Ref, Value, jsonrpc, xmlrpc};

/// One of the two decode functions below.
type Decoder = fn(&[u8]) -> Result<AllVms, String>;

/// Decodes the XML-RPC bytes into typed records.
#[inline(never)]
fn decode_xml(bytes: &[u8]) -> Result<AllVms, String> {
    xmlrpc_all_vms(bytes)
}

/// Decodes the JSON-RPC bytes into typed records.
#[inline(never)]
fn decode_json(bytes: &[u8]) -> Result<AllVms, String> {
    jsonrpc_all_vms(bytes)
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let wire = args.next().unwrap_or_default();
    if wire == "sizes" {
        println!(
            "Ref<Vm> {} bytes, VmRecord {} bytes, (Ref<Vm>, VmRecord) {} bytes",
            std::mem::size_of::<Ref<Vm>>(),
            std::mem::size_of::<VmRecord>(),
            std::mem::size_of::<(Ref<Vm>, VmRecord)>()
        );
        return Ok(());
    }
    let number = |arg: Option<String>, default: usize| -> Result<usize, String> {
        arg.map_or(Ok(default), |text| {
            text.parse()
                .map_err(|_| format!("`{text}` is not a positive number"))
        })
    };
    let vms = number(args.next(), 500)?;
    let rounds = number(args.next(), 1)?;
    let records = all_records("VM", vms, 7);
    let (bytes, decode): (Vec<u8>, Decoder) = match wire.as_str() {
        "xml" => (xmlrpc::encode_response(Ok(&records)), decode_xml),
        "json" => (
            jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records)),
            decode_json,
        ),
        _ => return Err("usage: xapi-decode-probe xml|json [VMS] [ROUNDS]".to_owned()),
    };
    drop(records);
    let (mut best_decode, mut best_drop) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        let typed = decode(&bytes)?;
        let decoded = start.elapsed().as_secs_f64();
        if typed.len() != vms {
            return Err(format!("decoded {} records, expected {vms}", typed.len()));
        }
        let start = std::time::Instant::now();
        drop(std::hint::black_box(typed));
        best_drop = best_drop.min(start.elapsed().as_secs_f64());
        best_decode = best_decode.min(decoded);
    }
    println!(
        "{wire}: {vms} VMs, {} bytes, best of {rounds}: decode {:.1} ms, drop {:.1} ms",
        bytes.len(),
        best_decode * 1e3,
        best_drop * 1e3
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xapi-decode-probe: {err}");
            ExitCode::FAILURE
        }
    }
}
