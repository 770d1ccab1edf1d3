//! Streaming XVA reader: a state machine over the tar members (reference §1, §3.4).

use std::fmt::Write as _;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::XvaError;
use super::chunk::{ChecksumKind, ChecksumText, ChunkPlacer};
use super::ova_xml::{OvaXml, parse_value_document};
use crate::Error;
use crate::format::compression::{Compression, DecompressingReader};
use crate::format::recycle::BufferPool;
use crate::format::tar::{BLOCK, TarReader, parse_header};

/// The boxed byte source the readers work on after compression detection.
pub(crate) type BoxedRead = Box<dyn AsyncRead + Send + Unpin>;

/// Limits applied while reading, so that a hostile stream cannot make the reader allocate
/// without bound, and what to do with a chunk whose checksum does not match.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Largest accepted chunk member (xapi writes 1 MiB; default 16 MiB).
    pub max_chunk: u64,
    /// Largest accepted `ova.xml` (default 256 MiB).
    pub max_ova_xml: u64,
    /// What a checksum that does not match its chunk does (default [`MismatchPolicy::Fail`]).
    pub on_checksum_mismatch: MismatchPolicy,
    /// What happens to the bytes after the end-of-archive marker (default
    /// [`AfterEndOfArchive::Drain`]).
    pub after_end_of_archive: AfterEndOfArchive,
    /// How stored checksum texts are compared (default [`ChecksumText::Lenient`]).
    pub checksum_text: ChecksumText,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_chunk: 16 << 20,
            max_ova_xml: 256 << 20,
            on_checksum_mismatch: MismatchPolicy::Fail,
            after_end_of_archive: AfterEndOfArchive::Drain,
            checksum_text: ChecksumText::Lenient,
        }
    }
}

/// What the reader does once it has read the end-of-archive marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterEndOfArchive {
    /// Read on to the end of the stream (record padding, a compressor's trailer), so that damage
    /// there is reported rather than ignored. Right for files.
    #[default]
    Drain,
    /// Stop at the marker and read nothing more: for a network peer that keeps its side open
    /// after the archive. xapi's importer stops there, and Xen Orchestra sends streams of unknown
    /// length with an oversized `Content-Length`, closing only once the upload is answered.
    Stop,
}

/// What the reader does when a chunk's data does not match its checksum (an inline
/// `.xxhash` / `.checksum` member, or the trailing table of an `export_vsn` below 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MismatchPolicy {
    /// Stop with [`XvaError::ChecksumMismatch`] (or [`XvaError::LegacyChecksumTable`]) before
    /// the chunk is handed out.
    #[default]
    Fail,
    /// Hand the chunk out anyway and record a [`ChecksumMismatch`] (see
    /// [`XvaReader::mismatches`]): xapi's `force=true`, and what rescuing a damaged backup
    /// needs. A checksum member whose text is not a checksum at all counts as a mismatch too.
    /// Structural damage (missing members, reordered chunks, truncation) still fails.
    Record,
}

/// Where the checksum that disagreed with a chunk was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSource {
    /// The chunk's own `.xxhash` / `.checksum` member.
    Inline,
    /// The checksum table that ends an `export_vsn` below 2 archive, in the member `table`.
    LegacyTable {
        /// Name of the table member.
        table: String,
    },
}

/// A chunk whose data does not match its stored checksum, recorded under
/// [`MismatchPolicy::Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumMismatch {
    /// The chunk member (`Ref:42/00000007`).
    pub member: String,
    /// Where the disagreeing checksum was stored.
    pub source: ChecksumSource,
    /// The checksum algorithm compared.
    pub kind: ChecksumKind,
    /// The stored checksum text, trimmed; `None` when the legacy table has no string entry
    /// for this chunk.
    pub stored: Option<String>,
    /// The checksum of the bytes received.
    pub computed: String,
    /// Index of the disk in the reader's `disks()`.
    pub disk: usize,
    /// Chunk number from the member name.
    pub chunk_no: u64,
    /// Disk offset of the chunk's first byte.
    pub disk_offset: u64,
    /// Length of the chunk's data (0 for a keep-alive).
    pub len: u64,
}

/// A chunk read, remembered for the checksum table of an `export_vsn` below 2 archive.
struct LegacyEntry {
    member: String,
    kind: ChecksumKind,
    digest: String,
    disk: usize,
    chunk_no: u64,
    disk_offset: u64,
    len: u64,
}

