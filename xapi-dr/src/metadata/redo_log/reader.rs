//! Reading a redo log image: header, the valid half's database record, replay of its deltas,
//! and a summary of the other half; or, streaming, only its framing, for the generation.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use serde::Serialize;

use super::{
    DELTA_RECORD_OVERHEAD, GENERATION_SIZE, HALF_SIZE, LENGTH_SIZE, MAGIC, MARKER_SIZE,
    POS_FIRST_HALF, POS_SECOND_HALF, POS_VALIDITY, RedoLogError, Validity,
};
use crate::metadata::database::{Database, Manifest};
use crate::metadata::db_xml::read_db_xml;
use crate::metadata::delta::{DeltaRef, parse_digits};
use crate::metadata::diagnostic::Diagnostic;

/// What a half holds, as found by a scan that does not parse the XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HalfContent {
    /// The device ends before this half.
    Absent,
    /// The half starts with NUL bytes where a marker and a length should be: never written.
    Empty,
    /// A complete database record and its deltas.
    Database {
        /// The record's marker.
        marker: String,
        /// Whether the marker is the valid half's (the same redo-log instance).
        same_marker_as_valid_half: bool,
        /// XML length in bytes.
        length: u64,
        /// Generation of the database record.
        generation: i64,
        /// Number of well-formed deltas after it.
        deltas: usize,
        /// Highest generation among those deltas.
        last_delta_generation: Option<i64>,
    },
    /// The bytes do not form a database record.
    Unreadable {
        /// Why, with the offset.
        reason: String,
    },
}

