//! A small measuring binary for instruction counts of the typed `get_all_records` decode.
//!
//! `xapi-decode-probe xml|json|xml-skip|json-skip [COUNT] [ROUNDS] [CLASS]` generates `COUNT` (default 500)
//! realistic records of `CLASS` (`VM`, `VDI` or `VBD`; default `VM`), encodes them once, then
//! decodes them `ROUNDS` (default 1) times into `HashMap<Ref<C>, CRecord>` inside
//! [`decode_xml`] / [`decode_json`] and drops the result inside [`drop_records`], and prints
//! the best wall-clock times of the decode and of the drop, apart (`xapi-decode-probe sizes`
//! prints the in-memory sizes; `xml-skip` / `json-skip` only scan the response into serde's
//! `IgnoredAny` in [`skip_xml`] / [`skip_json`]: the parse's floor). These functions are never inlined, so that a profiler can
//! count each alone:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*decode_json*' \
//!     target/release/xapi-decode-probe json 500
//! valgrind --tool=callgrind --toggle-collect='*drop_records*' \
//!     target/release/xapi-decode-probe json 500
//! ```

use std::collections::HashMap;
use std::process::ExitCode;

use serde::de::{DeserializeOwned, IgnoredAny};
use xapi_benches::api_records::all_records;
use xapi_benches::typed_decode::{Wire, decode_all};
use xapi_core::api::{Vbd, VbdRecord, Vdi, VdiRecord, Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, SmallString, Value, jsonrpc, xmlrpc};

/// Decodes the XML-RPC bytes into typed records.
#[inline(never)]
fn decode_xml<C, R: DeserializeOwned>(bytes: &[u8]) -> Result<HashMap<Ref<C>, R>, String> {
    decode_all(Wire::XmlRpc, bytes)
}

/// Decodes the JSON-RPC bytes into typed records.
#[inline(never)]
fn decode_json<C, R: DeserializeOwned>(bytes: &[u8]) -> Result<HashMap<Ref<C>, R>, String> {
    decode_all(Wire::JsonRpc, bytes)
}

/// Scans the XML-RPC bytes and builds nothing (`IgnoredAny`): the floor of the pull parse.
#[inline(never)]
fn skip_xml(bytes: &[u8]) -> Result<(), String> {
    match xmlrpc::decode_response::<IgnoredAny>(bytes, &Limits::default()) {
        Ok(Ok(_)) => Ok(()),
        other => Err(format!("XML-RPC skip: {other:?}")),
    }
}

/// Scans the JSON-RPC bytes and builds nothing (`IgnoredAny`): the floor of the tokenizer.
#[inline(never)]
fn skip_json(bytes: &[u8]) -> Result<(), String> {
    match jsonrpc::decode_response::<IgnoredAny>(bytes, &Limits::default()) {
        Ok(Ok(_)) => Ok(()),
        other => Err(format!("JSON-RPC skip: {other:?}")),
    }
}

/// Frees the decoded records.
#[inline(never)]
fn drop_records<C, R>(records: HashMap<Ref<C>, R>) {
    drop(std::hint::black_box(records));
}

/// Best decode and drop times, in seconds, of `rounds` rounds.
fn measure<C, R: DeserializeOwned>(
    wire: &str,
    bytes: &[u8],
    count: usize,
    rounds: usize,
) -> Result<(f64, f64), String> {
    let (mut best_decode, mut best_drop) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        let typed: HashMap<Ref<C>, R> = if wire == "xml" {
            decode_xml(bytes)?
        } else {
            decode_json(bytes)?
        };
        let decoded = start.elapsed().as_secs_f64();
        if typed.len() != count {
            return Err(format!("decoded {} records, expected {count}", typed.len()));
        }
        let start = std::time::Instant::now();
        drop_records(typed);
        best_drop = best_drop.min(start.elapsed().as_secs_f64());
        best_decode = best_decode.min(decoded);
    }
    Ok((best_decode, best_drop))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let wire = args.next().unwrap_or_default();
    if wire == "sizes" {
        println!(
            "Ref<Vm> {} bytes, SmallString {} bytes, VmRecord {} bytes, (Ref<Vm>, VmRecord) {} bytes, VdiRecord {} bytes, VbdRecord {} bytes",
            std::mem::size_of::<Ref<Vm>>(),
            std::mem::size_of::<SmallString>(),
            std::mem::size_of::<VmRecord>(),
            std::mem::size_of::<(Ref<Vm>, VmRecord)>(),
            std::mem::size_of::<VdiRecord>(),
            std::mem::size_of::<VbdRecord>(),
        );
        return Ok(());
    }
    let number = |arg: Option<String>, default: usize| -> Result<usize, String> {
        arg.map_or(Ok(default), |text| {
            text.parse()
                .map_err(|_| format!("`{text}` is not a positive number"))
        })
    };
    let count = number(args.next(), 500)?;
    let rounds = number(args.next(), 1)?;
    let class = args.next().unwrap_or_else(|| "VM".to_owned());
    let records = all_records(&class, count, 7);
    let bytes = match wire.as_str() {
        "xml" | "xml-skip" => xmlrpc::encode_response(Ok(&records)),
        "json" | "json-skip" => {
            jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records))
        }
        _ => {
            return Err(
                "usage: xapi-decode-probe xml|json|xml-skip|json-skip [COUNT] [ROUNDS] [VM|VDI|VBD]".to_owned(),
            );
        }
    };
    drop(records);
    // glibc keeps the generator's freed blocks in its fast bins until a large request
    // consolidates them: make that happen here, not inside the first measured decode.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1 << 16)));
    if let Some(wire) = wire.strip_suffix("-skip") {
        let mut best = f64::INFINITY;
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            if wire == "xml" {
                skip_xml(&bytes)?;
            } else {
                skip_json(&bytes)?;
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{wire} skip: {count} {class}s, {} bytes, best of {rounds}: {:.1} ms",
            bytes.len(),
            best * 1e3
        );
        return Ok(());
    }
    let (decode, drop) = match class.as_str() {
        "VM" => measure::<Vm, VmRecord>(&wire, &bytes, count, rounds)?,
        "VDI" => measure::<Vdi, VdiRecord>(&wire, &bytes, count, rounds)?,
        "VBD" => measure::<Vbd, VbdRecord>(&wire, &bytes, count, rounds)?,
        other => return Err(format!("no typed decode for class `{other}`")),
    };
    println!(
        "{wire}: {count} {class}s, {} bytes, best of {rounds}: decode {:.1} ms, drop {:.1} ms",
        bytes.len(),
        decode * 1e3,
        drop * 1e3
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