/// A disk whose data follows in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// Member prefix: the VDI's export id (`Ref:42`), or `vdi` for raw tar.
    pub prefix: String,
    /// `virtual_size` in bytes.
    pub virtual_size: u64,
}

/// One verified chunk of disk data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskChunk {
    /// Index of the disk in [`XvaReader::disks`].
    pub disk: usize,
    /// Chunk number from the member name.
    pub chunk_no: u64,
    /// Disk offset of the first byte. Bytes between chunks are zero.
    pub offset: u64,
    /// The chunk's bytes, already checked against their checksum member.
    pub data: Bytes,
}

/// The chunk-stream state machine shared by XVA and raw tar.
pub(crate) struct ChunkStream {
    tar: TarReader<BoxedRead>,
    disks: Vec<DiskInfo>,
    require_checksums: bool,
    options: ReadOptions,
    first_chunk_length: Option<u64>,
    index: usize,
    placer: Option<ChunkPlacer>,
    finished: bool,
    /// For `export_vsn` below 2: every chunk member read, with its digest, to check against
    /// the checksum table xapi reads after the last disk.
    legacy_table: Option<Vec<LegacyEntry>>,
    /// Mismatches accepted under [`MismatchPolicy::Record`].
    mismatches: Vec<ChecksumMismatch>,
    /// The chunks' buffers, used again once the consumer is done with a chunk.
    buffers: BufferPool,
}

impl ChunkStream {
    pub(crate) fn new(
        tar: TarReader<BoxedRead>,
        disks: Vec<DiskInfo>,
        require_checksums: bool,
        options: ReadOptions,
    ) -> Self {
        Self {
            tar,
            disks,
            require_checksums,
            options,
            first_chunk_length: None,
            index: 0,
            placer: None,
            finished: false,
            legacy_table: None,
            mismatches: Vec::new(),
            buffers: BufferPool::new(),
        }
    }

    /// Expects the trailing checksum table of a pre-Miami XVA (`export_vsn` below 2): one
    /// member after the last disk holding an XML-RPC struct from chunk member name to
    /// checksum, which xapi's importer reads and compares with every chunk it received.
    pub(crate) fn with_legacy_checksum_table(mut self) -> Self {
        self.legacy_table = Some(Vec::new());
        self
    }

    async fn check_legacy_table(&mut self, computed: &[LegacyEntry]) -> Result<(), Error> {
        let fail = |table: &str, member: &str, problem: String| XvaError::LegacyChecksumTable {
            table: table.to_owned(),
            member: member.to_owned(),
            problem,
        };
        let Some(entry) = self.tar.next_entry().await? else {
            return Err(fail(
                "",
                "",
                "the archive ends where xapi reads the checksum table of an export_vsn < 2 XVA"
                    .to_owned(),
            )
            .into());
        };
        let body = self.tar.read_body(&entry, self.options.max_ova_xml).await?;
        let value = parse_value_document(&body)
            .map_err(|e| fail(&entry.name, "", format!("not XML-RPC: {e}")))?;
        let Some(members) = value.as_struct() else {
            return Err(fail(&entry.name, "", "not an XML-RPC struct".to_owned()).into());
        };
        let record = self.options.on_checksum_mismatch == MismatchPolicy::Record;
        for chunk in computed {
            let stored = members
                .iter()
                .find(|(k, _)| *k == chunk.member)
                .map(|(_, v)| v.as_str());
            let problem = match stored {
                None => "no entry for this chunk".to_owned(),
                Some(None) => "entry is not a string".to_owned(),
                Some(Some(text)) if self.options.checksum_text.matches(text, &chunk.digest) => {
                    continue;
                }
                Some(Some(text)) => format!(
                    "table holds {text:?}, the chunk's checksum is {}",
                    chunk.digest
                ),
            };
            if !record {
                return Err(fail(&entry.name, &chunk.member, problem).into());
            }
            self.mismatches.push(ChecksumMismatch {
                member: chunk.member.clone(),
                source: ChecksumSource::LegacyTable {
                    table: entry.name.clone(),
                },
                kind: chunk.kind,
                stored: stored.flatten().map(|t| t.trim().to_owned()),
                computed: chunk.digest.clone(),
                disk: chunk.disk,
                chunk_no: chunk.chunk_no,
                disk_offset: chunk.disk_offset,
                len: chunk.len,
            });
        }
        Ok(())
    }

