//! `cargo xtask fuzz-smoke`: build every fuzz target in one `cargo fuzz build`, write the seed
//! corpora with the project's writers, then run each target for a short bounded time. Also the
//! fuzz stages of `cargo xtask test` (a plain `cargo check` of `fuzz/`, then the smoke run) and
//! the long campaigns of `cargo xtask soak`.
//!
//! Only the stable toolchain is assumed: the fuzz build (and only it) runs with
//! `RUSTC_BOOTSTRAP=1` so that cargo-fuzz may pass `-Zsanitizer=address` (see `fuzz/README.md`).
//! The fuzz crates build under `$XAPI_RS_FUZZ_TARGET_DIR`, else `<target dir>/fuzz`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench_compare::target_dir;
use crate::run::{cargo, run, workspace_root};
use crate::stages::env_flag;
use crate::system::has_program;

/// Seconds each target runs by default.
const DEFAULT_SECONDS: u32 = 10;

/// Environment variable that turns the smoke run of `cargo xtask test` off (`1`); without it a
/// smoke run that cannot run fails the test suite.
pub(crate) const SKIP_SMOKE_ENV: &str = "XAPI_RS_SKIP_FUZZ_SMOKE";

/// Environment variable naming the fuzz crates' target directory.
const TARGET_DIR_ENV: &str = "XAPI_RS_FUZZ_TARGET_DIR";

/// Whether cargo-fuzz is usable, installing it when missing; `Err` carries the reason to print
/// when it cannot be had.
pub(crate) fn ensure_cargo_fuzz() -> Result<(), String> {
    if cargo_fuzz_works() {
        return Ok(());
    }
    println!("==> cargo-fuzz is missing; installing it");
    run(cargo().args(["install", "cargo-fuzz", "--locked"]))
        .map_err(|err| format!("cargo-fuzz could not be installed: {err}"))?;
    if cargo_fuzz_works() {
        Ok(())
    } else {
        Err("cargo-fuzz still does not run after installing it".to_owned())
    }
}

fn cargo_fuzz_works() -> bool {
    cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The fuzz targets, as `cargo fuzz list` reports them.
pub(crate) fn list_targets() -> Result<Vec<String>, String> {
    let out = cargo()
        .args(["fuzz", "list", "--fuzz-dir", "fuzz"])
        .output()
        .map_err(|err| format!("could not run `cargo fuzz list`: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo fuzz list` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn fuzz_target_dir() -> PathBuf {
    std::env::var_os(TARGET_DIR_ENV).map_or_else(|| target_dir().join("fuzz"), PathBuf::from)
}

/// Type-check every fuzz target and the fuzz library against `fuzz/Cargo.lock`, with the plain
/// stable toolchain: no cargo-fuzz, no sanitizer, so it always runs.
pub(crate) fn check_targets() -> Result<(), String> {
    run(cargo()
        .args([
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--locked",
            "--all-targets",
            "--target-dir",
        ])
        .arg(fuzz_target_dir()))
}

/// Build every target in one `cargo fuzz build` invocation.
pub(crate) fn build_all() -> Result<PathBuf, String> {
    let dir = fuzz_target_dir();
    run(cargo()
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--fuzz-dir", "fuzz", "--target-dir"])
        .arg(&dir))?;
    Ok(dir.join(host_triple()?).join("release"))
}

fn host_triple() -> Result<String, String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .arg("-vV")
        .output()
        .map_err(|err| format!("could not run `rustc -vV`: {err}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "`rustc -vV` printed no host triple".to_owned())
}

/// Write the seed corpora into `<workspace>/fuzz/corpus/<target>/`.
pub(crate) fn write_seeds() -> Result<PathBuf, String> {
    let corpus = workspace_root().join("fuzz").join("corpus");
    run(cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "xapi-benches",
            "--bin",
            "xapi-fuzz-seeds",
            "--",
        ])
        .arg(&corpus))?;
    Ok(corpus)
}

pub(crate) fn run_target(
    bin_dir: &Path,
    corpus: &Path,
    target: &str,
    seconds: u32,
) -> Result<(), String> {
    // New inputs go to a scratch corpus under the target dir; the seeds stay as written.
    let scratch = fuzz_target_dir().join("smoke-corpus").join(target);
    let artifacts = workspace_root().join("fuzz").join("artifacts").join(target);
    for dir in [&scratch, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    let seeds = corpus.join(target);
    let mut command = Command::new(bin_dir.join(target));
    command
        .arg(format!("-max_total_time={seconds}"))
        .arg("-rss_limit_mb=2048")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&scratch);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    run(&mut command).map_err(|err| {
        format!(
            "fuzz target `{target}` failed ({err}); the crashing input is in {}",
            artifacts.display()
        )
    })
}

/// `cargo xtask fuzz-smoke [--seconds N]`.
pub(crate) fn run_command(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds needs a number")?;
            }
            other => return Err(format!("fuzz-smoke: unknown argument `{other}`")),
        }
    }
    ensure_cargo_fuzz()?;
    smoke(seconds)
}

fn smoke(seconds: u32) -> Result<(), String> {
    let bin_dir = build_all()?;
    let corpus = write_seeds()?;
    let targets = list_targets()?;
    println!(
        "==> fuzz-smoke: {} targets, {seconds} s each",
        targets.len()
    );
    for target in &targets {
        run_target(&bin_dir, &corpus, target, seconds)?;
    }
    println!("==> fuzz-smoke: every target ran without a crash");
    Ok(())
}

/// Why the smoke stage of `cargo xtask test` is turned off, when [`SKIP_SMOKE_ENV`] says so.
pub(crate) fn smoke_turned_off() -> Option<String> {
    env_flag(SKIP_SMOKE_ENV).then(|| {
        format!(
            "the fuzz smoke run did NOT run: turned off by {SKIP_SMOKE_ENV}=1 (the fuzz targets \
             were still compiled)"
        )
    })
}

/// The smoke stage of `cargo xtask test`. It fails when it cannot run (no C++ compiler for
/// libFuzzer, cargo-fuzz missing and not installable); only [`SKIP_SMOKE_ENV`] turns it off.
pub(crate) fn run_in_test_suite() -> Result<(), String> {
    let cannot = |reason: String| {
        format!(
            "the fuzz smoke run cannot run: {reason} (install what is missing, or set \
             {SKIP_SMOKE_ENV}=1 to turn the stage off knowingly)"
        )
    };
    if !has_program("c++") && !has_program("clang++") {
        return Err(cannot(
            "no C++ compiler (c++ or clang++) to build libFuzzer".to_owned(),
        ));
    }
    ensure_cargo_fuzz().map_err(cannot)?;
    smoke(DEFAULT_SECONDS)
}
