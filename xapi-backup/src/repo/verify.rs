//! Verify: read restore points back and check every chunk, and check the repository's
//! reference graph (manifests → indexes → chunks; missing objects, orphans).

use std::collections::HashSet;

use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

use super::chunk::{chunk_id_of, chunk_object};
use super::crypto::ChunkId;
use super::error::RepoError;
use super::index::IndexReader;
use super::manifest::{Manifest, StreamRecord};
use super::reader::fetch_chunk;
use super::repository::Repository;

/// Chunks read at once while verifying.
const CHUNKS_AT_ONCE: usize = 4;

/// One thing wrong in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// A manifest that does not read or decode.
    BadManifest {
        /// The manifest object.
        object: String,
        /// Why.
        error: String,
    },
    /// A chunk index that is missing or damaged.
    BadIndex {
        /// The restore point.
        restore_point: String,
        /// The stream's key.
        stream: String,
        /// The index object.
        object: String,
        /// Why.
        error: String,
    },
    /// A chunk an index references is not in the store.
    MissingChunk {
        /// The restore point.
        restore_point: String,
        /// The stream's key.
        stream: String,
        /// The chunk's number.
        chunk_number: u64,
        /// The chunk's first byte in the stream.
        offset: u64,
        /// The chunk object.
        object: String,
    },
    /// A chunk that does not read back as its name says (seal, checksum, hash, length).
    CorruptChunk {
        /// The restore point.
        restore_point: String,
        /// The stream's key.
        stream: String,
        /// The chunk's number.
        chunk_number: u64,
        /// The chunk's first byte in the stream.
        offset: u64,
        /// The chunk object.
        object: String,
        /// Why.
        error: String,
    },
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Restore points checked.
    pub restore_points: u64,
    /// Streams checked.
    pub streams: u64,
    /// Chunk references checked.
    pub chunk_references: u64,
    /// Chunks read back and checked.
    pub chunks_read: u64,
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
    /// Chunks and indexes that nothing references (not a problem: prune removes them).
    pub orphans: Vec<String>,
}

impl VerifyReport {
    /// True when no problem was found (orphans are not problems).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How deep [`Repository::check`] goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Read every referenced chunk back (once) and check it, not only that it exists.
    pub read_data: bool,
}

impl Repository {
    /// Reads every stored chunk of a restore point back and checks it (seal, zstd checksum,
    /// content hash, length); reports every missing or damaged chunk with its place.
    pub async fn verify_restore_point(&self, manifest: &Manifest) -> crate::Result<VerifyReport> {
        let mut report = VerifyReport {
            restore_points: 1,
            ..VerifyReport::default()
        };
        for stream in manifest.all_streams() {
            report.streams += 1;
            let entries = match self.stream_entries(manifest, stream).await {
                Ok(entries) => entries,
                Err(problem) => {
                    report.problems.push(problem);
                    continue;
                }
            };
            let mut checks = entries
                .map(|entry| {
                    let repo = self.clone();
                    let index = stream.index.clone();
                    async move {
                        let (number, id) = entry?;
                        Ok::<_, RepoError>((
                            number,
                            id,
                            fetch_chunk(&repo, &id, &index, number).await,
                        ))
                    }
                })
                .buffered(CHUNKS_AT_ONCE);
            while let Some(checked) = checks.next().await {
                let (number, id, result) = match checked {
                    Ok(checked) => checked,
                    Err(err) => {
                        report.problems.push(bad_index(manifest, stream, &err));
                        break;
                    }
                };
                report.chunk_references += 1;
                report.chunks_read += 1;
                if let Err(err) = result {
                    report
                        .problems
                        .push(chunk_problem(self, manifest, stream, number, &id, &err));
                }
            }
        }
        Ok(report)
    }

