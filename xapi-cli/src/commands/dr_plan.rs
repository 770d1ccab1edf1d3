//! `xapictl dr plan`: reconcile the copies of metadata found against the target pool and
//! write the plan (pre-checks, what is recovered from which copy, start sequence, clean-up)
//! for review, editing and `xapictl dr run`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use xapi_core::client::SessionHandle;
use xapi_dr::plan::{
    Mode, Plan, PlanRequest, PowerChoice, Selection, Severity, reconcile_and_plan,
};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::Journal;
use xapi_dr::source::{DiscoverOptions, MetadataCopy, discover};
use xapi_dr::target::read_target_pool;

use crate::exit::{Failure, explain};
use crate::output::{print_json, print_table};

/// Which recovery (`--mode`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    /// Bring the source pool's VMs up in this pool.
    Failover,
    /// Bring them back from the DR pool's metadata into the primary.
    Failback,
    /// Recover, check, and clean everything up afterwards.
    Test,
}

/// Power after recovery (`--power`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PowerArg {
    /// Start what ran in the metadata.
    AsRecorded,
    /// Start every recovered VM.
    Start,
    /// Start every recovered VM paused.
    Paused,
    /// Start nothing.
    Halted,
}

/// Options of `xapictl dr plan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PlanArgs {
    /// Failover, failback or test failover.
    #[arg(long, value_enum, default_value = "failover")]
    pub(crate) mode: ModeArg,
    /// Copies of metadata read offline: metadata VDI images or database dumps (repeat).
    /// Without it, the metadata VDIs this pool sees are read through its API.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// vApps and standalone VMs to recover, by name or UUID (repeat; default: everything).
    #[arg(long = "select")]
    select: Vec<String>,
    /// Recover the standalone VMs with this tag and the vApps with a member that has it.
    #[arg(long = "tag", conflicts_with = "select")]
    tags: Vec<String>,
    /// Power after recovery (default: as recorded; paused for a test).
    #[arg(long, value_enum)]
    power: Option<PowerArg>,
    /// Map a source network to a target network: SOURCE-UUID=TARGET-UUID (repeat).
    #[arg(long = "map", value_parser = parse_pair)]
    network_map: Vec<(String, String)>,
    /// For a test: keep the VMs on the networks the import matches instead of an isolated one.
    #[arg(long)]
    no_isolation: bool,
    /// When copies of a VM tie across pools, use this source pool's.
    #[arg(long)]
    prefer_pool: Option<String>,
    /// The journal of an earlier run: what it recovered is done, not a version conflict.
    #[arg(long = "from-journal")]
    pub(crate) from_journal: Option<PathBuf>,
    /// Write the plan (JSON) here.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Write a self-contained HTML page of the plan here: the start timeline, the newest-wins
    /// decisions, the pre-checks.
    #[arg(long)]
    html: Option<PathBuf>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected SOURCE=TARGET"))
}

impl PlanArgs {
    fn request(&self) -> PlanRequest {
        let mode = match self.mode {
            ModeArg::Failover => Mode::Failover,
            ModeArg::Failback => Mode::Failback,
            ModeArg::Test => Mode::TestFailover,
        };
        let mut request = PlanRequest::new(mode);
        if !self.select.is_empty() {
            request.selection = Selection::Named(self.select.clone());
        } else if !self.tags.is_empty() {
            request.selection = Selection::Tags(self.tags.clone());
        }
        if let Some(power) = self.power {
            request.power = match power {
                PowerArg::AsRecorded => PowerChoice::AsRecorded,
                PowerArg::Start => PowerChoice::StartAll,
                PowerArg::Paused => PowerChoice::StartPaused,
                PowerArg::Halted => PowerChoice::LeaveHalted,
            };
        }
        request.network_map = self.network_map.iter().cloned().collect::<BTreeMap<_, _>>();
        request.isolate_test_network = mode == Mode::TestFailover && !self.no_isolation;
        request
    }
}

