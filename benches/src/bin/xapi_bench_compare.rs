//! The Rust half of `cargo xtask bench-compare`.
//!
//! `xapi-bench-compare <dir>` writes every comparison input into `<dir>`, times xapi-rs on each
//! (best of `--repeat` runs after one warm-up) and prints one JSON document on stdout that
//! `benches/compare.py` reads before timing the Python and shell references on the same files.
//! Build it with `--release`: debug timings mean nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::collections::HashMap;

use xapi_backup::format::xva::ChecksumKind;
use xapi_benches::api_records::all_records;
use xapi_benches::disk_image::{generate_disk, write_xva_into};
use xapi_benches::drain::drain_xva;
use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, Value, jsonrpc, xmlrpc};

struct Options {
    dir: PathBuf,
    repeat: usize,
    xva_mib: usize,
    vms: usize,
}

/// One timed operation on one input file.
struct Measurement {
    name: &'static str,
    file: PathBuf,
    bytes: u64,
    seconds: f64,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        dir: PathBuf::new(),
        repeat: 5,
        xva_mib: 256,
        vms: 5000,
    };
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{flag} needs a positive number"))
        };
        match arg.as_str() {
            "--repeat" => options.repeat = number("--repeat")?.max(1),
            "--xva-mib" => options.xva_mib = number("--xva-mib")?.max(2),
            "--vms" => options.vms = number("--vms")?.max(1),
            "-h" | "--help" => {
                return Err(
                    "usage: xapi-bench-compare <dir> [--repeat N] [--xva-mib N] [--vms N]".into(),
                );
            }
            other if dir.is_none() => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    options.dir =
        dir.ok_or("usage: xapi-bench-compare <dir> [--repeat N] [--xva-mib N] [--vms N]")?;
    Ok(options)
}

/// Best wall-clock time of `repeat` runs of `op`, after one warm-up run.
fn best_of<T>(repeat: usize, mut op: impl FnMut() -> Result<T, String>) -> Result<f64, String> {
    op()?;
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let start = Instant::now();
        std::hint::black_box(op()?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn file_len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|err| format!("{}: {err}", path.display()))
}

fn measure_xva(options: &Options, out: &mut Vec<Measurement>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("tokio runtime: {err}"))?;
    let disk = generate_disk(options.xva_mib, 42);
    for (name, kind, file_name) in [
        ("xva_read_xxhash", ChecksumKind::Xxhash, "vm-xxhash.xva"),
        ("xva_read_sha1", ChecksumKind::Sha1, "vm-sha1.xva"),
    ] {
        let path = options.dir.join(file_name);
        rt.block_on(async {
            let mut file = tokio::fs::File::create(&path).await?;
            write_xva_into(&disk, kind, &mut file).await?;
            Ok::<_, xapi_backup::Error>(())
        })
        .map_err(|err| format!("writing {}: {err}", path.display()))?;
        let bytes = file_len(&path)?;
        let seconds = best_of(options.repeat, || {
            rt.block_on(async {
                let file = tokio::fs::File::open(&path).await?;
                let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
                let seen = drain_xva(reader).await?;
                Ok::<_, xapi_backup::Error>(seen)
            })
            .map_err(|err| format!("reading {}: {err}", path.display()))
        })?;
        out.push(Measurement {
            name,
            file: path,
            bytes,
            seconds,
        });
    }
    // Writing to a file in the same directory (page cache), as an export to local disk would.
    let path = options.dir.join("vm-written.xva");
    let seconds = best_of(options.repeat, || {
        rt.block_on(async {
            let mut file = tokio::fs::File::create(&path).await?;
            write_xva_into(&disk, ChecksumKind::Xxhash, &mut file).await
        })
        .map_err(|err| format!("writing {}: {err}", path.display()))
    })?;
    let bytes = file_len(&path)?;
    out.push(Measurement {
        name: "xva_write_xxhash",
        file: path,
        bytes,
        seconds,
    });
    Ok(())
}

type AllVms = HashMap<Ref<Vm>, VmRecord>;

fn measure_wire(options: &Options, out: &mut Vec<Measurement>) -> Result<(), String> {
    let records = all_records("VM", options.vms, 7);
    let limits = Limits::default();
    let xml = xmlrpc::encode_response(Ok(&records));
    let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records));
    let inputs: [(
        &'static str,
        &str,
        &[u8],
        fn(&[u8], &Limits) -> Result<usize, String>,
    ); 2] = [
        ("xmlrpc_decode", "vms.xmlrpc.xml", &xml, |bytes, limits| {
            let vms: AllVms = xmlrpc::decode_response(bytes, limits)
                .map_err(|err| err.to_string())?
                .map_err(|failure| format!("{failure:?}"))?;
            Ok(vms.len())
        }),
        (
            "jsonrpc_decode",
            "vms.jsonrpc.json",
            &json,
            |bytes, limits| {
                let vms: AllVms = jsonrpc::decode_response(bytes, limits)
                    .map_err(|err| err.to_string())?
                    .map_err(|failure| format!("{failure:?}"))?;
                Ok(vms.len())
            },
        ),
    ];
    for (name, file_name, bytes, decode) in inputs {
        let path = options.dir.join(file_name);
        std::fs::write(&path, bytes).map_err(|err| format!("{}: {err}", path.display()))?;
        let decoded = decode(bytes, &limits)?;
        if decoded != options.vms {
            return Err(format!("{name}: decoded {decoded} VMs of {}", options.vms));
        }
        let seconds = best_of(options.repeat, || decode(bytes, &limits))?;
        out.push(Measurement {
            name,
            file: path,
            bytes: bytes.len() as u64,
            seconds,
        });
    }
    Ok(())
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&options.dir) {
        eprintln!("{}: {err}", options.dir.display());
        return ExitCode::FAILURE;
    }
    let mut measurements = Vec::new();
    let measured = measure_wire(&options, &mut measurements)
        .and_then(|()| measure_xva(&options, &mut measurements));
    if let Err(message) = measured {
        eprintln!("xapi-bench-compare: {message}");
        return ExitCode::FAILURE;
    }
    let rows: Vec<String> = measurements
        .iter()
        .map(|m| {
            format!(
                "{{\"name\": {}, \"file\": {}, \"bytes\": {}, \"seconds\": {:.9}}}",
                json_string(m.name),
                json_string(&m.file.to_string_lossy()),
                m.bytes,
                m.seconds
            )
        })
        .collect();
    println!("{{\"measurements\": [\n  {}\n]}}", rows.join(",\n  "));
    ExitCode::SUCCESS
}
