//! The cases of the conformance suite, each taking a target factory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use futures::TryStreamExt as _;
use tokio::io::AsyncReadExt as _;
use xapi_backup::Error;
use xapi_backup::repo::{
    CHUNK_SIZE, CheckOptions, ChunkSource, CreateOptions, KdfParams, Manifest, ManualClock,
    OpenOptions, Problem, PruneOptions, RepoError, Repository, RestorePointId, RestorePointInfo,
    RestorePointKind, RetentionPolicy, Secret, StreamRole, StreamSpec, Target, VmIdentity,
    chunk_object,
};

use crate::TargetFactory;
use crate::gate::GatedStore;

const MIB: usize = CHUNK_SIZE as usize;

/// Pseudo-random bytes determined by `seed`.
pub(crate) fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// A disk of whole chunks: `None` is a zero chunk, `Some(seed)` a chunk of noise.
fn disk(chunks: &[Option<&str>]) -> Vec<u8> {
    chunks
        .iter()
        .flat_map(|seed| seed.map_or_else(|| vec![0u8; MIB], |seed| noise(seed, MIB)))
        .collect()
}

fn small_kdf() -> KdfParams {
    KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    }
}

pub(crate) fn clock_now() -> ManualClock {
    ManualClock::new(Utc::now())
}

pub(crate) async fn create(target: &Target, clock: &ManualClock) -> Repository {
    Repository::create(
        target,
        CreateOptions {
            clock: Arc::new(clock.clone()),
            ..CreateOptions::default()
        },
    )
    .await
    .expect("a new repository")
}

pub(crate) fn vm_info(vm: &str) -> RestorePointInfo {
    let mut info = RestorePointInfo::new(RestorePointKind::Vm, vm);
    info.vm = Some(VmIdentity {
        uuid: vm.to_owned(),
        name_label: format!("VM {vm}"),
        ..VmIdentity::default()
    });
    info
}

/// Backs up one VM with one disk keyed `disk`.
pub(crate) async fn backup(repo: &Repository, vm: &str, data: &[u8]) -> Manifest {
    let mut point = repo.begin(vm_info(vm)).await.expect("begin");
    point
        .write_stream(StreamSpec::disk("disk", data.len() as u64), data)
        .await
        .expect("write the disk");
    point.commit().await.expect("commit")
}

pub(crate) async fn read_back(repo: &Repository, manifest: &Manifest, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    repo.read_stream(manifest, key)
        .await
        .expect("open the stream")
        .read_to_end(&mut out)
        .await
        .expect("read the stream");
    out
}

async fn objects(repo: &Repository, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = repo
        .store()
        .list(prefix)
        .map_ok(|info| info.name)
        .try_collect()
        .await
        .expect("list");
    names.sort();
    names
}

pub(crate) fn prune_options(grace: TimeDelta) -> PruneOptions {
    PruneOptions {
        grace,
        ..PruneOptions::default()
    }
}

/// Chunk bytes kept by a test, to upload again chunks that vanished.
struct MemorySource(HashMap<String, Vec<u8>>);

impl ChunkSource for MemorySource {
    async fn read_chunk(&mut self, key: &str, number: u64, len: usize) -> std::io::Result<Bytes> {
        let data = self.0.get(key).ok_or(std::io::ErrorKind::NotFound)?;
        let start = number as usize * MIB;
        Ok(Bytes::copy_from_slice(&data[start..start + len]))
    }
}

