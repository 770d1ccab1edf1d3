//! Redo-log reader and writer against images built by hand from the reference layout, and
//! against the writer's own output.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use xapi_dr::metadata::redo_log::{
    AppendOutcome, HalfContent, LOG_SIZE, POS_FIRST_HALF, POS_SECOND_HALF, RedoLogError, Validity,
};
use xapi_dr::metadata::{
    Database, Delta, Diagnostic, Manifest, RedoLogWriter, db_xml_bytes, read_db_xml, read_redo_log,
    read_redo_log_stream,
};

const MARKER: &str = "6f1e8c52-0d1a-4b8e-9c3f-2a7d5e4b1c90";
const OTHER_MARKER: &str = "0b4e7a91-5c2d-4f3e-8a1b-9d6c2e7f4a05";

fn small_db(generation: i64) -> Database {
    let mut db = Database::new(Manifest {
        generation,
        ..Manifest::default()
    });
    db.insert_row(
        "VM",
        "OpaqueRef:vm1",
        3,
        90,
        [
            ("_ref", "OpaqueRef:vm1"),
            ("uuid", "11111111-2222-3333-4444-555555555555"),
            ("name__label", "web 01"),
            ("other_config", "(('k' 'v'))"),
        ],
    );
    db.table_mut("Bond");
    db
}

/// A DB record built by hand: marker | %016d length | xml | %016d generation | marker.
fn db_record(marker: &str, xml: &[u8], generation: i64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(marker.as_bytes());
    out.extend_from_slice(format!("{:016}", xml.len()).as_bytes());
    out.extend_from_slice(xml);
    out.extend_from_slice(format!("{generation:016}").as_bytes());
    out.extend_from_slice(marker.as_bytes());
    out
}

