//! Chunk files in a local-directory repository, written in two steps so that the disk works
//! while the backup goes on, and a chunk's name never points at bytes that are not durable.
//!
//! 1. [`stage`]: the chunk is written under a staged name beside its own (`<name>#<digits>`,
//!    a name the store's listings skip). Its whole 4 KiB blocks go straight to the disk
//!    (`O_DIRECT`, see [`write_chunk_file`]); where the file system refuses that, the chunk is
//!    written through the page cache and the kernel told to start writing it back, without
//!    waiting.
//! 2. [`StagedChunk::publish`], some chunks later: its data is made durable (`fdatasync`, by
//!    then usually a formality), then it is renamed to its name. [`sync_dirs`] makes the
//!    renames durable, once per directory, before the restore point's manifest is written.
//!
//! Writing and syncing each chunk at once (what a store does for every object) makes the disk
//! flush after every MiB and the backup wait for it; here the writes stream and the flushes
//! come late and cheap. A staged chunk that is dropped unpublished removes its file; one left
//! by a killed process is removed by prune ([`remove_leftovers`]), with the staged uploads of
//! other objects (`object_store` names them the same way).

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::crypto::ChunkId;
use super::error::RepoError;
use crate::format::recycle::BufferPool;

/// Runs file system work on the blocking pool; its error is reported as `operation` failing.
pub(super) async fn off_runtime<T: Send + 'static>(
    operation: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, RepoError> {
    joined(operation, tokio::task::spawn_blocking(work).await)
}

/// The outcome of blocking-pool work, its error reported as `operation` failing.
fn joined<T>(
    operation: &str,
    outcome: Result<std::io::Result<T>, tokio::task::JoinError>,
) -> Result<T, RepoError> {
    outcome
        .map_err(|err| RepoError::Task(err.to_string()))?
        .map_err(|source| RepoError::Io {
            operation: operation.to_owned(),
            source,
        })
}

/// Staged chunks being published on the blocking pool, each with a tag of the caller's: the
/// writer goes on meanwhile, and collects them with [`Publishing::wait`]. Dropped, the work
/// still finishes (the chunks named are then orphans, which prune removes).
#[derive(Debug)]
pub(super) struct Publishing<T>(JoinHandle<std::io::Result<Vec<(T, PathBuf)>>>);

/// Starts publishing `batch` in order, one after the other.
pub(super) fn publish_all<T: Send + 'static>(batch: Vec<(T, StagedChunk)>) -> Publishing<T> {
    Publishing(tokio::task::spawn_blocking(move || {
        batch
            .into_iter()
            .map(|(tag, staged)| Ok((tag, staged.publish()?)))
            .collect()
    }))
}

impl<T> Publishing<T> {
    /// Waits until the batch is published: each tag with the directory whose entry changed.
    pub(super) async fn wait(self) -> Result<Vec<(T, PathBuf)>, RepoError> {
        joined("making chunk files durable and naming them", self.0.await)
    }
}

/// The chunks the writers of one repository handle are staging. A writer that meets a chunk
/// another one is staging references it rather than writing it too (concurrent backups of
/// clones of one template meet the same chunks at about the same time), and before its
/// manifest waits until that chunk is named, or dropped.
#[derive(Debug, Default)]
pub(super) struct Staging {
    pending: Mutex<HashMap<ChunkId, watch::Receiver<()>>>,
    /// How chunk files are written (shared by the writers of this repository handle).
    direct: DirectWrites,
}

/// What direct writes of chunk files need, per repository handle.
#[derive(Debug)]
struct DirectWrites {
    /// Set once the repository's file system has refused a direct write: later chunks are
    /// written through the page cache without trying again.
    refused: AtomicBool,
    /// Buffers for the aligned copies, kept between chunks: a fresh MiB per chunk costs its
    /// page faults every time.
    buffers: BufferPool,
}

/// Direct-write buffers a repository handle keeps (one stream writes 8 chunks at once).
const DIRECT_BUFFERS_KEPT: usize = 8;

impl Default for DirectWrites {
    fn default() -> Self {
        Self {
            refused: AtomicBool::new(false),
            buffers: BufferPool::keeping(DIRECT_BUFFERS_KEPT),
        }
    }
}

