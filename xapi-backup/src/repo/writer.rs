//! Writing a restore point: streams in, chunks hashed, deduplicated, compressed, sealed and
//! stored (a few in flight at once), chunk indexes streamed, the manifest written last.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::task::JoinHandle;

use super::chunk::{self, chunk_id_of, chunk_object};
use super::crypto::ChunkId;
use super::error::RepoError;
use super::index::{IndexReader, IndexWriter, chunk_count};
use super::local_chunks::{self, StagedChunk};
use super::manifest::{
    MANIFEST_VERSION, Manifest, RestorePointId, RestorePointInfo, StreamRecord, StreamRole,
    StreamSpec, ToolInfo, is_safe_name, manifest_object,
};
use super::repository::Repository;

/// Chunks processed (hashed, checked, compressed, uploaded) at once per stream.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Chunk files of a local-directory repository written but not yet published (made durable
/// and named): the disk writes them back meanwhile, so that publishing rarely waits. They hold
/// page cache, not process memory.
const UNPUBLISHED_LAG: usize = 32;

/// Staged chunk files published at once, in one trip to the blocking pool.
const PUBLISH_BATCH: usize = 8;

/// Publish batches under way while the writer goes on: an `fdatasync` waits for the disk
/// (0.4 ms a chunk file here), which the chunks behind it need not do. One, so that the
/// blocking pool needs one thread more than the chunks in flight, not more (each thread that
/// allocates costs the process its own malloc arena).
const PUBLISHES_IN_FLIGHT: usize = 1;

/// Chunks recorded as already stored (`reuse_chunk`) that may wait, in order, behind the chunks
/// in flight before them, so that an incremental backup's unchanged chunks never wait for an
/// upload.
const RECORDED_IN_QUEUE: usize = 4096;

/// Existence checks in flight at once when a commit re-checks the chunks a stream reused.
const RECHECKS_IN_FLIGHT: usize = 16;

/// How long a commit waits for a chunk it reused while another writer of the same repository
/// handle was still staging it; after that the chunk is checked as it stands (missing: read
/// again from the source, or the commit fails with an error safe to retry).
const STAGED_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// A backup that ran longer than this re-checks every chunk it references before writing its
/// manifest, not only those it reused: prune's grace period must be longer than this.
pub(super) const RECHECK_ALL_AFTER: TimeDelta = TimeDelta::hours(1);

/// Gives back the bytes of a chunk of a stream, so that a reused chunk that vanished before the
/// manifest was written can be uploaded again.
pub trait ChunkSource {
    /// The `len` bytes of chunk `chunk_number` of the stream `stream_key`.
    fn read_chunk(
        &mut self,
        stream_key: &str,
        chunk_number: u64,
        len: usize,
    ) -> impl Future<Output = std::io::Result<Bytes>> + Send;
}

/// No source to read chunks again from: a vanished reused chunk fails the commit with
/// [`RepoError::ReusedChunksVanished`] (retrying the backup is safe).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChunkSource;

impl ChunkSource for NoChunkSource {
    async fn read_chunk(
        &mut self,
        stream_key: &str,
        chunk_number: u64,
        _len: usize,
    ) -> std::io::Result<Bytes> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("no source to read chunk {chunk_number} of {stream_key} again"),
        ))
    }
}

/// One bit per chunk number: which chunks a stream reused rather than uploaded (256 KiB for a
/// 2 TiB disk).
#[derive(Debug, Default)]
struct ChunkBits(Vec<u64>);

impl ChunkBits {
    fn set(&mut self, n: u64) {
        let word = (n / 64) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (n % 64);
    }

    fn contains(&self, n: u64) -> bool {
        self.0
            .get((n / 64) as usize)
            .is_some_and(|word| word & (1 << (n % 64)) != 0)
    }
}

