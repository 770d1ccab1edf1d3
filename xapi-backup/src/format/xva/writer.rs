//! XVA writer: exactly what xapi writes (reference §3.5), as a `Stream` of `Bytes`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::XvaError;
use super::chunk::{CHUNK_SIZE, ChecksumKind, ChunkNumbering, chunk_member_name, is_all_zeros};
use super::ova_xml::{EXPORT_VSN, OvaXml};
use crate::Error;
use crate::format::compression::{BlockingEncoder, Compression};
use crate::format::recycle::BufferPool;
use crate::format::tar::{END_OF_ARCHIVE, encode_v7_header, padding_len};

/// How to write an XVA or raw-tar stream.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Checksum member kind (`.xxhash` by default; `.checksum` for hosts before 8.1).
    pub checksum: ChecksumKind,
    /// Whole-stream compression.
    pub compression: Compression,
    /// Send a zero-length keep-alive chunk when a source produces nothing for this long
    /// (xapi: 5 s). `None` disables keep-alives.
    pub keepalive: Option<Duration>,
    /// Omit all-zero chunks other than the first and the last.
    pub omit_zero_chunks: bool,
    /// `mod_time` of the `ova.xml` member; chunks always carry 0. The default is the time the
    /// options are made, in seconds since the epoch, as xapi's `Export` stamps the export
    /// time (`Tar.Header.make ~mod_time:now`); set it for reproducible output.
    pub ova_xml_mtime: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            checksum: ChecksumKind::Xxhash,
            compression: Compression::None,
            keepalive: Some(Duration::from_secs(5)),
            omit_zero_chunks: true,
            ova_xml_mtime: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The data of one disk to write.
pub struct DiskSource {
    /// Member prefix: the VDI's export id in `ova.xml` (`Ref:42`).
    pub prefix: String,
    /// Exactly this many bytes are read from `reader` (the VDI's `virtual_size`).
    pub size: u64,
    /// The disk's bytes, from offset 0.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

impl std::fmt::Debug for DiskSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSource")
            .field("prefix", &self.prefix)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Accumulates output, compresses it off the executor when asked to, and sends it on.
struct Emitter {
    tx: mpsc::Sender<Result<Bytes, Error>>,
    encoder: Option<BlockingEncoder>,
    /// Output gathered for the next send, in a buffer of `pool`'s.
    batch: Vec<u8>,
    /// The buffers of the batches sent come back here once the consumer has written them: a
    /// fresh MiB per batch costs a page fault and a zeroed page every 4 KiB.
    pool: BufferPool,
    /// When bytes last went out on the wire (what keep-alives are timed against: a compressor
    /// fed zeros, or chunks still being filled, send nothing).
    last_sent: tokio::time::Instant,
}

/// The receiver is gone: the consumer dropped the stream, so production stops.
struct Cancelled;

impl Emitter {
    const BATCH: usize = 1 << 20;

    /// The batch gathered so far, as bytes; a new batch starts in a pooled buffer.
    fn take_batch(&mut self) -> Bytes {
        let next = self.pool.take(2 * Self::BATCH);
        self.pool.share(std::mem::replace(&mut self.batch, next))
    }

    fn push(&mut self, bytes: &[u8]) {
        self.batch.extend_from_slice(bytes);
    }

    async fn maybe_send(&mut self, flush: bool) -> Result<Result<(), Cancelled>, Error> {
        if self.batch.len() < Self::BATCH && !flush {
            return Ok(Ok(()));
        }
        let batch = self.take_batch();
        let out = match &mut self.encoder {
            Some(enc) => enc.compress(batch, flush).await?,
            None => batch,
        };
        if out.is_empty() {
            return Ok(Ok(()));
        }
        let sent = self.tx.send(Ok(out)).await.map_err(|_| Cancelled);
        self.last_sent = tokio::time::Instant::now();
        Ok(sent)
    }

