//! Delta records of the redo log: one database change each (`Redo_log.t`).
//!
//! Encoding: a 9-byte tag (`CreateRow`, `DeleteRow`, `WriteFiel`), then strings each prefixed by
//! their byte length as 8 decimal digits; `CreateRow` carries its number of column/value pairs as
//! 8 digits too. Values are stored strings (not `%`-protected).

use super::database::{Database, Row};

/// One change to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// A new row with every column (including `_ref`).
    CreateRow {
        /// Table (class) name.
        table: String,
        /// Object reference of the new row.
        reference: String,
        /// Column/value pairs in the order they were encoded.
        columns: Vec<(String, String)>,
    },
    /// A row removed.
    DeleteRow {
        /// Table (class) name.
        table: String,
        /// Object reference of the removed row.
        reference: String,
    },
    /// One column of one row set to a new value.
    WriteField {
        /// Table (class) name.
        table: String,
        /// Object reference of the row.
        reference: String,
        /// Column name (namespaces joined by `__`).
        column: String,
        /// New stored value.
        value: String,
    },
}

/// Why a delta payload could not be decoded. Offsets are relative to the payload's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// The payload ended inside a field.
    #[error("delta: truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Offset in the payload.
        offset: usize,
        /// The field being read.
        what: &'static str,
    },
    /// The 9-byte tag is not one of the three kinds.
    #[error("delta: unknown kind {tag:?} at byte 0")]
    UnknownKind {
        /// The tag found (lossy UTF-8).
        tag: String,
    },
    /// A length or count field is not 8 decimal digits.
    #[error("delta: byte {offset}: {what} length {text:?} is not 8 decimal digits")]
    BadLength {
        /// Offset in the payload.
        offset: usize,
        /// The field whose length it is.
        what: &'static str,
        /// The text found (lossy UTF-8).
        text: String,
    },
    /// A string is not UTF-8.
    #[error("delta: byte {offset}: {what} is not UTF-8")]
    NotUtf8 {
        /// Offset in the payload.
        offset: usize,
        /// The field.
        what: &'static str,
    },
    /// Bytes follow the last field.
    #[error("delta: {extra} unexpected bytes after the record at byte {offset}")]
    TrailingBytes {
        /// Offset of the first unexpected byte.
        offset: usize,
        /// How many bytes follow.
        extra: usize,
    },
}

/// Why a decoded delta could not be applied to a database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// `CreateRow` names a row that exists with a different value (or without a column the
    /// delta lists): xapi's `create_row` raises an integrity violation there.
    #[error("delta: table {table} already has row {reference}, with another {column}")]
    RowExists {
        /// Table name.
        table: String,
        /// Reference.
        reference: String,
        /// The first column that differs or is missing.
        column: String,
    },
    /// `DeleteRow` or `WriteField` names a row the database does not have.
    #[error("delta: table {table} has no row {reference}")]
    NoSuchRow {
        /// Table name.
        table: String,
        /// Reference.
        reference: String,
    },
}

const TAG_CREATE: &[u8; 9] = b"CreateRow";
const TAG_DELETE: &[u8; 9] = b"DeleteRow";
const TAG_WRITE: &[u8; 9] = b"WriteFiel";

impl Delta {
    /// The table the delta changes.
    pub fn table(&self) -> &str {
        match self {
            Delta::CreateRow { table, .. }
            | Delta::DeleteRow { table, .. }
            | Delta::WriteField { table, .. } => table,
        }
    }

    /// The `CreateRow` xapi logs for a new row: every column of the row, in **descending** byte
    /// order of column name. xapi builds the list by folding its column map (ascending) onto
    /// the front of a list (`Db_cache_impl.create_row_locked`), which reverses it.
    pub fn create_row(table: &str, reference: &str, row: &Row) -> Delta {
        let mut columns: Vec<(String, String)> = row
            .columns()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        columns.reverse();
        Delta::CreateRow {
            table: table.to_owned(),
            reference: reference.to_owned(),
            columns,
        }
    }

