//! The lean-build check: the format layers build without the client stack.
//!
//! `xapi-core` without its `client` feature, `xapi-dr` without its `engine`, and `xapi-backup`
//! without default features (its format layer) and with `repo` alone (plus its local-directory
//! repository), must not pull in the client stack: a tool that only parses metadata VDIs or XVAs should not
//! compile an HTTP client, TLS or a crypto provider. This checks the dependency trees (normal
//! edges only) and that `xapi-core` compiles with no features at all.

use crate::run::{cargo, run};

/// Crates that belong to the client stack and must stay out of the lean builds.
const CLIENT_STACK: &[&str] = &[
    "hyper",
    "hyper-util",
    "rustls",
    "tokio-rustls",
    "ring",
    "webpki-roots",
];

/// The lean builds and what each may not contain beyond [`CLIENT_STACK`]: xapi-core's types and
/// codecs are sans-IO, so not even tokio.
const LEAN_BUILDS: &[(&[&str], &[&str])] = &[
    (&["-p", "xapi-core", "--no-default-features"], &["tokio"]),
    (&["-p", "xapi-dr", "--no-default-features"], &[]),
    // The format layer alone: no storage stack either.
    (
        &["-p", "xapi-backup", "--no-default-features"],
        &["object_store"],
    ),
    // With the repository (the `repo` feature: local directory target): still no HTTP or TLS
    // stack; the S3 target is behind the `s3` feature, the pool engine behind `engine`.
    (
        &[
            "-p",
            "xapi-backup",
            "--no-default-features",
            "--features",
            "repo",
        ],
        &[],
    ),
];

/// Fail when a lean build's dependency tree holds a client-stack crate, or when `xapi-core`
/// does not compile without features.
pub(crate) fn check() -> Result<(), String> {
    for (args, also_forbidden) in LEAN_BUILDS {
        let output = cargo()
            .args(["tree", "-e", "normal", "--prefix", "none"])
            .args(*args)
            .output()
            .map_err(|err| format!("could not run cargo tree: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo tree {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        let offending = forbidden_crates(&tree, also_forbidden);
        if !offending.is_empty() {
            return Err(format!(
                "the lean build `{}` pulls in the client stack: {}",
                args.join(" "),
                offending.join(", ")
            ));
        }
        println!(
            "==> lean build `{}`: {} crates, none of the client stack",
            args.join(" "),
            crate_names(&tree).len()
        );
    }
    run(cargo().args(["check", "-p", "xapi-core", "--no-default-features", "--lib"]))
}

/// The distinct crate names of a `cargo tree --prefix none` listing.
fn crate_names(tree: &str) -> Vec<&str> {
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The crates of `tree` that are in [`CLIENT_STACK`] or `also`.
fn forbidden_crates<'a>(tree: &'a str, also: &[&str]) -> Vec<&'a str> {
    crate_names(tree)
        .into_iter()
        .filter(|name| CLIENT_STACK.contains(name) || also.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_stack_crates_are_found_in_a_tree() {
        let tree = "xapi-backup v0.1.0 (/w)\nbytes v1.10.0\nrustls v0.23.27\nring v0.17.14\n\
                    rustls v0.23.27 (*)\ntokio v1.45.0\n";
        assert_eq!(forbidden_crates(tree, &[]), ["ring", "rustls"]);
        assert_eq!(
            forbidden_crates(tree, &["tokio"]),
            ["ring", "rustls", "tokio"]
        );
        assert!(forbidden_crates("serde v1.0.0\n", &["tokio"]).is_empty());
    }
}
