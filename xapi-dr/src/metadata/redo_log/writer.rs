//! Writing a redo log as xapi's `block_device_io` does.

use std::io::{Read, Seek, SeekFrom, Write};

use super::{
    DB_RECORD_OVERHEAD, DELTA_RECORD_OVERHEAD, HALF_SIZE, LENGTH_SIZE, MAGIC, MARKER_SIZE,
    POS_FIRST_HALF, POS_SECOND_HALF, POS_VALIDITY, RedoLogError, TRAMPLE_SIZE, Validity,
};
use crate::metadata::database::Database;
use crate::metadata::db_xml::db_xml_bytes;
use crate::metadata::delta::Delta;

/// What [`RedoLogWriter::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The delta was appended to the valid half.
    Delta,
    /// The half was full: a full database was written into the other half, which is now valid.
    RolledOver,
}

/// Writes a redo log on any `Read + Write + Seek` device (a file, a block device, a
/// `Cursor<Vec<u8>>`).
///
/// The half named by the validity byte is complete at every moment: a database is written into
/// the other half and the validity byte flipped only once it is there.
#[derive(Debug)]
pub struct RedoLogWriter<D> {
    device: D,
    marker: String,
    validity: Validity,
    /// Offset where the next delta goes in the valid half.
    next_delta: u64,
    /// Whether the valid half was written by this writer (and so carries its marker).
    has_own_record: bool,
}

impl<D: Read + Write + Seek> RedoLogWriter<D> {
    /// Initialises the device as an empty redo log (magic, NUL, validity `'0'`) and returns a
    /// writer whose records carry `marker` (a UUID string, one per writer instance as in xapi).
    pub fn create(device: D, marker: &str) -> Result<Self, RedoLogError> {
        let mut writer = Self::create_unchecked(device, marker)?;
        let mut header = Vec::with_capacity(18);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(b"\x000");
        write_at(&mut writer.device, 0, &header)?;
        flush(&mut writer.device)?;
        Ok(writer)
    }