    /// Encodes the delta as xapi does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Delta::CreateRow {
                table,
                reference,
                columns,
            } => {
                out.extend_from_slice(TAG_CREATE);
                push_string(&mut out, table);
                push_string(&mut out, reference);
                out.extend_from_slice(format!("{:08}", columns.len()).as_bytes());
                for (k, v) in columns {
                    push_string(&mut out, k);
                    push_string(&mut out, v);
                }
            }
            Delta::DeleteRow { table, reference } => {
                out.extend_from_slice(TAG_DELETE);
                push_string(&mut out, table);
                push_string(&mut out, reference);
            }
            Delta::WriteField {
                table,
                reference,
                column,
                value,
            } => {
                out.extend_from_slice(TAG_WRITE);
                push_string(&mut out, table);
                push_string(&mut out, reference);
                push_string(&mut out, column);
                push_string(&mut out, value);
            }
        }
        out
    }

    /// Decodes one delta payload; the whole payload must be consumed.
    pub fn decode(bytes: &[u8]) -> Result<Delta, DeltaError> {
        DeltaRef::decode(bytes).map(|delta| delta.to_delta())
    }

    /// The delta with its strings borrowed.
    fn borrowed(&self) -> DeltaRef<'_> {
        match self {
            Delta::CreateRow {
                table,
                reference,
                columns,
            } => DeltaRef::CreateRow {
                table,
                reference,
                columns: columns
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
            Delta::DeleteRow { table, reference } => DeltaRef::DeleteRow { table, reference },
            Delta::WriteField {
                table,
                reference,
                column,
                value,
            } => DeltaRef::WriteField {
                table,
                reference,
                column,
                value,
            },
        }
    }

    /// Applies the delta to a database as xapi's `apply_delta_to_cache` does. `generation` is
    /// the stamp the change gets as the row's `__ctime`/`__mtime`: during a replay xapi uses
    /// the replayed database's current generation (see the redo-log reader), not the
    /// generation recorded with the delta.
    ///
    /// A `CreateRow` for a row that already exists changes nothing when every listed column
    /// holds the same value, and is an error otherwise, as in xapi's `create_row`;
    /// `DeleteRow` and `WriteField` on a missing row are errors (xapi aborts the replay there
    /// too). Returns whether the database changed.
    pub fn apply(&self, db: &mut Database, generation: i64) -> Result<bool, ApplyError> {
        self.borrowed().apply(db, generation)
    }
}

/// A delta whose strings are borrowed from its encoded payload: what the redo-log replay
/// decodes and applies, without copying a string per delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeltaRef<'a> {
    /// See [`Delta::CreateRow`].
    CreateRow {
        table: &'a str,
        reference: &'a str,
        columns: Vec<(&'a str, &'a str)>,
    },
    /// See [`Delta::DeleteRow`].
    DeleteRow { table: &'a str, reference: &'a str },
    /// See [`Delta::WriteField`].
    WriteField {
        table: &'a str,
        reference: &'a str,
        column: &'a str,
        value: &'a str,
    },
}