/// A delta record built by hand: %016d length | payload | %016d generation | marker.
fn delta_record(marker: &str, payload: &[u8], generation: i64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("{:016}", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(format!("{generation:016}").as_bytes());
    out.extend_from_slice(marker.as_bytes());
    out
}

fn header(validity: u8) -> Vec<u8> {
    let mut out = b"redo-log--------\0".to_vec();
    out.push(validity);
    out
}

struct HandImage {
    bytes: Vec<u8>,
    /// Offsets where each record starts, then the end of the last record.
    boundaries: Vec<usize>,
}

/// Validity '1', a DB at generation 100, then deltas 101 (create VBD), 103 (rename VM),
/// 103 (stale: skipped), 106 (delete VBD's sibling row), then the 16-NUL trample.
fn hand_image() -> HandImage {
    let xml = db_xml_bytes(&small_db(100));
    let mut bytes = header(b'1');
    let mut boundaries = vec![bytes.len()];
    bytes.extend(db_record(MARKER, &xml, 100));
    let deltas: [(&[u8], i64); 4] = [
        (
            b"CreateRow00000003VBD00000011OpaqueRef:b0000000200000004_ref00000011OpaqueRef:b00000002VM00000013OpaqueRef:vm1",
            101,
        ),
        (
            b"WriteFiel00000002VM00000013OpaqueRef:vm100000011name__label00000006web 02",
            103,
        ),
        (
            b"WriteFiel00000002VM00000013OpaqueRef:vm100000011name__label00000005stale",
            103,
        ),
        (b"DeleteRow00000003VBD00000011OpaqueRef:b", 106),
    ];
    for (payload, generation) in deltas {
        boundaries.push(bytes.len());
        bytes.extend(delta_record(MARKER, payload, generation));
    }
    boundaries.push(bytes.len());
    bytes.extend([0u8; 16]);
    HandImage { bytes, boundaries }
}

#[test]
fn hand_built_image_replays_by_xapis_rule() {
    let image = read_redo_log(Cursor::new(hand_image().bytes)).unwrap();
    assert_eq!(image.validity, Validity::First);
    assert_eq!(image.marker, MARKER);
    assert_eq!(image.record_generation, 100);
    assert_eq!(image.final_generation, 106);
    assert_eq!(image.database.generation(), 106);
    assert_eq!((image.deltas_applied, image.deltas_skipped), (3, 1));
    let vm = image.database.row("VM", "OpaqueRef:vm1").unwrap();
    assert_eq!(
        vm.get("name__label"),
        Some("web 02"),
        "the stale delta must not win"
    );
    // xapi stamps replayed changes with the replayed database's own generation, bumped once
    // per applied delta: 100 (create, from 101), 101 (rename, from 103), 102 (delete, 106).
    assert_eq!(vm.mtime, 101);
    assert!(image.database.row("VBD", "OpaqueRef:b").is_none());
    assert!(image.diagnostics.contains(&Diagnostic::StaleDeltaSkipped {
        offset: hand_image().boundaries[3] as u64,
        generation: 103,
        expected: 104,
    }));
    assert!(image.diagnostics.contains(&Diagnostic::OtherHalf {
        offset: POS_SECOND_HALF,
        content: HalfContent::Absent
    }));
}

#[test]
fn validity_byte_values() {
    let mut zero = header(b'0');
    zero.extend(hand_image().bytes[18..].iter());
    assert!(matches!(
        read_redo_log(Cursor::new(zero)),
        Err(RedoLogError::NoValidHalf)
    ));

    let mut bad = hand_image().bytes;
    bad[17] = b'3';
    assert!(matches!(
        read_redo_log(Cursor::new(bad)),
        Err(RedoLogError::BadValidity { found: b'3' })
    ));

    let mut magic = hand_image().bytes;
    magic[3] = b'X';
    let err = read_redo_log(Cursor::new(magic)).unwrap_err();
    assert!(matches!(err, RedoLogError::BadMagic { .. }), "{err}");

    // '2': the second half is read, the first reported.
    let mut two = header(b'2');
    two.extend(db_record(OTHER_MARKER, &db_xml_bytes(&small_db(50)), 50));
    two.extend([0u8; 16]);
    two.resize(POS_SECOND_HALF as usize, 0);
    two.extend(db_record(MARKER, &db_xml_bytes(&small_db(70)), 70));
    two.extend([0u8; 16]);
    let image = read_redo_log(Cursor::new(two.clone())).unwrap();
    assert_eq!(image.validity, Validity::Second);
    assert_eq!(image.final_generation, 70);
    let Diagnostic::OtherHalf { offset, content } = &image.diagnostics[0] else {
        panic!(
            "first diagnostic is the other half: {:?}",
            image.diagnostics
        )
    };
    assert_eq!(*offset, POS_FIRST_HALF);
    assert!(matches!(
        content,
        HalfContent::Database {
            generation: 50,
            same_marker_as_valid_half: false,
            deltas: 0,
            ..
        }
    ));
    // The same through a stream that cannot seek back.
    let streamed = read_redo_log_stream(NoSeek(Cursor::new(two))).unwrap();
    assert_eq!(streamed.database, image.database);
    assert_eq!(streamed.diagnostics, image.diagnostics);
}

#[test]
fn truncation_anywhere_is_a_typed_error() {
    let hand = hand_image();
    for cut in 0..hand.bytes.len() {
        match read_redo_log(Cursor::new(&hand.bytes[..cut])) {
            Err(RedoLogError::Truncated { offset, .. }) => {
                assert!(
                    offset <= cut as u64,
                    "cut {cut}: offset {offset} past the cut"
                );
            }
            other => panic!("cut at {cut}: expected a truncation error, got {other:?}"),
        }
    }
    // At each record boundary, the error names that boundary.
    for &boundary in &hand.boundaries[1..] {
        let err = read_redo_log(Cursor::new(&hand.bytes[..boundary])).unwrap_err();
        assert!(
            matches!(err, RedoLogError::Truncated { offset, .. } if offset == boundary as u64),
            "boundary {boundary}: {err}"
        );
    }
}

#[test]
fn structural_bytes_flipped_give_typed_errors() {
    let hand = hand_image();
    let b = &hand.boundaries;
    let mut structural = Vec::new();
    // DB record: marker and length; its generation and closing marker.
    structural.extend(b[0]..b[0] + 52);
    structural.extend(b[1] - 52..b[1]);
    // Every delta: length, tag and its own length fields, generation, marker.
    for w in b[1..].windows(2) {
        structural.extend(w[0]..w[0] + 16 + 9 + 8);
        structural.extend(w[1] - 52..w[1]);
    }
    for &i in &structural {
        let mut bytes = hand.bytes.clone();
        bytes[i] = b'X';
        let result = read_redo_log(Cursor::new(bytes));
        assert!(result.is_err(), "byte {i} flipped to 'X' was accepted");
    }
    // Flipping the XML's structure is caught by the XML reader, with the record's offset.
    let xml_start = b[0] + 52;
    let mut bytes = hand.bytes.clone();
    let lt = bytes[xml_start + 60..]
        .iter()
        .position(|&c| c == b'<')
        .unwrap()
        + xml_start
        + 60;
    bytes[lt] = b'{';
    let err = read_redo_log(Cursor::new(bytes)).unwrap_err();
    assert!(
        matches!(err, RedoLogError::Database { offset, .. } if offset == xml_start as u64),
        "{err}"
    );
}

#[test]
fn wrong_marker_bad_length_and_non_digit_length_name_their_offset() {
    let hand = hand_image();
    let second_delta = hand.boundaries[2];
    let marker_pos = hand.boundaries[3] - 36;
    let mut bytes = hand.bytes.clone();
    bytes[marker_pos..marker_pos + 36].copy_from_slice(OTHER_MARKER.as_bytes());
    match read_redo_log(Cursor::new(bytes)).unwrap_err() {
        RedoLogError::MarkerMismatch {
            offset,
            expected,
            found,
        } => {
            assert_eq!(
                (offset, expected.as_str(), found.as_str()),
                (marker_pos as u64, MARKER, OTHER_MARKER)
            );
        }
        other => panic!("{other}"),
    }

    let mut bytes = hand.bytes.clone();
    bytes[second_delta..second_delta + 16].copy_from_slice(b"0000000099999999");
    assert!(matches!(
        read_redo_log(Cursor::new(bytes)).unwrap_err(),
        RedoLogError::LengthOutOfBounds { offset, length: 99_999_999, .. } if offset == second_delta as u64
    ));

    let mut bytes = hand.bytes.clone();
    bytes[second_delta + 5] = b' ';
    assert!(matches!(
        read_redo_log(Cursor::new(bytes)).unwrap_err(),
        RedoLogError::BadLength { offset, what: "delta", .. } if offset == second_delta as u64
    ));

    let mut bytes = hand.bytes;
    bytes[18 + 36 + 3] = b'-';
    assert!(matches!(
        read_redo_log(Cursor::new(bytes)).unwrap_err(),
        RedoLogError::BadLength {
            offset: 54,
            what: "database record",
            ..
        }
    ));
}

#[test]
fn writer_output_reads_back_with_its_deltas() {
    let file = tempfile::tempfile().unwrap();
    let mut writer = RedoLogWriter::create(file, MARKER).unwrap();
    let mut db = small_db(10);
    writer.write_database(&db, 10).unwrap();
    assert_eq!(writer.validity(), Validity::First);
    let deltas = [
        Delta::WriteField {
            table: "VM".into(),
            reference: "OpaqueRef:vm1".into(),
            column: "name__label".into(),
            value: "a name with spaces, 100% and \"quotes\"\n".into(),
        },
        Delta::CreateRow {
            table: "VM_appliance".into(),
            reference: "OpaqueRef:app".into(),
            columns: vec![
                ("_ref".into(), "OpaqueRef:app".into()),
                ("uuid".into(), "app-uuid".into()),
            ],
        },
        Delta::WriteField {
            table: "VM".into(),
            reference: "OpaqueRef:vm1".into(),
            column: "appliance".into(),
            value: "OpaqueRef:app".into(),
        },
    ];
    for (i, delta) in deltas.iter().enumerate() {
        let generation = 11 + 2 * i as i64;
        // The replay stamps rows with the replayed database's generation: 10, 11, 12.
        delta.apply(&mut db, 10 + i as i64).unwrap();
        assert_eq!(
            writer.append(delta, generation, &db).unwrap(),
            AppendOutcome::Delta
        );
    }
    db.manifest.generation = 15;
    let mut file = writer.into_inner();
    file.seek(SeekFrom::Start(0)).unwrap();
    let image = read_redo_log(&mut file).unwrap();
    assert_eq!(image.final_generation, 15);
    assert_eq!(image.deltas_applied, 3);
    assert_eq!(image.database, db);
    // The image is as small as what was written: nothing is read past the records.
    assert!(file.metadata().unwrap().len() < 4096);
}

#[test]
fn writer_rolls_over_into_the_other_half_when_full() {
    let file = tempfile::tempfile().unwrap();
    let mut writer = RedoLogWriter::create(file, MARKER).unwrap();
    let mut db = small_db(1);
    writer.write_database(&db, 1).unwrap();
    let big = "x".repeat(4 << 20);
    let mut generation = 1;
    let mut appended = 0;
    loop {
        generation += 1;
        let delta = Delta::WriteField {
            table: "VM".into(),
            reference: "OpaqueRef:vm1".into(),
            column: "blob".into(),
            value: big.clone(),
        };
        delta.apply(&mut db, generation).unwrap();
        db.manifest.generation = generation;
        match writer.append(&delta, generation, &db).unwrap() {
            AppendOutcome::Delta => appended += 1,
            AppendOutcome::RolledOver => break,
        }
    }
    assert_eq!(appended, 14, "a 60 MiB half holds 14 deltas of 4 MiB");
    assert_eq!(writer.validity(), Validity::Second);
    let mut file = writer.into_inner();
    file.seek(SeekFrom::Start(0)).unwrap();
    let image = read_redo_log(&mut file).unwrap();
    assert_eq!(image.validity, Validity::Second);
    assert_eq!(image.record_generation, generation);
    assert_eq!(image.database, db);
    assert!(image.diagnostics.contains(&Diagnostic::OtherHalf {
        offset: POS_FIRST_HALF,
        content: HalfContent::Database {
            marker: MARKER.into(),
            same_marker_as_valid_half: true,
            length: db_xml_bytes(&small_db(1)).len() as u64,
            generation: 1,
            deltas: 14,
            last_delta_generation: Some(15),
        }
    }));
}

#[test]
fn crash_before_validity_flip_keeps_the_previous_half() {
    // The device fails the second write of the validity byte: a crash after the new database
    // was written into the second half but before the flip.
    let device = FailOnValidity {
        inner: Cursor::new(Vec::new()),
        validity_writes: 0,
        fail_at: 2,
    };
    let mut writer = RedoLogWriter::create(device, MARKER).unwrap();
    writer.write_database(&small_db(5), 5).unwrap();
    let err = writer.write_database(&small_db(9), 9).unwrap_err();
    assert!(matches!(err, RedoLogError::Io { offset: 17, .. }), "{err}");
    let bytes = writer.into_inner().inner.into_inner();
    assert!(
        bytes.len() > POS_SECOND_HALF as usize,
        "the new database reached the second half"
    );
    let image = read_redo_log(Cursor::new(bytes)).unwrap();
    assert_eq!(image.validity, Validity::First);
    assert_eq!(image.final_generation, 5);
    assert_eq!(image.database, small_db(5));
    assert!(image.diagnostics.iter().any(|d| matches!(
        d,
        Diagnostic::OtherHalf {
            content: HalfContent::Database { generation: 9, .. },
            ..
        }
    )));
}

#[test]
fn reader_never_reads_past_the_two_halves() {
    let mut bytes = header(b'2');
    bytes.resize(POS_SECOND_HALF as usize, 0);
    bytes.extend(db_record(MARKER, &db_xml_bytes(&small_db(7)), 7));
    // a delta list that runs to the very end of the half would be read up to LOG_SIZE only
    bytes.extend([0u8; 16]);
    bytes.resize(LOG_SIZE as usize + 4096, 0xAA);
    let mut device = Watch {
        inner: Cursor::new(bytes),
        max_end: 0,
    };
    let image = read_redo_log(&mut device).unwrap();
    assert_eq!(image.final_generation, 7);
    assert!(device.max_end <= LOG_SIZE, "read up to {}", device.max_end);
    assert_eq!(
        read_db_xml(&db_xml_bytes(&image.database)[..]).unwrap(),
        small_db(7)
    );
}

#[test]
fn writer_refuses_deltas_before_a_database_and_bad_markers() {
    let mut writer = RedoLogWriter::create(Cursor::new(Vec::new()), MARKER).unwrap();
    let delta = Delta::DeleteRow {
        table: "VM".into(),
        reference: "OpaqueRef:x".into(),
    };
    assert!(matches!(
        writer.append(&delta, 2, &Database::default()),
        Err(RedoLogError::DeltaWithoutDatabase)
    ));
    assert!(matches!(
        RedoLogWriter::create(Cursor::new(Vec::new()), "short"),
        Err(RedoLogError::BadMarkerForWriter { .. })
    ));
}

struct NoSeek<R>(R);

impl<R: Read> Read for NoSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

struct Watch<R> {
    inner: R,
    max_end: u64,
}

impl<R: Read + Seek> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let pos = self.inner.stream_position()?;
        self.max_end = self.max_end.max(pos);
        Ok(n)
    }
}

