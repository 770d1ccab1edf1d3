//! `xapictl dr run` and `xapictl dr cleanup`: run a plan file against the target pool with a
//! journal (re-running continues), and clean up a test failover from its journal, also after
//! a crash.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use xapi_core::client::SessionHandle;
use xapi_dr::plan::Plan;
use xapi_dr::run::{Run, RunError, RunEvent, RunOptions, RunReport, StorageDevice};

use crate::exit::{Exit, Failure, explain};
use crate::output::{Progress, print_json};

/// Options of `xapictl dr run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The plan file written by `xapictl dr plan -o`.
    pub(crate) plan: PathBuf,
    #[command(flatten)]
    pub(crate) options: RunFlags,
}

/// How a plan runs (shared by `dr run` and `dr failover|failback|test`).
#[derive(Debug, Clone, Args)]
pub(crate) struct RunFlags {
    /// The run's journal: written after every step; an existing one is continued.
    #[arg(long)]
    pub(crate) journal: PathBuf,
    /// Apply the fixes the plan proposes for its problems.
    #[arg(long)]
    apply_fixes: bool,
    /// Pass force=true to the recovery calls (replaces newer copies, drops missing disks).
    #[arg(long)]
    force: bool,
    /// Where an SR to introduce is: SR-UUID=TYPE:KEY=VALUE,KEY=VALUE (repeat), for example
    /// `…=lvmoiscsi:target=10.0.0.5,targetIQN=iqn.2026-01.com.example:dr`.
    #[arg(long = "storage", value_parser = parse_storage)]
    storage: Vec<(String, StorageDevice)>,
    /// For a test failover: clean up right after the run.
    #[arg(long)]
    pub(crate) cleanup: bool,
}

/// Options of `xapictl dr cleanup`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CleanupArgs {
    /// The journal of the test failover to clean up.
    #[arg(long)]
    journal: PathBuf,
}

fn parse_storage(text: &str) -> Result<(String, StorageDevice), String> {
    let bad = || format!("{text:?}: expected SR-UUID=TYPE:KEY=VALUE,KEY=VALUE");
    let (sr, rest) = text.split_once('=').ok_or_else(bad)?;
    let (sr_type, config) = rest.split_once(':').ok_or_else(bad)?;
    let mut device_config = BTreeMap::new();
    for pair in config.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(bad)?;
        device_config.insert(k.to_owned(), v.to_owned());
    }
    Ok((
        sr.to_owned(),
        StorageDevice {
            sr_type: sr_type.to_owned(),
            device_config,
        },
    ))
}

fn run_failure(url: &str, error: &RunError) -> Failure {
    match error {
        RunError::Call {
            method,
            subject,
            source,
        } => {
            let why = explain(url, source);
            Failure::failed(format!("{method} ({subject}): {}", why.message))
        }
        RunError::Blocked { .. } => Failure {
            exit: Exit::Blocked,
            message: format!("{error}; `--apply-fixes` applies the fixes the plan lists"),
        },
        RunError::StartsFailed { .. } => Failure {
            exit: Exit::PartlyDone,
            message: error.to_string(),
        },
        other => Failure::failed(other.to_string()),
    }
}

/// One progress line on stderr per event (stdout keeps the report).
fn show(event: &RunEvent) {
    match event {
        RunEvent::Phase { name } => eprintln!("== {name}"),
        RunEvent::Recovered {
            kind,
            name_label,
            uuid,
        } => {
            eprintln!("recovered {kind} {name_label} ({uuid})");
        }
        RunEvent::Started { uuid, paused } => {
            eprintln!("started {uuid}{}", if *paused { " (paused)" } else { "" });
        }
        RunEvent::AlreadyDone { step, uuid } => eprintln!("{step} {uuid}: done by an earlier run"),
        _ => {}
    }
}

/// The plan in `path`: a file that cannot be read or is not a plan (edited wrong) is a usage
/// error naming the file and what is wrong.
pub(crate) fn read_plan(path: &std::path::Path) -> Result<Plan, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Failure::usage(format!("{}: {err}", path.display())))?;
    Plan::from_json(&text).map_err(|err| {
        Failure::usage(format!(
            "{}: not a plan xapictl can run ({err}); make one with `xapictl dr plan -o FILE`",
            path.display()
        ))
    })
}

/// Runs `plan`; prints the report (JSON with `--json`, else a summary).
pub(crate) async fn run_plan(
    session: SessionHandle,
    url: &str,
    plan: Plan,
    args: &RunFlags,
    json: bool,
    progress: Progress,
) -> Result<RunReport, Failure> {
    let options = RunOptions {
        force: args.force,
        apply_fixes: args.apply_fixes,
        storage: args.storage.iter().cloned().collect(),
        ..RunOptions::journal_at(&args.journal)
    };
    let mut run = Run::new(session, plan, options).map_err(|e| run_failure(url, &e))?;
    let mut events = run.events();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match progress {
                Progress::Text if !json => show(&event),
                Progress::Json => {
                    eprintln!("{}", serde_json::to_string(&event).unwrap_or_default());
                }
                _ => {}
            }
        }
    });
    let mut result = run.execute().await;
    if result.is_ok() && args.cleanup {
        result = run.cleanup().await;
    }
    let report = run.report(result.as_ref().err());
    drop(run);
    let _ = printer.await;
    if json {
        print_json(&report);
    } else {
        eprintln!(
            "{} call(s); journal {}",
            report.calls.len(),
            args.journal.display()
        );
    }
    match result {
        Ok(_) => Ok(report),
        Err(error) => Err(run_failure(url, &error)),
    }
}

/// Cleans a test failover up from its journal.
pub(crate) async fn cleanup(
    session: &SessionHandle,
    url: &str,
    args: &CleanupArgs,
    json: bool,
) -> Result<RunReport, Failure> {
    let report = xapi_dr::run::cleanup_from_journal(session, &args.journal)
        .await
        .map_err(|e| run_failure(url, &e))?;
    if json {
        print_json(&report);
    } else {
        eprintln!("cleaned up: {} call(s)", report.calls.len());
    }
    Ok(report)
}
