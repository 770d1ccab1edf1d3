//! Per-disk chunk indexes, written and read as streams of sealed frames so that memory stays
//! bounded (one frame, about 135 KiB) whatever the size of the disk.
//!
//! An index lists, in increasing chunk number, the chunks of a disk that are stored; a chunk
//! number it skips is all zeros. Layout (REPOSITORY.md, "Chunk indexes"): the object header,
//! then frames `len: u32 LE ‖ sealed(frame body)`, each sealed with the associated data
//! `header ‖ object name ‖ frame number (u64 LE)`. Frame 0 is the start frame (disk size, chunk
//! size); then entry frames of up to [`ENTRIES_PER_FRAME`] entries (`gap` as LEB128 ‖ 32-byte
//! id, the gap being the number of zero chunks since the previous entry); the last frame is the
//! end frame (entry count), so that a truncated index is detected.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::crypto::{ChunkId, Sealer};
use super::error::RepoError;
use super::object::{self, HEADER_LEN, ObjectKind};
use super::store::{Store, StreamUpload};

/// Entries per entry frame.
pub(super) const ENTRIES_PER_FRAME: usize = 4096;
/// The largest frame a reader accepts (a full entry frame is about 135 KiB, sealed).
const MAX_FRAME: usize = 1024 * 1024;

const FRAME_START: u8 = 1;
const FRAME_ENTRIES: u8 = 2;
const FRAME_END: u8 = 3;

/// The associated data of frame `number` of index `name`.
fn frame_aad(header: &[u8], name: &str, number: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + name.len() + 8);
    aad.extend_from_slice(header);
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(&number.to_le_bytes());
    aad
}

/// How many chunks of `chunk_size` cover `disk_size` bytes.
pub(super) fn chunk_count(disk_size: u64, chunk_size: u32) -> u64 {
    disk_size.div_ceil(u64::from(chunk_size))
}

/// Streams a chunk index into the store: entries go out frame by frame as a multipart upload.
#[derive(Debug)]
pub(super) struct IndexWriter {
    name: String,
    sealer: Sealer,
    header: [u8; HEADER_LEN],
    upload: Option<StreamUpload>,
    frame_number: u64,
    pending: Vec<u8>,
    pending_entries: usize,
    next_chunk: u64,
    chunk_count: u64,
    entries: u64,
}

impl IndexWriter {
    /// Starts the index `name` of a disk of `disk_size` bytes.
    pub(super) async fn create(
        store: &Store,
        sealer: Sealer,
        name: &str,
        disk_size: u64,
        chunk_size: u32,
    ) -> Result<Self, RepoError> {
        let header = object::header(ObjectKind::Index, false, sealer.is_encrypted());
        let upload = store.upload(name).await?;
        let mut writer = IndexWriter {
            name: name.to_owned(),
            sealer,
            header,
            upload: Some(upload),
            frame_number: 0,
            pending: Vec::new(),
            pending_entries: 0,
            next_chunk: 0,
            chunk_count: chunk_count(disk_size, chunk_size),
            entries: 0,
        };
        let mut start = Vec::with_capacity(13);
        start.push(FRAME_START);
        start.extend_from_slice(&disk_size.to_le_bytes());
        start.extend_from_slice(&chunk_size.to_le_bytes());
        let mut out = header.to_vec();
        writer.seal_frame(&start, &mut out);
        writer.write(out).await?;
        Ok(writer)
    }

    /// Appends the entry of stored chunk `chunk_number` (strictly increasing).
    pub(super) async fn push(&mut self, chunk_number: u64, id: ChunkId) -> Result<(), RepoError> {
        if chunk_number < self.next_chunk || chunk_number >= self.chunk_count {
            return Err(RepoError::InvalidInput {
                reason: format!(
                    "{}: chunk {chunk_number} out of order or past the disk's {} chunks",
                    self.name, self.chunk_count
                ),
            });
        }
        if self.pending.is_empty() {
            self.pending.push(FRAME_ENTRIES);
            self.pending.extend_from_slice(&0u32.to_le_bytes());
        }
        write_leb128(&mut self.pending, chunk_number - self.next_chunk);
        self.pending.extend_from_slice(&id.0);
        self.pending_entries += 1;
        self.entries += 1;
        self.next_chunk = chunk_number + 1;
        if self.pending_entries == ENTRIES_PER_FRAME {
            self.flush_entries().await?;
        }
        Ok(())
    }

