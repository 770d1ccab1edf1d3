//! `cargo xtask test`: the whole test suite, as CI runs it.

use crate::bench_compare::target_dir;
use crate::run::{cargo, run};
use crate::{codegen, fuzz_smoke, js, python, system};

/// Run every check in order; stop at the first failure.
pub(crate) fn run_all() -> Result<(), String> {
    system::ensure_requirements()?;
    system::report_disk("at start", &target_dir());
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    println!("==> cargo xtask codegen --check");
    codegen::check_up_to_date(&codegen::Upstream::from_env())?;
    run(cargo().args(["test", "--workspace"]))?;
    system::report_disk("after the tests", &target_dir());
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    python::run_pytest()?;
    js::run_node_tests()?;
    system::report_disk("before the fuzz build", &target_dir());
    fuzz_smoke::run_if_possible()?;
    system::report_disk("at the end", &target_dir());
    println!("==> all checks passed");
    Ok(())
}
