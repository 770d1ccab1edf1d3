//! Benchmark of incremental runs against the embedded simulator: a disk of incompressible data
//! (16 GiB by default), backed up in full over NBD (TLS), then incrementally after 1 % of it
//! changed in 1 MiB-aligned runs, then after 1 % of its 64 KiB blocks changed at random (each
//! touched 1 MiB chunk is rebuilt). Prints time and NBD bytes of each run against the full one.
//!
//! ```sh
//! cargo run --release -p xapi-backup --example incremental_bench            # 16 GiB
//! XAPI_BENCH_DISK_GIB=2 cargo run --release -p xapi-backup --example incremental_bench
//! ```
//! Needs about twice the disk size free in the temporary directory (the disk image and the
//! repository). `cargo xtask soak --incremental` runs it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use xapi_backup::incremental::{IncrementalOptions, IncrementalReport, backup_vm_incremental};
use xapi_backup::repo::{CreateOptions, Repository, Target};
use xapi_core::client::{Client, Password, TlsPolicy};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 64 << 10;

/// SplitMix64: fast, seeded, incompressible output.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            let value = self.next().to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
    }

    /// `count` distinct numbers below `below`.
    fn distinct(&mut self, count: u64, below: u64) -> BTreeSet<u64> {
        let mut set = BTreeSet::new();
        while (set.len() as u64) < count {
            set.insert(self.next() % below);
        }
        set
    }
}

fn line(
    name: &str,
    report: &IncrementalReport,
    took: Duration,
    full: Option<(Duration, u64, f64)>,
) {
    let rebuilt: u64 = report.disks.iter().map(|d| d.chunks_rebuilt).sum();
    let reused: u64 = report.disks.iter().map(|d| d.chunks_reused).sum();
    print!(
        "{name}: {:.2} s (snapshot {:.2} s, transfer {:.2} s), NBD read {:.1} MiB, changed {:.1} MiB, chunks rebuilt {rebuilt}, reused {reused}",
        took.as_secs_f64(),
        report.snapshot_seconds,
        report.transfer_seconds,
        report.nbd_bytes_read as f64 / MIB as f64,
        report.changed_bytes as f64 / MIB as f64,
    );
    if let Some((full_time, full_bytes, full_transfer)) = full {
        print!(
            "; time {:.2} % of full (transfer {:.2} % of full's), NBD bytes {:.2} % of full, {:.3}x the changed bytes",
            100.0 * took.as_secs_f64() / full_time.as_secs_f64(),
            100.0 * report.transfer_seconds / full_transfer,
            100.0 * report.nbd_bytes_read as f64 / full_bytes as f64,
            report.nbd_bytes_read as f64 / report.changed_bytes.max(1) as f64,
        );
    }
    println!();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gib: u64 = std::env::var("XAPI_BENCH_DISK_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let size = gib << 30;
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await?;
    let fingerprint = sim.fingerprint().ok_or("the simulator runs TLS")?.parse()?;
    let session = Client::builder(sim.url())
        .tls(TlsPolicy::Pinned(fingerprint))
        .build()?
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "bench")
        .await?;
    let dir = tempfile::tempdir()?;
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await?;
    let vms = session.vm().get_all_records().await?;
    let (vm, record) = vms
        .iter()
        .find(|(_, vm)| &*vm.name_label == "mail" && !vm.is_a_snapshot)
        .ok_or("the demo has a VM called mail")?;
    // the VM's second disk grown to the benchmark's size and filled with random bytes
    let vbd = session.vbd().get_record(&record.vbds[1]).await?;
    session.vdi().resize(&vbd.vdi, i64::try_from(size)?).await?;
    let disk = session.vdi().get_uuid(&vbd.vdi).await?;
    let mut rng = Rng(42);
    let started = Instant::now();
    let mut buf = vec![0_u8; 64 * MIB as usize];
    let mut at = 0;
    while at < size {
        let len = (size - at).min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..len]);
        sim.write_disk("primary", &disk, at, &buf[..len])?;
        at += len as u64;
    }
    println!(
        "disk: {gib} GiB of incompressible data written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // a snapshot's cost is in every run below, shown here to be told apart (the simulator
    // snapshots copy-on-write, as a real SR does; the first write afterwards pays for the copy)
    let started = Instant::now();
    let copy = session
        .vdi()
        .snapshot(&vbd.vdi, &xapi_core::wire::SmallMap::default())
        .await?;
    session.vdi().destroy(&copy).await?;
    println!(
        "simulator: one snapshot of the disk costs {:.2} s (copy-on-write, as on a real SR)",
        started.elapsed().as_secs_f64()
    );
    let options = IncrementalOptions::default();

    let started = Instant::now();
    let full = backup_vm_incremental(&session, &repo, vm, &options).await?;
    let full_time = started.elapsed();
    line("full run", &full, full_time, None);
    let full = Some((full_time, full.nbd_bytes_read, full.transfer_seconds));

    // 1 % in 1 MiB-aligned runs of 1 MiB
    let runs = size / MIB / 100;
    let mut data = vec![0_u8; MIB as usize];
    for chunk in rng.distinct(runs, size / MIB) {
        rng.fill(&mut data);
        sim.write_disk("primary", &disk, chunk * MIB, &data)?;
    }
    let started = Instant::now();
    let aligned = backup_vm_incremental(&session, &repo, vm, &options).await?;
    line(
        "1 % in 1 MiB-aligned runs",
        &aligned,
        started.elapsed(),
        full,
    );

    // 1 % of the 64 KiB blocks, at random
    let blocks = size / BLOCK / 100;
    let mut data = vec![0_u8; BLOCK as usize];
    for block in rng.distinct(blocks, size / BLOCK) {
        rng.fill(&mut data);
        sim.write_disk("primary", &disk, block * BLOCK, &data)?;
    }
    let started = Instant::now();
    let scattered = backup_vm_incremental(&session, &repo, vm, &options).await?;
    line(
        "1 % random 64 KiB blocks",
        &scattered,
        started.elapsed(),
        full,
    );
    Ok(())
}
