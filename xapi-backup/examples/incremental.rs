//! Incremental backups of a VM against the embedded simulator: the first run reads the disks
//! whole over NBD (TLS pinned to the host's certificate) and keeps the snapshot's disks as
//! bases; after the guest writes a little, the second run reads only the changed 64 KiB blocks.
//! Both restore points are full ones.
//!
//! ```sh
//! cargo run -p xapi-backup --example incremental
//! ```

use xapi_backup::incremental::{IncrementalOptions, IncrementalReport, backup_vm_incremental};
use xapi_backup::repo::{CreateOptions, Repository, Target};
use xapi_core::client::{Client, Password, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

fn print(run: &str, report: &IncrementalReport) {
    println!(
        "{run}: restore point {}, {} bytes read over NBD, {} bytes in changed blocks",
        report.manifest.id, report.nbd_bytes_read, report.changed_bytes
    );
    for disk in &report.disks {
        let how = match &disk.mode {
            xapi_backup::incremental::DiskMode::Incremental => "changed blocks".to_owned(),
            xapi_backup::incremental::DiskMode::Full { reason } => format!("whole ({reason})"),
        };
        println!(
            "  disk {} ({} bytes): {how}; {} chunks rebuilt, {} reused, {} read whole",
            disk.vdi_uuid, disk.size, disk.chunks_rebuilt, disk.chunks_reused, disk.chunks_read
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await?;
    let fingerprint = sim.fingerprint().ok_or("the simulator runs TLS")?.parse()?;
    let session = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(fingerprint))
        .build()?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "incremental example",
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await?;
    let vms = session.vm().get_all_records().await?;
    let (vm, _) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "mail" && !vm.is_a_snapshot)
        .ok_or("the demo has a VM called mail")?;
    let options = IncrementalOptions::default();

    let first = backup_vm_incremental(&session, &repo, vm, &options).await?;
    print("first run", &first);

    // the guest writes 100 KiB somewhere in its first disk
    let vbd = session
        .vbd()
        .get_record(&session.vm().get_vbds(vm).await?[0])
        .await?;
    let disk = session.vdi().get_uuid(&vbd.vdi).await?;
    sim.write_disk("primary", &disk, 3 << 20, &vec![0x5a; 100 << 10])?;

    let second = backup_vm_incremental(&session, &repo, vm, &options).await?;
    print("second run", &second);
    assert!(second.nbd_bytes_read < first.nbd_bytes_read);
    Ok(())
}
