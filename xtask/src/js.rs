//! The JavaScript side of the test suite: Xen Orchestra's `xen-api` client (npm) driving the
//! simulator, installed from the lock file with `npm ci` and run with `node --test`.

use std::process::Command;

use crate::bench_compare::target_dir;
use crate::run::{cargo, run, workspace_root};

/// The folder of the suite, relative to the workspace root.
const SUITE_DIR: &str = "xapi-sim/tests/js";

/// Install the suite's packages and run it against a freshly built `xapi-sim`.
pub(crate) fn run_node_tests() -> Result<(), String> {
    let suite = workspace_root().join(SUITE_DIR);
    if !suite.join("package-lock.json").exists() {
        println!("==> no JavaScript test suite; skipping node tests");
        return Ok(());
    }
    run(cargo().args(["build", "-q", "-p", "xapi-sim"]))?;
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&suite))?;
    let binary = target_dir().join("debug").join("xapi-sim");
    run(Command::new("node")
        .args(["--test", "--test-reporter=dot", "xo_client.test.mjs"])
        .env("XAPI_SIM_BIN", binary)
        .current_dir(&suite))
}
