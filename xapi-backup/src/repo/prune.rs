//! Prune: deleting chunks and indexes no manifest references, safely alongside running
//! backups. An object is deleted only if it was unreferenced at a first mark and still is at a
//! later mark at least a grace period after it (and it is itself older than the grace period),
//! all under the maintenance lock. Backups read the mark when they begin and upload marked
//! chunks again instead of reusing them (which refreshes their modification time).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};

use super::chunk::chunk_id_of;
use super::crypto::ChunkId;
use super::error::RepoError;
use super::index::IndexReader;
use super::local_chunks;
use super::object::{self, ObjectKind};
use super::repository::Repository;

/// The mark object: unreferenced objects and when each was first found so.
pub(super) const MARK_OBJECT: &str = "prune/mark";
/// Staged files younger than this are never removed, whatever the grace period.
const STAGED_FILES_MIN_AGE: TimeDelta = TimeDelta::hours(1);
/// How many deletions between two checks of the lock.
const DELETIONS_PER_LOCK_CHECK: u64 = 256;

/// How prune runs.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// How long an object must stay unreferenced (across two marks) before it is deleted. Must
    /// exceed the longest backup (a backup longer than an hour re-checks all its chunks).
    pub grace: TimeDelta,
    /// The lock's time to live (renewed while prune works).
    pub lock_ttl: TimeDelta,
    /// Who prunes (for the lock object).
    pub owner: String,
    /// Report what would be deleted, delete nothing, write no mark.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            grace: TimeDelta::hours(24),
            lock_ttl: TimeDelta::minutes(10),
            owner: "xapi-backup prune".to_owned(),
            dry_run: false,
        }
    }
}

/// What prune found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Manifests read.
    pub manifests: u64,
    /// Distinct chunks referenced.
    pub referenced_chunks: u64,
    /// Unreferenced chunks and indexes found.
    pub unreferenced: u64,
    /// Of those, the ones left for a later run (marked now or still within the grace period).
    pub marked: u64,
    /// Chunks deleted.
    pub deleted_chunks: u64,
    /// Indexes deleted (of forgotten or never-committed restore points).
    pub deleted_indexes: u64,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// Staged files (local directory only: chunk files not yet named, uploads of indexes and
    /// other objects in progress) that processes killed while writing left, removed once
    /// older than the grace period and than an hour.
    #[serde(default)]
    pub deleted_staged: u64,
}