/// A restore point being written. Nothing of it is listed until [`RestorePointWriter::commit`]
/// writes its manifest; if it is dropped instead, what it stored is left for prune.
#[derive(Debug)]
pub struct RestorePointWriter {
    repo: Repository,
    /// Chunks prune has marked as unreferenced: never reused, always uploaded again.
    marked: Arc<HashSet<ChunkId>>,
    id: RestorePointId,
    info: RestorePointInfo,
    started_at: DateTime<Utc>,
    /// Random, so that two writers given the same restore point id never share index names.
    writer_tag: String,
    ova_xml: Option<(StreamRecord, ChunkBits)>,
    streams: Vec<(StreamRecord, ChunkBits)>,
}

impl Repository {
    /// Starts a restore point with a fresh id.
    pub async fn begin(&self, info: RestorePointInfo) -> crate::Result<RestorePointWriter> {
        let id = RestorePointId::generate(self.clock().now());
        self.begin_with_id(info, id).await
    }

    /// Starts a restore point with the caller's id (for example derived from a job): if two
    /// writers use one id, exactly one commit succeeds.
    ///
    /// The writer reads prune's mark once: a chunk marked for deletion is uploaded again rather
    /// than reused, which gives it a fresh modification time that prune respects.
    pub async fn begin_with_id(
        &self,
        info: RestorePointInfo,
        id: RestorePointId,
    ) -> crate::Result<RestorePointWriter> {
        if !is_safe_name(&info.subject) {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "subject {:?}: use 1 to 100 letters, digits, -, _ or .",
                    info.subject
                ),
            }
            .into());
        }
        let marked = self
            .read_mark()
            .await?
            .into_keys()
            .filter_map(|name| chunk_id_of(&name))
            .collect();
        Ok(RestorePointWriter {
            repo: self.clone(),
            marked: Arc::new(marked),
            id,
            info,
            started_at: self.clock().now(),
            writer_tag: super::crypto::random_hex(4),
            ova_xml: None,
            streams: Vec::new(),
        })
    }
}

impl RestorePointWriter {
    /// The restore point's id.
    pub fn id(&self) -> &RestorePointId {
        &self.id
    }

