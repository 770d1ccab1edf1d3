//! `xapi-bench-repo`: the backup repository's throughput on a local directory and on an S3
//! server on loopback (SeaweedFS), through the repository's own API.
//!
//! `xapi-bench-repo DIR [--mib N] [--writers 1,8] [--no-local] [--no-s3]`
//!
//! For each target (a local directory under `DIR`, then a `weed mini` started on loopback with
//! its data under `DIR`; the binary is `$WEED` or `weed` on the `PATH`), each configuration
//! (compression off, zstd level 3, zstd level 3 with encryption by key file) and each number of
//! concurrent writers W: a fresh repository; W restore points written at once, as a backup job
//! of W VMs does (`Repository::begin`, `StreamWriter::write_chunk`, `commit`), each with one
//! stream of N/W MiB of incompressible data, every chunk distinct (each stream keeps the
//! writer's own 8 chunks in flight); then every stream read back at once as a restore reads it
//! (`Repository::stream_chunks`, every chunk checked by the repository and compared with the
//! bytes written). Between the two, the same restore points are written again: every chunk
//! found by name and reused, as a second full backup of an unchanged disk (`rewrite`). Prints one JSON line per measurement, then summary lines
//! (`s3_write_mib_s: X`, `s3_read_mib_s: X`, `s3_objects_per_gib: X`, `local_…`, with
//! `_zstd` / `_encrypted` and `_wW` suffixes for the other runs), then the cost of single
//! requests on S3 (HEAD, a 1 KiB PUT, a 1 MiB PUT, one after the other).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use xapi_backup::repo::{
    CompressionConfig, CreateOptions, Manifest, Repository, RestorePointInfo, RestorePointKind,
    SeaweedFs, Secret, StreamSpec, Target,
};

const USAGE: &str = "usage: xapi-bench-repo DIR [--mib N] [--writers 1,8] [--no-local] [--no-s3]";

const MIB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(message) = runtime.block_on(bench(&args)) {
        eprintln!("xapi-bench-repo: {message}");
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

/// One repository configuration measured.
#[derive(Clone, Copy)]
struct Setting {
    /// Its suffix in the summary lines (empty for the plain one).
    name: &'static str,
    compression: CompressionConfig,
    encrypted: bool,
}

const SETTINGS: [Setting; 3] = [
    Setting {
        name: "",
        compression: CompressionConfig::None,
        encrypted: false,
    },
    Setting {
        name: "zstd",
        compression: CompressionConfig::Zstd { level: 3 },
        encrypted: false,
    },
    Setting {
        name: "encrypted",
        compression: CompressionConfig::Zstd { level: 3 },
        encrypted: true,
    },
];

/// Where the repositories go.
enum Place {
    Local(PathBuf),
    S3(SeaweedFs),
}

impl Place {
    fn label(&self) -> &'static str {
        match self {
            Place::Local(_) => "local",
            Place::S3(_) => "s3",
        }
    }

    /// A target for a new repository `name`.
    fn target(&self, name: &str) -> Result<Target, String> {
        match self {
            Place::Local(dir) => {
                let dir = dir.join(name);
                let _ = std::fs::remove_dir_all(&dir);
                Ok(Target::LocalDir(dir))
            }
            Place::S3(server) => server
                .s3_target(name)
                .into_target()
                .map_err(|e| e.to_string()),
        }
    }

    /// Frees the space of repository `name` (a local directory; on S3 the server's data goes
    /// when it stops).
    fn remove(&self, name: &str) {
        if let Place::Local(dir) = self {
            let _ = std::fs::remove_dir_all(dir.join(name));
        }
    }
}

/// Incompressible bytes: one pseudo-random MiB that every chunk starts from.
fn random_mib(seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIB);
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < MIB {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out
}

/// Chunk `n` (numbered across every writer of a run): the random MiB with `n` in its first
/// eight bytes, so that every chunk is distinct and none compresses.
fn chunk(base: &[u8], n: u64) -> Bytes {
    let mut data = base.to_vec();
    data[..8].copy_from_slice(&n.to_le_bytes());
    Bytes::from(data)
}

/// User plus system CPU seconds of this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        });
    // USER_HZ is 100 on Linux.
    ticks.map_or(0.0, |t| t as f64 / 100.0)
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One run's figures.
struct Figures {
    write_mib_s: f64,
    rewrite_mib_s: f64,
    read_mib_s: f64,
    objects_per_gib: f64,
}

