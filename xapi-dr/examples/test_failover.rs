//! A test failover against the simulator's demo pools: the DR pool reads the replicated
//! metadata from the mirrored LUN (the mirror keeps running), recovers the VMs paused on an
//! isolated network, then cleans up, leaving the DR pool as it was.
//!
//! ```sh
//! cargo run -p xapi-dr --example test_failover
//! ```

use std::collections::BTreeMap;

use xapi_core::client::{Client, Password, SessionHandle};
use xapi_dr::configure::set_replication;
use xapi_dr::plan::{Mode, PlanRequest, Selection, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{Run, RunOptions};
use xapi_dr::source::{DiscoverOptions, MetadataCopy, discover, introduce};
use xapi_dr::target::read_target_pool;
use xapi_sim::{DEFAULT_PASSWORD, DEMO_MIRROR_DEVICE_CONFIG, Scenario, SimConfig, Simulator};

async fn login(url: &str) -> Result<SessionHandle, xapi_core::Error> {
    Client::builder(url)
        .build()?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-dr test failover example",
        )
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo)).await?;
    let primary = login(&sim.pool("primary").ok_or("no primary")?.url).await?;
    let srs = primary.sr().get_all_records().await?;
    let replicated = srs
        .values()
        .find(|sr| &*sr.name_label == "Replicated iSCSI (DR)")
        .ok_or("no replicated SR")?;
    set_replication(&primary, &[&replicated.uuid]).await?;

    let dr = login(&sim.pool("dr").ok_or("no DR pool")?.url).await?;
    let vms_before = dr.vm().get_all().await?.len();
    let device: BTreeMap<String, String> = DEMO_MIRROR_DEVICE_CONFIG
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let storage = introduce(&dr, "lvmoiscsi", &device, &[&replicated.uuid]).await?;
    let mut copies = Vec::new();
    for vdi in discover(&dr, &DiscoverOptions::default()).await? {
        copies.push(MetadataCopy::from_vdi(&dr, &vdi.vdi).await?);
    }

    let target = read_target_pool(&dr).await?;
    // the default test request: start paused, every VIF on an isolated network
    let mut request = PlanRequest::new(Mode::TestFailover);
    request.selection = Selection::Named(vec!["web-shop".into(), "mail".into()]);
    let (_, plan) = reconcile_and_plan(
        &copies,
        &target,
        None,
        &Recovered::default(),
        &Preferences::default(),
        &request,
    )?;

    let mut run = Run::new(dr.clone(), plan, RunOptions::default())?;
    run.adopt(&storage)?; // the clean-up forgets the SR introduced to read the metadata
    let report = run.execute().await?;
    println!(
        "test failover: {} VMs recovered, {} start step(s) done paused, isolated network {}",
        report.journal.recovered_vms.len(),
        report.journal.started.len(),
        report.journal.isolated_network.as_deref().unwrap_or("-")
    );
    // ... check the recovered VMs here ...
    let cleaned = run.cleanup().await?;
    let vms_after = dr.vm().get_all().await?.len();
    println!(
        "cleaned up in {} calls; the DR pool has {vms_after} VMs, as before ({vms_before})",
        cleaned.calls.len()
    );
    assert_eq!(vms_before, vms_after);
    Ok(())
}
