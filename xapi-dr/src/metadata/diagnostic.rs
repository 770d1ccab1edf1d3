//! Observations made while reading metadata that do not stop the read but that a user deciding
//! a recovery should see.

use serde::Serialize;

use super::redo_log::HalfContent;

/// One observation, serialisable for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnostic {
    /// What the half not named by the validity byte holds. It is never used for the result.
    OtherHalf {
        /// Offset of that half.
        offset: u64,
        /// What it holds.
        content: HalfContent,
    },
    /// A delta skipped by xapi's replay rule (its generation is below the expected one).
    StaleDeltaSkipped {
        /// Offset of the delta record.
        offset: u64,
        /// The delta's generation.
        generation: i64,
        /// The generation expected at that point.
        expected: i64,
    },
    /// A table this crate does not know (kept as is).
    UnknownTable {
        /// Table name.
        name: String,
        /// Number of rows in it.
        rows: usize,
    },
    /// A table of the views that the dump does not have (read as empty).
    MissingTable {
        /// Table name.
        name: String,
    },
    /// The database record's generation differs from its manifest's `generation_count`.
    GenerationMismatch {
        /// Generation field of the redo-log record.
        record: i64,
        /// `generation_count` of the XML manifest.
        manifest: i64,
    },
}
