//! Restore a VM from a repository, against the embedded simulator: the demo pool's `mail` VM
//! is backed up into a new local repository, the repository is opened again as a restore tool
//! would, its restore points listed, and the newest one restored as a new VM on a local SR,
//! then started.
//!
//! ```text
//! cargo run -p xapi-backup --example restore_vm
//! ```

use xapi_backup::export::backup_vm;
use xapi_backup::import::{RestoreOptions, restore_vm_outcome};
use xapi_backup::repo::{CreateOptions, OpenOptions, Repository, RestorePointKind, Target};
use xapi_core::client::{Client, Password};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo)).await?;
    let session = Client::builder(sim.url())
        .build()?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "restore example",
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let target = Target::LocalDir(dir.path().join("repo"));

    // a backup to restore from
    {
        let repo = Repository::create(&target, CreateOptions::default()).await?;
        let mail = session
            .vm()
            .get_by_name_label("mail")
            .await?
            .into_iter()
            .next()
            .ok_or("the demo pool has a VM named mail")?;
        let backup = backup_vm(&session, &repo, &mail, Some("example")).await?;
        println!("backed up mail: restore point {}", backup.manifest.id);
    }

    // what a restore tool does: open the repository, pick a restore point, restore it
    let repo = Repository::open(&target, OpenOptions::default()).await?;
    let points = repo.list(RestorePointKind::Vm).await?;
    for point in &points {
        let name = point.vm.as_ref().map_or("?", |vm| vm.name_label.as_str());
        println!(
            "restore point {} of {name}: {} disk bytes",
            point.id,
            point.total_size()
        );
    }
    let newest = points.last().ok_or("no restore point")?;
    let sr = session
        .sr()
        .get_all_records()
        .await?
        .into_iter()
        .find(|(_, sr)| sr.name_label.starts_with("Local storage"))
        .map(|(reference, _)| reference);
    let outcome = restore_vm_outcome(
        &session,
        &repo,
        newest,
        &RestoreOptions {
            sr,
            name_label: Some("mail (restored)".into()),
            start: true,
            ..RestoreOptions::default()
        },
    )
    .await?;
    let state = session.vm().get_power_state(&outcome.vm).await?;
    println!(
        "restored as VM {} ({state}), started: {}",
        outcome.uuid, outcome.started
    );
    Ok(())
}