    async fn finish(&mut self) -> Result<Result<(), Cancelled>, Error> {
        let batch = self.take_batch();
        let mut out = BytesMut::new();
        match &mut self.encoder {
            Some(enc) => {
                out.extend_from_slice(&enc.compress(batch, false).await?);
                out.extend_from_slice(&enc.finish().await?);
            }
            None => out.extend_from_slice(&batch),
        }
        if out.is_empty() {
            return Ok(Ok(()));
        }
        Ok(self.tx.send(Ok(out.freeze())).await.map_err(|_| Cancelled))
    }

    fn member(&mut self, name: &str, body: &[u8], mtime: u64) -> Result<(), Error> {
        let header = encode_v7_header(name, body.len() as u64, mtime)?;
        self.push(&header);
        self.push(body);
        self.push(&[0u8; 512][..padding_len(body.len() as u64)]);
        Ok(())
    }

    fn chunk(&mut self, name: &str, data: &[u8], kind: ChecksumKind) -> Result<(), Error> {
        self.member(name, data, 0)?;
        let digest = kind.digest(data);
        self.member(&format!("{name}{}", kind.suffix()), digest.as_bytes(), 0)
    }
}

/// State shared by every disk of one stream.
struct StreamState {
    first_chunk_length: Option<u64>,
    omit_zero_chunks: bool,
}

macro_rules! sent {
    ($e:expr) => {
        match $e? {
            Ok(()) => {}
            Err(Cancelled) => return Ok(Err(Cancelled)),
        }
    };
}

async fn write_disk(
    out: &mut Emitter,
    disk: &mut DiskSource,
    options: &WriteOptions,
    state: &mut StreamState,
) -> Result<Result<(), Cancelled>, Error> {
    let mut numbering = ChunkNumbering::default();
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK_SIZE as usize];
    while offset < disk.size {
        let len = (disk.size - offset).min(CHUNK_SIZE) as usize;
        let is_edge = offset == 0 || offset + len as u64 == disk.size;
        let mut filled = 0;
        while filled < len {
            // Keep-alives only once a real chunk has fixed the import's chunk length (§3.4),
            // and, as in xapi's `Stream_vdi.send_one`, never in place of a disk's first or
            // last chunk: those always carry their own number.
            let deadline = match (options.keepalive, state.first_chunk_length) {
                (Some(every), Some(_)) if !is_edge => Some(out.last_sent + every),
                _ => None,
            };
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                let k = numbering.keepalive_number(offset);
                out.chunk(&chunk_member_name(&disk.prefix, k), &[], options.checksum)?;
                sent!(out.maybe_send(true).await);
                continue;
            }
            let read = disk.reader.read(&mut buf[filled..len]);
            let n = match deadline {
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r.map_err(crate::error::io("reading the source disk"))?,
                    // Silent for too long: the check above sends the keep-alive.
                    Err(_) => continue,
                },
                None => read
                    .await
                    .map_err(crate::error::io("reading the source disk"))?,
            };
            if n == 0 {
                return Err(XvaError::SourceEnded {
                    vdi: disk.prefix.clone(),
                    offset: offset + filled as u64,
                    size: disk.size,
                }
                .into());
            }
            filled += n;
        }
        let data = &buf[..len];
        if !is_edge && state.omit_zero_chunks && is_all_zeros(data) {
            offset += len as u64;
            continue;
        }
        let name = chunk_member_name(&disk.prefix, numbering.number_for(offset));
        out.chunk(&name, data, options.checksum)?;
        if state.first_chunk_length.is_none() {
            state.first_chunk_length = Some(len as u64);
            // The importer sizes every later gap with this first length (§3.4): a short first
            // chunk makes omission unsafe for the rest of the stream, so write everything.
            if (len as u64) < CHUNK_SIZE {
                state.omit_zero_chunks = false;
            }
        }
        sent!(out.maybe_send(false).await);
        offset += len as u64;
    }
    Ok(Ok(()))
}

