//! `cargo xtask bench-compare`: xapi-rs side by side with Python's decoders and `tar`.
//!
//! Builds the `xapi-bench-compare`, `xapi-decode-mimalloc` and `xapi-bench-backup` binaries in
//! release mode, then runs `benches/compare.py`, which prints one `ratio NAME: X.XX` line per
//! comparison (among them `xva_read_vs_tar` and `backup_vs_curl`). Extra
//! arguments are passed to the script (`--repeat N`, `--xva-mib N`, `--vms N`, `--keep DIR`,
//! `--disk-gib N`, `--data-mib N`, `--no-backup`).

use std::path::PathBuf;
use std::process::Command;

use crate::run::{cargo, run, workspace_root};

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Build the Rust half in release mode and run the comparison script.
pub(crate) fn run_command(args: &[String]) -> Result<(), String> {
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "xapi-benches",
        "--bin",
        "xapi-bench-compare",
        "--bin",
        "xapi-decode-mimalloc",
        "--bin",
        "xapi-bench-backup",
    ]))?;
    let binary = target_dir().join("release").join("xapi-bench-compare");
    if !binary.exists() {
        return Err(format!("built binary not found at {}", binary.display()));
    }
    let root = workspace_root();
    run(Command::new("python3")
        .current_dir(&root)
        .arg(root.join("benches").join("compare.py"))
        .arg("--bin")
        .arg(&binary)
        .args(args))
}