/// One writer's right to stage chunk `id`. When it goes (the chunk named, or dropped
/// unpublished), the writers waiting for `id` are woken.
#[derive(Debug)]
pub(super) struct Claim {
    id: ChunkId,
    staging: Arc<Staging>,
    // dropped with the claim: that wakes the waiters
    _done: watch::Sender<()>,
}

impl Staging {
    /// Claims `id` for staging; `None` when another writer is staging it.
    pub(super) fn claim(self: &Arc<Self>, id: ChunkId) -> Option<Claim> {
        let mut pending = self.lock();
        if pending.contains_key(&id) {
            return None;
        }
        let (done, waiters) = watch::channel(());
        pending.insert(id, waiters);
        Some(Claim {
            id,
            staging: Arc::clone(self),
            _done: done,
        })
    }

    /// Waits (at most `limit`) until no writer is staging `id`; false if it still is.
    pub(super) async fn settled(&self, id: &ChunkId, limit: Duration) -> bool {
        let waiters = self.lock().get(id).cloned();
        let Some(mut waiters) = waiters else {
            return true;
        };
        // `changed` fails once the claim's sender is dropped: that is the wake-up
        tokio::time::timeout(limit, async { while waiters.changed().await.is_ok() {} })
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChunkId, watch::Receiver<()>>> {
        // a panic while holding the lock leaves a map that is still consistent
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Claim {
    /// A claim no other writer sees: for a writer that must store a chunk even though another
    /// one is staging it.
    pub(super) fn unshared(id: ChunkId) -> Claim {
        Arc::new(Staging::default())
            .claim(id)
            .expect("a new registry holds no claim")
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.staging.lock().remove(&self.id);
    }
}

/// A chunk file under its staged name: written, its write-back started, not yet durable nor
/// visible under its name. Dropped unpublished, it removes its file.
#[derive(Debug)]
pub(super) struct StagedChunk {
    file: Option<File>,
    staged: PathBuf,
    path: PathBuf,
    /// Released once the file is named or removed (after it: fields drop after `drop`).
    claim: Claim,
}

/// The staged name of `path`: `#` and decimal digits after it, which the store's listings
/// skip (they are how `object_store` names its own uploads in progress).
fn staged_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    let random = u64::from_str_radix(&super::crypto::random_hex(8), 16).unwrap_or_default();
    name.push(format!("#{random}"));
    PathBuf::from(name)
}

/// True for a staged name (`<name>#<digits>`).
fn is_staged(file_name: &str) -> bool {
    file_name
        .rsplit_once('#')
        .is_some_and(|(_, digits)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `pieces` one after the other to a staged name beside `path` (creating its directory
/// if needed); `claim` is released when the chunk is named or dropped.
pub(super) fn stage(path: &Path, pieces: &[Bytes], claim: Claim) -> std::io::Result<StagedChunk> {
    let staged = staged_name(path);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staged)
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&staged)?
        }
        other => other?,
    };
    let mut chunk = StagedChunk {
        file: None,
        staged,
        path: path.to_owned(),
        claim,
    };
    write_chunk_file(&mut file, pieces, &chunk.claim.staging.direct)?;
    chunk.file = Some(file);
    Ok(chunk)
}

/// Alignment of the direct writes (file offset, length, memory): the page size, a multiple of
/// every common logical block size.
const DIRECT_ALIGN: usize = 4096;

/// Writes `pieces` one after the other into the empty file `file`.
///
/// The whole 4 KiB blocks are written with `O_DIRECT`, from an aligned copy, and the last
/// partial block through the page cache. Writing a chunk through the page cache leaves its
/// write-back to the kernel's flusher, which the block layer's write-back throttling holds back
/// in favour of reads: on the virtual disk these figures come from, 1,024 chunk files took
/// about 4.8 s to make durable that way and 1.5 s written directly
/// (`benches/README.md`). A direct write also leaves no MiB of the backup in the page cache.
///
/// A file system that refuses direct writes (`EINVAL`) gets the chunk through the page cache,
/// with its write-back started at once (`posix_fadvise(DONTNEED)`), and `direct` remembers it
/// so that later chunks do not try again.
fn write_chunk_file(
    file: &mut File,
    pieces: &[Bytes],
    direct: &DirectWrites,
) -> std::io::Result<()> {
    let total: usize = pieces.iter().map(Bytes::len).sum();
    if total >= DIRECT_ALIGN && !direct.refused.load(Ordering::Relaxed) {
        let mut buffer = direct.buffers.take_as_is();
        let written = write_direct(file, pieces, total, &mut buffer);
        direct.buffers.give_back(buffer);
        match written {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                direct.refused.store(true, Ordering::Relaxed);
                // whatever went out is written again
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
            }
            Err(e) => return Err(e),
        }
    }
    for piece in pieces {
        file.write_all(piece)?;
    }
    // Advice, not a promise: on Linux it starts write-back of the dirty pages without waiting
    // (and later drops them from the page cache, which a backup has no use for).
    let _ = rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed);
    Ok(())
}