async fn produce(
    tx: mpsc::Sender<Result<Bytes, Error>>,
    ova_xml: Option<String>,
    mut disks: Vec<DiskSource>,
    options: WriteOptions,
) {
    let result = async {
        let mut out = Emitter {
            tx: tx.clone(),
            encoder: BlockingEncoder::new(options.compression)
                .map_err(crate::error::io("starting the compressor"))?,
            batch: Vec::with_capacity(2 * Emitter::BATCH),
            pool: BufferPool::new(),
            last_sent: tokio::time::Instant::now(),
        };
        if let Some(xml) = &ova_xml {
            out.member("ova.xml", xml.as_bytes(), options.ova_xml_mtime)?;
            // ova.xml goes out at once: importers start creating objects from it.
            sent!(out.maybe_send(true).await);
        }
        let mut state = StreamState {
            first_chunk_length: None,
            omit_zero_chunks: options.omit_zero_chunks,
        };
        for disk in &mut disks {
            sent!(write_disk(&mut out, disk, &options, &mut state).await);
        }
        out.push(&END_OF_ARCHIVE);
        sent!(out.finish().await);
        Ok::<_, Error>(Ok(()))
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

fn receiver_stream(
    rx: mpsc::Receiver<Result<Bytes, Error>>,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Starts writing an XVA and returns its bytes as a stream (backpressured: at most a few MiB
/// are buffered). Must be called inside a tokio runtime; production runs on a spawned task
/// that stops when the stream is dropped. Suitable as a hyper response body.
///
/// The disks must be exactly those `ova.xml` makes the importer read (VDIs of non-CD VBDs),
/// each with its `virtual_size`; they are written in the order of their id strings.
pub fn xva_stream(
    ova: &OvaXml,
    mut disks: Vec<DiskSource>,
    options: WriteOptions,
) -> Result<impl Stream<Item = Result<Bytes, Error>> + Send + 'static, Error> {
    if ova.version.export_vsn != EXPORT_VSN {
        return Err(XvaError::UnsupportedExportVsn {
            found: ova.version.export_vsn,
        }
        .into());
    }
    let expected = ova.disks()?;
    disks.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let want: Vec<(&str, u64)> = expected.iter().map(|d| (d.id, d.virtual_size)).collect();
    let got: Vec<(&str, u64)> = disks.iter().map(|d| (d.prefix.as_str(), d.size)).collect();
    if want != got {
        return Err(XvaError::DiskMismatch {
            message: format!("ova.xml needs {want:?}, sources are {got:?}"),
        }
        .into());
    }
    Ok(spawn_stream(Some(ova.to_xml()), disks, options))
}

pub(crate) fn spawn_stream(
    ova_xml: Option<String>,
    disks: Vec<DiskSource>,
    options: WriteOptions,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(produce(tx, ova_xml, disks, options));
    receiver_stream(rx)
}

/// Writes an XVA to `writer` (see [`xva_stream`]) and returns the number of bytes written.
pub async fn write_xva<W: AsyncWrite + Unpin>(
    ova: &OvaXml,
    disks: Vec<DiskSource>,
    options: WriteOptions,
    writer: &mut W,
) -> Result<u64, Error> {
    drain_into(xva_stream(ova, disks, options)?, writer).await
}

pub(crate) async fn drain_into<W: AsyncWrite + Unpin>(
    stream: impl Stream<Item = Result<Bytes, Error>>,
    writer: &mut W,
) -> Result<u64, Error> {
    use futures::StreamExt as _;
    let mut stream = std::pin::pin!(stream);
    let mut total = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        writer
            .write_all(&piece)
            .await
            .map_err(crate::error::io("writing the XVA stream"))?;
        total += piece.len() as u64;
    }
    writer
        .flush()
        .await
        .map_err(crate::error::io("writing the XVA stream"))?;
    Ok(total)
}