    /// Opens a device as xapi does when it starts a log: an existing redo log keeps its valid
    /// half (the next [`RedoLogWriter::write_database`] goes into the other one, so the old
    /// database stays readable until the new one is complete); anything else is initialised.
    ///
    /// Deltas are refused until a database has been written by this writer: records carry
    /// this writer's `marker`, and deltas must match the marker of their half.
    pub fn open(mut device: D, marker: &str) -> Result<Self, RedoLogError> {
        let mut header = [0u8; 18];
        let existing = device
            .seek(SeekFrom::Start(0))
            .and_then(|_| device.read_exact(&mut header))
            .map(|()| header[..16] == MAGIC[..])
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Ok(false)
                } else {
                    Err(RedoLogError::Io {
                        offset: 0,
                        source: e,
                    })
                }
            })?;
        let validity = match (existing, header[POS_VALIDITY as usize]) {
            (true, b'1') => Validity::First,
            (true, b'2') => Validity::Second,
            (true, b'0') => Validity::NoValidHalf,
            _ => return Self::create(device, marker),
        };
        let mut writer = Self::create_unchecked(device, marker)?;
        writer.validity = validity;
        writer.has_own_record = false;
        Ok(writer)
    }

    fn create_unchecked(device: D, marker: &str) -> Result<Self, RedoLogError> {
        if marker.len() != MARKER_SIZE || !marker.is_ascii() {
            return Err(RedoLogError::BadMarkerForWriter {
                marker: marker.to_owned(),
            });
        }
        Ok(RedoLogWriter {
            device,
            marker: marker.to_owned(),
            validity: Validity::NoValidHalf,
            next_delta: 0,
            has_own_record: false,
        })
    }

    /// The half currently valid.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// Bytes still free for deltas in the valid half (0 if none is valid).
    pub fn room_left(&self) -> u64 {
        match self.validity.half_offset() {
            Some(half) if self.has_own_record => half + HALF_SIZE - self.next_delta,
            _ => 0,
        }
    }

    /// Writes a full database record, with `generation`, into the half that is not valid, then
    /// makes that half valid.
    pub fn write_database(&mut self, db: &Database, generation: i64) -> Result<(), RedoLogError> {
        self.write_database_xml(&db_xml_bytes(db), generation)
    }

    /// Like [`RedoLogWriter::write_database`], from XML already serialised.
    pub fn write_database_xml(&mut self, xml: &[u8], generation: i64) -> Result<(), RedoLogError> {
        let room = HALF_SIZE - DB_RECORD_OVERHEAD;
        if xml.len() as u64 > room {
            return Err(RedoLogError::DatabaseTooLarge {
                length: xml.len() as u64,
                room,
            });
        }
        let (target, new_validity) = match self.validity {
            Validity::First => (POS_SECOND_HALF, Validity::Second),
            Validity::Second | Validity::NoValidHalf => (POS_FIRST_HALF, Validity::First),
        };
        // marker, (length later), xml, generation, marker, trample; then length; then validity
        write_at(&mut self.device, target, self.marker.as_bytes())?;
        let xml_pos = target + (MARKER_SIZE + LENGTH_SIZE) as u64;
        write_at(&mut self.device, xml_pos, xml)?;
        let mut tail = Vec::with_capacity(GENERATION_TAIL);
        tail.extend_from_slice(format!("{generation:016}").as_bytes());
        tail.extend_from_slice(self.marker.as_bytes());
        let end = xml_pos + xml.len() as u64 + tail.len() as u64;
        let trample = TRAMPLE_SIZE.min((target + HALF_SIZE - end) as usize);
        tail.resize(tail.len() + trample, 0);
        write_at(&mut self.device, xml_pos + xml.len() as u64, &tail)?;
        write_at(
            &mut self.device,
            target + MARKER_SIZE as u64,
            format!("{:016}", xml.len()).as_bytes(),
        )?;
        flush(&mut self.device)?;
        write_at(&mut self.device, POS_VALIDITY, &[new_validity.byte()])?;
        flush(&mut self.device)?;
        self.validity = new_validity;
        self.next_delta = end;
        self.has_own_record = true;
        Ok(())
    }

    /// Appends a delta with its generation. When the valid half has no room for it, writes
    /// `current` (the database with this delta already applied) as a full record into the other
    /// half instead, as xapi does on "Not enough space on block device".
    pub fn append(
        &mut self,
        delta: &Delta,
        generation: i64,
        current: &Database,
    ) -> Result<AppendOutcome, RedoLogError> {
        self.append_with(delta, generation, || db_xml_bytes(current))
    }

    /// Like [`RedoLogWriter::append`], for callers that keep their own object model: `current_xml`
    /// is called only on rollover and must return the XML dump with this delta applied.
    pub fn append_with(
        &mut self,
        delta: &Delta,
        generation: i64,
        current_xml: impl FnOnce() -> Vec<u8>,
    ) -> Result<AppendOutcome, RedoLogError> {
        let Some(half) = self.validity.half_offset().filter(|_| self.has_own_record) else {
            return Err(RedoLogError::DeltaWithoutDatabase);
        };
        let payload = delta.encode();
        let needed = DELTA_RECORD_OVERHEAD + payload.len() as u64;
        let half_end = half + HALF_SIZE;
        if self.next_delta + needed > half_end {
            self.write_database_xml(&current_xml(), generation)?;
            return Ok(AppendOutcome::RolledOver);
        }
        let mut record = Vec::with_capacity(needed as usize + TRAMPLE_SIZE);
        record.extend_from_slice(format!("{:016}", payload.len()).as_bytes());
        record.extend_from_slice(&payload);
        record.extend_from_slice(format!("{generation:016}").as_bytes());
        record.extend_from_slice(self.marker.as_bytes());
        let end = self.next_delta + needed;
        let trample = TRAMPLE_SIZE.min((half_end - end) as usize);
        record.resize(record.len() + trample, 0);
        write_at(&mut self.device, self.next_delta, &record)?;
        flush(&mut self.device)?;
        self.next_delta = end;
        Ok(AppendOutcome::Delta)
    }

    /// The device, for reading (writing behind the writer's back would desynchronise it).
    pub fn get_ref(&self) -> &D {
        &self.device
    }

    /// Gives the device back.
    pub fn into_inner(self) -> D {
        self.device
    }
}

const GENERATION_TAIL: usize = 16 + MARKER_SIZE + TRAMPLE_SIZE;

fn write_at<D: Write + Seek>(device: &mut D, pos: u64, bytes: &[u8]) -> Result<(), RedoLogError> {
    device
        .seek(SeekFrom::Start(pos))
        .and_then(|_| device.write_all(bytes))
        .map_err(|source| RedoLogError::Io {
            offset: pos,
            source,
        })
}

fn flush<D: Write>(device: &mut D) -> Result<(), RedoLogError> {
    device
        .flush()
        .map_err(|source| RedoLogError::Io { offset: 0, source })
}