pub(crate) async fn write_list_and_read_back_a_vm(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    // Disk A: 5.5 MiB, chunk 1 zeros, chunk 3 a copy of chunk 2, a short last chunk.
    let mut disk_a = disk(&[Some("a0"), None, Some("a2"), Some("a2"), Some("a4")]);
    disk_a.extend_from_slice(&noise("a5", MIB / 2));
    // Disk B: 4 MiB fed chunk by chunk, chunks 1 and 2 skipped (sparse).
    let b0 = Bytes::from(noise("b0", MIB));
    let b3 = Bytes::from(noise("b3", MIB));
    let ova = b"<value><struct>ova.xml of vm-1</struct></value>".to_vec();

    let mut info = vm_info("vm-1");
    info.job_id = Some("job-7".to_owned());
    info.source.pool_uuid = Some("pool-1".to_owned());
    let mut point = repo.begin(info).await.unwrap();
    point.write_ova_xml(&ova).await.unwrap();
    let record_a = point
        .write_stream(StreamSpec::disk("vdi-a", disk_a.len() as u64), &disk_a[..])
        .await
        .unwrap();
    let mut writer = point
        .stream(StreamSpec::disk("vdi-b", 4 * MIB as u64))
        .await
        .unwrap();
    writer.write_chunk(0, b0.clone()).await.unwrap();
    writer.write_chunk(3, b3.clone()).await.unwrap();
    let record_b = writer.finish().await.unwrap();
    let manifest = point.commit().await.unwrap();

    assert_eq!((record_a.stored_chunks, record_a.zero_chunks), (5, 1));
    assert_eq!((record_b.stored_chunks, record_b.zero_chunks), (2, 2));
    assert_eq!(manifest.job_id.as_deref(), Some("job-7"));
    assert_eq!(manifest.source.pool_uuid.as_deref(), Some("pool-1"));
    assert_eq!(manifest.streams.len(), 2);
    assert_eq!(manifest.total_size(), disk_a.len() as u64 + 4 * MIB as u64);
    // Four distinct non-zero chunks in A (a2 twice), two in B, one for ova.xml.
    assert_eq!(objects(&repo, "chunks").await.len(), 4 + 2 + 1);

    assert_eq!(
        repo.list(RestorePointKind::Vm).await.unwrap(),
        std::slice::from_ref(&manifest)
    );
    assert_eq!(
        repo.list_subject(RestorePointKind::Vm, "vm-1")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        repo.list_subject(RestorePointKind::Vm, "vm-2")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(repo.list(RestorePointKind::Disk).await.unwrap().is_empty());
    let stored = repo
        .read_manifest(&repo.manifest_object(&manifest))
        .await
        .unwrap();
    assert_eq!(stored, manifest);

    // Reopened from the target, the same restore point reads back byte for byte.
    let reopened = Repository::open(&factory_target_of(&repo), OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(read_back(&reopened, &manifest, "vdi-a").await, disk_a);
    let mut expected_b = b0.to_vec();
    expected_b.extend_from_slice(&vec![0u8; 2 * MIB]);
    expected_b.extend_from_slice(&b3);
    assert_eq!(read_back(&reopened, &manifest, "vdi-b").await, expected_b);
    assert_eq!(reopened.read_ova_xml(&manifest).await.unwrap(), ova);
    assert_eq!(manifest.ova_xml.as_ref().unwrap().role, StreamRole::OvaXml);
    let report = reopened.verify_restore_point(&manifest).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.chunks_read, 5 + 2 + 1);
}

/// The target a repository was opened on (the suite keeps no other handle).
fn factory_target_of(repo: &Repository) -> Target {
    Target::Custom {
        store: repo.store().object_store(),
        prefix: repo.store().prefix().to_owned(),
    }
}

pub(crate) async fn second_backup_of_a_clone_stores_only_new_chunks(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let seeds: Vec<String> = (0..8).map(|i| format!("template-{i}")).collect();
    let template: Vec<Option<&str>> = seeds.iter().map(|s| Some(s.as_str())).collect();
    let mut clone = template.clone();
    clone[5] = Some("clone-5");
    let first = backup(&repo, "vm-1", &disk(&template)).await;
    let second = backup(&repo, "vm-2", &disk(&clone)).await;
    let again = backup(&repo, "vm-1", &disk(&template)).await;
    assert_eq!(first.streams[0].new_chunks, 8);
    assert_eq!(
        second.streams[0].new_chunks, 1,
        "only the changed chunk is new"
    );
    assert_eq!(second.streams[0].stored_chunks, 8);
    assert_eq!(again.streams[0].new_chunks, 0);
    assert_eq!(again.streams[0].new_bytes, 0);
    assert_eq!(objects(&repo, "chunks").await.len(), 9);
    assert_eq!(read_back(&repo, &second, "disk").await, disk(&clone));
}

pub(crate) async fn sixteen_racing_writers_make_exactly_one_restore_point(
    factory: &dyn TargetFactory,
) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let id = RestorePointId::parse("job-1-vm-1").unwrap();
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let repo = repo.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut info = vm_info("vm-1");
            info.job_id = Some(format!("writer-{writer}"));
            let data = disk(&[Some(&format!("writer-{writer}")), Some("shared")]);
            let mut point = repo.begin_with_id(info, id).await?;
            point
                .write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
                .await?;
            point.commit().await
        }));
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(manifest) => winners.push(manifest),
            Err(Error::Repo(RepoError::RestorePointExists { .. })) => losers += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 15));
    let listed = repo.list(RestorePointKind::Vm).await.unwrap();
    assert_eq!(listed, winners);
    // The listed restore point holds the winner's own data, not a loser's.
    let writer = winners[0].job_id.clone().unwrap();
    assert_eq!(
        read_back(&repo, &listed[0], "disk").await,
        disk(&[Some(&writer), Some("shared")])
    );
}