    /// Starts a stream to be fed chunk by chunk ([`StreamWriter::write_chunk`]).
    pub async fn stream(&mut self, spec: StreamSpec) -> crate::Result<StreamWriter<'_>> {
        let duplicate = self
            .ova_xml
            .iter()
            .chain(&self.streams)
            .any(|(record, _)| record.key == spec.key);
        if duplicate || spec.key.is_empty() {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "stream key {:?} is empty or already used in this restore point",
                    spec.key
                ),
            }
            .into());
        }
        if spec.role == StreamRole::OvaXml && self.ova_xml.is_some() {
            return Err(RepoError::InvalidInput {
                reason: "a restore point has one ova.xml".to_owned(),
            }
            .into());
        }
        let number = self.streams.len() + usize::from(self.ova_xml.is_some());
        let index_name = format!("indexes/{}/{}-{number}", self.id, self.writer_tag);
        let chunk_size = self.repo.chunk_size();
        let index = IndexWriter::create(
            self.repo.store(),
            self.repo.sealer().clone(),
            &index_name,
            spec.size,
            chunk_size,
        )
        .await?;
        let record = StreamRecord {
            key: spec.key,
            role: spec.role,
            size: spec.size,
            vdi_uuid: spec.vdi_uuid,
            name: spec.name,
            index: index_name,
            stored_chunks: 0,
            zero_chunks: 0,
            new_chunks: 0,
            new_bytes: 0,
        };
        Ok(StreamWriter {
            chunk_count: chunk_count(record.size, chunk_size),
            record,
            rp: self,
            index: Some(index),
            next_chunk: 0,
            in_flight: VecDeque::new(),
            storing: 0,
            reused: ChunkBits::default(),
            settled: Vec::new(),
            unpublished: VecDeque::new(),
            publishing: VecDeque::new(),
            published_dirs: BTreeSet::new(),
        })
    }

    /// Stores a whole stream read from `reader`, which must yield exactly `spec.size` bytes.
    pub async fn write_stream<R: AsyncRead + Unpin>(
        &mut self,
        spec: StreamSpec,
        mut reader: R,
    ) -> crate::Result<StreamRecord> {
        let size = spec.size;
        let key = spec.key.clone();
        let chunk_size = u64::from(self.repo.chunk_size());
        let mut writer = self.stream(spec).await?;
        let mut offset = 0u64;
        let mut number = 0u64;
        while offset < size {
            let len = (size - offset).min(chunk_size) as usize;
            let mut buf = BytesMut::with_capacity(len);
            while buf.len() < len {
                let read = reader
                    .read_buf(&mut buf)
                    .await
                    .map_err(|source| RepoError::Io {
                        operation: format!(
                            "reading stream {key} at byte {}",
                            offset + buf.len() as u64
                        ),
                        source,
                    })?;
                if read == 0 {
                    return Err(RepoError::InvalidInput {
                        reason: format!(
                            "stream {key} ended at byte {} but its size is {size}",
                            offset + buf.len() as u64
                        ),
                    }
                    .into());
                }
            }
            writer.write_chunk(number, buf.freeze()).await?;
            offset += len as u64;
            number += 1;
        }
        let mut probe = [0u8; 1];
        let extra = reader
            .read(&mut probe)
            .await
            .map_err(|source| RepoError::Io {
                operation: format!("reading stream {key} at byte {size}"),
                source,
            })?;
        if extra != 0 {
            return Err(RepoError::InvalidInput {
                reason: format!("stream {key} is longer than its size {size}"),
            }
            .into());
        }
        writer.finish().await
    }

    /// Stores the VM's `ova.xml`.
    pub async fn write_ova_xml(&mut self, xml: &[u8]) -> crate::Result<StreamRecord> {
        let spec = StreamSpec {
            key: "ova.xml".to_owned(),
            role: StreamRole::OvaXml,
            size: xml.len() as u64,
            vdi_uuid: None,
            name: None,
        };
        self.write_stream(spec, xml).await
    }

    /// Writes the manifest: first re-checks that the chunks this backup reused (and, for a long
    /// backup, all of them) still exist. Vanished reused chunks fail the commit
    /// ([`RepoError::ReusedChunksVanished`]); [`RestorePointWriter::commit_with`] uploads them
    /// again instead.
    pub async fn commit(self) -> crate::Result<Manifest> {
        self.commit_with(&mut NoChunkSource).await
    }

    /// [`RestorePointWriter::commit`], reading vanished chunks again from `source` and storing
    /// them before the manifest is written.
    pub async fn commit_with<S: ChunkSource>(self, source: &mut S) -> crate::Result<Manifest> {
        let now = self.repo.clock().now();
        let recheck_all = now - self.started_at >= RECHECK_ALL_AFTER;
        for (record, reused) in self.ova_xml.iter().chain(&self.streams) {
            self.recheck(record, reused, recheck_all, source).await?;
        }
        let manifest = Manifest {
            manifest_version: MANIFEST_VERSION,
            id: self.id.clone(),
            kind: self.info.kind,
            subject: self.info.subject.clone(),
            created_at: self.started_at,
            completed_at: self.repo.clock().now(),
            tool: ToolInfo::this_build(),
            job_id: self.info.job_id.clone(),
            source: self.info.source.clone(),
            vm: self.info.vm.clone(),
            ova_xml: self.ova_xml.as_ref().map(|(record, _)| record.clone()),
            streams: self
                .streams
                .iter()
                .map(|(record, _)| record.clone())
                .collect(),
        };
        let sealer = self.repo.sealer();
        let name = manifest_object(
            manifest.kind,
            &sealer.subject_dir(&manifest.subject),
            &manifest.id,
        );
        let bytes = manifest.encode(&name, sealer);
        match self.repo.store().put_new(&name, Bytes::from(bytes)).await {
            Ok(()) => Ok(manifest),
            Err(RepoError::AlreadyExists { object }) => {
                Err(RepoError::RestorePointExists { object }.into())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Checks that the chunks of one stream that need it still exist; uploads vanished ones
    /// from `source`.
    async fn recheck<S: ChunkSource>(
        &self,
        record: &StreamRecord,
        reused: &ChunkBits,
        all: bool,
        source: &mut S,
    ) -> Result<(), RepoError> {
        let store = self.repo.store();
        let sealer = self.repo.sealer();
        let chunk_size = u64::from(self.repo.chunk_size());
        let index = IndexReader::open(store, sealer.clone(), &record.index).await?;
        let entries = futures::stream::try_unfold(index, |mut index| async move {
            Ok::<_, RepoError>(index.next_entry().await?.map(|entry| (entry, index)))
        });
        // The existence checks (a HEAD each on S3) run a few at a time, in index order; a
        // vanished chunk is then read again and uploaded one at a time.
        // On a local directory a chunk may be another writer's, staged and not yet named
        // (waited for), or named and its directory not yet synced (synced below, before the
        // manifest).
        let checks = entries
            .try_filter(|&(number, _)| std::future::ready(all || reused.contains(number)))
            .map_ok(|(number, id)| async move {
                if let Some(staging) = store.staging() {
                    staging.settled(&id, STAGED_WAIT).await;
                }
                let object = chunk_object(&id);
                let present = store.exists(&object).await?;
                Ok::<_, RepoError>((number, id, object, present))
            })
            .try_buffered(RECHECKS_IN_FLIGHT);
        let mut checks = std::pin::pin!(checks);
        let mut vanished = 0u64;
        let mut first_vanished = None;
        let mut dirs = BTreeSet::new();
        while let Some((number, id, object, present)) = checks.try_next().await? {
            if present {
                if let Some(dir) = store
                    .local_file(&object)
                    .and_then(|file| file.parent().map(std::path::Path::to_owned))
                {
                    dirs.insert(dir);
                }
                continue;
            }
            let len = (record.size - number * chunk_size).min(chunk_size) as usize;
            if let Ok(data) = source.read_chunk(&record.key, number, len).await {
                if sealer.chunk_id(&data) != id || data.len() != len {
                    return Err(RepoError::InvalidInput {
                        reason: format!(
                            "stream {}: chunk {number} read again differs from what was backed up",
                            record.key
                        ),
                    });
                }
                let level = self.repo.config().compression.zstd_level();
                let sealer = sealer.clone();
                let encoded =
                    tokio::task::spawn_blocking(move || chunk::encode(&sealer, id, data, level))
                        .await
                        .map_err(|err| RepoError::Task(err.to_string()))?;
                store.put_pieces(&encoded.object, encoded.pieces).await?;
                tracing::info!(object = %encoded.object, chunk = number, stream = %record.key, "re-uploaded a reused chunk that vanished");
            } else {
                vanished += 1;
                first_vanished.get_or_insert(number);
            }
        }
        if !dirs.is_empty() {
            local_chunks::off_runtime(
                "making the directories of reused chunks durable",
                move || local_chunks::sync_dirs(&dirs),
            )
            .await?;
        }
        match first_vanished {
            None => Ok(()),
            Some(first_chunk) => Err(RepoError::ReusedChunksVanished {
                disk: record.key.clone(),
                count: vanished,
                first_chunk,
            }),
        }
    }
}

/// What happened to one chunk.
#[derive(Debug)]
enum ChunkOutcome {
    /// All zeros: not stored.
    Zero,
    /// Uploaded by this writer; in a local-directory repository, still to be published.
    New {
        id: ChunkId,
        bytes: u64,
        staged: Option<StagedChunk>,
    },
    /// Already in the store.
    Reused { id: ChunkId },
}

/// A chunk between being handed to a [`StreamWriter`] and its entry in the index, which is
/// written in chunk order.
#[derive(Debug)]
enum Queued {
    /// Being named, checked and stored.
    Storing(JoinHandle<Result<ChunkOutcome, RepoError>>),
    /// Recorded as an already stored chunk; its entry waits for the chunks before it.
    Recorded(ChunkId),
}

/// A stream of a restore point being fed chunk by chunk, in increasing chunk number; a chunk
/// number skipped is a chunk of zeros.
#[derive(Debug)]
pub struct StreamWriter<'a> {
    rp: &'a mut RestorePointWriter,
    record: StreamRecord,
    index: Option<IndexWriter>,
    chunk_count: u64,
    next_chunk: u64,
    in_flight: VecDeque<(u64, Queued)>,
    /// How many of `in_flight` are [`Queued::Storing`].
    storing: usize,
    reused: ChunkBits,
    /// Chunks settled since [`StreamWriter::drain_stored`] last ran (for resumable writers);
    /// `None` for a chunk of zeros. A staged chunk counts once published.
    settled: Vec<(u64, Option<ChunkId>)>,
    /// Staged chunk files in index order, with their chunk numbers, not yet published.
    unpublished: VecDeque<(u64, ChunkId, StagedChunk)>,
    /// Batches of them being published, oldest first.
    publishing: VecDeque<local_chunks::Publishing<(u64, ChunkId)>>,
    /// Directories whose entries publishing changed, synced before the stream finishes.
    published_dirs: BTreeSet<std::path::PathBuf>,
}

impl StreamWriter<'_> {
    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.record.key
    }

    /// Stores chunk `chunk_number` (bytes `chunk_number × chunk size` onwards): exactly one
    /// chunk size long, shorter only for the stream's last chunk.
    pub async fn write_chunk(&mut self, chunk_number: u64, data: Bytes) -> crate::Result<()> {
        let chunk_size = u64::from(self.rp.repo.chunk_size());
        if chunk_number < self.next_chunk || chunk_number >= self.chunk_count {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "stream {}: chunk {chunk_number} is out of order or past its {} chunks",
                    self.record.key, self.chunk_count
                ),
            }
            .into());
        }
        let expected = (self.record.size - chunk_number * chunk_size).min(chunk_size);
        if data.len() as u64 != expected {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "stream {}: chunk {chunk_number} (byte {}) has {} bytes, expected {expected}",
                    self.record.key,
                    chunk_number * chunk_size,
                    data.len()
                ),
            }
            .into());
        }
        self.next_chunk = chunk_number + 1;
        while self.storing >= CHUNKS_IN_FLIGHT {
            self.settle_one().await?;
        }
        let repo = self.rp.repo.clone();
        let marked = Arc::clone(&self.rp.marked);
        let task = if repo.store().local_root().is_some() {
            // all of it on a blocking thread: no task in between
            tokio::task::spawn_blocking(move || store_local_chunk(&repo, &marked, data))
        } else {
            tokio::spawn(store_chunk(repo, marked, data))
        };
        self.in_flight
            .push_back((chunk_number, Queued::Storing(task)));
        self.storing += 1;
        Ok(())
    }

    /// Records chunk `chunk_number` as the already stored chunk `id`, without its bytes (an
    /// incremental backup's unchanged chunk, or one stored by an interrupted run being resumed).
    /// Same order rule as [`StreamWriter::write_chunk`]; like a deduplicated chunk, its existence
    /// is checked again before the manifest is written.
    pub async fn reuse_chunk(&mut self, chunk_number: u64, id: ChunkId) -> crate::Result<()> {
        if chunk_number < self.next_chunk || chunk_number >= self.chunk_count {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "stream {}: chunk {chunk_number} is out of order or past its {} chunks",
                    self.record.key, self.chunk_count
                ),
            }
            .into());
        }
        self.next_chunk = chunk_number + 1;
        if self.in_flight.is_empty() {
            return Ok(self.record_reused(chunk_number, id).await?);
        }
        // Chunks before it are still being stored: it queues behind them rather than waiting.
        while self.in_flight.len() >= RECORDED_IN_QUEUE {
            self.settle_one().await?;
        }
        self.in_flight
            .push_back((chunk_number, Queued::Recorded(id)));
        Ok(())
    }

    /// The chunks settled since the last call, by chunk number, with their id (`None`: a chunk
    /// of zeros, not stored): what a resumable writer persists so that an interrupted run can
    /// [`StreamWriter::reuse_chunk`] (or skip) them instead of reading them again.
    pub fn drain_stored(&mut self) -> Vec<(u64, Option<ChunkId>)> {
        std::mem::take(&mut self.settled)
    }

    /// Waits for every chunk in flight and records it in the index (a resumable writer calls
    /// this before saving its progress when its source fails).
    pub async fn flush(&mut self) -> crate::Result<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        self.start_publishing(self.unpublished.len());
        while !self.publishing.is_empty() {
            self.settle_publishing().await?;
        }
        self.sync_published_dirs().await?;
        Ok(())
    }

    /// Starts publishing the `count` oldest staged chunk files (durable, then named), in one
    /// trip to the blocking pool.
    fn start_publishing(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        let batch = self
            .unpublished
            .drain(..count)
            .map(|(number, id, staged)| ((number, id), staged))
            .collect();
        self.publishing.push_back(local_chunks::publish_all(batch));
    }

    /// Waits for the oldest publish batch under way.
    async fn settle_publishing(&mut self) -> Result<(), RepoError> {
        let Some(publishing) = self.publishing.pop_front() else {
            return Ok(());
        };
        for ((number, id), dir) in publishing.wait().await? {
            self.settled.push((number, Some(id)));
            self.published_dirs.insert(dir);
        }
        Ok(())
    }

    /// Makes the names given since the last call durable (an fsync per directory).
    async fn sync_published_dirs(&mut self) -> Result<(), RepoError> {
        if self.published_dirs.is_empty() {
            return Ok(());
        }
        let dirs = std::mem::take(&mut self.published_dirs);
        local_chunks::off_runtime("making the chunk directories durable", move || {
            local_chunks::sync_dirs(&dirs)
        })
        .await
    }

    /// Writes the index entry of chunk `number`, an already stored chunk `id` reused.
    async fn record_reused(&mut self, number: u64, id: ChunkId) -> Result<(), RepoError> {
        self.index
            .as_mut()
            .expect("the index lives until finish or drop")
            .push(number, id)
            .await?;
        self.reused.set(number);
        Ok(())
    }

    /// Waits for the oldest chunk in flight and records it in the index.
    async fn settle_one(&mut self) -> Result<(), RepoError> {
        let Some((number, queued)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let outcome = match queued {
            Queued::Storing(handle) => {
                self.storing -= 1;
                handle
                    .await
                    .map_err(|err| RepoError::Task(err.to_string()))??
            }
            Queued::Recorded(id) => return self.record_reused(number, id).await,
        };
        let index = self
            .index
            .as_mut()
            .expect("the index lives until finish or drop");
        match outcome {
            ChunkOutcome::Zero => self.settled.push((number, None)),
            ChunkOutcome::New { id, bytes, staged } => {
                index.push(number, id).await?;
                self.record.new_chunks += 1;
                self.record.new_bytes += bytes;
                match staged {
                    Some(staged) => {
                        self.unpublished.push_back((number, id, staged));
                        if self.unpublished.len() >= UNPUBLISHED_LAG + PUBLISH_BATCH {
                            self.start_publishing(PUBLISH_BATCH);
                            while self.publishing.len() > PUBLISHES_IN_FLIGHT {
                                self.settle_publishing().await?;
                            }
                        }
                    }
                    None => self.settled.push((number, Some(id))),
                }
            }
            ChunkOutcome::Reused { id } => {
                index.push(number, id).await?;
                self.settled.push((number, Some(id)));
                self.reused.set(number);
            }
        }
        Ok(())
    }

    /// Waits for the chunks in flight, completes the index and adds the stream to the restore
    /// point.
    pub async fn finish(mut self) -> crate::Result<StreamRecord> {
        if let Err(err) = self.flush().await {
            if let Some(index) = self.index.take() {
                // The stream failed: its index never appears (the error that matters is the
                // chunk's, not the abort's).
                let _ = index.abort().await;
            }
            return Err(err);
        }
        let index = self
            .index
            .take()
            .expect("the index lives until finish or drop");
        self.record.stored_chunks = index.entries();
        self.record.zero_chunks = self.chunk_count - index.entries();
        index.finish().await?;
        let reused = std::mem::take(&mut self.reused);
        let record = self.record.clone();
        if record.role == StreamRole::OvaXml {
            self.rp.ova_xml = Some((record.clone(), reused));
        } else {
            self.rp.streams.push((record.clone(), reused));
        }
        Ok(record)
    }
}

