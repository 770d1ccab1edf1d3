//! Chunk files in a local-directory repository, written in two steps so that the disk works
//! while the backup goes on, and a chunk's name never points at bytes that are not durable.
//!
//! 1. [`stage`]: the chunk is written under a staged name beside its own (`<name>#<digits>`,
//!    a name the store's listings skip), and the kernel is told to start writing it back,
//!    without waiting.
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
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use super::crypto::ChunkId;
use super::error::RepoError;

/// Runs file system work on the blocking pool; its error is reported as `operation` failing.
pub(super) async fn off_runtime<T: Send + 'static>(
    operation: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, RepoError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| RepoError::Task(err.to_string()))?
        .map_err(|source| RepoError::Io {
            operation: operation.to_owned(),
            source,
        })
}

/// The chunks the writers of one repository handle are staging. A writer that meets a chunk
/// another one is staging references it rather than writing it too (concurrent backups of
/// clones of one template meet the same chunks at about the same time), and before its
/// manifest waits until that chunk is named, or dropped.
#[derive(Debug, Default)]
pub(super) struct Staging {
    pending: Mutex<HashMap<ChunkId, watch::Receiver<()>>>,
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
    _claim: Claim,
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
/// if needed) and starts their write-back; `claim` is released when the chunk is named or
/// dropped.
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
        _claim: claim,
    };
    for piece in pieces {
        file.write_all(piece)?;
    }
    // Advice, not a promise: on Linux it starts write-back of the dirty pages without waiting
    // (and later drops them from the page cache, which a backup has no use for).
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    chunk.file = Some(file);
    Ok(chunk)
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
