//! `xapi-bench-backup`: a VM backup from xapi-sim into a local repository, side by side with
//! `curl -o` of the same export URL, and the backup process that the crash campaign kills.
//!
//! - `xapi-bench-backup bench DIR [--disk-gib N] [--data-mib N] [--repeat N] [--only NAME]`
//!   starts the demo pool in this process, gives `test-vm` a disk of N GiB with M MiB of data
//!   spread over it (the rest sparse), and prints one JSON line per measurement: `curl_export`
//!   (`curl -o` of `/export` of a snapshot of the VM), `curl_export_durable` (the same, then
//!   fsync of the file and its directory), then `backup_none`, `backup_zstd` and
//!   `backup_encrypted` (a child `xapi-bench-backup backup` process each, so that its peak RSS is
//!   its own; `--only backup_none` runs that one alone). Both sides are timed the same way: the
//!   wall clock around a child process, one run of each measurement per round (interleaved),
//!   the median over the rounds; each child's seconds per phase (snapshot, export, manifest,
//!   snapshot removal) go to stderr. Then `dedup_demo`: every VM of the demo pool
//!   backed up into a fresh repository.
//! - `xapi-bench-backup backup --url URL --vm UUID --repo DIR [--key-file F]` backs one VM up
//!   into an existing repository and prints `{"bytes_read":N,"peak_rss_bytes":N}`.
//! - `xapi-bench-backup crash DIR [--points N] [--data-mib N] [--seed N]`, the crash campaign of
//!   `cargo xtask soak`: the demo pool runs in this process (so its state outlives the killed
//!   backups), a child `backup` is killed with SIGKILL at N random moments; then the repository
//!   must list only complete restore points that verify, prune (on a clock moved past its grace
//!   period) must remove every orphan and every staged file the killed runs left,
//!   `remove_leftover_snapshots` must sweep the snapshots they left, and a last backup must
//!   complete. Prints one JSON line of figures and fails if any of this does not hold.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use xapi_backup::export::backup_vm;
use xapi_backup::repo::{
    CompressionConfig, CreateOptions, OpenOptions, Repository, Secret, Target,
};
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, Simulator};

const USAGE: &str = "usage: xapi-bench-backup bench DIR [--disk-gib N] [--data-mib N] [--repeat N] [--only NAME]\n       xapi-bench-backup backup --url URL --vm UUID --repo DIR [--key-file FILE]\n       xapi-bench-backup crash DIR [--points N] [--data-mib N] [--seed N]";

const MIB: u64 = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // a profile of the whole machine tells the backup's threads from the simulator's
        .thread_name(match args.first().map(String::as_str) {
            Some("backup") => "backup",
            _ => "bench",
        })
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match args.first().map(String::as_str) {
        Some("bench") => runtime.block_on(bench(&args[1..])),
        Some("backup") => runtime.block_on(backup(&args[1..])),
        Some("crash") => runtime.block_on(crash(&args[1..])),
        _ => Err(USAGE.to_owned()),
    };
    if let Err(message) = result {
        eprintln!("xapi-bench-backup: {message}");
        std::process::exit(1);
    }
}

/// The value of `--name` in `args`, if present.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    flag(args, name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("{name}: not a number: {v}"))
    })
}

async fn login(url: &str) -> Result<SessionHandle, String> {
    Client::builder(url)
        .build()
        .map_err(|e| e.to_string())?
        .login_with_password(
            "root",
            Password::new(DEFAULT_PASSWORD),
            "1.0",
            "xapi-bench-backup",
        )
        .await
        .map_err(|e| format!("login: {e}"))
}