    /// Checksum mismatches accepted so far under [`MismatchPolicy::Record`], in stream order.
    pub(crate) fn mismatches(&self) -> &[ChecksumMismatch] {
        &self.mismatches
    }

    /// Ends a metadata-only archive: nothing but the end-of-archive marker may follow.
    pub(crate) async fn finish_without_disks(&mut self) -> Result<(), Error> {
        if !self.finished {
            self.disks.clear();
            self.placer = None;
            self.legacy_table = None;
            self.expect_end().await?;
        }
        Ok(())
    }

    async fn expect_end(&mut self) -> Result<(), Error> {
        if let Some(extra) = self.tar.next_entry().await? {
            return Err(XvaError::UnexpectedMember {
                expected: "end of archive".to_owned(),
                found: extra.name,
                disk_offset: 0,
            }
            .into());
        }
        // Drain what follows (record padding, a compressor's trailer) so that a
        // damaged or missing compression trailer is reported, not ignored.
        if self.options.after_end_of_archive == AfterEndOfArchive::Drain {
            self.tar.drain_to_end().await?;
        }
        self.finished = true;
        Ok(())
    }

    pub(crate) fn disks(&self) -> &[DiskInfo] {
        &self.disks
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<DiskChunk>, Error> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if self.placer.as_ref().is_none_or(ChunkPlacer::is_complete) {
                if self.placer.is_some() {
                    self.index += 1;
                }
                let Some(disk) = self.disks.get(self.index) else {
                    if let Some(computed) = self.legacy_table.take() {
                        self.check_legacy_table(&computed).await?;
                    }
                    // Everything accounted for: only the end-of-archive marker may follow.
                    self.expect_end().await?;
                    return Ok(None);
                };
                self.placer = Some(ChunkPlacer::new(&disk.prefix, disk.virtual_size));
                continue;
            }
            let placer = self
                .placer
                .as_mut()
                .expect("placer set above while a disk is open");
            let Some(entry) = self.tar.next_entry().await? else {
                return Err(XvaError::DiskTruncated {
                    vdi: placer.prefix().to_owned(),
                    accounted: placer.offset(),
                    virtual_size: placer.size(),
                }
                .into());
            };
            if entry.size > self.options.max_chunk {
                return Err(crate::format::tar::TarError::MemberTooLarge {
                    offset: entry.header_offset,
                    name: entry.name,
                    size: entry.size,
                    limit: self.options.max_chunk,
                }
                .into());
            }
            let placement = placer.place(&entry.name, entry.size, &mut self.first_chunk_length)?;
            let buf = self.buffers.take(entry.size as usize);
            let buf = self
                .tar
                .read_body_into(&entry, self.options.max_chunk, buf)
                .await?;
            let data = self.buffers.share(buf);
            let mut inline_kind = None;
            if self.require_checksums {
                let member = entry.name.clone();
                let next = self.tar.next_entry().await?;
                let Some(cs) = next else {
                    return Err(XvaError::MissingChecksum {
                        member,
                        found: None,
                    }
                    .into());
                };
                let Some(kind) = ChecksumKind::of_member(&member, &cs.name) else {
                    return Err(XvaError::MissingChecksum {
                        member,
                        found: Some(cs.name),
                    }
                    .into());
                };
                let body = self.tar.read_body(&cs, 4096).await?;
                let text = String::from_utf8_lossy(&body).into_owned();
                let record = self.options.on_checksum_mismatch == MismatchPolicy::Record;
                if !record && !kind.is_well_formed(&text) {
                    return Err(XvaError::BadChecksumText { member, kind, text }.into());
                }
                inline_kind = Some(kind);
                if let Err(computed) = kind.verify_with(&text, &data, self.options.checksum_text) {
                    if !record {
                        return Err(XvaError::ChecksumMismatch {
                            member,
                            kind,
                            expected: text.trim().to_owned(),
                            computed,
                            disk_offset: placement.offset,
                        }
                        .into());
                    }
                    self.mismatches.push(ChecksumMismatch {
                        member,
                        source: ChecksumSource::Inline,
                        kind,
                        stored: Some(text.trim().to_owned()),
                        computed,
                        disk: self.index,
                        chunk_no: placement.chunk_no,
                        disk_offset: placement.offset,
                        len: entry.size,
                    });
                }
            }
            if let Some(table) = &mut self.legacy_table {
                // xapi keys its table by member name, digest by the inline member's kind
                // (SHA-1 in exports old enough to carry a table).
                let kind = inline_kind.unwrap_or(ChecksumKind::Sha1);
                table.push(LegacyEntry {
                    member: entry.name.clone(),
                    kind,
                    digest: kind.digest(&data),
                    disk: self.index,
                    chunk_no: placement.chunk_no,
                    disk_offset: placement.offset,
                    len: entry.size,
                });
            }
            if data.is_empty() {
                // A keep-alive: it only renumbers the following chunks.
                continue;
            }
            return Ok(Some(DiskChunk {
                disk: self.index,
                chunk_no: placement.chunk_no,
                offset: placement.offset,
                data,
            }));
        }
    }
}