/// Reads the copies and the target pool, reconciles and plans; writes the plan if asked.
pub(crate) async fn make_plan(
    session: &SessionHandle,
    url: &str,
    args: &PlanArgs,
) -> Result<Plan, Failure> {
    let dr_failure = |err: xapi_dr::Error| match err {
        xapi_dr::Error::Xapi(err) => explain(url, &err),
        other => Failure::failed(format!("{url}: {other}")),
    };
    let mut copies = Vec::new();
    for image in &args.images {
        copies.push(
            MetadataCopy::from_file(image)
                .map_err(|err| Failure::failed(format!("{}: {err}", image.display())))?,
        );
    }
    if args.images.is_empty() {
        let found = discover(session, &DiscoverOptions::default())
            .await
            .map_err(dr_failure)?;
        for vdi in found {
            eprintln!(
                "reading the metadata VDI {} on SR {} (pool {})",
                vdi.vdi_uuid, vdi.sr_name_label, vdi.pool_uuid
            );
            copies.push(
                MetadataCopy::from_vdi(session, &vdi.vdi)
                    .await
                    .map_err(dr_failure)?,
            );
        }
        if copies.is_empty() {
            return Err(Failure::failed(format!(
                "{url}: this pool sees no metadata VDI; introduce the mirrored SRs first (or give --image)"
            )));
        }
    }
    let recovered = match &args.from_journal {
        Some(path) if path.exists() => Journal::load(path)
            .map_err(|err| Failure::failed(err.to_string()))?
            .recovered(),
        _ => Recovered::default(),
    };
    let target = read_target_pool(session).await.map_err(dr_failure)?;
    let preferences = Preferences {
        prefer_pool: args.prefer_pool.clone(),
        ..Preferences::default()
    };
    let (reconciliation, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &recovered,
        &preferences,
        &args.request(),
    )
    .map_err(|err| Failure::usage(err.to_string()))?;
    if let Some(path) = &args.html {
        std::fs::write(path, crate::html::plan_page(&plan, &reconciliation))
            .map_err(|err| Failure::failed(format!("{}: {err}", path.display())))?;
    }
    if let Some(path) = &args.output {
        std::fs::write(path, plan.to_json())
            .map_err(|err| Failure::failed(format!("{}: {err}", path.display())))?;
    }
    Ok(plan)
}

/// Prints the plan: its checks, what is recovered and the start sequence (or the JSON).
pub(crate) fn print(plan: &Plan, json: bool) {
    if json {
        print_json(plan);
        return;
    }
    println!(
        "{:?} into pool {}: {} vApp(s), {} VM(s), {} SR(s) to introduce",
        plan.mode,
        plan.target_pool,
        plan.vapps.len(),
        plan.vms.len(),
        plan.srs_to_introduce.len()
    );
    let rows: Vec<Vec<String>> = plan
        .checks
        .iter()
        .filter(|c| c.severity != Severity::Passed)
        .map(|c| {
            vec![
                format!("{:?}", c.severity).to_lowercase(),
                format!("{:?}", c.kind),
                c.message.clone(),
                c.fix.as_ref().map(|f| format!("{f:?}")).unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("every pre-check passed");
    } else {
        print_table(&["SEVERITY", "CHECK", "FINDING", "FIX"], &rows);
    }
    let rows: Vec<Vec<String>> = plan
        .vms
        .iter()
        .map(|vm| {
            vec![
                vm.name_label.clone(),
                vm.uuid.clone(),
                vm.vapp.clone().unwrap_or_default(),
                format!("{:?}", vm.outcome).to_lowercase(),
                vm.copy.origin.to_string(),
            ]
        })
        .collect();
    print_table(&["VM", "UUID", "VAPP", "OUTCOME", "FROM"], &rows);
    if plan.is_blocked() {
        println!(
            "blocked: `xapictl dr run --apply-fixes` applies the fixes listed, or act by hand"
        );
    }
}