impl<R: Seek> Seek for Watch<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

struct FailOnValidity<D> {
    inner: D,
    validity_writes: usize,
    fail_at: usize,
}

impl<D: Read> Read for FailOnValidity<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<D: Write + Seek> Write for FailOnValidity<D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let pos = self.inner.stream_position()?;
        if pos == 17 && buf.len() == 1 {
            self.validity_writes += 1;
            if self.validity_writes == self.fail_at {
                return Err(std::io::Error::other("power cut"));
            }
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<D: Seek> Seek for FailOnValidity<D> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn reopening_a_log_keeps_the_valid_half_until_a_new_database_is_complete() {
    let mut device = Cursor::new(Vec::new());
    {
        let mut writer = RedoLogWriter::create(&mut device, MARKER).unwrap();
        writer.write_database(&small_db(5), 5).unwrap();
    }
    // A new instance (new marker, as xapi picks one per start) opens the same device.
    let mut writer = RedoLogWriter::open(&mut device, OTHER_MARKER).unwrap();
    assert_eq!(writer.validity(), Validity::First);
    let delta = Delta::DeleteRow {
        table: "VM".into(),
        reference: "OpaqueRef:vm1".into(),
    };
    assert!(matches!(
        writer.append(&delta, 6, &Database::default()),
        Err(RedoLogError::DeltaWithoutDatabase)
    ));
    // Still the old database: open() wrote nothing.
    let snapshot = Cursor::new(writer.get_ref().get_ref().clone());
    assert_eq!(read_redo_log(snapshot).unwrap().final_generation, 5);
    writer.write_database(&small_db(8), 8).unwrap();
    assert_eq!(writer.validity(), Validity::Second);
    drop(writer);
    let image = read_redo_log(&mut device).unwrap();
    assert_eq!(
        (image.marker.as_str(), image.final_generation),
        (OTHER_MARKER, 8)
    );

    // Anything that is not a redo log is initialised.
    let mut blank = Cursor::new(vec![0xAAu8; 64]);
    let writer = RedoLogWriter::open(&mut blank, MARKER).unwrap();
    assert_eq!(writer.validity(), Validity::NoValidHalf);
    assert_eq!(&blank.get_ref()[..18], b"redo-log--------\x000");
}

mod replay_properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random damage anywhere in an image gives a result or a typed error, never a panic.
        #[test]
        fn damaged_images_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = hand_image().bytes;
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = read_redo_log(Cursor::new(bytes.clone()));
            let end = cut.index(bytes.len());
            let _ = read_redo_log_stream(&bytes[..end]);
        }

        /// Whatever mix of fresh and stale deltas the writer appends, the reader ends with the
        /// database the replay rule defines.
        #[test]
        fn reader_replays_what_the_writer_wrote(ops in prop::collection::vec((".{0,12}", 0u8..4), 0..25)) {
            let mut writer = RedoLogWriter::create(Cursor::new(Vec::new()), MARKER).unwrap();
            let base = small_db(10);
            writer.write_database(&base, 10).unwrap();
            let mut model = base.clone();
            let mut last_applied = 10;
            let mut replay_stamp = 10;
            let mut skipped = 0;
            for (value, step) in &ops {
                let delta = Delta::WriteField {
                    table: "VM".into(),
                    reference: "OpaqueRef:vm1".into(),
                    column: "name__label".into(),
                    value: value.clone(),
                };
                let generation = if *step == 0 { last_applied } else { last_applied + i64::from(*step) };
                if generation > last_applied {
                    delta.apply(&mut model, replay_stamp).unwrap();
                    replay_stamp += 1;
                    last_applied = generation;
                } else {
                    skipped += 1;
                }
                prop_assert_eq!(writer.append(&delta, generation, &model).unwrap(), AppendOutcome::Delta);
            }
            model.manifest.generation = last_applied;
            let image = read_redo_log(writer.into_inner()).unwrap();
            prop_assert_eq!(image.final_generation, last_applied);
            prop_assert_eq!(image.deltas_skipped, skipped);
            prop_assert_eq!(image.database, model);
        }
    }
}