/// A redo log read and replayed.
#[derive(Debug, Clone)]
pub struct RedoLogImage {
    /// The database after replaying the valid half's deltas. One-to-many sets are as stored;
    /// call [`Database::recompute_relations`] to rebuild them.
    pub database: Database,
    /// The validity byte.
    pub validity: Validity,
    /// The marker of the valid half (one per xapi redo-log instance).
    pub marker: String,
    /// Generation of the valid half's database record.
    pub record_generation: i64,
    /// Generation after replay: the key of "newest wins" between metadata VDIs of one pool.
    pub final_generation: i64,
    /// Deltas applied.
    pub deltas_applied: usize,
    /// Deltas skipped by the replay rule.
    pub deltas_skipped: usize,
    /// Observations: the other half, stale deltas, ...
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads a redo log from a seekable device or image file. Only the header and the two halves
/// are read (at most 2 × 60 MiB + 18 bytes), and never written.
pub fn read_redo_log<R: Read + Seek>(mut device: R) -> Result<RedoLogImage, RedoLogError> {
    let mut header = [0u8; 18];
    read_at(&mut device, 0, &mut header, "header")?;
    if &header[..16] != MAGIC {
        return Err(RedoLogError::BadMagic {
            found: String::from_utf8_lossy(&header[..16]).into_owned(),
        });
    }
    let validity = match header[POS_VALIDITY as usize] {
        b'0' => return Err(RedoLogError::NoValidHalf),
        b'1' => Validity::First,
        b'2' => Validity::Second,
        found => return Err(RedoLogError::BadValidity { found }),
    };
    // Halves are visited in ascending offset order so that a forward-only stream works too.
    let (valid_pos, other_pos) = match validity {
        Validity::Second => (POS_SECOND_HALF, POS_FIRST_HALF),
        _ => (POS_FIRST_HALF, POS_SECOND_HALF),
    };
    if valid_pos < other_pos {
        let mut image = read_valid_half(&mut device, valid_pos, validity)?;
        let content = scan_half(&mut device, other_pos, Some(&image.marker));
        image.diagnostics.insert(
            0,
            Diagnostic::OtherHalf {
                offset: other_pos,
                content,
            },
        );
        Ok(image)
    } else {
        let first = scan_half(&mut device, other_pos, None);
        let mut image = read_valid_half(&mut device, valid_pos, validity)?;
        let content = match first {
            HalfContent::Database {
                marker,
                length,
                generation,
                deltas,
                last_delta_generation,
                ..
            } => HalfContent::Database {
                same_marker_as_valid_half: marker == image.marker,
                marker,
                length,
                generation,
                deltas,
                last_delta_generation,
            },
            other => other,
        };
        image.diagnostics.insert(
            0,
            Diagnostic::OtherHalf {
                offset: other_pos,
                content,
            },
        );
        Ok(image)
    }
}

/// Reads a redo log from a byte stream that cannot seek back (a raw VDI export over HTTP, a
/// pipe). Bytes are skipped forward as needed; nothing after the second half is consumed.
pub fn read_redo_log_stream<R: Read>(stream: R) -> Result<RedoLogImage, RedoLogError> {
    read_redo_log(ForwardOnly {
        inner: stream,
        pos: 0,
    })
}

fn read_valid_half<R: Read + Seek>(
    device: &mut R,
    half: u64,
    validity: Validity,
) -> Result<RedoLogImage, RedoLogError> {
    let half_end = half + HALF_SIZE;
    let record = read_db_record_header(device, half)?;
    let xml_pos = half + (MARKER_SIZE + LENGTH_SIZE) as u64;
    seek(device, xml_pos)?;
    let mut payload = Read::take(&mut *device, record.length);
    let parsed = read_db_xml(BufReader::with_capacity(256 * 1024, &mut payload));
    // The parser reads to the end of its input unless it fails first; whatever it left is
    // drained so that a short device is told apart from bad XML.
    let left = payload.limit();
    let drained = io::copy(&mut payload, &mut io::sink()).map_err(|source| RedoLogError::Io {
        offset: xml_pos + record.length - left,
        source,
    })?;
    if drained < left {
        return Err(RedoLogError::Truncated {
            offset: xml_pos + record.length - (left - drained),
            what: "the database record's XML",
        });
    }
    let mut database = parsed.map_err(|source| RedoLogError::Database {
        offset: xml_pos,
        source,
    })?;
    let gen_pos = xml_pos + record.length;
    let record_generation = read_generation(device, gen_pos)?;
    let end_marker_pos = gen_pos + GENERATION_SIZE as u64;
    check_marker(device, end_marker_pos, &record.marker_bytes)?;
    let mut diagnostics = Vec::new();
    if database.generation() != record_generation {
        diagnostics.push(Diagnostic::GenerationMismatch {
            record: record_generation,
            manifest: database.generation(),
        });
    }

    let mut pos = end_marker_pos + MARKER_SIZE as u64;
    let mut expected = record_generation + 1;
    let mut final_generation = record_generation;
    // xapi replays into the database it loaded from the XML: every applied delta stamps the
    // rows it touches with that database's current generation, then bumps it by one
    // (`Db_cache_types.set_field` / `add_row` / `remove_row`); only at the end is the
    // generation set to the last delta's.
    let mut replay_generation = database.generation();
    let (mut applied, mut skipped) = (0, 0);
    // one buffer for every payload; deltas are applied straight from it
    let mut payload = Vec::new();
    while let Some(generation) =
        read_delta_record(device, pos, half_end, &record.marker_bytes, &mut payload)?
    {
        let decoded = DeltaRef::decode(&payload).map_err(|source| RedoLogError::Delta {
            offset: pos,
            source,
        })?;
        if generation < expected {
            skipped += 1;
            diagnostics.push(Diagnostic::StaleDeltaSkipped {
                offset: pos,
                generation,
                expected,
            });
        } else {
            let changed = decoded
                .apply(&mut database, replay_generation)
                .map_err(|source| RedoLogError::Apply {
                    offset: pos,
                    generation,
                    source,
                })?;
            applied += 1;
            if changed {
                replay_generation += 1;
            }
            expected = generation + 1;
            final_generation = generation;
        }
        pos += DELTA_RECORD_OVERHEAD + payload.len() as u64;
    }
    database.manifest.generation = final_generation;
    Ok(RedoLogImage {
        database,
        validity,
        marker: record.marker,
        record_generation,
        final_generation,
        deltas_applied: applied,
        deltas_skipped: skipped,
        diagnostics,
    })
}

struct RecordHeader {
    /// The marker, as text for reports.
    marker: String,
    /// The marker as written, which every delta's must equal byte for byte.
    marker_bytes: [u8; MARKER_SIZE],
    length: u64,
}

fn read_db_record_header<R: Read + Seek>(
    device: &mut R,
    half: u64,
) -> Result<RecordHeader, RedoLogError> {
    let mut start = [0u8; MARKER_SIZE + LENGTH_SIZE];
    read_at(device, half, &mut start[..MARKER_SIZE], "a marker")?;
    read_at(
        device,
        half + MARKER_SIZE as u64,
        &mut start[MARKER_SIZE..],
        "the database record's length",
    )?;
    parse_db_record_header(&start, half)
}

fn parse_db_record_header(
    start: &[u8; MARKER_SIZE + LENGTH_SIZE],
    half: u64,
) -> Result<RecordHeader, RedoLogError> {
    let mut marker_bytes = [0u8; MARKER_SIZE];
    marker_bytes.copy_from_slice(&start[..MARKER_SIZE]);
    let marker = String::from_utf8_lossy(&marker_bytes).into_owned();
    let length_pos = half + MARKER_SIZE as u64;
    let field = &start[MARKER_SIZE..];
    let length = parse_digits(field).ok_or_else(|| RedoLogError::BadLength {
        offset: length_pos,
        what: "database record",
        text: String::from_utf8_lossy(field).into_owned(),
    })? as u64;
    let room = HALF_SIZE - super::DB_RECORD_OVERHEAD;
    if length > room {
        return Err(RedoLogError::LengthOutOfBounds {
            offset: length_pos,
            what: "database record",
            length,
            room,
        });
    }
    Ok(RecordHeader {
        marker,
        marker_bytes,
        length,
    })
}

/// Reads the delta record at `pos` into `payload`, returning its generation, or `None` at the
/// end of the list (a length field of NUL bytes or zero, or no room left in the half for a
/// length field).
fn read_delta_record<R: Read + Seek>(
    device: &mut R,
    pos: u64,
    half_end: u64,
    marker: &[u8; MARKER_SIZE],
    payload: &mut Vec<u8>,
) -> Result<Option<i64>, RedoLogError> {
    if pos + LENGTH_SIZE as u64 > half_end {
        return Ok(None);
    }
    let mut field = [0u8; LENGTH_SIZE];
    read_at(device, pos, &mut field, "a delta length")?;
    if field.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    // xapi's int_of_string would end the list on any non-number too; its trample makes that
    // case impossible in a sound log, so it is reported as corruption here.
    let length = parse_digits(&field).ok_or_else(|| RedoLogError::BadLength {
        offset: pos,
        what: "delta",
        text: String::from_utf8_lossy(&field).into_owned(),
    })? as u64;
    if length == 0 {
        return Ok(None);
    }
    let room = (half_end - pos).saturating_sub(DELTA_RECORD_OVERHEAD);
    if length > room {
        return Err(RedoLogError::LengthOutOfBounds {
            offset: pos,
            what: "delta",
            length,
            room,
        });
    }
    payload.clear();
    payload.resize(length as usize, 0);
    let payload_pos = pos + LENGTH_SIZE as u64;
    read_at(device, payload_pos, payload, "a delta payload")?;
    let gen_pos = payload_pos + length;
    let generation = read_generation(device, gen_pos)?;
    let marker_pos = gen_pos + GENERATION_SIZE as u64;
    check_marker(device, marker_pos, marker)?;
    Ok(Some(generation))
}

/// Summarises a half without parsing its XML. Never fails: problems become `Unreadable`.
fn scan_half<R: Read + Seek>(device: &mut R, half: u64, valid_marker: Option<&str>) -> HalfContent {
    let mut start = [0u8; MARKER_SIZE + LENGTH_SIZE];
    match read_at(device, half, &mut start, "a marker") {
        Ok(()) if start.iter().all(|&b| b == 0) => return HalfContent::Empty,
        Ok(()) => {}
        Err(RedoLogError::Truncated { .. }) if device_ends_at(device, half) => {
            return HalfContent::Absent;
        }
        Err(e) => {
            return HalfContent::Unreadable {
                reason: e.to_string(),
            };
        }
    }
    let header = match parse_db_record_header(&start, half) {
        Ok(h) => h,
        Err(RedoLogError::Truncated { offset, .. }) if offset == half => {
            return HalfContent::Absent;
        }
        Err(e) => {
            return HalfContent::Unreadable {
                reason: e.to_string(),
            };
        }
    };
    let gen_pos = half + (MARKER_SIZE + LENGTH_SIZE) as u64 + header.length;
    let summary = (|| -> Result<_, RedoLogError> {
        let generation = read_generation(device, gen_pos)?;
        let end_pos = gen_pos + GENERATION_SIZE as u64;
        check_marker(device, end_pos, &header.marker_bytes)?;
        let mut pos = end_pos + MARKER_SIZE as u64;
        let (mut deltas, mut last) = (0, None);
        let mut payload = Vec::new();
        while let Some(generation) = read_delta_record(
            device,
            pos,
            half + HALF_SIZE,
            &header.marker_bytes,
            &mut payload,
        )? {
            deltas += 1;
            last = Some(last.map_or(generation, |l: i64| l.max(generation)));
            pos += DELTA_RECORD_OVERHEAD + payload.len() as u64;
        }
        Ok((generation, deltas, last))
    })();
    match summary {
        Ok((generation, deltas, last_delta_generation)) => HalfContent::Database {
            same_marker_as_valid_half: valid_marker == Some(header.marker.as_str()),
            marker: header.marker,
            length: header.length,
            generation,
            deltas,
            last_delta_generation,
        },
        Err(e) => HalfContent::Unreadable {
            reason: e.to_string(),
        },
    }
}

/// Whether the device holds no byte at `pos` (a short read of a half that does not exist).
fn device_ends_at<R: Read + Seek>(device: &mut R, pos: u64) -> bool {
    let mut byte = [0u8; 1];
    seek(device, pos).is_ok() && matches!(device.read(&mut byte), Ok(0))
}

/// Checks that the marker at `pos` is `expected`, byte for byte (as xapi compares them).
fn check_marker<R: Read + Seek>(
    device: &mut R,
    pos: u64,
    expected: &[u8; MARKER_SIZE],
) -> Result<(), RedoLogError> {
    let mut found = [0u8; MARKER_SIZE];
    read_at(device, pos, &mut found, "a marker")?;
    if found != *expected {
        return Err(RedoLogError::MarkerMismatch {
            offset: pos,
            expected: String::from_utf8_lossy(expected).into_owned(),
            found: String::from_utf8_lossy(&found).into_owned(),
        });
    }
    Ok(())
}

fn read_generation<R: Read + Seek>(device: &mut R, pos: u64) -> Result<i64, RedoLogError> {
    let mut field = [0u8; GENERATION_SIZE];
    read_at(device, pos, &mut field, "a generation")?;
    parse_digits(&field)
        .and_then(|g| i64::try_from(g).ok())
        .ok_or_else(|| RedoLogError::BadGeneration {
            offset: pos,
            text: String::from_utf8_lossy(&field).into_owned(),
        })
}

fn seek<R: Seek>(device: &mut R, pos: u64) -> Result<(), RedoLogError> {
    device
        .seek(SeekFrom::Start(pos))
        .map(drop)
        .map_err(|source| RedoLogError::Io {
            offset: pos,
            source,
        })
}

fn read_at<R: Read + Seek>(
    device: &mut R,
    pos: u64,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), RedoLogError> {
    seek(device, pos)?;
    device.read_exact(buf).map_err(|source| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            RedoLogError::Truncated { offset: pos, what }
        } else {
            RedoLogError::Io {
                offset: pos,
                source,
            }
        }
    })
}