pub(crate) async fn conditional_create_has_one_winner_among_sixteen(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let mut tasks = Vec::new();
    for writer in 0..16u8 {
        let store = repo.store().clone();
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(vec![writer; 1000]);
            (writer, store.put_new("manifests/race/object", body).await)
        }));
    }
    let mut winner = None;
    for task in tasks {
        match task.await.unwrap() {
            (writer, Ok(())) => assert!(winner.replace(writer).is_none(), "two winners"),
            (_, Err(RepoError::AlreadyExists { object })) => {
                assert_eq!(object, "manifests/race/object");
            }
            (_, Err(other)) => panic!("unexpected {other}"),
        }
    }
    let winner = winner.expect("one winner");
    let stored = repo.store().get("manifests/race/object").await.unwrap();
    assert_eq!(stored, vec![winner; 1000]);
}

pub(crate) async fn nothing_without_a_manifest_is_listed(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let data = disk(&[Some("orphan-0"), Some("orphan-1")]);
    let mut point = repo.begin(vm_info("vm-1")).await.unwrap();
    point
        .write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
        .await
        .unwrap();
    drop(point); // the backup dies before its manifest
    assert!(repo.list_all().await.unwrap().is_empty());
    assert_eq!(objects(&repo, "chunks").await.len(), 2);
    let report = repo.check(CheckOptions::default()).await.unwrap();
    assert!(report.is_ok());
    assert_eq!(
        report.orphans.len(),
        3,
        "two chunks and an index: {report:?}"
    );

    let grace = TimeDelta::hours(6);
    let first = repo.prune(&prune_options(grace)).await.unwrap();
    assert_eq!(
        (first.deleted_chunks, first.marked),
        (0, 3),
        "first mark deletes nothing"
    );
    clock.advance(TimeDelta::hours(5));
    let early = repo.prune(&prune_options(grace)).await.unwrap();
    assert_eq!(early.deleted_chunks, 0, "still within the grace period");
    clock.advance(TimeDelta::hours(2));
    let second = repo.prune(&prune_options(grace)).await.unwrap();
    assert_eq!((second.deleted_chunks, second.deleted_indexes), (2, 1));
    assert!(objects(&repo, "chunks").await.is_empty());
    assert!(objects(&repo, "indexes").await.is_empty());
}

