//! `cargo xtask test`: the whole test suite, as CI runs it.

use crate::run::{cargo, run};
use crate::{python, system};

/// Run every check in order; stop at the first failure.
pub(crate) fn run_all() -> Result<(), String> {
    system::ensure_requirements()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace"]))?;
    python::run_pytest()?;
    println!("==> all checks passed");
    Ok(())
}
