//! `cargo xtask bench-compare`: xapi-rs side by side with Python's decoders and `tar`, then the
//! backup repository's throughput on a local directory and on S3.
//!
//! Builds the `xapi-bench-compare`, `xapi-decode-mimalloc`, `xapi-bench-backup` and
//! `xapi-bench-repo` binaries in release mode, then runs `benches/compare.py`, which prints one
//! `ratio NAME: X.XX` line per comparison (among them `xva_read_vs_tar` and `backup_vs_curl`).
//! Extra arguments are passed to the script (`--repeat N`, `--xva-mib N`, `--vms N`,
//! `--keep DIR`, `--disk-gib N`, `--data-mib N`, `--no-backup`), except these, which are
//! xtask's own:
//!
//! - `--repo-mib N`: MiB written per repository measurement (default 1024);
//! - `--no-repo`: skip the repository measurement;
//! - `--only-repo`: run the repository measurement alone (no compare.py).
//!
//! The repository measurement installs SeaweedFS ([`seaweedfs::install`]), then
//! `xapi-bench-repo` starts it on loopback and prints `local_write_mib_s: X`,
//! `s3_write_mib_s: X`, `s3_read_mib_s: X`, `s3_objects_per_gib: X` and the like.

use std::path::PathBuf;
use std::process::Command;

use crate::run::{cargo, run, workspace_root};
use crate::seaweedfs;

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// What `bench-compare` runs, from its arguments.
struct Plan {
    compare: bool,
    repo: bool,
    repo_mib: String,
    /// The arguments for compare.py.
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Plan, String> {
    let mut plan = Plan {
        compare: true,
        repo: true,
        repo_mib: "1024".to_owned(),
        rest: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-repo" => plan.repo = false,
            "--only-repo" => plan.compare = false,
            "--repo-mib" => {
                let value = args.next().ok_or("--repo-mib needs a number of MiB")?;
                value
                    .parse::<u64>()
                    .map_err(|_| format!("--repo-mib: not a number: {value}"))?;
                value.clone_into(&mut plan.repo_mib);
            }
            _ => plan.rest.push(arg.clone()),
        }
    }
    Ok(plan)
}

/// Build the Rust half in release mode, run the comparison script, then the repository
/// measurement.
pub(crate) fn run_command(args: &[String]) -> Result<(), String> {
    let plan = parse(args)?;
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
        "--bin",
        "xapi-bench-repo",
    ]))?;
    let release = target_dir().join("release");
    let root = workspace_root();
    if plan.compare {
        let binary = release.join("xapi-bench-compare");
        if !binary.exists() {
            return Err(format!("built binary not found at {}", binary.display()));
        }
        run(Command::new("python3")
            .current_dir(&root)
            .arg(root.join("benches").join("compare.py"))
            .arg("--bin")
            .arg(&binary)
            .args(&plan.rest))?;
    }
    if plan.repo {
        let weed = seaweedfs::install()?;
        let work = tempdir_in(&target_dir())?;
        let result = run(Command::new(release.join("xapi-bench-repo"))
            .current_dir(&root)
            .arg(&work)
            .args(["--mib", &plan.repo_mib])
            .env(seaweedfs::WEED_ENV, &weed));
        let _ = std::fs::remove_dir_all(&work);
        result?;
    }
    Ok(())
}

/// A fresh directory for the repository measurement, beside the build output (on the disk the
/// project builds on, not a possibly small tmpfs).
fn tempdir_in(parent: &std::path::Path) -> Result<PathBuf, String> {
    let dir = parent.join(format!("bench-repo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    Ok(dir)
}