/// Hashes a chunk, and stores it unless it is all zeros or already there (and not marked by
/// prune).
///
/// A local-directory repository does all of it on one blocking thread instead
/// ([`store_local_chunk`]). Here one trip to the blocking pool names the chunk and, when it is
/// stored as is (no compression, no encryption), also encodes it: that costs one xxh64 pass and
/// no copy, little enough to spend even on a chunk that turns out to be stored already. A
/// chunk to compress or encrypt is encoded only once it is known to be new.
async fn store_chunk(
    repo: Repository,
    marked: Arc<HashSet<ChunkId>>,
    data: Bytes,
) -> Result<ChunkOutcome, RepoError> {
    let sealer = repo.sealer().clone();
    let level = repo.config().compression.zstd_level();
    let stored_as_is = level.is_none() && !sealer.is_encrypted();
    let named = tokio::task::spawn_blocking(move || {
        if chunk::is_zero(&data) {
            return None;
        }
        let id = sealer.chunk_id(&data);
        Some(if stored_as_is {
            (id, Ok(chunk::encode(&sealer, id, data, None)))
        } else {
            (id, Err(data))
        })
    })
    .await
    .map_err(|err| RepoError::Task(err.to_string()))?;
    let Some((id, encoded)) = named else {
        return Ok(ChunkOutcome::Zero);
    };
    let store = repo.store();
    if !marked.contains(&id) && store.exists(&chunk_object(&id)).await? {
        return Ok(ChunkOutcome::Reused { id });
    }
    let encoded = match encoded {
        Ok(encoded) => encoded,
        Err(data) => {
            let sealer = repo.sealer().clone();
            tokio::task::spawn_blocking(move || chunk::encode(&sealer, id, data, level))
                .await
                .map_err(|err| RepoError::Task(err.to_string()))?
        }
    };
    let bytes = encoded.stored_len();
    store.put_pieces(&encoded.object, encoded.pieces).await?;
    Ok(ChunkOutcome::New {
        id,
        bytes,
        staged: None,
    })
}

