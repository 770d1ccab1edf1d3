//! Measures the repository on a local directory: write and read throughput of one disk with
//! compression and encryption on and off, and the objects stored per GiB.
//!
//! `cargo run --release -p xapi-backup --example repo_throughput -- [MiB] [DIR]`
//! (default 1024 MiB under the system's temporary directory); with `--features s3`, DIR may be
//! `http(s)://HOST:PORT/BUCKET` (credentials from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`). `REPO_THROUGHPUT_ONLY="random, plain"` runs one configuration
//! (for a peak-memory figure of that one alone). Besides wall-clock MB/s it prints
//! MB per CPU-second of the whole process (all threads), which stays meaningful on a busy
//! machine. Two kinds of data: random
//! (incompressible) and half random, half repetitive (about 2:1 under zstd). Every chunk is
//! distinct, so nothing is deduplicated; a second write of the same disk shows the dedup path.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use xapi_backup::repo::{
    CompressionConfig, CreateOptions, KdfParams, Repository, RestorePointInfo, RestorePointKind,
    Secret, StreamSpec, SystemClock, Target,
};

const MIB: usize = 1024 * 1024;

/// Chunk `n` of a synthetic disk: distinct per `n`, random or half repetitive.
fn chunk(base: &[u8], n: u64, compressible: bool) -> Bytes {
    let mut data = base.to_vec();
    if compressible {
        for (i, byte) in data[MIB / 2..].iter_mut().enumerate() {
            *byte = b"backup repository "[i % 18];
        }
    }
    data[..8].copy_from_slice(&n.to_le_bytes());
    Bytes::from(data)
}

/// Where the measured repositories go: directories under a local directory, or prefixes in an
/// S3 bucket.
enum Place {
    Local(std::path::PathBuf),
    #[cfg(feature = "s3")]
    S3(xapi_backup::repo::S3Target),
}

impl Place {
    /// The target for the repository `name`, and a local directory to remove afterwards.
    fn target(&self, name: &str) -> (Target, Option<std::path::PathBuf>) {
        match self {
            Place::Local(dir) => {
                let dir = dir.join(name);
                let _ = std::fs::remove_dir_all(&dir);
                (Target::LocalDir(dir.clone()), Some(dir))
            }
            #[cfg(feature = "s3")]
            Place::S3(s3) => {
                let mut s3 = s3.clone();
                s3.prefix = format!("{name}-{}", std::process::id());
                (s3.into_target().expect("an S3 target"), None)
            }
        }
    }
}

