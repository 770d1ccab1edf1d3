//! What only a local-directory repository does: chunk files are staged, then published
//! (durable, then named), and prune removes the staged files of killed writers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use xapi_backup::repo::{CHUNK_SIZE, RepoError, StreamSpec, StreamWriter, Target};

use crate::suite::{backup, clock_now, create, noise, prune_options, read_back, vm_info};

const MIB: usize = CHUNK_SIZE as usize;

/// Every staged chunk file (`<name>#<digits>`) under `dir`.
fn staged_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else if entry.file_name().to_string_lossy().contains('#') {
                found.push(path);
            }
        }
    }
    found
}

/// Waits (at most 10 s) until no staged chunk file is left under `dir`.
async fn until_no_staged_file(dir: &Path) -> Vec<PathBuf> {
    for _ in 0..100 {
        if staged_files(dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    staged_files(dir)
}

fn new_dir() -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let target = Target::LocalDir(dir.path().to_owned());
    (dir, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_stream_leaves_every_chunk_named_and_a_dropped_one_removes_its_files() {
    let (dir, target) = new_dir();
    let clock = clock_now();
    let repo = create(&target, &clock).await;
    // more chunks than are ever left unpublished, so that publishing runs mid-stream too
    let data: Vec<u8> = (0..48).flat_map(|i| noise(&format!("c{i}"), MIB)).collect();
    let manifest = backup(&repo, "vm-a", &data).await;
    assert_eq!(manifest.streams[0].new_chunks, 48);
    assert!(staged_files(dir.path()).is_empty());
    let named = std::fs::read_dir(dir.path().join("chunks"))
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum::<usize>();
    assert_eq!(named, 48, "every chunk under its name");

    // A stream given chunks, then dropped without finishing (a failed backup).
    let mut point = repo.begin(vm_info("vm-b")).await.expect("begin");
    let mut stream = point
        .stream(StreamSpec::disk("disk", 64 * MIB as u64))
        .await
        .expect("a stream");
    let dropped: Vec<u8> = (0..40)
        .flat_map(|i| noise(&format!("dropped {i}"), MIB))
        .collect();
    write_chunks(&mut stream, &dropped).await;
    drop(stream);
    drop(point);
    assert_eq!(
        until_no_staged_file(dir.path()).await,
        Vec::<PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_the_staged_files_of_killed_writers_once_past_the_grace_period() {
    let (dir, target) = new_dir();
    let clock = clock_now();
    let repo = create(&target, &clock).await;
    let name = format!("{}/{}", "ab", "ab".repeat(32));
    let leftover = dir.path().join(format!("chunks/{name}#1234567"));
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half a chunk").unwrap();
    // an index upload in progress, as object_store stages it
    let upload = dir
        .path()
        .join("indexes/20261207T220822Z-c511d48ac177/b1cb4f3e-1#1");
    std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
    std::fs::write(&upload, b"frames").unwrap();

    let young = repo
        .prune(&prune_options(TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(young.deleted_staged, 0, "within the grace period");
    clock.advance(TimeDelta::minutes(10));
    let short_grace = repo
        .prune(&prune_options(TimeDelta::seconds(1)))
        .await
        .unwrap();
    assert_eq!(
        short_grace.deleted_staged, 0,
        "a staged file younger than an hour may be a running backup's"
    );
    assert!(leftover.exists() && upload.exists());

    clock.advance(TimeDelta::hours(2));
    let due = repo
        .prune(&prune_options(TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(due.deleted_staged, 2);
    assert!(!leftover.exists() && !upload.exists());
}

/// Hands `data` to `stream` chunk by chunk, without finishing it.
async fn write_chunks(stream: &mut StreamWriter<'_>, data: &[u8]) {
    for (number, chunk) in data.chunks(MIB).enumerate() {
        let chunk = Bytes::copy_from_slice(chunk);
        stream
            .write_chunk(number as u64, chunk)
            .await
            .expect("a chunk");
    }
}

/// Waits (at most 5 s) until `count` chunk files are staged under `dir`.
async fn until_staged(dir: &Path, count: usize) {
    let chunks = dir.join("chunks");
    for _ in 0..100 {
        if staged_files(&chunks).len() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        staged_files(&chunks).len(),
        count,
        "chunks staged, not named"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_another_writer_is_staging_is_referenced_and_waited_for() {
    let (dir, target) = new_dir();
    let repo = create(&target, &clock_now()).await;
    let data: Vec<u8> = (0..4)
        .flat_map(|i| noise(&format!("shared {i}"), MIB))
        .collect();
    let mut a = repo.begin(vm_info("vm-a")).await.expect("begin");
    let mut a_stream = a
        .stream(StreamSpec::disk("disk", data.len() as u64))
        .await
        .expect("a stream");
    write_chunks(&mut a_stream, &data).await;
    until_staged(dir.path(), 4).await;

    // B backs up the same bytes: it references A's chunks, and its commit waits for them
    let b = tokio::spawn({
        let repo = repo.clone();
        let data = data.clone();
        async move { backup(&repo, "vm-b", &data).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_finished(), "B's manifest waits for A's chunks");
    a_stream.finish().await.expect("A's stream");
    a.commit().await.expect("A's manifest");
    let b = b.await.expect("B");
    assert_eq!(b.streams[0].new_chunks, 0, "B wrote none of them again");
    assert_eq!(read_back(&repo, &b, "disk").await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_references_chunks_another_drops_fails_safe_to_retry() {
    let (dir, target) = new_dir();
    let repo = create(&target, &clock_now()).await;
    let data: Vec<u8> = (0..4)
        .flat_map(|i| noise(&format!("dropped {i}"), MIB))
        .collect();
    let mut a = repo.begin(vm_info("vm-a")).await.expect("begin");
    let mut a_stream = a
        .stream(StreamSpec::disk("disk", data.len() as u64))
        .await
        .expect("a stream");
    write_chunks(&mut a_stream, &data).await;
    until_staged(dir.path(), 4).await;
    let mut b = repo.begin(vm_info("vm-b")).await.expect("begin");
    b.write_stream(StreamSpec::disk("disk", data.len() as u64), &data[..])
        .await
        .expect("B's stream");
    // A fails: its staged chunks go
    drop(a_stream);
    drop(a);
    let err = b.commit().await.expect_err("B's chunks vanished");
    assert!(
        matches!(
            err,
            xapi_backup::Error::Repo(RepoError::ReusedChunksVanished { count: 4, .. })
        ),
        "{err}"
    );
    assert_eq!(
        until_no_staged_file(dir.path()).await,
        Vec::<PathBuf>::new()
    );
}
