//! The unused-dependency check: cargo-machete over every crate of the workspace and `fuzz/`, so
//! that a dependency nothing uses any more does not stay in a manifest (and in every build).
//!
//! cargo-machete reads the manifests and searches the sources for each dependency's name; it is
//! quick to build and needs no compilation of the crates it checks. A dependency it cannot see
//! (used only through a macro or a renamed `extern crate`) goes in the crate's
//! `[package.metadata.cargo-machete] ignored` list with a comment saying why.

use std::collections::BTreeSet;
use std::process::Command;

use crate::run::{cargo, run};

/// The crate folders checked, relative to the workspace root.
pub(crate) const CRATES: &[&str] = &[
    "xapi-core",
    "xapi-dr",
    "xapi-backup",
    "xapi-sim",
    "xapi-cli",
    "xapi-py",
    "xtask",
    "benches",
    "fuzz",
];

/// Environment variable listing crate folders to leave out for now (comma or space separated),
/// for a crate whose clean-up is under way; the run's last lines say which were left out.
pub(crate) const SKIP_ENV: &str = "XAPI_RS_UNUSED_DEPS_SKIP";

/// Whether cargo-machete runs, installing it when missing.
fn ensure_cargo_machete() -> Result<(), String> {
    if cargo_machete_works() {
        return Ok(());
    }
    println!("==> cargo-machete is missing; installing it");
    run(cargo().args(["install", "cargo-machete", "--locked"]))
        .map_err(|err| format!("cargo-machete could not be installed: {err}"))?;
    if cargo_machete_works() {
        Ok(())
    } else {
        Err("cargo-machete still does not run after installing it".to_owned())
    }
}

/// `cargo machete`. Without `CARGO_PKG_NAME`, which `cargo run` (and so `cargo xtask`) sets:
/// cargo-machete takes it as a sign that it was not started by cargo, and then reads its own
/// subcommand name, `machete`, as a folder to check.
fn cargo_machete() -> Command {
    let mut command = cargo();
    command.env_remove("CARGO_PKG_NAME").arg("machete");
    command
}

fn cargo_machete_works() -> bool {
    cargo_machete()
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The crate folders named in `value` (as [`SKIP_ENV`] holds them), or an error naming one
/// that is not checked anyway.
fn parse_skipped(value: &str) -> Result<BTreeSet<&str>, String> {
    let skipped: BTreeSet<&str> = value
        .split([',', ' '])
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    match skipped.iter().find(|name| !CRATES.contains(name)) {
        Some(unknown) => Err(format!(
            "{SKIP_ENV}: `{unknown}` is not one of the checked crates ({})",
            CRATES.join(", ")
        )),
        None => Ok(skipped),
    }
}

/// Run cargo-machete on every crate not left out by [`SKIP_ENV`]; returns the crates left out.
pub(crate) fn check() -> Result<Vec<String>, String> {
    let skip_value = std::env::var(SKIP_ENV).unwrap_or_default();
    let skipped = parse_skipped(&skip_value)?;
    ensure_cargo_machete()?;
    let checked: Vec<&str> = CRATES
        .iter()
        .copied()
        .filter(|name| !skipped.contains(name))
        .collect();
    run(cargo_machete().args(&checked)).map_err(|err| {
        format!(
            "unused dependencies (listed above; remove them, or list a dependency that is used \
             in a way cargo-machete cannot see under [package.metadata.cargo-machete] ignored): \
             {err}"
        )
    })?;
    Ok(skipped.into_iter().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_crates_are_read_and_checked() {
        assert!(parse_skipped("").unwrap().is_empty());
        assert_eq!(
            parse_skipped("xapi-core, xapi-dr xapi-backup")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["xapi-backup", "xapi-core", "xapi-dr"]
        );
        assert!(parse_skipped("xapi-cor").unwrap_err().contains("xapi-cor"));
    }
}