async fn run(
    label: &str,
    place: &Place,
    mib: u64,
    compressible: bool,
    compression: CompressionConfig,
    encryption: Option<Secret>,
) -> xapi_backup::Result<()> {
    if let Ok(only) = std::env::var("REPO_THROUGHPUT_ONLY")
        && label != only
    {
        return Ok(());
    }
    let (target, local_dir) = place.target(&label.replace([' ', ','], "-"));
    let repo = Repository::create(
        &target,
        CreateOptions {
            compression,
            encryption,
            // A light KDF: the key is derived once per repository, and Argon2id's 64 MiB would
            // hide the data path's own peak memory.
            kdf: KdfParams {
                memory_kib: 8 * 1024,
                iterations: 1,
                parallelism: 1,
            },
            clock: Arc::new(SystemClock),
        },
    )
    .await?;
    let mut base = vec![0u8; MIB];
    blake3::Hasher::new()
        .update(label.as_bytes())
        .finalize_xof()
        .fill(&mut base);
    let size = mib * MIB as u64;

    let mut write_secs = Vec::new();
    let mut write_cpu = Vec::new();
    let mut manifest = None;
    for _ in 0..2 {
        let started = Instant::now();
        let cpu_started = cpu_seconds();
        let mut point = repo
            .begin(RestorePointInfo::new(RestorePointKind::Disk, "disk-1"))
            .await?;
        let mut writer = point.stream(StreamSpec::disk("disk", size)).await?;
        for n in 0..mib {
            writer.write_chunk(n, chunk(&base, n, compressible)).await?;
        }
        writer.finish().await?;
        manifest = Some(point.commit().await?);
        write_secs.push(started.elapsed().as_secs_f64());
        write_cpu.push(cpu_seconds() - cpu_started);
    }
    let manifest = manifest.expect("two runs");

    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut chunks = repo.stream_chunks(&manifest, "disk").await?;
    let mut read = 0u64;
    while let Some(piece) = chunks.next().await {
        read += piece?.len() as u64;
    }
    assert_eq!(read, size);
    let read_secs = started.elapsed().as_secs_f64();
    let read_cpu = cpu_seconds() - cpu_started;

    let objects: Vec<_> = repo.store().list("").try_collect().await?;
    let stored: u64 = objects.iter().map(|o| o.size).sum();
    let per_gib = objects.len() as f64 * 1024.0 / mib as f64;
    let mb = size as f64 / 1e6;
    println!(
        "{label:<36} write {:>6.0} MB/s ({:>5.0} MB/cpu-s)  rewrite {:>6.0} MB/s ({:>5.0})  \
         read {:>6.0} MB/s ({:>5.0})  {:>5.0} objects/GiB  stored {:>5.1}%",
        mb / write_secs[0],
        mb / write_cpu[0],
        mb / write_secs[1],
        mb / write_cpu[1],
        mb / read_secs,
        mb / read_cpu,
        per_gib,
        stored as f64 * 100.0 / size as f64
    );
    if let Some(dir) = local_dir {
        std::fs::remove_dir_all(dir).ok();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> xapi_backup::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args
        .next()
        .map_or(1024, |a| a.parse().expect("MiB as a number"));
    let place = match args.next() {
        #[cfg(feature = "s3")]
        Some(url) if url.starts_with("http") => {
            // http(s)://host:port/bucket, credentials from AWS_ACCESS_KEY_ID and
            // AWS_SECRET_ACCESS_KEY.
            let (endpoint, bucket) = url.rsplit_once('/').expect("ENDPOINT/BUCKET");
            let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name}"));
            Place::S3(xapi_backup::repo::S3Target {
                endpoint: Some(endpoint.to_owned()),
                bucket: bucket.to_owned(),
                region: "us-east-1".to_owned(),
                access_key_id: env("AWS_ACCESS_KEY_ID"),
                secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
                allow_http: endpoint.starts_with("http://"),
                prefix: String::new(),
            })
        }
        dir => Place::Local(
            dir.map_or_else(std::env::temp_dir, Into::into)
                .join("xapi-repo-throughput"),
        ),
    };
    let passphrase = || Some(Secret::Passphrase("measurement".to_owned()));
    let zstd = CompressionConfig::Zstd { level: 3 };
    match &place {
        Place::Local(dir) => println!("{mib} MiB per disk, local directory {}", dir.display()),
        #[cfg(feature = "s3")]
        Place::S3(s3) => println!("{mib} MiB per disk, S3 {:?}/{}", s3.endpoint, s3.bucket),
    }
    for (compressible, kind) in [(false, "random"), (true, "half repetitive")] {
        run(
            &format!("{kind}, plain"),
            &place,
            mib,
            compressible,
            CompressionConfig::None,
            None,
        )
        .await?;
        run(
            &format!("{kind}, zstd-3"),
            &place,
            mib,
            compressible,
            zstd,
            None,
        )
        .await?;
        run(
            &format!("{kind}, encrypted"),
            &place,
            mib,
            compressible,
            CompressionConfig::None,
            passphrase(),
        )
        .await?;
        run(
            &format!("{kind}, zstd-3 + encrypted"),
            &place,
            mib,
            compressible,
            zstd,
            passphrase(),
        )
        .await?;
    }
    println!("peak RSS {} (Linux VmHWM)", peak_rss());
    Ok(())
}

/// The process's peak resident set, from `/proc/self/status` (Linux).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// User plus system CPU time of the process so far, from `/proc/self/stat` (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        });
    // The kernel's USER_HZ is 100 on Linux.
    ticks.map_or(0.0, |t| t as f64 / 100.0)
}