/// Adapts a forward-only stream to `Seek` by discarding bytes; seeking backwards fails.
struct ForwardOnly<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for ForwardOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> Seek for ForwardOnly<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or(io::ErrorKind::InvalidInput)?,
            SeekFrom::End(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "stream has no end to seek from",
                ));
            }
        };
        if target < self.pos {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "stream cannot seek back from byte {} to byte {target}",
                    self.pos
                ),
            ));
        }
        let skipped = io::copy(
            &mut (&mut self.inner).take(target - self.pos),
            &mut io::sink(),
        )?;
        self.pos += skipped;
        // A short skip means the stream ended: the next read reports the truncation.
        Ok(self.pos)
    }
}

/// What a redo log's framing says, read without parsing the database XML or decoding a delta:
/// the generation xapi's replay reaches (reference §5.2), with the manifest at the head of the
/// XML for the schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedoLogGeneration {
    /// The validity byte.
    pub validity: Validity,
    /// The marker of the valid half.
    pub marker: String,
    /// Generation of the valid half's database record.
    pub record_generation: i64,
    /// Generation after replay: the last applied delta's, or the record's.
    pub final_generation: i64,
    /// Deltas the replay applies.
    pub deltas_applied: usize,
    /// Deltas the replay skips as stale.
    pub deltas_skipped: usize,
    /// The XML's manifest (schema version, `generation_count`, other pairs).
    #[serde(skip)]
    pub manifest: Manifest,
    /// Bytes consumed from the start of the device up to the end of the delta list.
    pub bytes_read: u64,
    /// Stale deltas skipped, and a record generation that differs from the manifest's.
    pub diagnostics: Vec<Diagnostic>,
}