/// The peak resident set of this process (`VmHWM`), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The child: back one VM up into an existing repository.
async fn backup(args: &[String]) -> Result<(), String> {
    let url = flag(args, "--url").ok_or(USAGE)?;
    let vm_uuid = flag(args, "--vm").ok_or(USAGE)?;
    let repo_dir = flag(args, "--repo").ok_or(USAGE)?;
    let secret = flag(args, "--key-file")
        .map(|f| Secret::key_file(Path::new(f)))
        .transpose()
        .map_err(|e| e.to_string())?;
    let repo = Repository::open(
        &Target::LocalDir(PathBuf::from(repo_dir)),
        OpenOptions {
            secret,
            ..OpenOptions::default()
        },
    )
    .await
    .map_err(|e| format!("opening the repository: {e}"))?;
    let session = login(url).await?;
    let vm = session
        .vm()
        .get_by_uuid(vm_uuid)
        .await
        .map_err(|e| format!("VM.get_by_uuid: {e}"))?;
    let done = backup_vm(&session, &repo, &vm, Some("bench"))
        .await
        .map_err(|e| format!("backup: {e}"))?;
    let times = done.times;
    println!(
        "{{\"bytes_read\":{},\"peak_rss_bytes\":{},\"snapshot_s\":{:.3},\"export_s\":{:.3},\"commit_s\":{:.3},\"cleanup_s\":{:.3}}}",
        done.bytes_read,
        peak_rss_bytes().unwrap_or(0),
        times.snapshot,
        times.export,
        times.commit,
        times.cleanup
    );
    Ok(())
}

