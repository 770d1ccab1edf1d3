//! Reading a stream of a restore point back: the index streamed, chunks fetched a few at a time,
//! each checked (seal, zstd checksum, content hash, length), zero chunks filled in.

use std::io;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};

use super::chunk::{self, chunk_object};
use super::config::CHUNK_SIZE;
use super::crypto::ChunkId;
use super::error::RepoError;
use super::index::{IndexReader, chunk_count};
use super::manifest::{Manifest, StreamRecord};
use super::repository::Repository;

/// Chunks fetched ahead of the reader.
const CHUNKS_AHEAD: usize = 4;

/// One chunk of zeros, shared by every zero chunk handed out.
static ZEROS: [u8; CHUNK_SIZE as usize] = [0; CHUNK_SIZE as usize];

/// A stream's bytes, one chunk per item, every chunk verified.
pub type ChunkStream = BoxStream<'static, Result<Bytes, RepoError>>;

/// A stream's bytes as an `AsyncRead`. A failure comes out as an `io::Error` whose inner error
/// is the [`RepoError`] (`err.get_ref()` then `downcast_ref::<RepoError>()`).
pub type StreamReader = tokio_util::io::StreamReader<BoxStream<'static, io::Result<Bytes>>, Bytes>;

/// What the chunk at one chunk number is.
enum Slot {
    Zero(usize),
    Stored {
        number: u64,
        id: ChunkId,
        len: usize,
    },
}

struct Walk {
    index: IndexReader,
    pending: Option<(u64, ChunkId)>,
    index_done: bool,
    next: u64,
    count: u64,
    size: u64,
    chunk_size: u64,
}

impl Repository {
    /// The stream `key` of a restore point as verified chunks.
    pub async fn stream_chunks(
        &self,
        manifest: &Manifest,
        key: &str,
    ) -> crate::Result<ChunkStream> {
        let record = find_stream(manifest, key)?;
        Ok(self.chunks_of(record).await?)
    }

    /// The stream `key` of a restore point (a disk's VDI key, `ova.xml`, …) as an `AsyncRead`.
    pub async fn read_stream(&self, manifest: &Manifest, key: &str) -> crate::Result<StreamReader> {
        let chunks = self.stream_chunks(manifest, key).await?;
        Ok(tokio_util::io::StreamReader::new(Box::pin(
            chunks.map_err(io::Error::other),
        )))
    }