/// The direct half of [`write_chunk_file`]: the pieces (`total` bytes) copied into `buffer` at
/// an aligned address, their whole blocks written with `O_DIRECT`, the rest without.
fn write_direct(
    file: &mut File,
    pieces: &[Bytes],
    total: usize,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    let direct_len = total / DIRECT_ALIGN * DIRECT_ALIGN;
    if buffer.len() < total + DIRECT_ALIGN {
        buffer.resize(total + DIRECT_ALIGN, 0);
    }
    let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
    let bytes = &mut buffer[start..start + total];
    let mut at = 0;
    for piece in pieces {
        bytes[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    let flags = rustix::fs::fcntl_getfl(&*file)?;
    rustix::fs::fcntl_setfl(&*file, flags | rustix::fs::OFlags::DIRECT)?;
    let written = file.write_all(&bytes[..direct_len]);
    rustix::fs::fcntl_setfl(&*file, flags)?;
    written?;
    file.write_all(&bytes[direct_len..])
}

impl StagedChunk {
    /// Waits until the chunk's data is durable, then gives it its name; returns the directory
    /// whose entry changed (for [`sync_dirs`]).
    pub(super) fn publish(mut self) -> std::io::Result<PathBuf> {
        if let Some(file) = self.file.take() {
            file.sync_data()?;
        }
        std::fs::rename(&self.staged, &self.path)?;
        // published: nothing for Drop to remove
        self.staged = PathBuf::new();
        Ok(self.path.parent().map(Path::to_owned).unwrap_or_default())
    }

    /// The file's staged name.
    #[cfg(test)]
    pub(super) fn staged(&self) -> &Path {
        &self.staged
    }
}

impl Drop for StagedChunk {
    fn drop(&mut self) {
        if !self.staged.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.staged);
        }
    }
}