    /// Checks the whole repository: every manifest decodes, every index reads, every chunk
    /// referenced exists (and with `read_data` reads back intact); lists orphans.
    pub async fn check(&self, options: CheckOptions) -> crate::Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let present: HashSet<ChunkId> = self
            .store()
            .list("chunks")
            .try_filter_map(|info| async move { Ok(chunk_id_of(&info.name)) })
            .try_collect()
            .await?;
        let mut referenced: HashSet<ChunkId> = HashSet::new();
        let mut indexes: HashSet<String> = HashSet::new();
        for name in self.manifest_names("manifests").await? {
            let manifest = match self.read_manifest(&name).await {
                Ok(manifest) => manifest,
                // Forgotten since the listing.
                Err(crate::Error::Repo(RepoError::NotFound { .. })) => continue,
                Err(err) => {
                    report.problems.push(Problem::BadManifest {
                        object: name,
                        error: err.to_string(),
                    });
                    continue;
                }
            };
            report.restore_points += 1;
            for stream in manifest.all_streams() {
                report.streams += 1;
                indexes.insert(stream.index.clone());
                let mut entries = match self.stream_entries(&manifest, stream).await {
                    Ok(entries) => entries,
                    Err(problem) => {
                        report.problems.push(problem);
                        continue;
                    }
                };
                while let Some(entry) = entries.next().await {
                    let (number, id) = match entry {
                        Ok(entry) => entry,
                        Err(err) => {
                            report.problems.push(bad_index(&manifest, stream, &err));
                            break;
                        }
                    };
                    report.chunk_references += 1;
                    if !present.contains(&id) {
                        report.problems.push(Problem::MissingChunk {
                            restore_point: manifest.id.to_string(),
                            stream: stream.key.clone(),
                            chunk_number: number,
                            offset: number * u64::from(self.chunk_size()),
                            object: chunk_object(&id),
                        });
                    } else if options.read_data && referenced.insert(id) {
                        report.chunks_read += 1;
                        if let Err(err) = fetch_chunk(self, &id, &stream.index, number).await {
                            report
                                .problems
                                .push(chunk_problem(self, &manifest, stream, number, &id, &err));
                        }
                    } else {
                        referenced.insert(id);
                    }
                }
            }
        }
        let mut orphans: Vec<String> = present.difference(&referenced).map(chunk_object).collect();
        let index_objects: Vec<_> = self.store().list("indexes").try_collect().await?;
        orphans.extend(
            index_objects
                .into_iter()
                .map(|info| info.name)
                .filter(|name| !indexes.contains(name)),
        );
        orphans.sort();
        report.orphans = orphans;
        Ok(report)
    }

    /// The entries of a stream's index as a stream, or the problem opening it.
    async fn stream_entries(
        &self,
        manifest: &Manifest,
        stream: &StreamRecord,
    ) -> Result<futures::stream::BoxStream<'static, Result<(u64, ChunkId), RepoError>>, Problem>
    {
        let index = IndexReader::open(self.store(), self.sealer().clone(), &stream.index)
            .await
            .map_err(|err| bad_index(manifest, stream, &err))?;
        Ok(Box::pin(futures::stream::try_unfold(
            index,
            |mut index| async move { Ok(index.next_entry().await?.map(|entry| (entry, index))) },
        )))
    }
}

fn bad_index(manifest: &Manifest, stream: &StreamRecord, err: &RepoError) -> Problem {
    Problem::BadIndex {
        restore_point: manifest.id.to_string(),
        stream: stream.key.clone(),
        object: stream.index.clone(),
        error: err.to_string(),
    }
}

fn chunk_problem(
    repo: &Repository,
    manifest: &Manifest,
    stream: &StreamRecord,
    number: u64,
    id: &ChunkId,
    err: &RepoError,
) -> Problem {
    let offset = number * u64::from(repo.chunk_size());
    match err {
        RepoError::ChunkMissing { .. } => Problem::MissingChunk {
            restore_point: manifest.id.to_string(),
            stream: stream.key.clone(),
            chunk_number: number,
            offset,
            object: chunk_object(id),
        },
        _ => Problem::CorruptChunk {
            restore_point: manifest.id.to_string(),
            stream: stream.key.clone(),
            chunk_number: number,
            offset,
            object: chunk_object(id),
            error: err.to_string(),
        },
    }
}
