//! One disk of a snapshot into a restore point over NBD: whole, or only its changed blocks with
//! every touched 1 MiB chunk rebuilt from the previous restore point's chunk and the unchanged
//! chunks referenced unread; chunks an interrupted run stored taken over; progress saved for a
//! resume as it goes.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::changed::ChangedBlocks;
use super::nbd::{NbdClient, NbdError};
use super::report::{DiskMode, DiskReport};
use super::resume::{ResumeFile, ResumeState};
use crate::engine_error::{EngineError, backup};
use crate::repo::{ChunkId, IndexEntries, Manifest, Repository, RestorePointWriter, StreamSpec};

/// Chunks planned and read at once (reads of one batch are pipelined and coalesced; a batch
/// that fails is read again by a resumed run).
const BATCH_CHUNKS: u64 = 8;
/// How often the resume state is saved during a transfer.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How a disk is to be read.
#[derive(Debug)]
pub(crate) enum Source {
    /// Whole.
    Full,
    /// Its changed blocks, the rest from the previous restore point's stream `key`.
    Changed {
        changed: ChangedBlocks,
        previous: Box<Manifest>,
        key: String,
    },
}

/// One disk to transfer.
#[derive(Debug)]
pub(crate) struct DiskJob {
    pub spec: StreamSpec,
    pub mode: DiskMode,
    pub source: Source,
}

/// Where the resume state goes while the disk is transferred.
pub(crate) struct Progress<'a> {
    pub state: &'a mut ResumeState,
    pub file: Option<&'a ResumeFile>,
    pub last_save: Instant,
}

impl Progress<'_> {
    async fn record(
        &mut self,
        key: &str,
        stored: &[(u64, Option<ChunkId>)],
        force: bool,
    ) -> Result<(), EngineError> {
        self.state.add(key, stored);
        if let Some(file) = self.file
            && (force || self.last_save.elapsed() >= SAVE_EVERY)
        {
            file.save(self.state).await?;
            self.last_save = Instant::now();
        }
        Ok(())
    }
}

/// What to do with one chunk.
enum Action {
    /// All zeros (in the previous restore point and unchanged, or settled as zeros by an
    /// interrupted run): nothing to store.
    Zero(bool),
    /// Stored already (previous restore point, or an interrupted run).
    Reference(ChunkId, bool),
    /// Read whole.
    Read,
    /// Changed blocks over the previous chunk (`None`: zeros).
    Rebuild(Option<ChunkId>),
}

/// The previous restore point's index, walked beside the disk.
struct Previous<'a> {
    repo: &'a Repository,
    manifest: &'a Manifest,
    key: &'a str,
    entries: IndexEntries,
    next: Option<(u64, ChunkId)>,
    done: bool,
}

impl Previous<'_> {
    /// The chunk id of chunk `number` (`None`: zeros). Numbers must be asked in increasing order.
    async fn id_of(&mut self, number: u64) -> Result<Option<ChunkId>, EngineError> {
        loop {
            if self.next.is_none() && !self.done {
                self.next = self
                    .entries
                    .next_entry()
                    .await
                    .map_err(backup("reading the previous restore point's index"))?;
                self.done = self.next.is_none();
            }
            match self.next {
                Some((n, _)) if n < number => self.next = None,
                Some((n, id)) if n == number => return Ok(Some(id)),
                _ => return Ok(None),
            }
        }
    }
}