/// Makes the names given by [`StagedChunk::publish`] durable: an fsync of each chunk directory
/// (`chunks/<2 hex>`), of `chunks` and of the repository's directory (either of the first two
/// may be new).
pub(super) fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    let parents: BTreeSet<&Path> = dirs.iter().filter_map(|dir| dir.parent()).collect();
    let roots: BTreeSet<&Path> = parents.iter().filter_map(|dir| dir.parent()).collect();
    for dir in dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(parents)
        .chain(roots)
    {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes the staged files under `root` (recursively) last modified before `cutoff`: what
/// processes killed while writing left. Returns how many it removed.
///
/// Writers may be at work meanwhile: a file or directory that goes between the listing and a
/// look at it (a chunk named, an empty directory removed) is passed over.
pub(super) fn remove_leftovers(root: &Path, cutoff: SystemTime) -> std::io::Result<u64> {
    /// `Ok(None)` for what went meanwhile.
    fn unless_gone<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
        match result {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            other => other.map(Some),
        }
    }
    let mut removed = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Some(entries) = unless_gone(std::fs::read_dir(&dir))? else {
            continue;
        };
        for entry in entries {
            let Some(entry) = unless_gone(entry)? else {
                continue;
            };
            let Some(kind) = unless_gone(entry.file_type())? else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            if !kind.is_file() || !name.to_str().is_some_and(is_staged) {
                continue;
            }
            let Some(metadata) = unless_gone(entry.metadata())? else {
                continue;
            };
            if metadata.modified().is_ok_and(|at| at < cutoff)
                && unless_gone(std::fs::remove_file(entry.path()))?.is_some()
            {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces() -> Vec<Bytes> {
        vec![Bytes::from_static(b"head"), Bytes::from_static(b"-body")]
    }

    fn claim(n: u8) -> Claim {
        Arc::new(Staging::default())
            .claim(ChunkId([n; 32]))
            .expect("nobody else stages it")
    }

    #[test]
    fn a_chunk_appears_under_its_name_only_once_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks/ab/abcdef");
        let staged = stage(&path, &pieces(), claim(1)).unwrap();
        assert!(!path.exists(), "not visible before publish");
        assert!(staged.staged().exists());
        assert!(is_staged(
            &staged.staged().file_name().unwrap().to_string_lossy()
        ));
        let changed = staged.publish().unwrap();
        assert_eq!(changed, dir.path().join("chunks/ab"));
        assert_eq!(std::fs::read(&path).unwrap(), b"head-body");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("chunks/ab"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["abcdef"], "no staged file left");
        sync_dirs(&BTreeSet::from([changed])).unwrap();
    }

    #[test]
    fn chunk_files_hold_their_pieces_whether_written_directly_or_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let pattern =
            |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 7 + i / 4096) as u8).collect() };
        for len in [0, 1, 4095, 4096, 4097, 3 * 4096, (1 << 20) + 41] {
            let data = pattern(len);
            // a header, the body in two pieces, a trailer: as an encoded chunk comes
            let cut = len / 3;
            let pieces = [
                Bytes::from_static(b"head"),
                Bytes::copy_from_slice(&data[..cut]),
                Bytes::copy_from_slice(&data[cut..]),
                Bytes::from_static(b"trailer!"),
            ];
            let expected = [&b"head"[..], &data, b"trailer!"].concat();
            for refused in [false, true] {
                let path = dir.path().join(format!("{len}-{refused}"));
                let mut file = File::create(&path).unwrap();
                let direct = DirectWrites::default();
                direct.refused.store(refused, Ordering::Relaxed);
                write_chunk_file(&mut file, &pieces, &direct).unwrap();
                drop(file);
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    expected,
                    "{len} bytes, direct writes refused: {refused}"
                );
            }
        }
    }

    #[test]
    fn a_staged_chunk_dropped_unpublished_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks/cd/cdef");
        let staged = stage(&path, &pieces(), claim(2)).unwrap();
        let file = staged.staged().to_owned();
        drop(staged);
        assert!(!file.exists());
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_chunk_is_staged_by_one_writer_at_a_time_and_its_waiters_woken_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Arc::new(Staging::default());
        let id = ChunkId([7; 32]);
        let first = staging.claim(id).expect("the first claim");
        assert!(staging.claim(id).is_none(), "another writer stages it");
        assert!(!staging.settled(&id, Duration::from_millis(20)).await);
        let path = dir.path().join("chunks/07/0707");
        let staged = stage(&path, &pieces(), first).unwrap();
        let waiter = {
            let staging = Arc::clone(&staging);
            tokio::spawn(async move {
                let settled = staging.settled(&id, Duration::from_secs(10)).await;
                (settled, path.exists())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        staged.publish().unwrap();
        assert_eq!(
            waiter.await.unwrap(),
            (true, true),
            "woken after the rename"
        );
        let again = staging.claim(id).expect("free again");
        drop(again);
        assert!(staging.settled(&id, Duration::ZERO).await);
    }

    #[test]
    fn leftovers_older_than_the_limit_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = dir.path().join("chunks/ef/ef01");
        let kept = stage(&chunk, &pieces(), claim(3)).unwrap();
        std::mem::forget(kept); // as a killed process leaves it
        std::fs::write(dir.path().join("chunks/ef/ef02"), b"a chunk").unwrap();
        std::fs::write(dir.path().join("chunks/ef/ef03#not-digits"), b"x").unwrap();
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(
            remove_leftovers(dir.path(), an_hour_ago).unwrap(),
            0,
            "too recent"
        );
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(remove_leftovers(dir.path(), later).unwrap(), 1);
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("chunks/ef"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ef02", "ef03#not-digits"]);
        assert_eq!(
            remove_leftovers(&dir.path().join("missing"), later).unwrap(),
            0
        );
    }
}