/// One MiB of benchmark data: a pseudo-random half and a half of repeated text, so that zstd
/// has something to do (about 2:1), as on a real disk.
fn data_mib(index: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIB as usize);
    let mut state = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < (MIB / 2) as usize {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    let line = format!("xapi-rs benchmark data, MiB {index}\n");
    while out.len() < MIB as usize {
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(MIB as usize);
    out
}

/// Resize the disk of `vm_name` to `disk_gib` GiB and write `data_len_mib` MiB spread evenly over it.
async fn prepare_vm(
    sim: &xapi_sim::SimHandle,
    session: &SessionHandle,
    vm_name: &str,
    disk_gib: u64,
    data_len_mib: u64,
) -> Result<String, String> {
    use std::os::unix::fs::FileExt as _;
    let vms = session
        .vm()
        .get_by_name_label(vm_name)
        .await
        .map_err(|e| e.to_string())?;
    let vm = vms.first().ok_or(format!("no VM {vm_name}"))?;
    let record = session
        .vm()
        .get_record(vm)
        .await
        .map_err(|e| e.to_string())?;
    let vbd = record.vbds.first().ok_or("the VM has no disk")?;
    let vdi = session
        .vbd()
        .get_vdi(vbd)
        .await
        .map_err(|e| e.to_string())?;
    let size = disk_gib << 30;
    session
        .vdi()
        .resize(&vdi, i64::try_from(size).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| format!("VDI.resize: {e}"))?;
    let uuid = session
        .vdi()
        .get_uuid(&vdi)
        .await
        .map_err(|e| e.to_string())?;
    let image = sim
        .disk_image("primary", &uuid)
        .ok_or("no image for the disk")?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .map_err(|e| format!("{}: {e}", image.display()))?;
    let chunks = size / MIB;
    let stride = (chunks / data_len_mib.max(1)).max(1);
    for i in 0..data_len_mib.min(chunks) {
        file.write_at(&data_mib(i), i * stride * MIB)
            .map_err(|e| format!("{}: {e}", image.display()))?;
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok((*record.uuid).to_owned())
}

/// The unsigned integer after `"key":` in a one-line JSON object.
fn json_number(text: &str, key: &str) -> Option<u64> {
    let rest = text.split(&format!("\"{key}\":")).nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Seconds taken by `curl -o out url`; with `durable`, also by making the file and its
/// directory entry durable (fsync of both), as the backup makes every chunk and its directory
/// durable before it writes a manifest.
async fn curl_export(out: &Path, url: &str, durable: bool) -> Result<f64, String> {
    let start = Instant::now();
    let status = tokio::process::Command::new("curl")
        .args(["-s", "-f", "-o"])
        .arg(out)
        .arg(url)
        .status()
        .await
        .map_err(|e| format!("curl: {e}"))?;
    if !status.success() {
        return Err(format!("curl failed: {status}"));
    }
    if durable {
        let sync = |path: &Path| {
            std::fs::File::open(path)
                .and_then(|file| file.sync_all())
                .map_err(|e| format!("fsync {}: {e}", path.display()))
        };
        sync(out)?;
        sync(out.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// CPU seconds (user + system) used so far by this process (the simulator) and by its
/// children that have been waited for (curl, the backups), from `/proc/self/stat`; zeros
/// where that file is unreadable.
fn cpu_seconds() -> (f64, f64) {
    /// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
    const TICKS: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name, which may hold spaces: field 3 (state) is first
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0);
    (
        (field(14) + field(15)) / TICKS,
        (field(16) + field(17)) / TICKS,
    )
}

/// Runs `work`, then prints to stderr its seconds and the CPU seconds it took in this process
/// (the simulator serving it) and in children (curl, a backup); returns its result.
async fn timed_cpu<T>(
    name: &str,
    work: impl std::future::Future<Output = Result<(f64, T), String>>,
) -> Result<(f64, T), String> {
    let (own, children) = cpu_seconds();
    let (seconds, value) = work.await?;
    let (own_after, children_after) = cpu_seconds();
    eprintln!(
        "{name} run: {seconds:.3} s; CPU s: client {:.2}, simulator {:.2}",
        children_after - children,
        own_after - own
    );
    Ok((seconds, value))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A new repository in `dir` with this compression and (optionally) a key file.
async fn new_repo(
    dir: &Path,
    compression: CompressionConfig,
    key_file: Option<&Path>,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let encryption = match key_file {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            Some(Secret::generate_key_file(path).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Repository::create(
        &Target::LocalDir(dir.to_owned()),
        CreateOptions {
            compression,
            encryption,
            ..CreateOptions::default()
        },
    )
    .await
    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(())
}

/// Bytes available to this user on the file system holding `dir` (from `df`).
async fn free_bytes(dir: &Path) -> Result<u64, String> {
    let output = tokio::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .await
        .map_err(|e| format!("df: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("df {}: no free space figure", dir.display()))
}

/// `per_file` summed over every file under `dir`, recursively.
fn sum_over_files(dir: &Path, per_file: &dyn Fn(&std::fs::DirEntry) -> u64) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => sum_over_files(&e.path(), per_file),
                _ => per_file(&e),
            })
            .sum()
    })
}

/// Total size of the files under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    sum_over_files(dir, &|e| e.metadata().map_or(0, |m| m.len()))
}

async fn bench(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(args.first().ok_or(USAGE)?);
    let disk_gib = number(args, "--disk-gib", 4)?;
    let data = number(args, "--data-mib", 1024)?;
    let repeat = number(args, "--repeat", 3)?.max(1);
    let only = flag(args, "--only");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sim = Simulator::start(SimConfig {
        state_dir: Some(dir.join("sim")),
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .map_err(|e| format!("starting xapi-sim: {e}"))?;
    let url = sim.url().to_owned();
    let session = login(&url).await?;
    let vm_uuid = prepare_vm(&sim, &session, "test-vm", disk_gib, data).await?;
    // The disk image was just written: let its write-back finish before anything is timed,
    // or the first runs (curl's) pay for it.
    let synced = tokio::process::Command::new("sync")
        .status()
        .await
        .map_err(|e| format!("sync: {e}"))?;
    if !synced.success() {
        return Err(format!("sync failed: {synced}"));
    }
    let vm = session
        .vm()
        .get_by_uuid(&vm_uuid)
        .await
        .map_err(|e| e.to_string())?;

    // curl -o of /export of a snapshot, as the backup exports one
    let snapshot = session
        .vm()
        .snapshot(&vm, "bench export", &[])
        .await
        .map_err(|e| format!("VM.snapshot: {e}"))?;
    let export_url = format!(
        "{url}/export?session_id={}&ref={}",
        session.reference().as_str(),
        snapshot.as_str()
    );
    let out = dir.join("export.xva");
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let backups: Vec<Backup> = [
        ("backup_none", CompressionConfig::None, false),
        ("backup_zstd", CompressionConfig::Zstd { level: 3 }, false),
        (
            "backup_encrypted",
            CompressionConfig::Zstd { level: 3 },
            true,
        ),
    ]
    .into_iter()
    .filter(|(name, _, _)| only.is_none_or(|only| only == *name))
    .map(|(name, compression, encrypted)| Backup {
        name,
        compression,
        repo: dir.join(name),
        key: encrypted.then(|| dir.join(format!("{name}.key"))),
    })
    .collect();
    for backup in &backups {
        // left by an earlier run of the benchmark
        let _ = std::fs::remove_dir_all(&backup.repo);
    }
    // Every round's repositories are kept until the end (see `Backup::run_once`).
    let needed = repeat * data * MIB * backups.len() as u64;
    let free = free_bytes(&dir).await?;
    if free < needed + data * MIB {
        return Err(format!(
            "{}: {} MiB free; {repeat} rounds need about {} MiB (the repositories of every round are kept until the end)",
            dir.display(),
            free / MIB,
            (needed + data * MIB) / MIB
        ));
    }
    // One run of everything per round, so that a machine whose speed drifts between rounds
    // slows both sides of a ratio alike.
    let mut curl_times = [Vec::new(), Vec::new()];
    let mut backup_times = vec![Vec::new(); backups.len()];
    let mut peak_rss = vec![0; backups.len()];
    let mut export_bytes = 0;
    for round in 0..repeat {
        for (durable, times) in [false, true].into_iter().zip(&mut curl_times) {
            let name = if durable {
                "curl_export_durable"
            } else {
                "curl_export"
            };
            let (seconds, ()) = timed_cpu(name, async {
                Ok((curl_export(&out, &export_url, durable).await?, ()))
            })
            .await?;
            times.push(seconds);
            export_bytes = std::fs::metadata(&out).map_or(0, |m| m.len());
            let _ = std::fs::remove_file(&out);
        }
        for (index, backup) in backups.iter().enumerate() {
            let (seconds, rss) =
                timed_cpu(backup.name, backup.run_once(&me, &url, &vm_uuid, round)).await?;
            backup_times[index].push(seconds);
            peak_rss[index] = peak_rss[index].max(rss);
        }
    }
    for (name, times) in ["curl_export", "curl_export_durable"]
        .into_iter()
        .zip(curl_times)
    {
        println!(
            "{{\"name\":\"{name}\",\"seconds\":{},\"bytes\":{export_bytes},\"disk_gib\":{disk_gib},\"data_mib\":{data}}}",
            median(times)
        );
    }
    for ((backup, times), rss) in backups.iter().zip(backup_times).zip(peak_rss) {
        println!(
            "{{\"name\":\"{}\",\"seconds\":{},\"bytes\":{export_bytes},\"peak_rss_bytes\":{rss},\"stored_bytes\":{}}}",
            backup.name,
            median(times),
            tree_bytes(&backup.repo.join("0"))
        );
        let _ = std::fs::remove_dir_all(&backup.repo);
    }
    session
        .vm()
        .destroy(&snapshot)
        .await
        .map_err(|e| format!("VM.destroy: {e}"))?;
    dedup_demo(&session, &dir).await
}

/// One backup configuration of `bench`.
struct Backup {
    name: &'static str,
    compression: CompressionConfig,
    repo: PathBuf,
    key: Option<PathBuf>,
}

impl Backup {
    /// One backup of `vm_uuid` into a fresh repository (this round's) by a child process: its
    /// wall-clock seconds and peak RSS.
    ///
    /// Every round gets its own repository, and all are removed only when the rounds are over:
    /// on an ext4 without a journal (as here), creating a file skips every inode freed in the
    /// last 30 seconds (`recently_deleted`), so removing the last round's 1,024 chunks just
    /// before a run made that run's file creations a quarter of its CPU time, which no backup
    /// after a quiet period pays.
    async fn run_once(
        &self,
        me: &Path,
        url: &str,
        vm_uuid: &str,
        round: u64,
    ) -> Result<(f64, u64), String> {
        let repo = self.repo.join(round.to_string());
        new_repo(&repo, self.compression, self.key.as_deref()).await?;
        let mut command = tokio::process::Command::new(me);
        command
            .args(["backup", "--url", url, "--vm", vm_uuid, "--repo"])
            .arg(&repo)
            .stdout(Stdio::piped());
        if let Some(key) = &self.key {
            command.arg("--key-file").arg(key);
        }
        let start = Instant::now();
        let output = command.output().await.map_err(|e| e.to_string())?;
        let seconds = start.elapsed().as_secs_f64();
        if !output.status.success() {
            return Err(format!("{}: the backup failed", self.name));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        // the child's time per phase, for telling the snapshot from the export
        eprintln!("{} phases: {}", self.name, text.trim());
        Ok((seconds, json_number(&text, "peak_rss_bytes").unwrap_or(0)))
    }
}

/// Every VM of the demo pool but the benchmark one into a fresh repository: logical data
/// (non-zero chunks read) against bytes stored.
async fn dedup_demo(session: &SessionHandle, dir: &Path) -> Result<(), String> {
    use xapi_backup::jobs::{Selection, run_job};
    let repo_dir = dir.join("dedup");
    new_repo(&repo_dir, CompressionConfig::None, None).await?;
    let repo = Repository::open(&Target::LocalDir(repo_dir.clone()), OpenOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let selection = Selection {
        all: true,
        exclude: vec!["test-vm".to_owned()],
        ..Selection::default()
    };
    let start = Instant::now();
    let report = run_job(session, &repo, &selection, "dedup", 4, |_| {})
        .await
        .map_err(|e| format!("job: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"name\":\"dedup_demo\",\"seconds\":{seconds},\"vms\":{},\"bytes_read\":{},\"new_bytes\":{},\"stored_bytes\":{}}}",
        report.vms.len(),
        report.bytes_read,
        report.new_bytes,
        tree_bytes(&repo_dir)
    );
    let _ = std::fs::remove_dir_all(&repo_dir);
    Ok(())
}

/// How many staged files (`<name>#<digits>`: chunk files not yet named, uploads of indexes
/// in progress) are under `dir`: what killed backups leave until prune removes them.
fn staged_files(dir: &Path) -> u64 {
    sum_over_files(dir, &|e| {
        u64::from(e.file_name().to_string_lossy().contains('#'))
    })
}

/// A child `backup` of `vm_uuid` into `repo`, not yet waited for.
fn spawn_backup(url: &str, vm_uuid: &str, repo: &Path) -> Result<tokio::process::Child, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    tokio::process::Command::new(me)
        .args(["backup", "--url", url, "--vm", vm_uuid, "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawning a backup: {e}"))
}

/// The crash campaign (see the module documentation).
async fn crash(args: &[String]) -> Result<(), String> {
    use xapi_backup::export::remove_leftover_snapshots;
    use xapi_backup::repo::{CheckOptions, ManualClock, PruneOptions, RestorePointKind};
    let dir = PathBuf::from(args.first().ok_or(USAGE)?);
    let points = number(args, "--points", 50)?;
    let data = number(args, "--data-mib", 256)?;
    let mut seed = number(args, "--seed", 0x5eed)? | 1;
    let campaign = Instant::now();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sim = Simulator::start(SimConfig {
        state_dir: Some(dir.join("sim")),
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .map_err(|e| format!("starting xapi-sim: {e}"))?;
    let url = sim.url().to_owned();
    let session = login(&url).await?;
    let vm_uuid = prepare_vm(&sim, &session, "test-vm", 1, data).await?;
    let repo_dir = dir.join("repo");
    new_repo(&repo_dir, CompressionConfig::Zstd { level: 3 }, None).await?;

    // one backup to completion: how long one takes, the span the kills are spread over
    let start = Instant::now();
    let status = spawn_backup(&url, &vm_uuid, &repo_dir)?
        .wait()
        .await
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("the first backup failed".to_owned());
    }
    let span = start.elapsed();
    let mut killed = 0;
    let mut finished_anyway = 0;
    for _ in 0..points {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // anywhere from the start of the process to a little after a typical run's end
        let at = span.mul_f64((seed % 1_000) as f64 / 1_000.0 * 1.1);
        let mut child = spawn_backup(&url, &vm_uuid, &repo_dir)?;
        tokio::select! {
            status = child.wait() => {
                status.map_err(|e| e.to_string())?;
                finished_anyway += 1;
            }
            () = tokio::time::sleep(at) => {
                child.start_kill().map_err(|e| format!("SIGKILL: {e}"))?;
                child.wait().await.map_err(|e| e.to_string())?;
                killed += 1;
            }
        }
    }

    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let repo = Repository::open(
        &Target::LocalDir(repo_dir.clone()),
        OpenOptions {
            clock: clock.clone(),
            ..OpenOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let listed = repo
        .list(RestorePointKind::Vm)
        .await
        .map_err(|e| e.to_string())?;
    let mut verified = 0;
    for manifest in &listed {
        let report = repo
            .verify_restore_point(manifest)
            .await
            .map_err(|e| e.to_string())?;
        if !report.is_ok() {
            return Err(format!(
                "a listed restore point does not verify: {:?}",
                report.problems
            ));
        }
        verified += 1;
    }
    let before = repo
        .check(CheckOptions { read_data: true })
        .await
        .map_err(|e| e.to_string())?;
    if !before.problems.is_empty() {
        return Err(format!("repository check: {:?}", before.problems));
    }
    let staged_before = staged_files(&repo_dir);
    let options = PruneOptions {
        grace: chrono::TimeDelta::hours(1),
        ..PruneOptions::default()
    };
    repo.prune(&options).await.map_err(|e| e.to_string())?;
    clock.advance(chrono::TimeDelta::hours(2));
    let pruned = repo.prune(&options).await.map_err(|e| e.to_string())?;
    let after = repo
        .check(CheckOptions { read_data: true })
        .await
        .map_err(|e| e.to_string())?;
    let staged_after = staged_files(&repo_dir);
    if !after.orphans.is_empty() || !after.problems.is_empty() || staged_after != 0 {
        return Err(format!(
            "after prune: {} orphans, {staged_after} staged files, problems {:?}",
            after.orphans.len(),
            after.problems
        ));
    }
    let swept = remove_leftover_snapshots(&session)
        .await
        .map_err(|e| format!("sweeping snapshots: {e}"))?;
    let left = remove_leftover_snapshots(&session)
        .await
        .map_err(|e| e.to_string())?;
    if left != 0 {
        return Err(format!("{left} snapshots left after the sweep"));
    }
    let status = spawn_backup(&url, &vm_uuid, &repo_dir)?
        .wait()
        .await
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("the backup after the campaign failed".to_owned());
    }
    println!(
        "{{\"name\":\"crash_campaign\",\"points\":{points},\"killed\":{killed},\"finished_before_kill\":{finished_anyway},\"restore_points_listed\":{},\"restore_points_verified\":{verified},\"orphans_before_prune\":{},\"deleted_chunks\":{},\"deleted_indexes\":{},\"staged_files_before_prune\":{staged_before},\"deleted_staged\":{},\"snapshots_swept\":{swept},\"backup_seconds\":{:.3},\"campaign_seconds\":{:.1}}}",
        listed.len(),
        before.orphans.len(),
        pruned.deleted_chunks,
        pruned.deleted_indexes,
        pruned.deleted_staged,
        span.as_secs_f64(),
        campaign.elapsed().as_secs_f64()
    );
    drop(sim);
    Ok(())
}