pub(crate) async fn prune_racing_a_backup_that_reuses_old_chunks(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let grace = TimeDelta::hours(1);
    let data = disk(&[Some("old-0"), Some("old-1"), Some("old-2")]);
    let old = backup(&repo, "vm-1", &data).await;
    repo.forget_restore_point(&old).await.unwrap();

    // B begins before prune marks the old chunks, and reuses them.
    let mut b = repo.begin(vm_info("vm-2")).await.unwrap();
    let marked = repo.prune(&prune_options(grace)).await.unwrap();
    assert_eq!(marked.marked, 4, "three chunks and the old index");
    let record = b
        .write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
        .await
        .unwrap();
    assert_eq!(record.new_chunks, 0, "B reused the old chunks");
    clock.advance(grace + TimeDelta::minutes(1));
    let deleted = repo.prune(&prune_options(grace)).await.unwrap();
    assert_eq!(
        deleted.deleted_chunks, 3,
        "B has no manifest yet: its chunks go"
    );

    // B re-checks before its manifest, finds them gone and uploads them again.
    let mut source = MemorySource(HashMap::from([("disk".to_owned(), data.clone())]));
    let manifest = b.commit_with(&mut source).await.unwrap();
    assert_eq!(objects(&repo, "chunks").await.len(), 3);
    assert!(repo.verify_restore_point(&manifest).await.unwrap().is_ok());
    assert_eq!(read_back(&repo, &manifest, "disk").await, data);

    // Without a source to read them again, the commit fails and lists nothing.
    repo.forget_restore_point(&manifest).await.unwrap();
    let mut c = repo.begin(vm_info("vm-3")).await.unwrap();
    repo.prune(&prune_options(grace)).await.unwrap();
    c.write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
        .await
        .unwrap();
    clock.advance(grace + TimeDelta::minutes(1));
    repo.prune(&prune_options(grace)).await.unwrap();
    match c.commit().await {
        Err(Error::Repo(
            err @ RepoError::ReusedChunksVanished {
                count: 3,
                first_chunk: 0,
                ..
            },
        )) => {
            assert!(err.is_retryable());
        }
        other => panic!("expected vanished chunks, got {other:?}"),
    }
    assert!(repo.list_all().await.unwrap().is_empty());

    // A backup that begins after the mark does not reuse marked chunks: it uploads them
    // again, and prune leaves them alone once its manifest references them.
    let d_data = disk(&[Some("d-0")]);
    let d = backup(&repo, "vm-4", &d_data).await;
    repo.forget_restore_point(&d).await.unwrap();
    repo.prune(&prune_options(grace)).await.unwrap();
    let e = backup(&repo, "vm-5", &d_data).await;
    assert_eq!(
        e.streams[0].new_chunks, 1,
        "a marked chunk is uploaded again"
    );
    clock.advance(grace + TimeDelta::minutes(1));
    repo.prune(&prune_options(grace)).await.unwrap();
    assert!(repo.verify_restore_point(&e).await.unwrap().is_ok());
}

