//! The Python side of the test suite: a virtualenv with maturin, pytest, mypy and the official
//! `xenapi` package, the `xapi_sdk` extension built into it, then
//!
//! 1. the simulator's suite with the official XenAPI.py,
//! 2. the same suite again with `xapi_sdk.compat` imported as `XenAPI` (the drop-in proof),
//! 3. xapi-py's own suite, with SeaweedFS ([`seaweedfs::install`], its `weed` in `$WEED`) for
//!    the repositories on S3,
//! 4. `mypy.stubtest`, so that the stubs cannot drift from the module,
//! 5. `mypy --strict` on the example scripts of `xapi-py/examples`, which use the typed API.
//!
//! Every step runs, or the stage fails: none is skipped.

use std::path::Path;
use std::process::Command;

use crate::run::{run, workspace_root};
use crate::seaweedfs;

/// The simulator's suite, written for XenAPI.py.
const SIM_SUITE: &str = "xapi-sim/tests/python";
/// The suite of the Python package.
const PY_SUITE: &str = "xapi-py/tests";
/// The example scripts, type-checked with `mypy --strict`.
const PY_EXAMPLES: &str = "xapi-py/examples";
/// Environment variable naming the module the simulator's suite imports as `XenAPI` (read by
/// its conftest.py).
const CLIENT_VAR: &str = "XAPI_PY_CLIENT";

/// Python packages the tests need, pinned.
const PIP_PACKAGES: &[&str] = &[
    "maturin>=1.8,<2",
    "pytest>=8,<9",
    "xenapi==26.21.1",
    "mypy==2.4.1",
];

/// Build the extension into the venv and run every Python suite, stubtest and the strict type
/// check of the examples.
pub(crate) fn run_pytest() -> Result<(), String> {
    let root = workspace_root();
    for suite in [SIM_SUITE, PY_SUITE] {
        if !has_tests(&root.join(suite)) {
            return Err(format!("no pytest files in {suite}"));
        }
    }
    let manifest = root.join("xapi-py").join("Cargo.toml");
    if !root.join("xapi-py").join("pyproject.toml").exists() {
        return Err("xapi-py/pyproject.toml is missing: cannot build xapi_sdk".to_owned());
    }
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--upgrade"])
        .args(PIP_PACKAGES))?;
    run(Command::new(venv.join("bin").join("maturin"))
        .args(["develop", "--quiet", "-m"])
        .arg(&manifest)
        .env("VIRTUAL_ENV", &venv))?;

    for (client, what) in [
        ("XenAPI", "the official XenAPI.py"),
        ("xapi_sdk.compat", "xapi_sdk.compat in place of XenAPI.py"),
    ] {
        println!("==> {SIM_SUITE} with {what} ({CLIENT_VAR}={client})");
        run(pytest(&python, &root, &root.join(SIM_SUITE)).env(CLIENT_VAR, client))?;
    }
    let weed = seaweedfs::install()?;
    run(pytest(&python, &root, &root.join(PY_SUITE)).env(seaweedfs::WEED_ENV, &weed))?;
    run(Command::new(&python)
        .args(["-m", "mypy.stubtest", "xapi_sdk"])
        .current_dir(&root))?;
    run(Command::new(&python)
        .args(["-m", "mypy", "--strict", PY_EXAMPLES])
        .current_dir(&root))
}

fn pytest(python: &Path, root: &Path, suite: &Path) -> Command {
    let mut command = Command::new(python);
    command
        .args(["-m", "pytest", "-q"])
        .arg(suite)
        .current_dir(root);
    command
}

fn has_tests(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("test_") && name.ends_with(".py")
        })
    })
}
