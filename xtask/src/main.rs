//! Project automation for xapi-rs.
//!
//! - `cargo xtask test`: every check CI runs, in order (format, codegen check, unused
//!   dependencies, lints, tests, docs, Python tests with XenAPI.py, JavaScript tests with Xen
//!   Orchestra's xen-api client, a check of the fuzz targets, a fuzz smoke run), each stage
//!   timed.
//! - `cargo xtask soak`: the long campaigns (every fuzz target for minutes, bench-compare).
//! - `cargo xtask bench-compare`: xapi-rs against Python's decoders and `tar`, as ratios; the
//!   repository's throughput on a local directory and on SeaweedFS S3 (see [`bench_compare`]).
//! - `cargo xtask fuzz-smoke [--seconds N]`: every fuzz target for a few seconds.
//! - `cargo xtask lean`: the format layers build without the client stack (see [`lean`]).
//! - `cargo xtask codegen [--check] [--refresh-input] [--datamodel DIR]`: generate
//!   `xapi-core/src/api/` from the committed datamodel `xtask/datamodel/xapi.json`, or refresh
//!   that file from upstream's (see [`codegen`]).

mod bench_compare;
mod codegen;
mod fuzz_smoke;
mod js;
mod lean;
mod python;
mod run;
mod s3_conformance;
mod seaweedfs;
mod soak;
mod stages;
mod system;
mod test;
mod unused_deps;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run_all(),
        Some("codegen") => codegen::run_command(&args[1..]),
        Some("lean") => lean::check(),
        Some("bench-compare") => bench_compare::run_command(&args[1..]),
        Some("fuzz-smoke") => fuzz_smoke::run_command(&args[1..]),
        Some("soak") => soak::run_command(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print_usage();
            Ok(())
        }
        Some(other) => Err(format!("unknown xtask command `{other}`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_usage() {
    println!("usage: cargo xtask <command>");
    println!();
    println!("commands:");
    println!(
        "  test       fmt, codegen --check, unused deps, clippy -D warnings, cargo test, doc,"
    );
    println!("             pytest, node tests, fuzz check, fuzz smoke (installs what it needs);");
    println!(
        "             {}=1 turns the fuzz smoke run off,",
        fuzz_smoke::SKIP_SMOKE_ENV
    );
    println!(
        "             {}=CRATE,... leaves crates out of the unused-deps check",
        unused_deps::SKIP_ENV
    );
    println!(
        "  bench-compare  release build, then benches/compare.py: ratios against Python, tar;"
    );
    println!("             then xapi-bench-repo: repository MiB/s on a local dir and SeaweedFS S3");
    println!("             --repo-mib N (default 1024), --no-repo, --only-repo");
    println!("  fuzz-smoke     every fuzz target for 10 s (--seconds N); installs cargo-fuzz");
    println!("  soak       the long campaigns: every fuzz target for 600 s, then bench-compare");
    println!("             --fuzz-seconds N, --targets A,B, --no-fuzz, --no-bench");
    println!("  codegen    write xapi-core/src/api/ from xtask/datamodel/xapi.json");
    println!("             --check          fail, listing the files, when the output is stale,");
    println!("                              or when the input is stale against upstream's");
    println!("             --refresh-input  rewrite xtask/datamodel/xapi.json from upstream's");
    println!("                              datamodel.json and errors.json, then generate");
    println!("             --datamodel DIR  upstream folder (default: $XAPI_DATAMODEL_DIR, else");
    println!("                              ../shared/xapi from the workspace root)");
}
