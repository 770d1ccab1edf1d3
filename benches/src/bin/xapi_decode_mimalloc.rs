//! The typed `get_all_records` decodes of `cargo xtask bench-compare` again, with mimalloc as
//! the global allocator: an extra, clearly labelled variant of the figures.
//!
//! The library never sets an allocator; this shows what an application that picks mimalloc
//! gets. `xapi-decode-mimalloc <xmlrpc file> <jsonrpc file> <VMS> <REPEAT>` decodes the files
//! `xapi-bench-compare` wrote (best of `REPEAT` after one warm-up) and prints
//! `{"xmlrpc_decode": seconds, "jsonrpc_decode": seconds}`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use mimalloc::MiMalloc;
use xapi_benches::typed_decode::{AllVms, jsonrpc_all_vms, xmlrpc_all_vms};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const USAGE: &str = "usage: xapi-decode-mimalloc <xmlrpc file> <jsonrpc file> <VMS> <REPEAT>";

/// Best wall-clock time of `repeat` decodes of the file at `path`, after one warm-up.
fn best_decode(
    path: &Path,
    vms: usize,
    repeat: usize,
    decode: fn(&[u8]) -> Result<AllVms, String>,
) -> Result<f64, String> {
    let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let decoded = decode(&bytes)?.len();
    if decoded != vms {
        return Err(format!(
            "{}: decoded {decoded} VMs of {vms}",
            path.display()
        ));
    }
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let start = Instant::now();
        let vms = decode(&bytes)?;
        best = best.min(start.elapsed().as_secs_f64());
        drop(std::hint::black_box(vms));
    }
    Ok(best)
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [xml, json, vms, repeat] = args.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let number = |text: &str| -> Result<usize, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a positive number\n{USAGE}"))
    };
    let (vms, repeat) = (number(vms)?, number(repeat)?.max(1));
    let xml = best_decode(Path::new(xml), vms, repeat, xmlrpc_all_vms)?;
    let json = best_decode(Path::new(json), vms, repeat, jsonrpc_all_vms)?;
    println!("{{\"xmlrpc_decode\": {xml:.9}, \"jsonrpc_decode\": {json:.9}}}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xapi-decode-mimalloc: {err}");
            ExitCode::FAILURE
        }
    }
}