/// Detects plain tar, gzip or zstd as xapi's importer does: a tar header named `ova.xml`
/// (or, with `expect_first = None`, any valid tar header) first, then the zstd magic, then gzip.
pub(crate) async fn open_detected<R: AsyncRead + Send + Unpin + 'static>(
    mut reader: R,
    expect_first: Option<&str>,
) -> Result<(BoxedRead, Compression), Error> {
    let mut prefix = vec![0u8; BLOCK];
    let mut got = 0;
    while got < BLOCK {
        let n = reader
            .read(&mut prefix[got..])
            .await
            .map_err(crate::error::io("reading the XVA stream"))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    prefix.truncate(got);
    if got < BLOCK && Compression::detect(&prefix).is_none() {
        // xapi's importer reports a premature end here, whatever the few bytes are.
        return Err(crate::format::tar::TarError::Truncated {
            offset: got as u64,
            context: "the first header".to_owned(),
        }
        .into());
    }
    let is_tar = got == BLOCK
        && match parse_header(prefix[..].try_into().expect("prefix is one block"), 0) {
            Ok(Some((entry, _))) => expect_first.is_none_or(|n| entry.name == n),
            _ => false,
        };
    let compression = if is_tar {
        Compression::None
    } else if let Some(c) = Compression::detect(&prefix) {
        c
    } else if got == BLOCK && prefix.iter().all(|&b| b == 0) {
        // An empty archive: let the tar layer report it.
        Compression::None
    } else if got == BLOCK && parse_header(prefix[..].try_into().expect("one block"), 0).is_ok() {
        // A valid tar whose first member is not the expected one: reported by the caller.
        Compression::None
    } else {
        let first_bytes = prefix.iter().take(16).fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        });
        return Err(XvaError::NotAnXva { first_bytes }.into());
    };
    let chained = std::io::Cursor::new(prefix).chain(reader);
    let boxed: BoxedRead = match compression {
        Compression::None => Box::new(chained),
        kind => Box::new(
            DecompressingReader::new(chained, kind)
                .map_err(crate::error::io("starting the decompressor"))?,
        ),
    };
    Ok((boxed, compression))
}

/// Reads an XVA stream: `ova.xml` first, then each disk's verified chunks.
///
/// ```no_run
/// # async fn demo(file: tokio::fs::File) -> Result<(), xapi_backup::Error> {
/// use xapi_backup::format::xva::{ReadOptions, XvaReader};
/// let mut xva = XvaReader::open(file, ReadOptions::default()).await?;
/// println!("{} VMs", xva.ova_xml().vms().len());
/// while let Some(chunk) = xva.next_chunk().await? {
///     // write chunk.data at chunk.offset of disk xva.disks()[chunk.disk]
/// }
/// # Ok(()) }
/// ```
///
/// # Rescuing a damaged backup
///
/// By default a chunk whose data does not match its checksum ends the read with
/// [`XvaError::ChecksumMismatch`]. With [`MismatchPolicy::Record`] (xapi's `force=true`) the
/// chunk is handed out anyway and the mismatch kept, so that everything readable is saved and
/// the damaged ranges are known:
///
/// ```no_run
/// # async fn demo(file: tokio::fs::File) -> Result<(), xapi_backup::Error> {
/// use xapi_backup::format::xva::{MismatchPolicy, ReadOptions, XvaReader};
/// let options = ReadOptions {
///     on_checksum_mismatch: MismatchPolicy::Record,
///     ..ReadOptions::default()
/// };
/// let mut xva = XvaReader::open(file, options).await?;
/// while let Some(chunk) = xva.next_chunk().await? {
///     // write chunk.data at chunk.offset, as usual
/// }
/// for bad in xva.mismatches() {
///     eprintln!(
///         "disk {} bytes {}..{} ({}): stored {:?}, computed {}",
///         bad.disk,
///         bad.disk_offset,
///         bad.disk_offset + bad.len,
///         bad.member,
///         bad.stored,
///         bad.computed
///     );
/// }
/// # Ok(()) }
/// ```
///
/// A chunk's inline mismatch is in [`XvaReader::mismatches`] by the time the chunk is
/// returned; the legacy table of an `export_vsn` below 2 archive is compared once the last
/// chunk has been read, so its mismatches appear when `next_chunk` returns `Ok(None)`.
pub struct XvaReader {
    ova: OvaXml,
    compression: Compression,
    chunks: ChunkStream,
}