#[test]
fn a_never_written_other_half_is_reported_empty() {
    let mut bytes = hand_image().bytes;
    bytes.resize(POS_SECOND_HALF as usize + 4096, 0);
    let image = read_redo_log(Cursor::new(bytes)).unwrap();
    assert_eq!(
        image.diagnostics[0],
        Diagnostic::OtherHalf {
            offset: POS_SECOND_HALF,
            content: HalfContent::Empty
        }
    );
    // A second half cut short inside its first record is unreadable, not absent.
    let mut bytes = hand_image().bytes;
    bytes.resize(POS_SECOND_HALF as usize, 0);
    bytes.extend_from_slice(&MARKER.as_bytes()[..10]);
    let image = read_redo_log(Cursor::new(bytes)).unwrap();
    assert!(matches!(
        &image.diagnostics[0],
        Diagnostic::OtherHalf { content: HalfContent::Unreadable { reason }, .. } if reason.contains("truncated")
    ));
}

#[test]
fn full_size_metadata_vdi_is_read_without_touching_its_tail() {
    use xapi_dr::metadata::redo_log::MINIMUM_VDI_SIZE;
    assert_eq!(MINIMUM_VDI_SIZE, 3_988_783_104);
    let file = tempfile::tempfile().unwrap();
    file.set_len(MINIMUM_VDI_SIZE).unwrap();
    let mut writer = RedoLogWriter::create(file, MARKER).unwrap();
    writer.write_database(&small_db(3), 3).unwrap();
    writer.write_database(&small_db(4), 4).unwrap();
    let mut file = writer.into_inner();
    file.seek(SeekFrom::Start(0)).unwrap();
    let image = read_redo_log(&mut file).unwrap();
    assert_eq!(
        (image.validity, image.final_generation),
        (Validity::Second, 4)
    );

    // As the byte stream of a raw VDI export: the reader stops consuming at the second half's
    // end, however long the stream.
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut counted = Counted {
        inner: &mut file,
        read: 0,
    };
    let streamed = read_redo_log_stream(&mut counted).unwrap();
    assert_eq!(streamed.database, image.database);
    assert!(counted.read <= LOG_SIZE, "consumed {} bytes", counted.read);
}

struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}
