//! The Python side of the test suite: a virtualenv with maturin, pytest and the official
//! `xenapi` package, the `xapi_sdk` wheel built into it, and pytest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{run, workspace_root};

/// Folders holding pytest suites, relative to the workspace root.
const PYTEST_DIRS: &[&str] = &["xapi-sim/tests/python", "xapi-py/tests"];

/// Python packages the tests need, pinned.
const PIP_PACKAGES: &[&str] = &["maturin>=1.8,<2", "pytest>=8,<9", "xenapi==26.21.1"];

/// Run every pytest suite that exists; do nothing when there is none yet.
pub(crate) fn run_pytest() -> Result<(), String> {
    let root = workspace_root();
    let suites: Vec<PathBuf> = PYTEST_DIRS
        .iter()
        .map(|dir| root.join(dir))
        .filter(|dir| has_tests(dir))
        .collect();
    if suites.is_empty() {
        println!("==> no Python test suites yet; skipping pytest");
        return Ok(());
    }
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--upgrade"])
        .args(PIP_PACKAGES))?;
    if root.join("xapi-py").join("pyproject.toml").exists() {
        run(Command::new(venv.join("bin").join("maturin"))
            .args(["develop", "--quiet", "-m"])
            .arg(root.join("xapi-py").join("Cargo.toml"))
            .env("VIRTUAL_ENV", &venv))?;
    }
    let mut pytest = Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q"])
        .args(&suites)
        .current_dir(&root);
    run(&mut pytest)
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
