//! The Rust half of `cargo xtask bench-compare`.
//!
//! `xapi-bench-compare <dir>` writes every comparison input into `<dir>`, times xapi-rs on each
//! (best of `--repeat` runs after one warm-up) and prints one JSON document on stdout that
//! `benches/compare.py` reads before timing the Python and shell references on the same files.
//! Build it with `--release`: debug timings mean nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::fmt::Write as _;
use std::io::Cursor;

use xapi_backup::format::xva::ChecksumKind;
use xapi_benches::api_records::all_records;
use xapi_benches::disk_image::{generate_disk, write_xva_into};
use xapi_benches::drain::drain_xva;
use xapi_benches::pool_metadata::{db_xml_dump, redo_log_image};
use xapi_benches::typed_decode::{CLASSES, Wire, decode_and_drop};
use xapi_core::wire::{Value, jsonrpc, xmlrpc};
use xapi_dr::metadata::{read_db_xml, read_redo_log};

const USAGE: &str = "usage: xapi-bench-compare <dir> [--repeat N] [--xva-mib N] [--vms N] [--db-vms N] [--deltas N]";

struct Options {
    dir: PathBuf,
    repeat: usize,
    xva_mib: usize,
    vms: usize,
    db_vms: usize,
    redo_vms: usize,
    deltas: usize,
}

/// One timed operation on one input file.
struct Measurement {
    name: String,
    file: PathBuf,
    bytes: u64,
    seconds: f64,
    /// Peak resident memory of the process that did the work, when measured apart.
    peak_rss_bytes: Option<u64>,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        dir: PathBuf::new(),
        repeat: 5,
        xva_mib: 256,
        vms: 5000,
        db_vms: 10_000,
        redo_vms: 1_000,
        deltas: 100_000,
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
            "--db-vms" => options.db_vms = number("--db-vms")?.max(1),
            "--deltas" => options.deltas = number("--deltas")?.max(1),
            "-h" | "--help" => {
                return Err(USAGE.into());
            }
            other if dir.is_none() => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    options.dir = dir.ok_or(USAGE)?;
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
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|err| err.to_string())?;
            write_xva_into(&disk, kind, &mut file)
                .await
                .map_err(|err| err.to_string())
        })
        .map_err(|err| format!("writing {}: {err}", path.display()))?;
        let bytes = file_len(&path)?;
        let seconds = best_of(options.repeat, || {
            rt.block_on(async {
                // the file read ahead on a thread of its own, as a restore from a file does
                let reader = xapi_backup::format::read_ahead::ReadAhead::open(&path)
                    .map_err(|err| err.to_string())?;
                drain_xva(reader).await.map_err(|err| err.to_string())
            })
            .map_err(|err| format!("reading {}: {err}", path.display()))
        })?;
        out.push(Measurement {
            name: name.to_owned(),
            file: path,
            bytes,
            seconds,
            peak_rss_bytes: None,
        });
    }
    // Writing to a file in the same directory (page cache), as an export to local disk would.
    let path = options.dir.join("vm-written.xva");
    let seconds = best_of(options.repeat, || {
        rt.block_on(async {
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|err| err.to_string())?;
            write_xva_into(&disk, ChecksumKind::Xxhash, &mut file)
                .await
                .map_err(|err| err.to_string())
        })
        .map_err(|err| format!("writing {}: {err}", path.display()))
    })?;
    let bytes = file_len(&path)?;
    out.push(Measurement {
        name: "xva_write_xxhash".to_owned(),
        file: path,
        bytes,
        seconds,
        peak_rss_bytes: None,
    });
    Ok(())
}

