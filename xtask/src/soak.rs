//! `cargo xtask soak`: the long campaigns kept out of `cargo xtask test`: every fuzz target for a
//! long time (10 minutes each by default), the crash campaign (a backup process killed with
//! SIGKILL at 50 random points, then the repository verified, pruned and the pool swept: see
//! `xapi-bench-backup crash`), then the side-by-side benchmark comparison. Each target is a
//! stage of its own, with its wall time.
//!
//! `cargo xtask soak [--fuzz-seconds N] [--targets A,B] [--crash-points N] [--no-fuzz]
//! [--no-crash] [--no-bench] [--incremental]`
//!
//! `--incremental` adds the incremental-backup benchmark (`xapi-backup` example
//! `incremental_bench`: a 16 GiB disk, or `XAPI_BENCH_DISK_GIB`; it needs twice that free).

use std::process::Command;

use crate::run::{cargo, run};
use crate::stages::Stages;
use crate::{bench_compare, fuzz_smoke};

/// Seconds each fuzz target runs by default.
const DEFAULT_FUZZ_SECONDS: u32 = 600;

/// What one `soak` run does.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    fuzz_seconds: u32,
    /// Only these targets (all when empty).
    targets: Vec<String>,
    fuzz: bool,
    /// Kill points of the crash campaign (0: no campaign).
    crash_points: u32,
    bench: bool,
    /// The incremental-backup benchmark too.
    incremental: bool,
}

/// Kill points of the crash campaign by default.
const DEFAULT_CRASH_POINTS: u32 = 50;

fn parse(args: &[String]) -> Result<Plan, String> {
    let mut plan = Plan {
        fuzz_seconds: DEFAULT_FUZZ_SECONDS,
        targets: Vec::new(),
        fuzz: true,
        crash_points: DEFAULT_CRASH_POINTS,
        bench: true,
        incremental: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fuzz-seconds" => {
                plan.fuzz_seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("soak: --fuzz-seconds needs a positive number")?;
            }
            "--targets" => {
                let list = args.next().ok_or("soak: --targets needs a list")?;
                plan.targets = list
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--crash-points" => {
                plan.crash_points = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("soak: --crash-points needs a positive number")?;
            }
            "--no-crash" => plan.crash_points = 0,
            "--no-fuzz" => plan.fuzz = false,
            "--no-bench" => plan.bench = false,
            "--incremental" => plan.incremental = true,
            other => return Err(format!("soak: unknown argument `{other}`")),
        }
    }
    if !plan.fuzz && !plan.bench && plan.crash_points == 0 && !plan.incremental {
        return Err("soak: --no-fuzz, --no-crash and --no-bench leave nothing to run".to_owned());
    }
    Ok(plan)
}

/// `cargo xtask soak ...`.
pub(crate) fn run_command(args: &[String]) -> Result<(), String> {
    let plan = parse(args)?;
    let mut stages = Stages::start("cargo xtask soak");
    let result = run_plan(&plan, &mut stages);
    stages.finish(result)
}

fn run_plan(plan: &Plan, stages: &mut Stages) -> Result<(), String> {
    if plan.fuzz {
        stages.run("cargo-fuzz", fuzz_smoke::ensure_cargo_fuzz)?;
        let bin_dir = stages.run("fuzz build", fuzz_smoke::build_all)?;
        let corpus = stages.run("fuzz seeds", fuzz_smoke::write_seeds)?;
        let all = fuzz_smoke::list_targets()?;
        if let Some(unknown) = plan.targets.iter().find(|t| !all.contains(t)) {
            return Err(format!(
                "soak: no fuzz target `{unknown}` (there are: {})",
                all.join(", ")
            ));
        }
        let targets = if plan.targets.is_empty() {
            all
        } else {
            plan.targets.clone()
        };
        println!(
            "==> soak: {} fuzz targets, {} s each",
            targets.len(),
            plan.fuzz_seconds
        );
        for target in &targets {
            stages.run(&format!("fuzz {target}"), || {
                fuzz_smoke::run_target(&bin_dir, &corpus, target, plan.fuzz_seconds)
            })?;
        }
    }
    if plan.crash_points > 0 {
        stages.run("crash campaign", || crash_campaign(plan.crash_points))?;
    }
    if plan.bench {
        stages.run("bench-compare", || bench_compare::run_command(&[]))?;
    }
    if plan.incremental {
        stages.run("incremental bench", || {
            crate::run::run(crate::run::cargo().args([
                "run",
                "--release",
                "-p",
                "xapi-backup",
                "--example",
                "incremental_bench",
            ]))
        })?;
    }
    Ok(())
}

/// Builds `xapi-bench-backup` in release mode and runs its crash campaign in a fresh directory
/// under the target directory.
fn crash_campaign(points: u32) -> Result<(), String> {
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "xapi-benches",
        "--bin",
        "xapi-bench-backup",
    ]))?;
    let binary = bench_compare::target_dir()
        .join("release")
        .join("xapi-bench-backup");
    let dir = bench_compare::target_dir().join("crash-campaign");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    run(Command::new(binary)
        .arg("crash")
        .arg(&dir)
        .args(["--points", &points.to_string()]))?;
    std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_run_every_target_long_the_crash_campaign_then_the_benchmarks() {
        assert_eq!(
            parse(&[]).unwrap(),
            Plan {
                fuzz_seconds: 600,
                targets: Vec::new(),
                fuzz: true,
                crash_points: 50,
                bench: true,
                incremental: false
            }
        );
    }

    #[test]
    fn flags_choose_duration_targets_and_parts() {
        let plan = parse(&args(
            "--fuzz-seconds 3600 --targets db_xml,ova_xml --no-bench",
        ))
        .unwrap();
        assert_eq!(plan.fuzz_seconds, 3600);
        assert_eq!(plan.targets, ["db_xml", "ova_xml"]);
        assert!(plan.fuzz && !plan.bench);
        assert!(parse(&args("--fuzz-seconds 0")).is_err());
        assert!(
            parse(&args("--no-fuzz --no-bench")).is_ok(),
            "the crash campaign is left"
        );
        assert!(parse(&args("--no-fuzz --no-crash --no-bench")).is_err());
        assert_eq!(parse(&args("--crash-points 7")).unwrap().crash_points, 7);
        assert!(parse(&args("--crash-points 0")).is_err());
        assert!(parse(&args("--forever")).is_err());
        assert!(
            parse(&args("--no-fuzz --no-bench --incremental"))
                .unwrap()
                .incremental
        );
    }
}