impl<'a> DeltaRef<'a> {
    /// Decodes one delta payload (see [`Delta::decode`]).
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<DeltaRef<'a>, DeltaError> {
        let mut cursor = Cursor { bytes, pos: 0 };
        let tag = cursor.take(9, "kind")?;
        let delta = match tag {
            t if t == TAG_CREATE => {
                let table = cursor.string("table")?;
                let reference = cursor.string("reference")?;
                let count = cursor.number("column count")?;
                let mut columns = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let k = cursor.string("column name")?;
                    let v = cursor.string("column value")?;
                    columns.push((k, v));
                }
                DeltaRef::CreateRow {
                    table,
                    reference,
                    columns,
                }
            }
            t if t == TAG_DELETE => DeltaRef::DeleteRow {
                table: cursor.string("table")?,
                reference: cursor.string("reference")?,
            },
            t if t == TAG_WRITE => DeltaRef::WriteField {
                table: cursor.string("table")?,
                reference: cursor.string("reference")?,
                column: cursor.string("column name")?,
                value: cursor.string("column value")?,
            },
            other => {
                return Err(DeltaError::UnknownKind {
                    tag: String::from_utf8_lossy(other).into_owned(),
                });
            }
        };
        if cursor.pos < bytes.len() {
            return Err(DeltaError::TrailingBytes {
                offset: cursor.pos,
                extra: bytes.len() - cursor.pos,
            });
        }
        Ok(delta)
    }

    /// The owned [`Delta`].
    pub(crate) fn to_delta(&self) -> Delta {
        match *self {
            DeltaRef::CreateRow {
                table,
                reference,
                ref columns,
            } => Delta::CreateRow {
                table: table.to_owned(),
                reference: reference.to_owned(),
                columns: columns
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
            DeltaRef::DeleteRow { table, reference } => Delta::DeleteRow {
                table: table.to_owned(),
                reference: reference.to_owned(),
            },
            DeltaRef::WriteField {
                table,
                reference,
                column,
                value,
            } => Delta::WriteField {
                table: table.to_owned(),
                reference: reference.to_owned(),
                column: column.to_owned(),
                value: value.to_owned(),
            },
        }
    }

    /// Applies the delta (see [`Delta::apply`]).
    pub(crate) fn apply(&self, db: &mut Database, generation: i64) -> Result<bool, ApplyError> {
        match *self {
            DeltaRef::CreateRow {
                table,
                reference,
                ref columns,
            } => {
                if let Some(existing) = db.row(table, reference) {
                    return match columns.iter().find(|(k, v)| existing.get(k) != Some(*v)) {
                        None => Ok(false),
                        Some((column, _)) => Err(ApplyError::RowExists {
                            table: table.to_owned(),
                            reference: reference.to_owned(),
                            column: (*column).to_owned(),
                        }),
                    };
                }
                db.create_row(table, reference, generation, columns);
            }
            DeltaRef::DeleteRow { table, reference } => {
                if db.remove_row(table, reference).is_none() {
                    return Err(no_such_row(table, reference));
                }
            }
            DeltaRef::WriteField {
                table,
                reference,
                column,
                value,
            } => {
                if !db.write_field(table, reference, column, value, generation) {
                    return Err(no_such_row(table, reference));
                }
            }
        }
        Ok(true)
    }
}