impl std::fmt::Debug for XvaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XvaReader")
            .field("compression", &self.compression)
            .field("disks", &self.chunks.disks())
            .finish_non_exhaustive()
    }
}

impl XvaReader {
    /// Detects compression, reads and parses `ova.xml`, and works out which disks follow.
    pub async fn open<R: AsyncRead + Send + Unpin + 'static>(
        reader: R,
        options: ReadOptions,
    ) -> Result<Self, Error> {
        let (stream, compression) = open_detected(reader, Some("ova.xml")).await?;
        let mut tar = TarReader::new(stream);
        let first = tar
            .next_entry()
            .await?
            .ok_or_else(|| XvaError::UnexpectedMember {
                expected: "ova.xml".to_owned(),
                found: "end of archive".to_owned(),
                disk_offset: 0,
            })?;
        if first.name != "ova.xml" {
            return Err(XvaError::UnexpectedMember {
                expected: "ova.xml".to_owned(),
                found: first.name,
                disk_offset: 0,
            }
            .into());
        }
        let xml = tar.read_body(&first, options.max_ova_xml).await?;
        let ova = OvaXml::parse(&xml)?;
        let disks = ova
            .disks()?
            .into_iter()
            .map(|d| DiskInfo {
                prefix: d.id.to_owned(),
                virtual_size: d.virtual_size,
            })
            .collect();
        let require_checksums = ova.version.export_vsn > 0;
        let mut chunks = ChunkStream::new(tar, disks, require_checksums, options);
        if ova.version.export_vsn < 2 {
            chunks = chunks.with_legacy_checksum_table();
        }
        Ok(Self {
            ova,
            compression,
            chunks,
        })
    }

    /// The parsed object table.
    pub fn ova_xml(&self) -> &OvaXml {
        &self.ova
    }

    /// The whole-stream compression that was detected.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The disks whose chunks follow, in stream order.
    pub fn disks(&self) -> &[DiskInfo] {
        self.chunks.disks()
    }

    /// The next verified chunk; `Ok(None)` once every disk is complete and the archive has
    /// ended cleanly. Keep-alive chunks are consumed silently.
    pub async fn next_chunk(&mut self) -> Result<Option<DiskChunk>, Error> {
        self.chunks.next_chunk().await
    }

    /// Chunks whose checksum did not match, accepted under [`MismatchPolicy::Record`], in
    /// stream order (always empty under [`MismatchPolicy::Fail`]).
    pub fn mismatches(&self) -> &[ChecksumMismatch] {
        self.chunks.mismatches()
    }

    /// Ends a metadata-only archive (`/export_metadata`, `VM.export` with
    /// `include_vhd=false`...): `ova.xml` names disks but no chunks follow, only the
    /// end-of-archive marker. Later calls to [`XvaReader::next_chunk`] return `Ok(None)`.
    pub async fn finish_metadata_only(&mut self) -> Result<(), Error> {
        self.chunks.finish_without_disks().await
    }

    /// Turns the reader into a `Stream` of verified chunks.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<DiskChunk, Error>> + Send {
        futures::stream::try_unfold(self, |mut r| async move {
            Ok(r.next_chunk().await?.map(|c| (c, r)))
        })
    }
}