/// The most bytes of the database XML kept to find its manifest (the document's first
/// element, a few hundred bytes in practice).
pub const MANIFEST_SEARCH_LIMIT: usize = 64 * 1024;

/// Size of the longest fixed field group the scan reads at once (a marker and a length, or a
/// generation and a marker).
const GROUP_SIZE: usize = MARKER_SIZE + LENGTH_SIZE;

/// Where the scan is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Magic, NUL, validity byte.
    Header,
    /// Bytes between the header and the valid half (the first half when the second is valid).
    ToValidHalf,
    /// The database record's marker and length.
    RecordHead,
    /// The database XML: skipped, its head kept for the manifest.
    RecordXml,
    /// The database record's generation and closing marker.
    RecordTail,
    /// A delta's length field, or the end of the list.
    DeltaLength,
    /// A delta's payload, skipped.
    DeltaPayload,
    /// A delta's generation and marker.
    DeltaTail,
    /// The end of the delta list: nothing more is wanted.
    Done,
}

impl Stage {
    /// The field read in this stage, for truncation errors.
    fn what(self) -> &'static str {
        match self {
            Stage::Header => "header",
            Stage::ToValidHalf => "the bytes before the valid half",
            Stage::RecordHead => "the database record's marker and length",
            Stage::RecordXml => "the database record's XML",
            Stage::RecordTail => "the database record's generation and marker",
            Stage::DeltaLength => "a delta length",
            Stage::DeltaPayload => "a delta payload",
            Stage::DeltaTail => "a delta's generation and marker",
            Stage::Done => "nothing",
        }
    }
}