fn no_such_row(table: &str, reference: &str) -> ApplyError {
    ApplyError::NoSuchRow {
        table: table.to_owned(),
        reference: reference.to_owned(),
    }
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("{:08}", s.len()).as_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DeltaError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DeltaError::Truncated {
                offset: self.bytes.len(),
                what,
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn number(&mut self, what: &'static str) -> Result<usize, DeltaError> {
        let offset = self.pos;
        let digits = self.take(8, what)?;
        parse_digits(digits).ok_or_else(|| DeltaError::BadLength {
            offset,
            what,
            text: String::from_utf8_lossy(digits).into_owned(),
        })
    }

    fn string(&mut self, what: &'static str) -> Result<&'a str, DeltaError> {
        let len = self.number(what)?;
        let offset = self.pos;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|_| DeltaError::NotUtf8 { offset, what })
    }
}

/// Parses a field of ASCII decimal digits (no sign, no spaces); `None` if empty, if a byte is
/// not a digit, or on overflow. Eight digits at a time: every record of a redo log carries
/// several such fields.
pub(crate) fn parse_digits(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    let mut words = digits.chunks_exact(8);
    let mut value: usize = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks_exact(8) yields 8 bytes"));
        let eight = usize::try_from(eight_digits(word)?).ok()?;
        value = value.checked_mul(100_000_000)?.checked_add(eight)?;
    }
    words.remainder().iter().try_fold(value, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// The value of eight ASCII digits read as a little-endian word (the first digit in the low
/// byte), or `None` if a byte is not a digit.
fn eight_digits(word: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // a digit is 0x30..=0x39: high nibble 3, and adding 6 keeps it 3
    if word & HIGH_NIBBLES != ZEROS
        || word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES != ZEROS
    {
        return None;
    }
    let v = word - ZEROS;
    // pairs (10 * d0 + d1 in byte 0, ...), then fours, then all eight; no lane overflows
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn digit_fields_parse_like_digit_by_digit(field in prop::collection::vec(
            prop_oneof![10 => prop::sample::select(b"0123456789".to_vec()), 1 => any::<u8>()], 0..24)) {
            let reference = if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
                None
            } else {
                field.iter().try_fold(0usize, |acc, d| acc.checked_mul(10)?.checked_add(usize::from(d - b'0')))
            };
            prop_assert_eq!(parse_digits(&field), reference);
        }
    }

    #[test]
    fn digit_fields_of_the_log_parse() {
        assert_eq!(parse_digits(b"00000014"), Some(14));
        assert_eq!(parse_digits(b"0000000000123456"), Some(123_456));
        assert_eq!(parse_digits(b"98765432"), Some(98_765_432));
        assert_eq!(parse_digits(b"18446744073709551615"), Some(usize::MAX));
        assert_eq!(parse_digits(b"18446744073709551616"), None);
        assert_eq!(parse_digits(b"0000001:"), None);
        assert_eq!(parse_digits(b"/0000001"), None);
        assert_eq!(parse_digits(b"0000 001"), None);
        assert_eq!(parse_digits(b""), None);
    }

    #[test]
    fn write_field_matches_the_reference_example() {
        let bytes = b"WriteFiel00000002VM00000014OpaqueRef:123400000011name__label00000006web 01";
        let delta = Delta::decode(bytes).unwrap();
        assert_eq!(
            delta,
            Delta::WriteField {
                table: "VM".into(),
                reference: "OpaqueRef:1234".into(),
                column: "name__label".into(),
                value: "web 01".into(),
            }
        );
        assert_eq!(delta.encode(), bytes);
    }

    #[test]
    fn create_row_from_a_row_lists_columns_in_descending_order_like_xapi() {
        // Byte order: "VM" < "_ref" < "type"; xapi logs them reversed.
        let mut db = Database::default();
        db.insert_row(
            "VBD",
            "OpaqueRef:b",
            1,
            1,
            [
                ("_ref", "OpaqueRef:b"),
                ("VM", "OpaqueRef:v"),
                ("type", "Disk"),
            ],
        );
        let row = db.row("VBD", "OpaqueRef:b").unwrap();
        let delta = Delta::create_row("VBD", "OpaqueRef:b", row);
        assert_eq!(
            delta.encode(),
            b"CreateRow00000003VBD00000011OpaqueRef:b00000003\
              00000004type00000004Disk\
              00000004_ref00000011OpaqueRef:b\
              00000002VM00000011OpaqueRef:v"
                .iter()
                .copied()
                .filter(|b| *b != b' ')
                .collect::<Vec<u8>>()
        );
    }

    #[test]
    fn create_row_on_an_existing_row_is_a_no_op_or_an_integrity_error() {
        let mut db = Database::default();
        let create = |name: &str| Delta::CreateRow {
            table: "VM".into(),
            reference: "OpaqueRef:v".into(),
            columns: vec![("name__label".into(), name.into())],
        };
        assert_eq!(create("a").apply(&mut db, 5), Ok(true));
        // Same values: nothing changes, not even the row's generations.
        assert_eq!(create("a").apply(&mut db, 9), Ok(false));
        assert_eq!(db.row("VM", "OpaqueRef:v").unwrap().mtime, 5);
        assert_eq!(
            create("b").apply(&mut db, 9),
            Err(ApplyError::RowExists {
                table: "VM".into(),
                reference: "OpaqueRef:v".into(),
                column: "name__label".into(),
            })
        );
        assert_eq!(
            db.row("VM", "OpaqueRef:v").unwrap().get("name__label"),
            Some("a")
        );
    }

    #[test]
    fn create_row_and_delete_row_from_hand_made_bytes() {
        let bytes = b"CreateRow00000003VBD00000011OpaqueRef:b0000000200000004_ref00000011OpaqueRef:b00000002VM00000011OpaqueRef:v";
        let delta = Delta::decode(bytes).unwrap();
        assert_eq!(
            delta,
            Delta::CreateRow {
                table: "VBD".into(),
                reference: "OpaqueRef:b".into(),
                columns: vec![
                    ("_ref".into(), "OpaqueRef:b".into()),
                    ("VM".into(), "OpaqueRef:v".into())
                ],
            }
        );
        assert_eq!(delta.encode(), bytes);

        let bytes = b"DeleteRow00000003VBD00000011OpaqueRef:b";
        assert_eq!(
            Delta::decode(bytes).unwrap(),
            Delta::DeleteRow {
                table: "VBD".into(),
                reference: "OpaqueRef:b".into()
            }
        );
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        assert_eq!(
            Delta::decode(b"WriteField0000002VM"),
            Err(DeltaError::BadLength {
                offset: 9,
                what: "table",
                text: "d0000002".into()
            })
        );
        assert_eq!(
            Delta::decode(b"Frobnicat"),
            Err(DeltaError::UnknownKind {
                tag: "Frobnicat".into()
            })
        );
        assert_eq!(
            Delta::decode(b"DeleteRow00000003VB"),
            Err(DeltaError::Truncated {
                offset: 19,
                what: "table"
            })
        );
        assert_eq!(
            Delta::decode(b"DeleteRow00000002VM00000001rX"),
            Err(DeltaError::TrailingBytes {
                offset: 28,
                extra: 1
            })
        );
        assert!(matches!(
            Delta::decode(b"DeleteRow00000002VM0000-001r"),
            Err(DeltaError::BadLength { offset: 19, .. })
        ));
    }

    #[test]
    fn deltas_change_the_database() {
        let mut db = Database::default();
        Delta::CreateRow {
            table: "VM".into(),
            reference: "OpaqueRef:v".into(),
            columns: vec![("name__label".into(), "a".into())],
        }
        .apply(&mut db, 5)
        .unwrap();
        Delta::WriteField {
            table: "VM".into(),
            reference: "OpaqueRef:v".into(),
            column: "name__label".into(),
            value: "b c".into(),
        }
        .apply(&mut db, 7)
        .unwrap();
        let row = db.row("VM", "OpaqueRef:v").unwrap();
        assert_eq!(
            (row.ctime, row.mtime, row.get("name__label")),
            (5, 7, Some("b c"))
        );
        Delta::DeleteRow {
            table: "VM".into(),
            reference: "OpaqueRef:v".into(),
        }
        .apply(&mut db, 8)
        .unwrap();
        assert!(db.row("VM", "OpaqueRef:v").is_none());
        assert_eq!(
            Delta::DeleteRow {
                table: "VM".into(),
                reference: "OpaqueRef:v".into()
            }
            .apply(&mut db, 9),
            Err(ApplyError::NoSuchRow {
                table: "VM".into(),
                reference: "OpaqueRef:v".into()
            })
        );
    }

    fn any_delta() -> impl Strategy<Value = Delta> {
        prop_oneof![
            (
                any::<String>(),
                any::<String>(),
                proptest::collection::vec((any::<String>(), any::<String>()), 0..5)
            )
                .prop_map(|(table, reference, columns)| Delta::CreateRow {
                    table,
                    reference,
                    columns
                }),
            (any::<String>(), any::<String>())
                .prop_map(|(table, reference)| Delta::DeleteRow { table, reference }),
            (
                any::<String>(),
                any::<String>(),
                any::<String>(),
                any::<String>()
            )
                .prop_map(|(table, reference, column, value)| Delta::WriteField {
                    table,
                    reference,
                    column,
                    value
                }),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(delta in any_delta()) {
            prop_assert_eq!(Delta::decode(&delta.encode()).unwrap(), delta);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Delta::decode(&bytes);
        }
    }
}