fn measure_wire(options: &Options, out: &mut Vec<Measurement>) -> Result<(), String> {
    for (class, suffix) in CLASSES.into_iter().zip(["vm", "vdi", "vbd"]) {
        let records = all_records(class, options.vms, 7);
        let xml = xmlrpc::encode_response(Ok(&records));
        let json = jsonrpc::encode_response(jsonrpc::Version::V2, &Value::Int(1), Ok(&records));
        // The decodes start, like Python's and like a client's, with the response bytes in
        // memory and not the generator's tree of records, whose hundreds of thousands of
        // live blocks would fragment the heap every decode allocates from.
        drop(records);
        for (name, file_name, bytes, wire) in [
            (
                format!("xmlrpc_decode_{suffix}"),
                format!("{suffix}s.xmlrpc.xml"),
                &xml,
                Wire::XmlRpc,
            ),
            (
                format!("jsonrpc_decode_{suffix}"),
                format!("{suffix}s.jsonrpc.json"),
                &json,
                Wire::JsonRpc,
            ),
        ] {
            let path = options.dir.join(file_name);
            std::fs::write(&path, bytes).map_err(|err| format!("{}: {err}", path.display()))?;
            // Timed with the drop of the records, as Python's figures include freeing its
            // objects.
            let decoded = decode_and_drop(class, wire, bytes)?;
            if decoded != options.vms {
                return Err(format!("{name}: decoded {decoded} of {}", options.vms));
            }
            let seconds = best_of(options.repeat, || decode_and_drop(class, wire, bytes))?;
            out.push(Measurement {
                name,
                file: path,
                bytes: bytes.len() as u64,
                seconds,
                peak_rss_bytes: None,
            });
        }
    }
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Child mode: parse one DB XML dump streaming from its file, print `seconds peak_rss_bytes`.
fn parse_db_xml_child(path: &Path) -> Result<(), String> {
    let start = Instant::now();
    let file = std::fs::File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let db = read_db_xml(std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(|err| format!("{}: {err}", path.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let vms = db.rows("VM").count();
    let rss = peak_rss_bytes().ok_or("no VmHWM in /proc/self/status")?;
    println!("{seconds:.9} {rss} {vms}");
    Ok(())
}

fn measure_metadata(options: &Options, out: &mut Vec<Measurement>) -> Result<(), String> {
    let path = options.dir.join("pool.db.xml");
    let xml = db_xml_dump(options.db_vms);
    std::fs::write(&path, &xml).map_err(|err| format!("{}: {err}", path.display()))?;
    drop(xml);
    let bytes = file_len(&path)?;
    // Parse in fresh processes so that generating the dump does not count in the peak RSS.
    let exe = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let mut best: Option<(f64, u64)> = None;
    for _ in 0..=options.repeat {
        let child = std::process::Command::new(&exe)
            .arg("--parse-db-xml")
            .arg(&path)
            .output()
            .map_err(|err| format!("running the parser child: {err}"))?;
        if !child.status.success() {
            return Err(format!(
                "parser child failed: {}",
                String::from_utf8_lossy(&child.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&child.stdout);
        let mut fields = text.split_whitespace();
        let seconds: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or("child output")?;
        let rss: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or("child output")?;
        if best.is_none_or(|(s, _)| seconds < s) {
            best = Some((seconds, rss));
        }
    }
    let (seconds, rss) = best.ok_or("no parse run")?;
    out.push(Measurement {
        name: "db_xml_parse".to_owned(),
        file: path,
        bytes,
        seconds,
        peak_rss_bytes: Some(rss),
    });

    let (image, _) = redo_log_image(options.redo_vms, options.deltas, 5);
    let path = options.dir.join("redo-log.img");
    std::fs::write(&path, &image).map_err(|err| format!("{}: {err}", path.display()))?;
    let deltas = options.deltas;
    let seconds = best_of(options.repeat, || {
        let replayed =
            read_redo_log(Cursor::new(&image[..])).map_err(|err| format!("redo log: {err}"))?;
        if replayed.deltas_applied == deltas {
            Ok(replayed)
        } else {
            Err(format!(
                "replayed {} deltas of {deltas}",
                replayed.deltas_applied
            ))
        }
    })?;
    out.push(Measurement {
        name: "redo_log_replay".to_owned(),
        file: path,
        bytes: image.len() as u64,
        seconds,
        peak_rss_bytes: None,
    });
    Ok(())
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> ExitCode {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--parse-db-xml") {
        let Some(path) = raw.next() else {
            eprintln!("--parse-db-xml needs a file");
            return ExitCode::FAILURE;
        };
        return match parse_db_xml_child(Path::new(&path)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("xapi-bench-compare: {message}");
                ExitCode::FAILURE
            }
        };
    }
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
        .and_then(|()| measure_metadata(&options, &mut measurements))
        .and_then(|()| measure_xva(&options, &mut measurements));
    if let Err(message) = measured {
        eprintln!("xapi-bench-compare: {message}");
        return ExitCode::FAILURE;
    }
    let rows: Vec<String> = measurements
        .iter()
        .map(|m| {
            format!(
                "{{\"name\": {}, \"file\": {}, \"bytes\": {}, \"seconds\": {:.9}, \"peak_rss_bytes\": {}}}",
                json_string(&m.name),
                json_string(&m.file.to_string_lossy()),
                m.bytes,
                m.seconds,
                m.peak_rss_bytes.map_or_else(|| "null".to_owned(), |r| r.to_string())
            )
        })
        .collect();
    println!("{{\"measurements\": [\n  {}\n]}}", rows.join(",\n  "));
    ExitCode::SUCCESS
}