/// A push scanner of a redo log's framing, fed the device's bytes in order from offset 0, in
/// chunks of any size (sans-IO: the caller reads, from a file, a pipe or an HTTP body).
///
/// It keeps no payload: the XML is skipped (its first [`MANIFEST_SEARCH_LIMIT`] bytes kept for
/// the manifest) and so are deltas, so memory stays bounded whatever the database's size. It
/// wants nothing more once the valid half's delta list ends ([`GenerationScan::is_done`]);
/// the bytes after it, up to the end of a 3.9 GB VDI, need never be read. Unlike
/// [`read_redo_log`] it does not decode deltas, so a delta whose payload is malformed is not
/// noticed; the framing (lengths, generations, markers) is checked as strictly.
///
/// After an error the scan is over; feed it nothing more.
#[derive(Debug)]
pub struct GenerationScan {
    /// Offset of the next byte to consume.
    pos: u64,
    stage: Stage,
    /// Where the current stage started.
    stage_pos: u64,
    /// Bytes the current stage wants: a field group's size, or bytes to skip.
    wanted: u64,
    /// Whether the current stage skips its bytes instead of keeping them.
    skipping: bool,
    group: [u8; GROUP_SIZE],
    filled: usize,
    validity: Validity,
    half_end: u64,
    marker: [u8; MARKER_SIZE],
    xml_pos: u64,
    xml_head: Vec<u8>,
    manifest: Option<Manifest>,
    record_generation: i64,
    expected: i64,
    final_generation: i64,
    applied: usize,
    skipped: usize,
    delta_pos: u64,
    diagnostics: Vec<Diagnostic>,
}

impl Default for GenerationScan {
    fn default() -> Self {
        Self::new()
    }
}

impl GenerationScan {
    /// A scan at offset 0 of a device.
    pub fn new() -> Self {
        GenerationScan {
            pos: 0,
            stage: Stage::Header,
            stage_pos: 0,
            wanted: POS_FIRST_HALF,
            skipping: false,
            group: [0; GROUP_SIZE],
            filled: 0,
            validity: Validity::NoValidHalf,
            half_end: 0,
            marker: [0; MARKER_SIZE],
            xml_pos: 0,
            xml_head: Vec::new(),
            manifest: None,
            record_generation: 0,
            expected: 0,
            final_generation: 0,
            applied: 0,
            skipped: 0,
            delta_pos: 0,
            diagnostics: Vec::new(),
        }
    }