pub(crate) async fn prune_and_backups_run_concurrently_without_losing_data(
    factory: &dyn TargetFactory,
) {
    // Real time: a grace period of one second, backups much shorter than that.
    let repo = Repository::create(&factory.target(), CreateOptions::default())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deleted = Arc::new(AtomicU64::new(0));
    let pruner = {
        let repo = repo.clone();
        let stop = Arc::clone(&stop);
        let deleted = Arc::clone(&deleted);
        tokio::spawn(async move {
            let options = prune_options(TimeDelta::seconds(1));
            while !stop.load(Ordering::Relaxed) {
                let report = repo.prune(&options).await.expect("prune");
                deleted.fetch_add(report.deleted_chunks, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let keep_one = RetentionPolicy {
        keep_last: 1,
        ..RetentionPolicy::default()
    };
    let started = std::time::Instant::now();
    let mut round = 0u32;
    while started.elapsed() < Duration::from_secs(5) || deleted.load(Ordering::Relaxed) == 0 {
        // Each backup reuses three of the previous one's four chunks.
        let seeds: Vec<String> = (round..round + 4).map(|i| format!("rolling-{i}")).collect();
        let data = disk(&seeds.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>());
        let mut point = repo.begin(vm_info("vm-1")).await.unwrap();
        point
            .write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
            .await
            .unwrap();
        let mut source = MemorySource(HashMap::from([("disk".to_owned(), data)]));
        point.commit_with(&mut source).await.unwrap();
        repo.forget(RestorePointKind::Vm, &keep_one, false)
            .await
            .unwrap();
        round += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prune never deleted anything"
        );
    }
    stop.store(true, Ordering::Relaxed);
    pruner.await.unwrap();
    assert!(
        deleted.load(Ordering::Relaxed) > 0,
        "prune deleted chunks meanwhile"
    );
    let listed = repo.list_all().await.unwrap();
    assert_eq!(listed.len(), 1);
    let report = repo.check(CheckOptions { read_data: true }).await.unwrap();
    assert!(
        report.is_ok(),
        "after {round} rounds: {:?}",
        report.problems
    );
}

pub(crate) async fn verify_detects_a_flipped_byte_and_a_missing_chunk(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let data = disk(&[Some("v0"), Some("v1"), None, Some("v3")]);
    let manifest = backup(&repo, "vm-1", &data).await;
    assert!(repo.verify_restore_point(&manifest).await.unwrap().is_ok());
    let chunks = objects(&repo, "chunks").await;
    let v1 = chunk_object(&blake3_id(&noise("v1", MIB)));
    let v3 = chunk_object(&blake3_id(&noise("v3", MIB)));
    assert!(chunks.contains(&v1) && chunks.contains(&v3));

    let mut bytes = repo.store().get(&v1).await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    repo.store().put(&v1, Bytes::from(bytes)).await.unwrap();
    repo.store().delete(&v3).await.unwrap();

    let report = repo.verify_restore_point(&manifest).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems.iter().any(|p| matches!(p,
        Problem::CorruptChunk { chunk_number: 1, offset, object, .. }
            if *offset == MIB as u64 && *object == v1)));
    assert!(report.problems.iter().any(|p| matches!(p,
        Problem::MissingChunk { chunk_number: 3, offset, object, .. }
            if *offset == 3 * MIB as u64 && *object == v3)));

    // The whole-repository check finds the same, structurally and by reading.
    let structural = repo.check(CheckOptions::default()).await.unwrap();
    assert_eq!(
        structural.problems.len(),
        1,
        "only the missing chunk without reading"
    );
    let deep = repo.check(CheckOptions { read_data: true }).await.unwrap();
    assert_eq!(deep.problems.len(), 2);
}

fn blake3_id(data: &[u8]) -> xapi_backup::repo::ChunkId {
    xapi_backup::repo::ChunkId(*blake3::hash(data).as_bytes())
}

pub(crate) async fn reading_a_missing_chunk_names_its_offset(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let data = disk(&[Some("m0"), Some("m1"), Some("m2")]);
    let manifest = backup(&repo, "vm-1", &data).await;
    let m2 = chunk_object(&blake3_id(&noise("m2", MIB)));
    repo.store().delete(&m2).await.unwrap();
    let mut reader = repo.read_stream(&manifest, "disk").await.unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<RepoError>())
        .expect("a RepoError inside");
    match inner {
        RepoError::ChunkMissing {
            chunk_number: 2,
            disk_offset,
            object,
            ..
        } => {
            assert_eq!(*disk_offset, 2 * MIB as u64);
            assert_eq!(*object, m2);
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(&out[..], &data[..out.len()], "what came before is intact");
}

pub(crate) async fn encryption_on_hides_content_and_names(factory: &dyn TargetFactory) {
    let target = factory.target();
    let secret = Secret::Passphrase("correct horse battery staple".to_owned());
    let repo = Repository::create(
        &target,
        CreateOptions {
            encryption: Some(secret.clone()),
            kdf: small_kdf(),
            ..CreateOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(repo.is_encrypted());
    let marker = b"NVRAM-SECRET-";
    let mut chunk0 = marker.repeat(MIB / marker.len() + 1);
    chunk0.truncate(MIB);
    let mut data = chunk0.clone();
    data.extend_from_slice(&noise("enc-1", MIB));
    let manifest = backup(&repo, "vm-secret", &data).await;

    let reopened = Repository::open(
        &target,
        OpenOptions {
            secret: Some(secret),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(read_back(&reopened, &manifest, "disk").await, data);
    assert!(
        reopened
            .verify_restore_point(&manifest)
            .await
            .unwrap()
            .is_ok()
    );

    // No object holds the content, the VM's UUID or the plain hash of a chunk as a name.
    let plain_name = chunk_object(&blake3_id(&chunk0));
    for name in objects(&repo, "").await {
        assert_ne!(name, plain_name);
        assert!(!name.contains("vm-secret"), "{name}");
        if name == "config" {
            continue;
        }
        let bytes = repo.store().get(&name).await.unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "{name} leaks"
        );
        assert!(!bytes.windows(9).any(|w| w == b"vm-secret"), "{name} leaks");
    }
}

pub(crate) async fn encrypted_repository_is_unreadable_without_its_key(
    factory: &dyn TargetFactory,
) {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("repo.key");
    let key = Secret::generate_key_file(&key_path).unwrap();
    let target = factory.target();
    let repo = Repository::create(
        &target,
        CreateOptions {
            encryption: Some(key),
            ..CreateOptions::default()
        },
    )
    .await
    .unwrap();
    let data = disk(&[Some("k0"), Some("k1")]);
    let manifest = backup(&repo, "vm-1", &data).await;

    let open = |secret| {
        let target = target.clone();
        async move {
            Repository::open(
                &target,
                OpenOptions {
                    secret,
                    ..OpenOptions::default()
                },
            )
            .await
        }
    };
    assert!(matches!(
        open(None).await,
        Err(Error::Repo(RepoError::KeyMismatch { .. }))
    ));
    assert!(matches!(
        open(Some(Secret::KeyFile([9; 32]))).await,
        Err(Error::Repo(RepoError::WrongKey))
    ));
    assert!(matches!(
        open(Some(Secret::Passphrase("guess".to_owned()))).await,
        Err(Error::Repo(RepoError::KeyMismatch { .. }))
    ));
    let with_key = open(Some(Secret::key_file(&key_path).unwrap()))
        .await
        .unwrap();
    assert_eq!(read_back(&with_key, &manifest, "disk").await, data);

    // A sealed chunk is bound to its name: copied over another chunk's name, it fails to
    // authenticate there, with the key.
    let chunks = objects(&repo, "chunks").await;
    assert_eq!(chunks.len(), 2);
    let first = repo.store().get(&chunks[0]).await.unwrap();
    repo.store().put(&chunks[1], first).await.unwrap();
    let report = with_key.verify_restore_point(&manifest).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(matches!(&report.problems[0],
        Problem::CorruptChunk { object, error, .. }
            if *object == chunks[1] && error.contains("authentication")));
}

pub(crate) async fn retention_on_a_synthetic_calendar(factory: &dyn TargetFactory) {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
    let clock = ManualClock::new(Utc::now().max(start));
    let repo = create(&factory.target(), &clock).await;
    // Backups of two VMs every 12 hours for 70 days, on a calendar set to begin 2026-01-01;
    // restore points record the calendar's time.
    let calendar = ManualClock::new(start);
    let cal_repo = Repository::open(
        &factory_target_of(&repo),
        OpenOptions {
            clock: Arc::new(calendar.clone()),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    for step in 0..140 {
        for vm in ["vm-a", "vm-b"] {
            // Every backup shares a base chunk and has one of its own.
            let own = format!("{vm}-{step}");
            backup(&cal_repo, vm, &disk(&[Some("base"), Some(&own)])).await;
        }
        calendar.advance(TimeDelta::hours(12));
    }
    let policy = RetentionPolicy {
        keep_last: 3,
        keep_daily: 7,
        keep_weekly: 4,
        keep_monthly: 3,
    };
    let dry = cal_repo
        .forget(RestorePointKind::Vm, &policy, true)
        .await
        .unwrap();
    assert_eq!(
        cal_repo.list(RestorePointKind::Vm).await.unwrap().len(),
        280
    );
    let report = cal_repo
        .forget(RestorePointKind::Vm, &policy, false)
        .await
        .unwrap();
    assert_eq!(report.subjects, dry.subjects);
    assert_eq!(report.subjects.len(), 2);
    let last = start + TimeDelta::hours(12 * 139); // 2026-03-11 20:00
    let expected: Vec<DateTime<Utc>> = {
        let mut times = vec![
            // monthly: newest of January and February (March is the newest backup)
            Utc.with_ymd_and_hms(2026, 1, 31, 14, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 2, 28, 14, 0, 0).unwrap(),
            // weekly (ISO weeks end on Sunday): 2026-02-22, 03-01, 03-08
            Utc.with_ymd_and_hms(2026, 2, 22, 14, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 14, 0, 0).unwrap(),
        ];
        // daily: the evening backup of 03-05 .. 03-11 (03-08 is also a weekly)
        times.extend((0..7).map(|d| last - TimeDelta::days(d)));
        // last 3: 03-11 20:00, 03-11 08:00, 03-10 20:00
        times.push(last - TimeDelta::hours(12));
        times.sort();
        times.dedup();
        times
    };
    for vm in ["vm-a", "vm-b"] {
        let kept: Vec<_> = cal_repo
            .list_subject(RestorePointKind::Vm, vm)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.created_at)
            .collect();
        assert_eq!(kept, expected, "{vm}");
    }
    // Prune on the repository's own clock removes the forgotten backups' own chunks.
    let before = objects(&repo, "chunks").await.len();
    assert_eq!(before, 1 + 280);
    repo.prune(&prune_options(TimeDelta::hours(1)))
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(2));
    let pruned = repo
        .prune(&prune_options(TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(pruned.deleted_chunks, 280 - 2 * expected.len() as u64);
    assert_eq!(objects(&repo, "chunks").await.len(), 1 + 2 * expected.len());
    assert!(
        repo.check(CheckOptions { read_data: true })
            .await
            .unwrap()
            .is_ok()
    );
}

pub(crate) async fn unknown_format_version_is_refused(factory: &dyn TargetFactory) {
    let target = factory.target();
    let clock = clock_now();
    let repo = create(&target, &clock).await;
    let config = repo.store().get("config").await.unwrap();
    let text = String::from_utf8(config.to_vec()).unwrap();
    let newer = text.replace("\"format_version\": 1", "\"format_version\": 2");
    assert_ne!(newer, text);
    repo.store()
        .put("config", Bytes::from(newer))
        .await
        .unwrap();
    match Repository::open(&target, OpenOptions::default()).await {
        Err(Error::Repo(RepoError::UnsupportedVersion {
            found: 2,
            supported: 1,
        })) => {}
        other => panic!("expected an unsupported version, got {other:?}"),
    }
    // And creating over an existing repository is refused.
    assert!(matches!(
        Repository::create(&target, CreateOptions::default()).await,
        Err(Error::Repo(RepoError::AlreadyExists { .. }))
    ));
    let empty = factory.target();
    assert!(matches!(
        Repository::open(&empty, OpenOptions::default()).await,
        Err(Error::Repo(RepoError::NotARepository { .. }))
    ));
}

pub(crate) async fn maintenance_lock_excludes_and_expires(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let mut held = repo
        .lock_maintenance("other host", TimeDelta::minutes(10))
        .await
        .unwrap();
    match repo.prune(&PruneOptions::default()).await {
        Err(Error::Repo(RepoError::Locked { owner, .. })) => assert!(owner.contains("other host")),
        other => panic!("expected Locked, got {other:?}"),
    }
    held.ensure_held().await.unwrap();
    // The holder dies: after its time to live the lock no longer counts, and is removed.
    clock.advance(TimeDelta::minutes(11));
    repo.prune(&PruneOptions::default()).await.unwrap();
    assert!(matches!(
        held.ensure_held().await,
        Err(Error::Repo(RepoError::LockLost { .. }))
    ));
    assert!(
        objects(&repo, "locks").await.is_empty(),
        "prune released its own lock"
    );
}

pub(crate) async fn streams_of_the_wrong_size_are_refused(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let data = disk(&[Some("s0"), Some("s1")]);
    let mut point = repo.begin(vm_info("vm-1")).await.unwrap();
    let short = point
        .write_stream(StreamSpec::disk("a", data.len() as u64 + 1), &data[..])
        .await;
    assert!(
        matches!(short, Err(Error::Repo(RepoError::InvalidInput { .. }))),
        "{short:?}"
    );
    let long = point
        .write_stream(StreamSpec::disk("b", data.len() as u64 - 1), &data[..])
        .await;
    assert!(
        matches!(long, Err(Error::Repo(RepoError::InvalidInput { .. }))),
        "{long:?}"
    );
    let mut writer = point
        .stream(StreamSpec::disk("c", 2 * MIB as u64))
        .await
        .unwrap();
    let bad = writer.write_chunk(0, Bytes::from(vec![1u8; 100])).await;
    assert!(matches!(
        bad,
        Err(Error::Repo(RepoError::InvalidInput { .. }))
    ));
    writer
        .write_chunk(1, Bytes::from(noise("s1", MIB)))
        .await
        .unwrap();
    let back = writer.write_chunk(0, Bytes::from(noise("s0", MIB))).await;
    assert!(
        matches!(back, Err(Error::Repo(RepoError::InvalidInput { .. }))),
        "out of order"
    );
}

pub(crate) async fn every_kind_is_listed_on_its_own(factory: &dyn TargetFactory) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    for kind in RestorePointKind::ALL {
        let mut point = repo
            .begin(RestorePointInfo::new(kind, "subject-1"))
            .await
            .unwrap();
        let role = match kind {
            RestorePointKind::PoolMetadata => StreamRole::PoolDatabase,
            RestorePointKind::Host => StreamRole::HostBackup,
            _ => StreamRole::Disk,
        };
        let data = format!("{kind:?} payload").into_bytes();
        let spec = StreamSpec {
            role,
            ..StreamSpec::disk("data", data.len() as u64)
        };
        point.write_stream(spec, &data[..]).await.unwrap();
        point.commit().await.unwrap();
    }
    for kind in RestorePointKind::ALL {
        let listed = repo.list(kind).await.unwrap();
        assert_eq!(listed.len(), 1, "{kind:?}");
        assert_eq!(listed[0].kind, kind);
        let expected = format!("{kind:?} payload").into_bytes();
        assert_eq!(read_back(&repo, &listed[0], "data").await, expected);
    }
    assert_eq!(repo.list_all().await.unwrap().len(), 4);
}

pub(crate) async fn a_two_tib_sparse_disk_is_indexed_without_storing_its_zeros(
    factory: &dyn TargetFactory,
) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    // 2 TiB and a 4 KiB tail: 2,097,153 chunks, three of them with data.
    let size = (2u64 << 40) + 4096;
    let last = size / MIB as u64;
    let mut point = repo.begin(vm_info("vm-big")).await.unwrap();
    let mut writer = point.stream(StreamSpec::disk("disk", size)).await.unwrap();
    let tail = Bytes::from(noise("tail", 4096));
    writer
        .write_chunk(0, Bytes::from(noise("first", MIB)))
        .await
        .unwrap();
    writer
        .write_chunk(1 << 20, Bytes::from(noise("middle", MIB)))
        .await
        .unwrap();
    writer.write_chunk(last, tail.clone()).await.unwrap();
    let record = writer.finish().await.unwrap();
    let manifest = point.commit().await.unwrap();
    assert_eq!(
        (record.stored_chunks, record.zero_chunks),
        (3, last + 1 - 3)
    );
    assert_eq!(objects(&repo, "chunks").await.len(), 3);
    let index = repo.store().head(&record.index).await.unwrap().unwrap();
    assert!(
        index.size < 300,
        "gaps cost a few bytes: {} bytes",
        index.size
    );
    let report = repo.verify_restore_point(&manifest).await.unwrap();
    assert!(report.is_ok());
    assert_eq!(report.chunks_read, 3);
    // Read back, the stream starts with its data, then zeros (the short tail is covered by
    // write_list_and_read_back_a_vm).
    let mut chunks = repo.stream_chunks(&manifest, "disk").await.unwrap();
    let first = chunks.try_next().await.unwrap().unwrap();
    assert_eq!(first, noise("first", MIB));
    let second = chunks.try_next().await.unwrap().unwrap();
    assert!(second.iter().all(|&b| b == 0));
}

/// An incremental backup records an unchanged chunk (`reuse_chunk`) without waiting for the
/// uploads in flight before it; the index still comes out in chunk order.
pub(crate) async fn an_unchanged_chunk_does_not_wait_for_uploads_in_flight(
    factory: &dyn TargetFactory,
) {
    let clock = clock_now();
    let repo = create(&factory.target(), &clock).await;
    let base = backup(&repo, "vm-1", &disk(&[Some("kept")])).await;
    let (_, kept) = repo
        .stream_index(&base, "disk")
        .await
        .expect("the base index")
        .next_entry()
        .await
        .expect("an entry")
        .expect("one chunk");
    let gate = Arc::new(GatedStore::new(repo.store().object_store()));
    let gated = Repository::open(
        &Target::Custom {
            store: gate.clone(),
            prefix: repo.store().prefix().to_owned(),
        },
        OpenOptions {
            clock: Arc::new(clock.clone()),
            ..OpenOptions::default()
        },
    )
    .await
    .expect("the repository, behind a gate");
    let mut point = gated.begin(vm_info("vm-1")).await.expect("begin");
    let mut stream = point
        .stream(StreamSpec::disk("disk", 3 * MIB as u64))
        .await
        .expect("a stream");
    stream
        .write_chunk(0, Bytes::from(noise("changed", MIB)))
        .await
        .expect("chunk 0 handed over");
    tokio::time::timeout(Duration::from_secs(20), stream.reuse_chunk(1, kept))
        .await
        .expect("chunk 1 is recorded while chunk 0 is still uploading")
        .expect("chunk 1 recorded");
    gate.open();
    stream
        .write_chunk(2, Bytes::from(noise("changed too", MIB)))
        .await
        .expect("chunk 2 handed over");
    let record = stream.finish().await.expect("the stream");
    assert_eq!(record.new_chunks, 2);
    assert_eq!(record.stored_chunks, 3);
    let manifest = point.commit().await.expect("commit");
    let expected = [
        noise("changed", MIB),
        noise("kept", MIB),
        noise("changed too", MIB),
    ]
    .concat();
    assert_eq!(read_back(&gated, &manifest, "disk").await, expected);
}
