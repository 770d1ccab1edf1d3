//! A failover against the simulator's demo pools, the way a DR site does it: the primary
//! replicates its database to a mirrored LUN; the primary is lost and the mirror broken; the DR
//! pool probes the LUN, introduces its SR, reads the metadata through the API, plans (every
//! pre-check), and runs the plan with a journal.
//!
//! ```sh
//! cargo run -p xapi-dr --example failover
//! ```
//!
//! Against real pools, skip the scene: log in to the DR pool, `probe` the mirrored LUN with
//! its device config, and go on from step 2.

use std::collections::BTreeMap;

use xapi_core::client::{Client, Password, SessionHandle};
use xapi_dr::configure::set_replication;
use xapi_dr::plan::{Mode, PlanRequest, Selection, Severity, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{Run, RunEvent, RunOptions};
use xapi_dr::source::{DiscoverOptions, MetadataCopy, discover, introduce, probe};
use xapi_dr::target::read_target_pool;
use xapi_sim::{
    DEFAULT_PASSWORD, DEMO_MIRROR_DEVICE_CONFIG, MirrorMode, Scenario, SimConfig, Simulator,
};

async fn login(url: &str) -> Result<SessionHandle, xapi_core::Error> {
    Client::builder(url)
        .build()?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-dr failover example",
        )
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The scene: the demo pools, the simulated clock 100 times faster (vApp start delays).
    let sim = Simulator::start(SimConfig {
        clock_speed: 100.0,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await?;
    let primary = login(&sim.pool("primary").ok_or("no primary")?.url).await?;
    let srs = primary.sr().get_all_records().await?;
    let replicated = srs
        .values()
        .find(|sr| &*sr.name_label == "Replicated iSCSI (DR)")
        .ok_or("no replicated SR")?;
    set_replication(&primary, &[&replicated.uuid]).await?;
    sim.set_reachable("primary", false)?;
    sim.set_mirror_mode(MirrorMode::Broken)?;
    println!("the primary site is lost; storage mirroring is halted");

    // 1. The DR site finds the metadata on the mirrored LUN and reads it through the API.
    let dr = login(&sim.pool("dr").ok_or("no DR pool")?.url).await?;
    let device: BTreeMap<String, String> = DEMO_MIRROR_DEVICE_CONFIG
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let found_srs = probe(&dr, "lvmoiscsi", &device).await?;
    let wanted: Vec<&str> = found_srs.iter().map(|sr| sr.uuid.as_str()).collect();
    introduce(&dr, "lvmoiscsi", &device, &wanted).await?;
    let mut copies = Vec::new();
    for vdi in discover(&dr, &DiscoverOptions::default()).await? {
        copies.push(MetadataCopy::from_vdi(&dr, &vdi.vdi).await?);
    }
    println!("{} copy(ies) of metadata found", copies.len());

    // 2. Plan: reconcile against the DR pool, then every pre-check. The selection is what
    //    was on mirrored storage (the demo's other VMs are on NFS and local disks, which a
    //    plan of everything reports as problems without an automatic fix).
    let target = read_target_pool(&dr).await?;
    let mut request = PlanRequest::new(Mode::Failover);
    request.selection = Selection::Named(
        ["web-shop", "erp", "mail", "dns-1", "legacy-crm", "ldap"]
            .map(str::to_owned)
            .to_vec(),
    );
    let (_, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request,
    )?;
    for check in plan
        .checks
        .iter()
        .filter(|c| c.severity != Severity::Passed)
    {
        println!("{:?} {:?}: {}", check.severity, check.kind, check.message);
    }

    // 3. Run it, with a journal: running it again would continue, not duplicate.
    let journal =
        std::env::temp_dir().join(format!("xapi-dr-failover-{}.journal", std::process::id()));
    let mut run = Run::new(dr.clone(), plan, RunOptions::journal_at(&journal))?;
    let mut events = run.events();
    let report = run.execute().await?;
    while let Ok(event) = events.try_recv() {
        match event {
            RunEvent::Recovered {
                kind, name_label, ..
            } => println!("recovered {kind} {name_label}"),
            RunEvent::Started { uuid, .. } => println!("started {uuid}"),
            _ => {}
        }
    }
    println!(
        "done: {} calls, {} VMs recovered; journal {}",
        report.calls.len(),
        report.journal.recovered_vms.len(),
        journal.display()
    );
    std::fs::remove_file(&journal).ok();
    Ok(())
}