    /// Whether the delta list of the valid half has ended: feed nothing more.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Bytes consumed so far (the offset of the next byte wanted).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Consumes the next bytes of the device, returning how many were used: all of `input`,
    /// or fewer when the scan ends inside it.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<usize, RedoLogError> {
        let total = input.len();
        while !input.is_empty() && self.stage != Stage::Done {
            let left = self.wanted - self.filled as u64;
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
            let (taken, rest) = input.split_at(n);
            if self.skipping {
                if self.stage == Stage::RecordXml && self.xml_head.len() < MANIFEST_SEARCH_LIMIT {
                    let keep = n.min(MANIFEST_SEARCH_LIMIT - self.xml_head.len());
                    self.xml_head.extend_from_slice(&taken[..keep]);
                }
            } else {
                self.group[self.filled..self.filled + n].copy_from_slice(taken);
            }
            self.filled += n;
            self.pos += n as u64;
            input = rest;
            if self.filled as u64 == self.wanted {
                self.complete()?;
            }
        }
        Ok(total - input.len())
    }

    /// Ends the scan at the end of the device: the generation, or what was cut off.
    pub fn finish(self) -> Result<RedoLogGeneration, RedoLogError> {
        if self.stage != Stage::Done {
            return Err(RedoLogError::Truncated {
                offset: self.stage_pos,
                what: self.stage.what(),
            });
        }
        let marker = String::from_utf8_lossy(&self.marker).into_owned();
        Ok(RedoLogGeneration {
            validity: self.validity,
            marker,
            record_generation: self.record_generation,
            final_generation: self.final_generation,
            deltas_applied: self.applied,
            deltas_skipped: self.skipped,
            manifest: self
                .manifest
                .expect("a scan is done only after the database record's manifest was read"),
            bytes_read: self.pos,
            diagnostics: self.diagnostics,
        })
    }

    /// Enters `stage`, wanting `bytes` (kept when `skipping` is false, at most [`GROUP_SIZE`]).
    fn enter(&mut self, stage: Stage, bytes: u64, skipping: bool) -> Result<(), RedoLogError> {
        self.stage = stage;
        self.stage_pos = self.pos;
        self.wanted = bytes;
        self.skipping = skipping;
        self.filled = 0;
        if bytes == 0 && stage != Stage::Done {
            self.complete()?;
        }
        Ok(())
    }

    /// The current stage has all its bytes: check them and move on.
    fn complete(&mut self) -> Result<(), RedoLogError> {
        match self.stage {
            Stage::Header => {
                if &self.group[..16] != MAGIC {
                    return Err(RedoLogError::BadMagic {
                        found: String::from_utf8_lossy(&self.group[..16]).into_owned(),
                    });
                }
                self.validity = match self.group[POS_VALIDITY as usize] {
                    b'0' => return Err(RedoLogError::NoValidHalf),
                    b'1' => Validity::First,
                    b'2' => Validity::Second,
                    found => return Err(RedoLogError::BadValidity { found }),
                };
                let half = self
                    .validity
                    .half_offset()
                    .expect("validity '1' or '2' names a half");
                self.half_end = half + HALF_SIZE;
                self.enter(Stage::ToValidHalf, half - self.pos, true)
            }
            Stage::ToValidHalf => self.enter(Stage::RecordHead, GROUP_SIZE as u64, false),
            Stage::RecordHead => {
                let header = parse_db_record_header(&self.group, self.stage_pos)?;
                self.marker = header.marker_bytes;
                self.xml_pos = self.pos;
                self.enter(Stage::RecordXml, header.length, true)
            }
            Stage::RecordXml => {
                self.manifest = Some(manifest_of(&self.xml_head, self.xml_pos)?);
                self.xml_head = Vec::new();
                self.enter(Stage::RecordTail, GROUP_SIZE as u64, false)
            }
            Stage::RecordTail => {
                let generation = self.tail_generation()?;
                self.record_generation = generation;
                self.final_generation = generation;
                self.expected = generation + 1;
                let manifest_generation =
                    self.manifest.as_ref().map_or(generation, |m| m.generation);
                if manifest_generation != generation {
                    self.diagnostics.push(Diagnostic::GenerationMismatch {
                        record: generation,
                        manifest: manifest_generation,
                    });
                }
                self.next_delta()
            }
            Stage::DeltaLength => {
                let field = &self.group[..LENGTH_SIZE];
                if field.iter().all(|&b| b == 0) {
                    return self.enter(Stage::Done, 0, false);
                }
                let length = parse_digits(field).ok_or_else(|| RedoLogError::BadLength {
                    offset: self.delta_pos,
                    what: "delta",
                    text: String::from_utf8_lossy(field).into_owned(),
                })? as u64;
                if length == 0 {
                    return self.enter(Stage::Done, 0, false);
                }
                let room = (self.half_end - self.delta_pos).saturating_sub(DELTA_RECORD_OVERHEAD);
                if length > room {
                    return Err(RedoLogError::LengthOutOfBounds {
                        offset: self.delta_pos,
                        what: "delta",
                        length,
                        room,
                    });
                }
                self.enter(Stage::DeltaPayload, length, true)
            }
            Stage::DeltaPayload => self.enter(
                Stage::DeltaTail,
                (GENERATION_SIZE + MARKER_SIZE) as u64,
                false,
            ),
            Stage::DeltaTail => {
                let generation = self.tail_generation()?;
                if generation < self.expected {
                    self.skipped += 1;
                    self.diagnostics.push(Diagnostic::StaleDeltaSkipped {
                        offset: self.delta_pos,
                        generation,
                        expected: self.expected,
                    });
                } else {
                    self.applied += 1;
                    self.expected = generation + 1;
                    self.final_generation = generation;
                }
                self.next_delta()
            }
            Stage::Done => Ok(()),
        }
    }

    /// After a record: the next delta's length field, or the end of the half.
    fn next_delta(&mut self) -> Result<(), RedoLogError> {
        self.delta_pos = self.pos;
        if self.pos + LENGTH_SIZE as u64 > self.half_end {
            return self.enter(Stage::Done, 0, false);
        }
        self.enter(Stage::DeltaLength, LENGTH_SIZE as u64, false)
    }

    /// The generation and marker that end a record (both record kinds end alike).
    fn tail_generation(&self) -> Result<i64, RedoLogError> {
        let field = &self.group[..GENERATION_SIZE];
        let generation = parse_digits(field)
            .and_then(|g| i64::try_from(g).ok())
            .ok_or_else(|| RedoLogError::BadGeneration {
                offset: self.stage_pos,
                text: String::from_utf8_lossy(field).into_owned(),
            })?;
        let found = &self.group[GENERATION_SIZE..GENERATION_SIZE + MARKER_SIZE];
        if found != self.marker {
            return Err(RedoLogError::MarkerMismatch {
                offset: self.stage_pos + GENERATION_SIZE as u64,
                expected: String::from_utf8_lossy(&self.marker).into_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
            });
        }
        Ok(generation)
    }
}