/// [`store_chunk`] in a local-directory repository, on a blocking thread: name the chunk (zero
/// check, BLAKE3), look for its file (or another writer staging it), encode it and stage it
/// ([`local_chunks::stage`]); the writer publishes it later.
fn store_local_chunk(
    repo: &Repository,
    marked: &HashSet<ChunkId>,
    data: Bytes,
) -> Result<ChunkOutcome, RepoError> {
    if chunk::is_zero(&data) {
        return Ok(ChunkOutcome::Zero);
    }
    let sealer = repo.sealer();
    let id = sealer.chunk_id(&data);
    let object = chunk_object(&id);
    let path = repo
        .store()
        .local_file(&object)
        .expect("a local-directory repository");
    let io = |operation: &str| {
        let operation = format!("{operation} {}", path.display());
        move |source| RepoError::Io { operation, source }
    };
    let staging = repo
        .store()
        .staging()
        .expect("a local-directory repository");
    let marked = marked.contains(&id);
    let claim = match staging.claim(id) {
        Some(claim) => {
            if !marked {
                match std::fs::metadata(&path) {
                    Ok(_) => return Ok(ChunkOutcome::Reused { id }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("looking for chunk file")(e)),
                }
            }
            claim
        }
        // another writer is staging it: referenced, waited for before the manifest
        None if !marked => return Ok(ChunkOutcome::Reused { id }),
        // Prune listed it: this writer stores a fresh copy whoever else is at it (what another
        // writer stages may yet be dropped, leaving only the copy prune is about to delete).
        None => local_chunks::Claim::unshared(id),
    };
    let encoded = chunk::encode(sealer, id, data, repo.config().compression.zstd_level());
    let bytes = encoded.stored_len();
    let staged =
        local_chunks::stage(&path, &encoded.pieces, claim).map_err(io("writing chunk file"))?;
    Ok(ChunkOutcome::New {
        id,
        bytes,
        staged: Some(staged),
    })
}
