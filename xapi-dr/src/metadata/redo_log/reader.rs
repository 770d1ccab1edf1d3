//! Reading a redo log image: header, the valid half's database record, replay of its deltas,
//! and a summary of the other half.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use serde::Serialize;

use super::{
    DELTA_RECORD_OVERHEAD, GENERATION_SIZE, HALF_SIZE, LENGTH_SIZE, MAGIC, MARKER_SIZE,
    POS_FIRST_HALF, POS_SECOND_HALF, POS_VALIDITY, RedoLogError, Validity,
};
use crate::metadata::database::Database;
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
