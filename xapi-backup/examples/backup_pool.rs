//! Back up every VM of the embedded simulator's demo pool into a temporary repository, four
//! at a time, and print the job's report as JSON.
//!
//! ```text
//! cargo run -p xapi-backup --example backup_pool
//! ```

use xapi_backup::jobs::{JobEvent, JobOptions, Selection, run_job_with};
use xapi_backup::repo::{CreateOptions, Repository, Target};
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
            "backup_pool",
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await?;
    let selection = Selection {
        all: true,
        ..Selection::default()
    };
    let options = JobOptions::new("example", 4);
    let report = run_job_with(&session, &repo, &selection, &options, |event| {
        if let JobEvent::Finished(vm) = event {
            eprintln!(
                "{:<20} {:>6.2} s  attempts {}",
                vm.name_label, vm.seconds, vm.attempts
            );
        }
    })
    .await?;
    println!("{}", report.to_json());
    eprintln!(
        "{} VMs, {} failed, {} bytes read, {} chunks new ({} bytes stored), {} deduplicated, \
         at most {} at once, {:.1} s",
        report.vms.len(),
        report.failed(),
        report.bytes_read,
        report.new_chunks,
        report.new_bytes,
        report.deduplicated_chunks,
        report.max_in_flight,
        report.seconds
    );
    if report.failed() > 0 {
        return Err("some VMs failed".into());
    }
    Ok(())
}
