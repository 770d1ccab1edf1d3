//! `cargo xtask test`: the whole test suite, as CI runs it. Every stage prints its wall time;
//! the run ends with a table of them and the total, and its very last lines name any stage the
//! environment turned off.

use crate::bench_compare::target_dir;
use crate::run::{cargo, run};
use crate::stages::Stages;
use crate::{codegen, fuzz_smoke, js, lean, python, s3_conformance, system, unused_deps};

/// Examples that run on their own (an embedded simulator), as `(package, example)`.
const EXAMPLES: &[(&str, &str)] = &[
    ("xapi-dr", "failover"),
    ("xapi-dr", "test_failover"),
    ("xapi-backup", "backup_pool"),
    ("xapi-backup", "restore_vm"),
    ("xapi-backup", "incremental"),
];

/// Run every check in order; stop at the first failure.
pub(crate) fn run_all() -> Result<(), String> {
    let mut stages = Stages::start("cargo xtask test");
    let result = run_stages(&mut stages);
    stages.finish(result)
}

fn run_stages(stages: &mut Stages) -> Result<(), String> {
    stages.run("requirements", system::ensure_requirements)?;
    system::report_disk("at start", &target_dir());
    stages.run("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    // The quick checks first, so that a stale file or a forgotten dependency fails in seconds.
    stages.run("codegen --check", || {
        codegen::check_up_to_date(&codegen::Upstream::from_env())
    })?;
    let skipped_crates = stages.run("unused dependencies", unused_deps::check)?;
    if !skipped_crates.is_empty() {
        stages.note(format!(
            "unused dependencies NOT checked in {} ({}); those crates may still have some",
            skipped_crates.join(", "),
            unused_deps::SKIP_ENV
        ));
    }
    stages.run("clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    stages.run("lean builds", lean::check)?;
    stages.run("cargo test", || run(cargo().args(["test", "--workspace"])))?;
    // `cargo test --workspace` built the examples (with the workspace's features); they are run
    // as built, against the embedded simulator (`cargo run -p` would build them again with
    // one package's features).
    stages.run("examples", || {
        for (package, example) in EXAMPLES {
            let binary = target_dir().join("debug").join("examples").join(example);
            if !binary.exists() {
                return Err(format!(
                    "example {example} of {package} was not built by `cargo test` ({})",
                    binary.display()
                ));
            }
            run(&mut std::process::Command::new(binary))?;
        }
        Ok(())
    })?;
    stages.run("S3 conformance (SeaweedFS)", s3_conformance::run_suite)?;
    system::report_disk("after the tests", &target_dir());
    stages.run("cargo doc", || {
        run(cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    stages.run("pytest", python::run_pytest)?;
    stages.run("node tests", js::run_node_tests)?;
    system::report_disk("before the fuzz build", &target_dir());
    stages.run("fuzz check", fuzz_smoke::check_targets)?;
    match fuzz_smoke::smoke_turned_off() {
        Some(reason) => stages.skip("fuzz smoke", reason),
        None => stages.run("fuzz smoke", fuzz_smoke::run_in_test_suite)?,
    }
    system::report_disk("at the end", &target_dir());
    Ok(())
}