/// Transfers one disk into `point` from `nbd`, taking over the chunks in `resumed`.
pub(crate) async fn transfer_disk(
    repo: &Repository,
    point: &mut RestorePointWriter,
    nbd: &mut [NbdClient],
    job: DiskJob,
    resumed: &BTreeMap<u64, Option<ChunkId>>,
    progress: &mut Progress<'_>,
    in_flight: usize,
) -> Result<DiskReport, EngineError> {
    let chunk_size = u64::from(repo.chunk_size());
    let size = job.spec.size;
    let key = job.spec.key.clone();
    // the resume state names disks by the snapshot VDI (export ids change between exports)
    let vdi_uuid = job.spec.vdi_uuid.clone().unwrap_or_else(|| key.clone());
    let mut report = DiskReport {
        key: key.clone(),
        vdi_uuid: job.spec.vdi_uuid.clone().unwrap_or_default(),
        size,
        mode: job.mode.clone(),
        nbd_bytes_read: 0,
        nbd_connections: nbd.len(),
        changed_bytes: 0,
        chunks_rebuilt: 0,
        chunks_reused: 0,
        chunks_read: 0,
        chunks_resumed: 0,
    };
    let exported = nbd.iter().map(|c| c.export().size).min().unwrap_or(0);
    if exported < size {
        return Err(EngineError::Unexpected(format!(
            "disk {key}: the NBD export has {exported} bytes, the snapshot's disk {size}"
        )));
    }
    let mut previous = match &job.source {
        Source::Full => None,
        Source::Changed {
            changed,
            previous,
            key: previous_key,
        } => {
            report.changed_bytes = changed.changed_bytes();
            let entries = repo
                .stream_index(previous, previous_key)
                .await
                .map_err(backup("opening the previous restore point's index"))?;
            Some(Previous {
                repo,
                manifest: previous,
                key: previous_key,
                entries,
                next: None,
                done: false,
            })
        }
    };
    let mut stream = point
        .stream(job.spec)
        .await
        .map_err(backup("starting a disk stream"))?;
    let count = size.div_ceil(chunk_size);
    let mut first = 0;
    while first < count {
        let last = (first + BATCH_CHUNKS).min(count);
        let mut actions = Vec::with_capacity((last - first) as usize);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut add_range = |offset: u64, length: u64| match ranges.last_mut() {
            Some((at, len)) if *at + *len == offset => *len += length,
            _ => ranges.push((offset, length)),
        };
        for number in first..last {
            let start = number * chunk_size;
            let end = (start + chunk_size).min(size);
            let before = match previous.as_mut() {
                Some(previous) => previous.id_of(number).await?,
                None => None,
            };
            let action = if let Some(id) = resumed.get(&number) {
                id.map_or(Action::Zero(true), |id| Action::Reference(id, true))
            } else {
                match &job.source {
                    Source::Full => {
                        add_range(start, end - start);
                        Action::Read
                    }
                    Source::Changed { changed, .. } if changed.any_in(start, end) => {
                        for (offset, length) in changed.runs(start, end) {
                            add_range(offset, length);
                        }
                        Action::Rebuild(before)
                    }
                    Source::Changed { .. } => {
                        before.map_or(Action::Zero(false), |id| Action::Reference(id, false))
                    }
                }
            };
            actions.push((number, start, end, action));
        }
        let mut pieces = match read_shared(nbd, &ranges, in_flight).await {
            Ok(pieces) => pieces,
            Err(source) => {
                stream
                    .flush()
                    .await
                    .map_err(backup("storing the chunks read before NBD failed"))?;
                let stored = stream.drain_stored();
                progress.record(&vdi_uuid, &stored, true).await?;
                return Err(EngineError::Nbd {
                    step: format!("reading disk {key} over NBD"),
                    source: Box::new(source),
                });
            }
        };
        report.nbd_bytes_read += ranges.iter().map(|(_, len)| len).sum::<u64>();
        // the previous chunks under this batch's changed blocks, fetched (and decompressed) at once
        let mut before_chunks: VecDeque<Bytes> = match previous.as_ref() {
            Some(previous) => futures::future::try_join_all(actions.iter().filter_map(
                |(number, _, _, action)| match action {
                    Action::Rebuild(Some(id)) => Some(previous.repo.read_chunk(
                        previous.manifest,
                        previous.key,
                        *number,
                        id,
                    )),
                    _ => None,
                },
            ))
            .await
            .map_err(backup("reading the previous restore point's chunks"))?
            .into(),
            None => VecDeque::new(),
        };
        for (number, start, end, action) in actions {
            match action {
                Action::Zero(was_resumed) => report.chunks_resumed += u64::from(was_resumed),
                Action::Reference(id, was_resumed) => {
                    stream
                        .reuse_chunk(number, id)
                        .await
                        .map_err(backup("referencing a stored chunk"))?;
                    if was_resumed {
                        report.chunks_resumed += 1;
                    } else {
                        report.chunks_reused += 1;
                    }
                }
                Action::Read => {
                    let mut data = BytesMut::with_capacity((end - start) as usize);
                    take_pieces(&mut pieces, start, end, |_, bytes| {
                        data.extend_from_slice(&bytes);
                    });
                    if data.len() as u64 != end - start {
                        return Err(EngineError::Unexpected(format!(
                            "disk {key}: chunk {number}: NBD gave {} bytes, expected {}",
                            data.len(),
                            end - start
                        )));
                    }
                    stream
                        .write_chunk(number, data.freeze())
                        .await
                        .map_err(backup("storing a chunk"))?;
                    report.chunks_read += 1;
                }
                Action::Rebuild(before) => {
                    let mut data = match before.and_then(|_| before_chunks.pop_front()) {
                        Some(chunk) => BytesMut::from(&chunk[..]),
                        None => BytesMut::zeroed((end - start) as usize),
                    };
                    if data.len() as u64 != end - start {
                        return Err(EngineError::Unexpected(format!(
                            "disk {key}: chunk {number} of the previous restore point has {} bytes, expected {}",
                            data.len(),
                            end - start
                        )));
                    }
                    take_pieces(&mut pieces, start, end, |offset, bytes| {
                        let at = (offset - start) as usize;
                        data[at..at + bytes.len()].copy_from_slice(&bytes);
                    });
                    stream
                        .write_chunk(number, data.freeze())
                        .await
                        .map_err(backup("storing a rebuilt chunk"))?;
                    report.chunks_rebuilt += 1;
                }
            }
        }
        let stored = stream.drain_stored();
        progress.record(&vdi_uuid, &stored, false).await?;
        first = last;
    }
    stream
        .finish()
        .await
        .map_err(backup("finishing a disk stream"))?;
    Ok(report)
}