    /// Entries pushed so far.
    pub(super) fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last entries and the end frame; the index object appears whole.
    pub(super) async fn finish(mut self) -> Result<(), RepoError> {
        self.flush_entries().await?;
        let mut end = Vec::with_capacity(9);
        end.push(FRAME_END);
        end.extend_from_slice(&self.entries.to_le_bytes());
        let mut out = Vec::new();
        self.seal_frame(&end, &mut out);
        self.write(out).await?;
        self.upload
            .take()
            .expect("the upload lives until finish or abort")
            .finish()
            .await
    }

    /// Abandons the index: no object appears.
    pub(super) async fn abort(mut self) -> Result<(), RepoError> {
        match self.upload.take() {
            Some(upload) => upload.abort().await,
            None => Ok(()),
        }
    }

    async fn flush_entries(&mut self) -> Result<(), RepoError> {
        if self.pending_entries == 0 {
            return Ok(());
        }
        let count = u32::try_from(self.pending_entries).expect("at most ENTRIES_PER_FRAME");
        self.pending[1..5].copy_from_slice(&count.to_le_bytes());
        let body = std::mem::take(&mut self.pending);
        self.pending_entries = 0;
        let mut out = Vec::with_capacity(body.len() + 4 + self.sealer.overhead());
        self.seal_frame(&body, &mut out);
        self.write(out).await
    }

    /// Appends `len ‖ sealed(body)` to `out` and advances the frame number.
    fn seal_frame(&mut self, body: &[u8], out: &mut Vec<u8>) {
        let len = u32::try_from(body.len() + self.sealer.overhead()).expect("frames are small");
        out.extend_from_slice(&len.to_le_bytes());
        let aad = frame_aad(&self.header, &self.name, self.frame_number);
        self.sealer.seal_into(&aad, body, out);
        self.frame_number += 1;
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), RepoError> {
        self.upload
            .as_mut()
            .expect("the upload lives until finish or abort")
            .write(Bytes::from(bytes))
            .await
    }
}