/// Writes `writers` restore points at once, `per_writer` MiB each, into a fresh repository at
/// `target`, writes them again (every chunk reused), reads them back at once and checks every
/// byte.
async fn measure(
    target: &Target,
    setting: Setting,
    key_dir: &Path,
    writers: u64,
    per_writer: u64,
) -> Result<Figures, String> {
    let encryption = if setting.encrypted {
        let path = key_dir.join("bench.key");
        let _ = std::fs::remove_file(&path);
        Some(Secret::generate_key_file(&path).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let repo = Repository::create(
        target,
        CreateOptions {
            compression: setting.compression,
            encryption,
            ..CreateOptions::default()
        },
    )
    .await
    .map_err(|e| format!("creating the repository: {e}"))?;
    let base = Arc::new(random_mib(0x5eed));
    let total = writers * per_writer;

    let (manifests, write_seconds) = write_all(&repo, &base, writers, per_writer).await?;
    let objects: Vec<_> = repo
        .store()
        .list("")
        .try_collect()
        .await
        .map_err(|e| format!("listing: {e}"))?;
    let stored: u64 = objects.iter().map(|o| o.size).sum();
    // The same data again: every chunk found by its name and reused, as a second full backup of
    // an unchanged disk.
    let (_, rewrite_seconds) = write_all(&repo, &base, writers, per_writer).await?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, manifest) in (0..writers).zip(manifests) {
        let repo = repo.clone();
        let base = Arc::clone(&base);
        tasks.push(tokio::spawn(async move {
            let key = format!("disk-{w}");
            let mut chunks = repo
                .stream_chunks(&manifest, &key)
                .await
                .map_err(|e| e.to_string())?;
            let mut n = 0;
            while let Some(piece) = chunks.next().await {
                let piece = piece.map_err(|e| format!("read: {e}"))?;
                if piece != chunk(&base, w * per_writer + n) {
                    return Err(format!("{key}: chunk {n} read back differs"));
                }
                n += 1;
            }
            if n == per_writer {
                Ok(())
            } else {
                Err(format!("{key}: {n} chunks read back, {per_writer} written"))
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let read_seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"stored_bytes\":{stored},\"objects\":{},\"write_seconds\":{write_seconds:.3},\"rewrite_seconds\":{rewrite_seconds:.3},\"read_seconds\":{read_seconds:.3}}}",
        objects.len()
    );
    let mib = total as f64;
    Ok(Figures {
        write_mib_s: mib / write_seconds,
        rewrite_mib_s: mib / rewrite_seconds,
        read_mib_s: mib / read_seconds,
        objects_per_gib: objects.len() as f64 * 1024.0 / mib,
    })
}

/// Writes `writers` restore points at once, `per_writer` MiB each (chunk numbers continue
/// from one writer to the next); returns their manifests and the wall time.
async fn write_all(
    repo: &Repository,
    base: &Arc<Vec<u8>>,
    writers: u64,
    per_writer: u64,
) -> Result<(Vec<Manifest>, f64), String> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let repo = repo.clone();
        let base = Arc::clone(base);
        tasks.push(tokio::spawn(async move {
            let subject = format!("disk-{w}");
            let mut point = repo
                .begin(RestorePointInfo::new(RestorePointKind::Disk, &subject))
                .await?;
            let mut stream = point
                .stream(StreamSpec::disk(&subject, per_writer * MIB as u64))
                .await?;
            for n in 0..per_writer {
                stream
                    .write_chunk(n, chunk(&base, w * per_writer + n))
                    .await?;
            }
            stream.finish().await?;
            point.commit().await
        }));
    }
    let mut manifests = Vec::new();
    for task in tasks {
        manifests.push(
            task.await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("write: {e}"))?,
        );
    }
    Ok((manifests, started.elapsed().as_secs_f64()))
}

/// Seconds per request of `count` requests made one after the other.
async fn per_request<F, Fut>(count: u32, mut request: F) -> Result<f64, String>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    for i in 0..count {
        request(i).await?;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(count))
}

/// The cost of single requests on the S3 target, one at a time: HEAD of an existing object, a
/// 1 KiB PUT, a 1 MiB PUT (the repository's chunk size).
async fn request_costs(server: &SeaweedFs) -> Result<Vec<(String, f64)>, String> {
    let target = server
        .s3_target("requests")
        .into_target()
        .map_err(|e| e.to_string())?;
    let store = xapi_backup::repo::Store::open(&target).map_err(|e| e.to_string())?;
    let small = Bytes::from(vec![7u8; 1024]);
    let large = Bytes::from(random_mib(0x1e55));
    store
        .put("small/warm", small.clone())
        .await
        .map_err(|e| e.to_string())?;
    let head = per_request(256, |_| {
        let store = store.clone();
        async move {
            store
                .head("small/warm")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    let put_small = per_request(256, |i| {
        let (store, body) = (store.clone(), small.clone());
        async move {
            store
                .put(&format!("small/{i}"), body)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    let put_large = per_request(64, |i| {
        let (store, body) = (store.clone(), large.clone());
        async move {
            store
                .put(&format!("large/{i}"), body)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    Ok(vec![
        ("s3_head_ms".to_owned(), head * 1e3),
        ("s3_put_1kib_ms".to_owned(), put_small * 1e3),
        ("s3_put_1mib_ms".to_owned(), put_large * 1e3),
    ])
}

async fn bench(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(args.first().filter(|a| !a.starts_with("--")).ok_or(USAGE)?);
    let mib: u64 = flag(args, "--mib")
        .unwrap_or("1024")
        .parse()
        .map_err(|_| USAGE.to_owned())?;
    let writer_counts: Vec<u64> = flag(args, "--writers")
        .unwrap_or("1,8")
        .split(',')
        .map(|w| w.parse().map_err(|_| USAGE.to_owned()))
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "{{\"name\":\"start\",\"mib\":{mib},\"loadavg\":\"{}\"}}",
        load_average()
    );

    let mut places = Vec::new();
    if !args.iter().any(|a| a == "--no-local") {
        places.push(Place::Local(dir.join("local")));
    }
    if !args.iter().any(|a| a == "--no-s3") {
        let server =
            SeaweedFs::start(&SeaweedFs::binary(), &dir.join("weed")).map_err(|e| e.to_string())?;
        server
            .ready(Duration::from_secs(60))
            .await
            .map_err(|e| format!("SeaweedFS never became ready: {e}"))?;
        places.push(Place::S3(server));
    }

    let mut summary = Vec::new();
    for place in &places {
        for setting in SETTINGS {
            for &writers in &writer_counts {
                let writers = writers.clamp(1, mib.max(1));
                let name = format!(
                    "{}{}{}",
                    place.label(),
                    if setting.name.is_empty() {
                        String::new()
                    } else {
                        format!("_{}", setting.name)
                    },
                    if writers == 1 {
                        String::new()
                    } else {
                        format!("_w{writers}")
                    }
                );
                let target = place.target(&name)?;
                let cpu = cpu_seconds();
                let figures = measure(&target, setting, &dir, writers, mib / writers)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                place.remove(&name);
                println!(
                    "{{\"name\":\"{name}\",\"writers\":{writers},\"write_mib_s\":{:.1},\"read_mib_s\":{:.1},\"objects_per_gib\":{:.1},\"cpu_seconds\":{:.2},\"loadavg\":\"{}\"}}",
                    figures.write_mib_s,
                    figures.read_mib_s,
                    figures.objects_per_gib,
                    cpu_seconds() - cpu,
                    load_average()
                );
                let (label, rest) = name.split_once('_').unwrap_or((&name, ""));
                let suffix = if rest.is_empty() {
                    String::new()
                } else {
                    format!("_{rest}")
                };
                summary.push((format!("{label}_write_mib_s{suffix}"), figures.write_mib_s));
                summary.push((
                    format!("{label}_rewrite_mib_s{suffix}"),
                    figures.rewrite_mib_s,
                ));
                summary.push((format!("{label}_read_mib_s{suffix}"), figures.read_mib_s));
                summary.push((
                    format!("{label}_objects_per_gib{suffix}"),
                    figures.objects_per_gib,
                ));
            }
        }
        if let Place::S3(server) = place {
            summary.extend(request_costs(server).await?);
        }
    }
    for (name, value) in summary {
        println!("{name}: {value:.1}");
    }
    println!("loadavg: {}", load_average());
    drop(places);
    let _ = std::fs::remove_dir_all(dir.join("weed"));
    let _ = std::fs::remove_file(dir.join("bench.key"));
    Ok(())
}
