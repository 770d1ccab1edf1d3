//! `xapictl dr configure`: the SRs that can hold the pool's replicated database and which do;
//! with `--sr`, replicate to exactly those (at most 8; disables first, then enables).

use clap::Args;
use xapi_core::client::SessionHandle;
use xapi_dr::configure::{ReplicationCandidate, replication_candidates, set_replication};

use crate::exit::{Failure, explain};
use crate::output::{human_bytes, print_json, print_table};

/// Options of `xapictl dr configure`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConfigureArgs {
    /// Replicate the database to exactly these SRs (UUIDs, repeat); `--sr none` turns
    /// replication off. Without it, list the candidates.
    #[arg(long = "sr")]
    srs: Vec<String>,
}

fn failure(url: &str, err: xapi_dr::Error) -> Failure {
    match err {
        xapi_dr::Error::Xapi(err) => explain(url, &err),
        other => Failure::usage(other.to_string()),
    }
}

/// Lists or sets; returns the candidates as they are afterwards.
pub(crate) async fn configure(
    session: &SessionHandle,
    url: &str,
    args: &ConfigureArgs,
) -> Result<Vec<ReplicationCandidate>, Failure> {
    if !args.srs.is_empty() {
        let wanted: Vec<&str> = args
            .srs
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "none")
            .collect();
        let change = set_replication(session, &wanted)
            .await
            .map_err(|e| failure(url, e))?;
        for sr in &change.disabled {
            eprintln!("disabled replication to SR {sr}");
        }
        for sr in &change.enabled {
            eprintln!("enabled replication to SR {sr}");
        }
    }
    replication_candidates(session)
        .await
        .map_err(|e| failure(url, e))
}

/// Prints the candidates.
pub(crate) fn print(candidates: &[ReplicationCandidate], json: bool) {
    if json {
        print_json(&candidates);
        return;
    }
    let rows: Vec<Vec<String>> = candidates
        .iter()
        .map(|c| {
            vec![
                c.name_label.clone(),
                c.uuid.clone(),
                c.sr_type.clone(),
                human_bytes(c.free_space),
                if c.enabled { "yes" } else { "no" }.to_owned(),
                if c.latest { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    print_table(
        &["SR", "UUID", "TYPE", "FREE", "REPLICATING", "LATEST"],
        &rows,
    );
}