    /// The VM's `ova.xml`, verified.
    pub async fn read_ova_xml(&self, manifest: &Manifest) -> crate::Result<Vec<u8>> {
        let record = manifest
            .ova_xml
            .as_ref()
            .ok_or_else(|| RepoError::InvalidInput {
                reason: format!("restore point {} has no ova.xml", manifest.id),
            })?;
        let mut out = Vec::with_capacity(record.size as usize);
        let mut chunks = self.chunks_of(record).await?;
        while let Some(chunk) = chunks.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The chunk index of the stream `key` of a restore point, entry by entry (an incremental
    /// backup walks the previous restore point's index beside the disk it reads).
    pub async fn stream_index(
        &self,
        manifest: &Manifest,
        key: &str,
    ) -> crate::Result<IndexEntries> {
        let record = find_stream(manifest, key)?;
        let index = IndexReader::open(self.store(), self.sealer().clone(), &record.index).await?;
        Ok(IndexEntries { index })
    }

    /// The bytes of the stored chunk `id`, checked (chunk `number` of the stream `key` of
    /// `manifest`, named in errors).
    pub async fn read_chunk(
        &self,
        manifest: &Manifest,
        key: &str,
        number: u64,
        id: &ChunkId,
    ) -> crate::Result<Bytes> {
        let record = find_stream(manifest, key)?;
        Ok(fetch_chunk(self, id, &record.index, number).await?)
    }

    /// The verified chunks of a stream, in order.
    pub(crate) async fn chunks_of(&self, record: &StreamRecord) -> Result<ChunkStream, RepoError> {
        let index = IndexReader::open(self.store(), self.sealer().clone(), &record.index).await?;
        if index.disk_size() != record.size || index.chunk_size() != self.chunk_size() {
            return Err(RepoError::CorruptIndex {
                object: record.index.clone(),
                offset: 8,
                reason: format!(
                    "the index describes {} bytes in chunks of {}, the manifest {} bytes",
                    index.disk_size(),
                    index.chunk_size(),
                    record.size
                ),
            });
        }
        let chunk_size = u64::from(self.chunk_size());
        let walk = Walk {
            index,
            pending: None,
            index_done: false,
            next: 0,
            count: chunk_count(record.size, self.chunk_size()),
            size: record.size,
            chunk_size,
        };
        let slots = futures::stream::try_unfold(walk, |mut walk| async move {
            if walk.next >= walk.count {
                if !walk.index_done && walk.pending.is_none() {
                    // Drain the end frame so that a damaged tail is still reported.
                    if let Some((number, _)) = walk.index.next_entry().await? {
                        return Err(RepoError::CorruptIndex {
                            object: walk.index.name().to_owned(),
                            offset: 0,
                            reason: format!("entry for chunk {number} past the end"),
                        });
                    }
                }
                return Ok(None);
            }
            if walk.pending.is_none() && !walk.index_done {
                walk.pending = walk.index.next_entry().await?;
                walk.index_done = walk.pending.is_none();
            }
            let number = walk.next;
            let len = (walk.size - number * walk.chunk_size).min(walk.chunk_size) as usize;
            let slot = match walk.pending {
                Some((entry, id)) if entry == number => {
                    walk.pending = None;
                    Slot::Stored { number, id, len }
                }
                _ => Slot::Zero(len),
            };
            walk.next += 1;
            Ok(Some((slot, walk)))
        });
        let repo = self.clone();
        let index_name = record.index.clone();
        Ok(Box::pin(
            slots
                .map_ok(move |slot| fetch_slot(repo.clone(), index_name.clone(), slot))
                .try_buffered(CHUNKS_AHEAD),
        ))
    }
}

/// A stream's chunk index read entry by entry: `(chunk number, chunk id)` in increasing chunk
/// number; a number not listed is a chunk of zeros.
pub struct IndexEntries {
    index: IndexReader,
}

impl std::fmt::Debug for IndexEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexEntries")
            .field("index", &self.index.name())
            .finish()
    }
}

impl IndexEntries {
    /// The next entry, `None` at the end.
    pub async fn next_entry(&mut self) -> crate::Result<Option<(u64, ChunkId)>> {
        Ok(self.index.next_entry().await?)
    }
}

/// The bytes of one slot: zeros, or a stored chunk fetched and checked.
async fn fetch_slot(repo: Repository, index: String, slot: Slot) -> Result<Bytes, RepoError> {
    let (number, id, len) = match slot {
        Slot::Zero(len) => return Ok(Bytes::from_static(&ZEROS[..len])),
        Slot::Stored { number, id, len } => (number, id, len),
    };
    let data = fetch_chunk(&repo, &id, &index, number).await?;
    if data.len() != len {
        return Err(RepoError::CorruptObject {
            object: chunk_object(&id),
            offset: 0,
            reason: format!(
                "chunk {number} of {index} holds {} bytes, expected {len}",
                data.len()
            ),
        });
    }
    Ok(data)
}

/// Fetches chunk `id` (chunk `number` of `index`) and checks it.
pub(crate) async fn fetch_chunk(
    repo: &Repository,
    id: &ChunkId,
    index: &str,
    number: u64,
) -> Result<Bytes, RepoError> {
    let object = chunk_object(id);
    let stored = match repo.store().get(&object).await {
        Ok(bytes) => bytes,
        Err(RepoError::NotFound { object }) => {
            return Err(RepoError::ChunkMissing {
                index: index.to_owned(),
                chunk_number: number,
                disk_offset: number * u64::from(repo.chunk_size()),
                object,
            });
        }
        Err(err) => return Err(err),
    };
    let sealer = repo.sealer().clone();
    let chunk_size = repo.chunk_size() as usize;
    let id = *id;
    let data =
        tokio::task::spawn_blocking(move || chunk::decode(&sealer, &id, &stored, chunk_size))
            .await
            .map_err(|err| RepoError::Task(err.to_string()))??;
    Ok(Bytes::from(data))
}

/// The stream `key` of `manifest`.
fn find_stream<'m>(manifest: &'m Manifest, key: &str) -> Result<&'m StreamRecord, RepoError> {
    manifest.stream(key).ok_or_else(|| RepoError::InvalidInput {
        reason: format!("restore point {} has no stream {key:?}", manifest.id),
    })
}