impl Repository {
    /// Runs prune under the maintenance lock (see the module docs).
    pub async fn prune(&self, options: &PruneOptions) -> crate::Result<PruneReport> {
        let mut lock = self
            .lock_maintenance(&options.owner, options.lock_ttl)
            .await?;
        let result = self.prune_locked(options, &mut lock).await;
        let released = lock.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn prune_locked(
        &self,
        options: &PruneOptions,
        lock: &mut super::lock::MaintenanceLock,
    ) -> crate::Result<PruneReport> {
        let mut report = PruneReport::default();
        // Taken before the manifests are listed: an object is due only if it was unreferenced
        // `grace` before this listing, so that any backup that could have reused it (and was
        // shorter than `grace`) has its manifest in the listing.
        let started = self.clock().now();
        // 1. Everything any manifest references. A manifest that does not decode stops prune:
        //    deleting what it may reference would lose data.
        let mut chunks: HashSet<ChunkId> = HashSet::new();
        let mut indexes: HashSet<String> = HashSet::new();
        for name in self.manifest_names("manifests").await? {
            let manifest = match self.read_manifest(&name).await {
                Ok(manifest) => manifest,
                // Forgotten since the listing: it references nothing any more.
                Err(crate::Error::Repo(RepoError::NotFound { .. })) => continue,
                Err(err) => return Err(err),
            };
            report.manifests += 1;
            for stream in manifest.all_streams() {
                indexes.insert(stream.index.clone());
                let mut index =
                    IndexReader::open(self.store(), self.sealer().clone(), &stream.index).await?;
                while let Some((_, id)) = index.next_entry().await? {
                    chunks.insert(id);
                }
            }
            lock.ensure_held().await?;
        }
        report.referenced_chunks = chunks.len() as u64;

        // 2. What is stored and unreferenced now.
        let mut unreferenced = Vec::new();
        for prefix in ["chunks", "indexes"] {
            let objects: Vec<_> = self.store().list(prefix).try_collect().await?;
            for info in objects {
                let referenced = match chunk_id_of(&info.name) {
                    Some(id) => chunks.contains(&id),
                    None => indexes.contains(&info.name),
                };
                if !referenced {
                    unreferenced.push(info);
                }
            }
        }
        report.unreferenced = unreferenced.len() as u64;

        // 3. Delete what was already unreferenced at an earlier mark at least `grace` ago.
        let previous = self.read_mark().await?;
        let now = self.clock().now();
        let mut next_mark = HashMap::new();
        for info in unreferenced {
            let first_seen = previous.get(&info.name).copied().unwrap_or(now);
            let due =
                now - first_seen >= options.grace && now - info.last_modified >= options.grace;
            if !due {
                next_mark.insert(info.name, first_seen);
                continue;
            }
            if !options.dry_run {
                if (report.deleted_chunks + report.deleted_indexes) % DELETIONS_PER_LOCK_CHECK == 0
                {
                    lock.ensure_held().await?;
                }
                self.store().delete(&info.name).await?;
            }
            if chunk_id_of(&info.name).is_some() {
                report.deleted_chunks += 1;
            } else {
                report.deleted_indexes += 1;
            }
            report.deleted_bytes += info.size;
        }
        report.marked = next_mark.len() as u64;

        // Staged files of writers killed before they named them (chunk files, and the
        // uploads in progress of indexes and other objects): no listing shows them. A running
        // writer's are younger than `grace`, which exceeds any backup, and than an hour
        // whatever `grace` is (a test's grace of seconds must not cut a backup's files away).
        if let Some(root) = self.store().local_root()
            && !options.dry_run
        {
            let age = options.grace.max(STAGED_FILES_MIN_AGE);
            let cutoff = std::time::SystemTime::from(now - age);
            let root = root.to_owned();
            report.deleted_staged = local_chunks::off_runtime(
                "removing staged files left by killed writers",
                move || local_chunks::remove_leftovers(&root, cutoff),
            )
            .await?;
        }

        // 4. The new mark: what is unreferenced now and not yet due.
        if !options.dry_run {
            lock.ensure_held().await?;
            self.write_mark(started, &next_mark).await?;
        }
        Ok(report)
    }

    /// The previous mark: object name → when first found unreferenced.
    pub(crate) async fn read_mark(&self) -> Result<HashMap<String, DateTime<Utc>>, RepoError> {
        let bytes = match self.store().get(MARK_OBJECT).await {
            Ok(bytes) => bytes,
            Err(RepoError::NotFound { .. }) => return Ok(HashMap::new()),
            Err(err) => return Err(err),
        };
        let body = object::decode(
            ObjectKind::Mark,
            MARK_OBJECT,
            self.sealer(),
            &bytes,
            1 << 30,
        )?;
        decode_mark(&body).ok_or_else(|| RepoError::CorruptObject {
            object: MARK_OBJECT.to_owned(),
            offset: object::HEADER_LEN as u64,
            reason: "mark entries do not decode".to_owned(),
        })
    }

    async fn write_mark(
        &self,
        now: DateTime<Utc>,
        marks: &HashMap<String, DateTime<Utc>>,
    ) -> Result<(), RepoError> {
        let body = encode_mark(now, marks);
        let bytes = object::encode(ObjectKind::Mark, MARK_OBJECT, self.sealer(), &body, Some(3));
        self.store().put(MARK_OBJECT, Bytes::from(bytes)).await
    }
}

/// Mark body: taken_at (i64 LE, Unix ms) ‖ count (u64 LE) ‖ count × (first_seen (i64 LE, Unix
/// ms) ‖ name length (u16 LE) ‖ name).
fn encode_mark(now: DateTime<Utc>, marks: &HashMap<String, DateTime<Utc>>) -> Vec<u8> {
    let mut names: Vec<_> = marks.iter().collect();
    names.sort();
    let mut out = Vec::with_capacity(16 + names.len() * 90);
    out.extend_from_slice(&now.timestamp_millis().to_le_bytes());
    out.extend_from_slice(&(names.len() as u64).to_le_bytes());
    for (name, first_seen) in names {
        out.extend_from_slice(&first_seen.timestamp_millis().to_le_bytes());
        let len = u16::try_from(name.len()).expect("object names are short");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out
}

fn decode_mark(body: &[u8]) -> Option<HashMap<String, DateTime<Utc>>> {
    let mut pos = 8usize;
    let count = u64::from_le_bytes(body.get(pos..pos + 8)?.try_into().ok()?);
    pos += 8;
    let mut marks = HashMap::new();
    for _ in 0..count {
        let millis = i64::from_le_bytes(body.get(pos..pos + 8)?.try_into().ok()?);
        let len = u16::from_le_bytes(body.get(pos + 8..pos + 10)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(body.get(pos + 10..pos + 10 + len)?).ok()?;
        marks.insert(name.to_owned(), DateTime::from_timestamp_millis(millis)?);
        pos += 10 + len;
    }
    (pos == body.len()).then_some(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_trailing_bytes_are_refused() {
        let now = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        let marks: HashMap<_, _> = [
            ("chunks/ab/ab".to_owned(), now),
            ("indexes/x/y".to_owned(), now - TimeDelta::days(1)),
        ]
        .into();
        let mut body = encode_mark(now, &marks);
        assert_eq!(decode_mark(&body), Some(marks));
        body.push(0);
        assert_eq!(decode_mark(&body), None);
    }
}