/// Reads `ranges` (in offset order) over the connections at once, each taking a contiguous
/// share of about the same number of bytes; the pieces in offset order.
async fn read_shared(
    connections: &mut [NbdClient],
    ranges: &[(u64, u64)],
    in_flight: usize,
) -> Result<VecDeque<(u64, Bytes)>, NbdError> {
    let shares = split_by_bytes(ranges, connections.len());
    let reads = connections
        .iter_mut()
        .zip(shares)
        .map(|(client, share)| async move {
            let mut pieces = VecDeque::new();
            client
                .read_ranges(share, in_flight, |offset, data| {
                    pieces.push_back((offset, data));
                    Ok(())
                })
                .await
                .map(|()| pieces)
        });
    let mut pieces = VecDeque::new();
    for share in futures::future::try_join_all(reads).await? {
        pieces.extend(share);
    }
    Ok(pieces)
}

/// `ranges` cut into at most `parts` contiguous runs of ranges of about the same byte count
/// (a range is never split; an empty run is left out).
fn split_by_bytes(ranges: &[(u64, u64)], parts: usize) -> Vec<&[(u64, u64)]> {
    let parts = parts.max(1);
    let total: u128 = ranges.iter().map(|(_, len)| u128::from(*len)).sum();
    let mut shares = Vec::with_capacity(parts);
    let (mut begin, mut bytes) = (0, 0_u128);
    for (index, (_, len)) in ranges.iter().enumerate() {
        bytes += u128::from(*len);
        // share k ends where the bytes so far reach (k + 1) / parts of the total
        if shares.len() + 1 < parts && bytes * parts as u128 >= total * (shares.len() as u128 + 1) {
            shares.push(&ranges[begin..=index]);
            begin = index + 1;
        }
    }
    if begin < ranges.len() {
        shares.push(&ranges[begin..]);
    }
    shares
}

/// Hands `sink` the parts of the front pieces that fall in `[start, end)`, with their offsets,
/// and drops the pieces used up (a piece may span chunks: its tail stays for the next one).
fn take_pieces(
    pieces: &mut VecDeque<(u64, Bytes)>,
    start: u64,
    end: u64,
    mut sink: impl FnMut(u64, Bytes),
) {
    while let Some((offset, data)) = pieces.front_mut() {
        if *offset >= end {
            return;
        }
        let piece_end = *offset + data.len() as u64;
        let from = start.max(*offset);
        let to = end.min(piece_end);
        if from < to {
            let slice = data.slice((from - *offset) as usize..(to - *offset) as usize);
            sink(from, slice);
        }
        if piece_end <= end {
            pieces.pop_front();
        } else {
            *data = data.slice((end - *offset) as usize..);
            *offset = end;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_shared_out_contiguously_by_bytes() {
        let ranges = [(0, 4), (10, 4), (20, 4), (30, 4)];
        let shares = split_by_bytes(&ranges, 2);
        assert_eq!(shares, vec![&ranges[..2], &ranges[2..]]);
        let shares = split_by_bytes(&ranges, 3);
        assert_eq!(shares.concat(), ranges.to_vec());
        assert_eq!(shares.len(), 3);
        assert_eq!(split_by_bytes(&ranges, 1), vec![&ranges[..]]);
        assert_eq!(
            split_by_bytes(&ranges, 8).len(),
            4,
            "never more shares than ranges"
        );
        assert!(split_by_bytes(&[], 4).is_empty());
        let uneven = [(0, 100), (200, 1), (300, 1)];
        assert_eq!(split_by_bytes(&uneven, 2), vec![&uneven[..1], &uneven[1..]]);
    }

    #[test]
    fn pieces_spanning_chunks_are_cut_at_the_chunk_end() {
        let mut pieces: VecDeque<(u64, Bytes)> = VecDeque::from([
            (0, Bytes::from_static(b"abcdef")),
            (8, Bytes::from_static(b"gh")),
        ]);
        let mut got = Vec::new();
        take_pieces(&mut pieces, 0, 4, |o, b| got.push((o, b)));
        assert_eq!(got, vec![(0, Bytes::from_static(b"abcd"))]);
        got.clear();
        take_pieces(&mut pieces, 4, 12, |o, b| got.push((o, b)));
        assert_eq!(
            got,
            vec![
                (4, Bytes::from_static(b"ef")),
                (8, Bytes::from_static(b"gh"))
            ]
        );
        assert!(pieces.is_empty());
    }
}
