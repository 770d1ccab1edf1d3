//! The typed `get_all_records` decodes of `cargo xtask bench-compare` again, with mimalloc as
//! the global allocator: an extra, clearly labelled variant of the figures.
//!
//! The library never sets an allocator; this shows what an application that picks mimalloc
//! gets. `xapi-decode-mimalloc <COUNT> <REPEAT> <NAME>=<FILE>...` decodes each file
//! `xapi-bench-compare` wrote, where `NAME` is its measurement name
//! (`xmlrpc_decode_vm`, `jsonrpc_decode_vdi`, ...: wire, then class), into typed records and
//! drops them (best of `REPEAT` after one warm-up; the drop is timed, as Python's figures
//! include freeing its objects), and prints `{"NAME": seconds, ...}`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use mimalloc::MiMalloc;
use xapi_benches::typed_decode::{Wire, decode_and_drop};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const USAGE: &str = "usage: xapi-decode-mimalloc <COUNT> <REPEAT> <NAME>=<FILE>...";

/// Best wall-clock time of `repeat` decodes (and drops) of the file at `path`, after one
/// warm-up.
fn best_decode(
    path: &Path,
    class: &str,
    wire: Wire,
    count: usize,
    repeat: usize,
) -> Result<f64, String> {
    let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let decoded = decode_and_drop(class, wire, &bytes)?;
    if decoded != count {
        return Err(format!(
            "{}: decoded {decoded} records of {count}",
            path.display()
        ));
    }
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let start = Instant::now();
        std::hint::black_box(decode_and_drop(class, wire, &bytes)?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The wire and the class (`VM`, `VDI`, `VBD`) of a measurement name such as
/// `jsonrpc_decode_vdi`.
fn parse_name(name: &str) -> Result<(Wire, String), String> {
    let (wire, class) = name
        .split_once("_decode_")
        .ok_or_else(|| format!("`{name}` is not WIRE_decode_CLASS\n{USAGE}"))?;
    let wire = match wire {
        "xmlrpc" => Wire::XmlRpc,
        "jsonrpc" => Wire::JsonRpc,
        other => return Err(format!("unknown wire `{other}` in `{name}`")),
    };
    Ok((wire, class.to_ascii_uppercase()))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, repeat, inputs @ ..] = args.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let number = |text: &str| -> Result<usize, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a positive number\n{USAGE}"))
    };
    let (count, repeat) = (number(count)?, number(repeat)?.max(1));
    let mut rows = Vec::new();
    for input in inputs {
        let (name, file) = input
            .split_once('=')
            .ok_or_else(|| format!("`{input}` is not NAME=FILE\n{USAGE}"))?;
        let (wire, class) = parse_name(name)?;
        let seconds = best_decode(Path::new(file), &class, wire, count, repeat)?;
        rows.push(format!("\"{name}\": {seconds:.9}"));
    }
    println!("{{{}}}", rows.join(", "));
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