/// The manifest at the head of a database XML: the document up to `</manifest>`, closed and
/// read by the database reader itself (so its rules, escaping included, are the same).
fn manifest_of(xml_head: &[u8], xml_pos: u64) -> Result<Manifest, RedoLogError> {
    const END: &[u8] = b"</manifest>";
    let Some(at) = memchr::memmem::find(xml_head, END) else {
        return Err(RedoLogError::ManifestNotFound {
            offset: xml_pos,
            searched: xml_head.len(),
        });
    };
    let mut document = Vec::with_capacity(at + END.len() + 16);
    document.extend_from_slice(&xml_head[..at + END.len()]);
    document.extend_from_slice(b"</database>");
    read_db_xml(&document[..])
        .map(|db| db.manifest)
        .map_err(|source| RedoLogError::Database {
            offset: xml_pos,
            source,
        })
}

/// Reads the generation of a redo log from a forward-only stream (an `/export_raw_vdi` body,
/// a pipe, a file), with bounded memory, stopping once the valid half's delta list ends: a
/// read may run at most one 64 KiB buffer past that point. See [`GenerationScan`].
pub fn read_generation_stream<R: Read>(mut stream: R) -> Result<RedoLogGeneration, RedoLogError> {
    let mut scan = GenerationScan::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while !scan.is_done() {
        let n = match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(RedoLogError::Io {
                    offset: scan.position(),
                    source,
                });
            }
        };
        scan.feed(&buffer[..n])?;
    }
    scan.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;
    use crate::metadata::delta::Delta;
    use crate::metadata::redo_log::RedoLogWriter;

    const MARKER: &str = "6f1e8c52-0d1a-4b8e-9c3f-2a7d5e4b1c90";

    fn small_db(generation: i64) -> Database {
        let mut db = Database::new(Manifest {
            generation,
            schema_minor: 786,
            ..Manifest::default()
        });
        db.insert_row(
            "VM",
            "OpaqueRef:vm1",
            3,
            generation,
            [("_ref", "OpaqueRef:vm1"), ("name__label", "web 01")],
        );
        db
    }

    fn rename(value: &str) -> Delta {
        Delta::WriteField {
            table: "VM".into(),
            reference: "OpaqueRef:vm1".into(),
            column: "name__label".into(),
            value: value.into(),
        }
    }

    /// A log written by the writer: a database at `base`, then a delta per generation step
    /// (a step of 0 repeats the last generation: a stale delta), the model kept alongside.
    fn written_log(base: i64, steps: &[u8], rewrite_first: bool) -> Vec<u8> {
        let mut writer = RedoLogWriter::create(Cursor::new(Vec::new()), MARKER).unwrap();
        let mut model = small_db(base);
        writer.write_database(&model, base).unwrap();
        if rewrite_first {
            // a second full database: the second half becomes the valid one
            writer.write_database(&model, base).unwrap();
        }
        let mut last = base;
        for (i, step) in steps.iter().enumerate() {
            let generation = last + i64::from(*step);
            let delta = rename(&format!("name {i}"));
            if generation > last {
                delta.apply(&mut model, generation).unwrap();
                last = generation;
            }
            writer.append(&delta, generation, &model).unwrap();
        }
        writer.into_inner().into_inner()
    }

    /// Compares the scan with the full reader on the same bytes.
    fn assert_agrees(bytes: &[u8]) -> RedoLogGeneration {
        let image = read_redo_log(Cursor::new(bytes)).unwrap();
        let scanned = read_generation_stream(bytes).unwrap();
        assert_eq!(scanned.final_generation, image.final_generation);
        assert_eq!(scanned.record_generation, image.record_generation);
        assert_eq!(scanned.validity, image.validity);
        assert_eq!(scanned.marker, image.marker);
        assert_eq!(
            (scanned.deltas_applied, scanned.deltas_skipped),
            (image.deltas_applied, image.deltas_skipped)
        );
        let stale = |d: &&Diagnostic| matches!(d, Diagnostic::StaleDeltaSkipped { .. });
        assert_eq!(
            scanned.diagnostics.iter().filter(stale).collect::<Vec<_>>(),
            image.diagnostics.iter().filter(stale).collect::<Vec<_>>()
        );
        assert_eq!(scanned.manifest.schema_minor, 786);
        scanned
    }

    #[test]
    fn stale_deltas_are_skipped_as_the_replay_skips_them() {
        let bytes = written_log(100, &[1, 2, 0, 3, 0, 0, 1], false);
        let scanned = assert_agrees(&bytes);
        assert_eq!(scanned.final_generation, 107);
        assert_eq!((scanned.deltas_applied, scanned.deltas_skipped), (4, 3));
    }

    #[test]
    fn a_valid_second_half_is_read_after_skipping_the_first() {
        let bytes = written_log(40, &[1, 1, 0], true);
        let scanned = assert_agrees(&bytes);
        assert_eq!(scanned.validity, Validity::Second);
        assert_eq!(scanned.final_generation, 42);
        assert!(scanned.bytes_read > POS_SECOND_HALF);
    }

    #[test]
    fn the_scan_stops_at_the_end_of_the_delta_list() {
        let bytes = written_log(7, &[1, 1], false);
        let scanned = assert_agrees(&bytes);
        // the list ends at a trampled (all NUL) length field, read in full
        let end = usize::try_from(scanned.bytes_read).unwrap();
        assert_eq!(&bytes[end - LENGTH_SIZE..end], &[0u8; LENGTH_SIZE]);
        // whatever follows is never consumed, even in one chunk
        let mut followed = bytes[..end].to_vec();
        followed.extend_from_slice(b"anything after the list");
        let mut scan = GenerationScan::new();
        assert_eq!(scan.feed(&followed).unwrap(), end);
        assert!(scan.is_done());
        assert_eq!(scan.finish().unwrap().final_generation, 9);
    }

    #[test]
    fn a_record_alone_has_its_own_generation() {
        let bytes = written_log(12, &[], false);
        assert_eq!(assert_agrees(&bytes).final_generation, 12);
    }

    #[test]
    fn every_cut_before_the_end_is_a_typed_truncation() {
        let bytes = written_log(5, &[1, 0, 2], false);
        let end = usize::try_from(read_generation_stream(&bytes[..]).unwrap().bytes_read).unwrap();
        for cut in 0..end {
            let err = read_generation_stream(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, RedoLogError::Truncated { offset, .. } if offset <= cut as u64),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn framing_errors_name_the_offsets_the_reader_names() {
        let mut bytes = written_log(5, &[1, 1], false);
        let full = read_generation_stream(&bytes[..]).unwrap();
        // the second delta's marker: the last 36 bytes before the trample
        let end = usize::try_from(full.bytes_read).unwrap() - LENGTH_SIZE;
        bytes[end - 1] ^= 0x20;
        let by_reader = read_redo_log(Cursor::new(&bytes)).unwrap_err();
        let by_scan = read_generation_stream(&bytes[..]).unwrap_err();
        assert_eq!(by_scan.to_string(), by_reader.to_string());
        assert!(matches!(by_scan, RedoLogError::MarkerMismatch { .. }));

        let mut bytes = written_log(5, &[1], false);
        bytes[17] = b'0';
        assert!(matches!(
            read_generation_stream(&bytes[..]),
            Err(RedoLogError::NoValidHalf)
        ));
        bytes[0] = b'X';
        assert!(matches!(
            read_generation_stream(&bytes[..]),
            Err(RedoLogError::BadMagic { .. })
        ));
    }

    #[test]
    fn a_manifest_beyond_the_search_limit_is_reported() {
        let mut db = small_db(3);
        db.manifest
            .extra
            .push(("padding".into(), "x".repeat(MANIFEST_SEARCH_LIMIT)));
        let mut writer = RedoLogWriter::create(Cursor::new(Vec::new()), MARKER).unwrap();
        writer.write_database(&db, 3).unwrap();
        let bytes = writer.into_inner().into_inner();
        assert!(matches!(
            read_generation_stream(&bytes[..]),
            Err(RedoLogError::ManifestNotFound { offset, searched: MANIFEST_SEARCH_LIMIT })
                if offset == POS_FIRST_HALF + (MARKER_SIZE + LENGTH_SIZE) as u64
        ));
    }

    proptest! {
        /// Any chunking of the same bytes gives the same scan.
        #[test]
        fn chunk_sizes_do_not_matter(
            steps in prop::collection::vec(0u8..3, 0..12),
            chunk in 1usize..200,
        ) {
            let bytes = written_log(50, &steps, false);
            let whole = assert_agrees(&bytes);
            let mut scan = GenerationScan::new();
            for piece in bytes.chunks(chunk) {
                if scan.is_done() {
                    break;
                }
                scan.feed(piece).unwrap();
            }
            prop_assert_eq!(scan.finish().unwrap(), whole);
        }
    }
}