/// Appends `value` as unsigned LEB128.
fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads unsigned LEB128 from `bytes` at `*pos`, `None` if it is cut or longer than 64 bits.
fn read_leb128(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Pulls exact byte counts out of a stream of pieces, counting the offset.
struct ByteSource {
    stream: BoxStream<'static, Result<Bytes, RepoError>>,
    buffer: BytesMut,
    offset: u64,
}

impl ByteSource {
    /// The next `n` bytes, `None` at a clean end of stream (nothing buffered).
    async fn take(&mut self, n: usize, name: &str) -> Result<Option<Bytes>, RepoError> {
        while self.buffer.len() < n {
            match self.stream.next().await {
                Some(piece) => self.buffer.extend_from_slice(&piece?),
                None if self.buffer.is_empty() => return Ok(None),
                None => {
                    return Err(RepoError::CorruptIndex {
                        object: name.to_owned(),
                        offset: self.offset,
                        reason: format!(
                            "cut short: {} bytes where {n} were expected",
                            self.buffer.len()
                        ),
                    });
                }
            }
        }
        self.offset += n as u64;
        Ok(Some(self.buffer.split_to(n).freeze()))
    }
}

/// Streams a chunk index back, checking every frame.
pub(super) struct IndexReader {
    name: String,
    sealer: Sealer,
    header: Vec<u8>,
    source: ByteSource,
    frame_number: u64,
    frame: Vec<u8>,
    frame_offset: u64,
    pos: usize,
    left_in_frame: u32,
    next_chunk: u64,
    entries: u64,
    finished: bool,
    disk_size: u64,
    chunk_size: u32,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("name", &self.name)
            .field("disk_size", &self.disk_size)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl IndexReader {
    /// Opens the index `name`: reads its header and start frame.
    pub(super) async fn open(store: &Store, sealer: Sealer, name: &str) -> Result<Self, RepoError> {
        let stream = store.get_stream(name).await?;
        let mut source = ByteSource {
            stream,
            buffer: BytesMut::new(),
            offset: 0,
        };
        let header =
            source
                .take(HEADER_LEN, name)
                .await?
                .ok_or_else(|| RepoError::CorruptIndex {
                    object: name.to_owned(),
                    offset: 0,
                    reason: "empty".to_owned(),
                })?;
        let compressed = object::check_header(&header, ObjectKind::Index, &sealer, name)?;
        if compressed {
            return Err(RepoError::CorruptIndex {
                object: name.to_owned(),
                offset: 5,
                reason: "an index is never compressed as a whole".to_owned(),
            });
        }
        let mut reader = IndexReader {
            name: name.to_owned(),
            sealer,
            header: header.to_vec(),
            source,
            frame_number: 0,
            frame: Vec::new(),
            frame_offset: 0,
            pos: 0,
            left_in_frame: 0,
            next_chunk: 0,
            entries: 0,
            finished: false,
            disk_size: 0,
            chunk_size: 0,
        };
        let start = reader.read_frame().await?;
        if start.len() != 13 || start[0] != FRAME_START {
            return Err(reader.corrupt("the first frame is not a start frame"));
        }
        reader.disk_size = u64::from_le_bytes(start[1..9].try_into().expect("8 bytes"));
        reader.chunk_size = u32::from_le_bytes(start[9..13].try_into().expect("4 bytes"));
        if reader.chunk_size == 0 {
            return Err(reader.corrupt("chunk size 0"));
        }
        Ok(reader)
    }

    /// The disk's size in bytes, from the start frame.
    pub(super) fn disk_size(&self) -> u64 {
        self.disk_size
    }

    /// The chunk size, from the start frame.
    pub(super) fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The index's object name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The next stored chunk `(chunk number, id)`, `None` after the end frame (whose entry
    /// count is checked).
    pub(super) async fn next_entry(&mut self) -> Result<Option<(u64, ChunkId)>, RepoError> {
        while self.left_in_frame == 0 {
            if self.finished {
                return Ok(None);
            }
            let frame = self.read_frame().await?;
            match frame.first() {
                Some(&FRAME_ENTRIES) if frame.len() >= 5 => {
                    let count = u32::from_le_bytes(frame[1..5].try_into().expect("4 bytes"));
                    if count == 0 {
                        return Err(self.corrupt("an entry frame with no entries"));
                    }
                    self.left_in_frame = count;
                    self.frame = frame;
                    self.pos = 5;
                }
                Some(&FRAME_END) if frame.len() == 9 => {
                    let count = u64::from_le_bytes(frame[1..9].try_into().expect("8 bytes"));
                    if count != self.entries {
                        return Err(self.corrupt(&format!(
                            "the end frame counts {count} entries, the frames held {}",
                            self.entries
                        )));
                    }
                    self.finished = true;
                    if self.source.take(1, &self.name).await?.is_some() {
                        return Err(self.corrupt("bytes after the end frame"));
                    }
                }
                _ => return Err(self.corrupt("unknown frame type or size")),
            }
        }
        let gap = read_leb128(&self.frame, &mut self.pos)
            .ok_or_else(|| self.corrupt("entry gap is cut or too long"))?;
        let id_bytes = self
            .frame
            .get(self.pos..self.pos + 32)
            .ok_or_else(|| self.corrupt("entry id is cut"))?;
        let id = ChunkId(id_bytes.try_into().expect("32 bytes"));
        self.pos += 32;
        self.left_in_frame -= 1;
        if self.left_in_frame == 0 && self.pos != self.frame.len() {
            return Err(self.corrupt("bytes after the last entry of a frame"));
        }
        let number = self
            .next_chunk
            .checked_add(gap)
            .filter(|&n| n < chunk_count(self.disk_size, self.chunk_size))
            .ok_or_else(|| self.corrupt("entry past the end of the disk"))?;
        self.next_chunk = number + 1;
        self.entries += 1;
        Ok(Some((number, id)))
    }

    /// Reads and opens the next frame.
    async fn read_frame(&mut self) -> Result<Vec<u8>, RepoError> {
        self.frame_offset = self.source.offset;
        let len_bytes = self
            .source
            .take(4, &self.name)
            .await?
            .ok_or_else(|| self.corrupt("ends without an end frame"))?;
        let len = u32::from_le_bytes(len_bytes[..].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(self.corrupt(&format!("frame of {len} bytes")));
        }
        let sealed = self
            .source
            .take(len, &self.name)
            .await?
            .ok_or_else(|| self.corrupt("a frame is cut"))?;
        let aad = frame_aad(&self.header, &self.name, self.frame_number);
        let body = self
            .sealer
            .open(&aad, &sealed)
            .map_err(|reason| self.corrupt(&format!("frame {}: {reason}", self.frame_number)))?;
        self.frame_number += 1;
        Ok(body)
    }

    fn corrupt(&self, reason: &str) -> RepoError {
        RepoError::CorruptIndex {
            object: self.name.clone(),
            offset: self.frame_offset,
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::store::Target;

    fn id(n: u64) -> ChunkId {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        ChunkId(bytes)
    }

    async fn write_index(store: &Store, sealer: &Sealer, chunks: &[u64], size: u64) {
        let mut writer = IndexWriter::create(store, sealer.clone(), "indexes/t", size, 1 << 20)
            .await
            .unwrap();
        for &n in chunks {
            writer.push(n, id(n)).await.unwrap();
        }
        writer.finish().await.unwrap();
    }

    async fn read_all(store: &Store, sealer: &Sealer) -> Result<Vec<(u64, ChunkId)>, RepoError> {
        let mut reader = IndexReader::open(store, sealer.clone(), "indexes/t").await?;
        let mut out = Vec::new();
        while let Some(entry) = reader.next_entry().await? {
            out.push(entry);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn entries_round_trip_across_frames_with_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::LocalDir(dir.path().to_owned())).unwrap();
        let chunks: Vec<u64> = (0..10_000u64)
            .filter(|n| n % 3 != 1)
            .chain([20_000])
            .collect();
        for sealer in [
            Sealer::plain(),
            Sealer::encrypted(&crate::repo::crypto::MasterKeys::generate()),
        ] {
            write_index(&store, &sealer, &chunks, 20_001 << 20).await;
            let back = read_all(&store, &sealer).await.unwrap();
            assert_eq!(back.len(), chunks.len());
            assert!(
                back.iter()
                    .zip(&chunks)
                    .all(|((n, i), c)| n == c && *i == id(*c))
            );
        }
    }

    #[tokio::test]
    async fn out_of_order_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::LocalDir(dir.path().to_owned())).unwrap();
        let mut writer =
            IndexWriter::create(&store, Sealer::plain(), "indexes/t", 10 << 20, 1 << 20)
                .await
                .unwrap();
        writer.push(5, id(5)).await.unwrap();
        assert!(matches!(
            writer.push(5, id(5)).await,
            Err(RepoError::InvalidInput { .. })
        ));
        assert!(matches!(
            writer.push(10, id(10)).await,
            Err(RepoError::InvalidInput { .. })
        ));
        writer.abort().await.unwrap();
        assert!(
            !store.exists("indexes/t").await.unwrap(),
            "an aborted index never appears"
        );
    }

    #[tokio::test]
    async fn truncation_and_flipped_bytes_are_reported_with_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::LocalDir(dir.path().to_owned())).unwrap();
        let sealer = Sealer::plain();
        let chunks: Vec<u64> = (0..5000).collect();
        write_index(&store, &sealer, &chunks, 5000 << 20).await;
        let whole = store.get("indexes/t").await.unwrap();
        // Cut off the end frame.
        store
            .put("indexes/t", whole.slice(..whole.len() - 21))
            .await
            .unwrap();
        let err = read_all(&store, &sealer).await.unwrap_err();
        assert!(matches!(err, RepoError::CorruptIndex { .. }), "{err}");
        // Flip a byte inside the second entry frame.
        let mut flipped = whole.to_vec();
        let at = flipped.len() - 100;
        flipped[at] ^= 1;
        store.put("indexes/t", Bytes::from(flipped)).await.unwrap();
        match read_all(&store, &sealer).await.unwrap_err() {
            RepoError::CorruptIndex { offset, reason, .. } => {
                assert!(
                    offset > 8 && offset < at as u64,
                    "offset {offset} names the frame"
                );
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}
