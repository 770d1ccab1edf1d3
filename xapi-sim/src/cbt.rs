//! Changed-block tracking: writes to a CBT-enabled disk are logged per 64 KiB block with a
//! sequence number; a snapshot remembers where the log stood; `list_changed_blocks(from, to)`
//! is the set of blocks written between the two points, as a base64 bitmap (one bit per block,
//! most significant bit first).
//!
//! As in the SM drivers (`VDI.py`), a disk's log forms one chain with its snapshots: disabling
//! CBT deletes the live disk's log, and enabling it again starts a new chain (a new lineage
//! here), so snapshots taken before are unrelated to the disk from then on and cannot be
//! compared with it. A resize keeps the chain: blocks in the grown part count as unchanged
//! until written (they read as zeros). Clones and copies are not tracked.
//!
//! With `--state` the whole state is saved as text next to the database ([`Cbt::to_text`],
//! [`Cbt::from_text`]), so that bitmaps, `cbt_metadata` bases and tracked disks survive a
//! restart:
//!
//! ```text
//! xapi-sim-cbt 1
//! point <vdi-uuid> <lineage-uuid> live|<log position>
//! log <lineage-uuid> <latest sequence number>
//! write <lineage-uuid> <block> <seq> <seq> ...
//! ```

use std::collections::{BTreeSet, HashMap};

/// CBT block size: 64 KiB.
pub(crate) const BLOCK: u64 = 64 << 10;

/// Where a VDI stands in the write log of its disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    /// The live disk whose log this VDI follows (its own uuid for the live disk).
    lineage: String,
    /// `None` for the live disk (always "now"); a snapshot's log position otherwise.
    at: Option<u64>,
}

/// The write log of one live disk.
#[derive(Debug, Clone, Default)]
struct Log {
    /// Sequence number of the latest write.
    seq: u64,
    /// For each block written, the sequence numbers of its writes.
    writes: HashMap<u64, Vec<u64>>,
}

/// The CBT state of a pool.
#[derive(Debug, Default)]
pub(crate) struct Cbt {
    points: HashMap<String, Point>,
    logs: HashMap<String, Log>,
    /// Bumped by every change, so that a saver knows when to write.
    revision: u64,
}

/// The first line of the saved form.
const TEXT_HEADER: &str = "xapi-sim-cbt 1";

/// Why a saved CBT state cannot be read: the 1-based line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub(crate) struct CbtTextError {
    /// The 1-based line number.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) reason: String,
}

/// Why two VDIs cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CbtError {
    /// This VDI has no CBT metadata (CBT was never enabled on its disk).
    NoMetadata(String),
    /// The two VDIs are not in one CBT chain (snapshots of different disks, or of one disk
    /// whose CBT was disabled in between).
    Unrelated,
    /// A VDI compared with itself.
    Same,
}

impl Cbt {
    /// Start tracking a live disk (idempotent). A disk tracked before and disabled since starts
    /// a new chain: its older snapshots stay unrelated to it.
    pub(crate) fn enable(&mut self, uuid: &str) {
        if self.points.contains_key(uuid) {
            return;
        }
        self.revision += 1;
        let mut lineage = uuid.to_owned();
        let mut generation = 1;
        while self.logs.contains_key(&lineage) {
            generation += 1;
            lineage = format!("{uuid}.{generation}");
        }
        self.logs.insert(lineage.clone(), Log::default());
        self.points
            .insert(uuid.to_owned(), Point { lineage, at: None });
    }

    /// Stop tracking a disk: its log goes (enabling again starts a new chain); snapshots keep
    /// their metadata.
    pub(crate) fn disable(&mut self, uuid: &str) {
        self.revision += 1;
        if self.points.get(uuid).is_some_and(|p| p.at.is_none()) {
            self.points.remove(uuid);
        }
    }

    /// Whether `uuid` has CBT metadata.
    pub(crate) fn has_metadata(&self, uuid: &str) -> bool {
        self.points.contains_key(uuid)
    }

    /// A snapshot `snapshot` of `source` was taken: it remembers the log position.
    pub(crate) fn snapshot(&mut self, source: &str, snapshot: &str) {
        let Some(point) = self.points.get(source).cloned() else {
            return;
        };
        self.revision += 1;
        let at = match point.at {
            Some(at) => at,
            None => self.logs.get(&point.lineage).map_or(0, |l| l.seq),
        };
        self.points.insert(
            snapshot.to_owned(),
            Point {
                lineage: point.lineage,
                at: Some(at),
            },
        );
    }

    /// Bytes `[offset, offset + length)` of a tracked live disk were written.
    pub(crate) fn note_write(&mut self, uuid: &str, offset: u64, length: u64) {
        if length == 0 {
            return;
        }
        let Some(Point { lineage, at: None }) = self.points.get(uuid) else {
            return;
        };
        let Some(log) = self.logs.get_mut(lineage) else {
            return;
        };
        log.seq += 1;
        let seq = log.seq;
        self.revision += 1;
        for block in offset / BLOCK..=(offset + length - 1) / BLOCK {
            log.writes.entry(block).or_default().push(seq);
        }
    }

    /// The blocks written between `from` and `to`, as a bitmap covering `size` bytes.
    pub(crate) fn changed_blocks(
        &self,
        from: &str,
        to: &str,
        size: u64,
    ) -> Result<Vec<u8>, CbtError> {
        let from_point = self
            .points
            .get(from)
            .ok_or_else(|| CbtError::NoMetadata(from.to_owned()))?;
        let to_point = self
            .points
            .get(to)
            .ok_or_else(|| CbtError::NoMetadata(to.to_owned()))?;
        if from == to {
            return Err(CbtError::Same);
        }
        if from_point.lineage != to_point.lineage {
            return Err(CbtError::Unrelated);
        }
        let log = self
            .logs
            .get(&from_point.lineage)
            .ok_or(CbtError::Unrelated)?;
        let start = from_point.at.unwrap_or(log.seq);
        let end = to_point.at.unwrap_or(log.seq);
        let (low, high) = (start.min(end), start.max(end));
        let blocks = size.div_ceil(BLOCK);
        let mut bitmap = vec![0_u8; blocks.div_ceil(8) as usize];
        let changed: BTreeSet<u64> = log
            .writes
            .iter()
            .filter(|(block, seqs)| **block < blocks && seqs.iter().any(|s| *s > low && *s <= high))
            .map(|(block, _)| *block)
            .collect();
        for block in changed {
            bitmap[(block / 8) as usize] |= 0x80 >> (block % 8);
        }
        Ok(bitmap)
    }
}

impl Cbt {
    /// A number that changes whenever the state does.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// The state in its saved form (sorted, so equal states give equal texts).
    pub(crate) fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from(TEXT_HEADER);
        out.push('\n');
        let mut points: Vec<_> = self.points.iter().collect();
        points.sort_by(|a, b| a.0.cmp(b.0));
        for (uuid, point) in points {
            let at = point
                .at
                .map_or_else(|| "live".to_owned(), |at| at.to_string());
            let _ = writeln!(out, "point {uuid} {} {at}", point.lineage);
        }
        let mut logs: Vec<_> = self.logs.iter().collect();
        logs.sort_by(|a, b| a.0.cmp(b.0));
        for (lineage, log) in logs {
            let _ = writeln!(out, "log {lineage} {}", log.seq);
            let mut blocks: Vec<_> = log.writes.iter().collect();
            blocks.sort_by_key(|(block, _)| **block);
            for (block, seqs) in blocks {
                let _ = write!(out, "write {lineage} {block}");
                for seq in seqs {
                    let _ = write!(out, " {seq}");
                }
                out.push('\n');
            }
        }
        out
    }

    /// Read a state saved by [`Cbt::to_text`].
    pub(crate) fn from_text(text: &str) -> Result<Self, CbtTextError> {
        let mut cbt = Self::default();
        let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
        match lines.next() {
            Some((_, header)) if header == TEXT_HEADER => {}
            _ => {
                return Err(CbtTextError {
                    line: 1,
                    reason: format!("expected the header {TEXT_HEADER:?}"),
                });
            }
        }
        for (line, content) in lines {
            let fail = |reason: String| CbtTextError { line, reason };
            let number = |word: Option<&str>, what: &str| -> Result<u64, CbtTextError> {
                let word = word.ok_or_else(|| fail(format!("missing {what}")))?;
                word.parse()
                    .map_err(|_| fail(format!("{what} {word:?} is not a number")))
            };
            let mut words = content.split_ascii_whitespace();
            match words.next() {
                None => {}
                Some("point") => {
                    let (Some(uuid), Some(lineage), Some(at)) =
                        (words.next(), words.next(), words.next())
                    else {
                        return Err(fail("a point needs a VDI, a lineage and a position".into()));
                    };
                    let at = if at == "live" {
                        None
                    } else {
                        Some(number(Some(at), "position")?)
                    };
                    cbt.points.insert(
                        uuid.to_owned(),
                        Point {
                            lineage: lineage.to_owned(),
                            at,
                        },
                    );
                }
                Some("log") => {
                    let lineage = words.next().ok_or_else(|| fail("missing lineage".into()))?;
                    let seq = number(words.next(), "sequence number")?;
                    cbt.logs.entry(lineage.to_owned()).or_default().seq = seq;
                }
                Some("write") => {
                    let lineage = words.next().ok_or_else(|| fail("missing lineage".into()))?;
                    let block = number(words.next(), "block")?;
                    let seqs = words
                        .map(|w| number(Some(w), "sequence number"))
                        .collect::<Result<Vec<_>, _>>()?;
                    let log = cbt
                        .logs
                        .get_mut(lineage)
                        .ok_or_else(|| fail(format!("write to {lineage} before its log line")))?;
                    if let Some(seq) = seqs.iter().find(|s| **s > log.seq) {
                        return Err(fail(format!(
                            "sequence number {seq} is after the log's latest {}",
                            log.seq
                        )));
                    }
                    log.writes.insert(block, seqs);
                }
                Some(other) => return Err(fail(format!("unknown record {other:?}"))),
            }
        }
        Ok(cbt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_two_snapshots_are_the_writes_in_between() {
        let mut cbt = Cbt::default();
        cbt.enable("disk");
        cbt.note_write("disk", 0, 10);
        cbt.snapshot("disk", "snap1");
        cbt.note_write("disk", BLOCK * 3, 1);
        cbt.note_write("disk", BLOCK * 9 + 5, BLOCK);
        cbt.snapshot("disk", "snap2");
        cbt.note_write("disk", BLOCK, 1);
        let bitmap = cbt.changed_blocks("snap1", "snap2", BLOCK * 16).unwrap();
        assert_eq!(bitmap, vec![0b0001_0000, 0b0110_0000]);
        // up to the live disk, the later write shows too
        let bitmap = cbt.changed_blocks("snap1", "disk", BLOCK * 16).unwrap();
        assert_eq!(bitmap, vec![0b0101_0000, 0b0110_0000]);
        assert_eq!(
            cbt.changed_blocks("snap1", "other", BLOCK),
            Err(CbtError::NoMetadata("other".into()))
        );
    }

    #[test]
    fn the_saved_form_gives_back_the_same_bitmaps() {
        let mut cbt = Cbt::default();
        cbt.enable("disk");
        cbt.note_write("disk", BLOCK * 2, 1);
        cbt.snapshot("disk", "base");
        cbt.note_write("disk", BLOCK * 5, BLOCK * 2);
        let revision = cbt.revision();
        let text = cbt.to_text();
        let mut loaded = Cbt::from_text(&text).unwrap();
        assert_eq!(loaded.to_text(), text);
        assert_eq!(
            loaded.changed_blocks("base", "disk", BLOCK * 8),
            cbt.changed_blocks("base", "disk", BLOCK * 8)
        );
        // the loaded log goes on where it stood
        loaded.note_write("disk", 0, 1);
        assert_eq!(
            loaded.changed_blocks("base", "disk", BLOCK * 8).unwrap(),
            vec![0b1000_0110]
        );
        assert!(cbt.revision() == revision);
    }

    #[test]
    fn a_damaged_saved_form_names_the_line() {
        let err = Cbt::from_text("xapi-sim-cbt 1\nlog d 3\nwrite d 7 2 x\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("\"x\""), "{err}");
        let err = Cbt::from_text("xapi-sim-cbt 1\nwrite d 1 1\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = Cbt::from_text("log d 1\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = Cbt::from_text("xapi-sim-cbt 1\nlog d 1\nwrite d 0 5\n").unwrap_err();
        assert!(err.reason.contains("after the log's latest"), "{err}");
    }

    #[test]
    fn disabling_cbt_resets_the_log_so_older_snapshots_are_unrelated() {
        let mut cbt = Cbt::default();
        cbt.enable("disk");
        cbt.snapshot("disk", "before");
        cbt.note_write("disk", 0, 1);
        cbt.disable("disk");
        cbt.note_write("disk", BLOCK, 1);
        cbt.enable("disk");
        cbt.snapshot("disk", "after");
        cbt.note_write("disk", BLOCK * 2, 1);
        assert_eq!(
            cbt.changed_blocks("before", "disk", BLOCK * 8),
            Err(CbtError::Unrelated)
        );
        assert_eq!(
            cbt.changed_blocks("before", "after", BLOCK * 8),
            Err(CbtError::Unrelated)
        );
        // the new chain works, and only sees writes made since it started
        assert_eq!(
            cbt.changed_blocks("after", "disk", BLOCK * 8).unwrap(),
            vec![0b0010_0000]
        );
        assert_eq!(
            cbt.changed_blocks("after", "after", BLOCK * 8),
            Err(CbtError::Same)
        );
        // enabling twice keeps the chain
        cbt.enable("disk");
        assert!(cbt.changed_blocks("after", "disk", BLOCK * 8).is_ok());
        // and the saved form keeps both chains apart
        let loaded = Cbt::from_text(&cbt.to_text()).unwrap();
        assert_eq!(
            loaded.changed_blocks("before", "disk", BLOCK * 8),
            Err(CbtError::Unrelated)
        );
    }

    #[test]
    fn a_grown_disk_compares_with_its_older_snapshot() {
        let mut cbt = Cbt::default();
        cbt.enable("disk");
        cbt.snapshot("disk", "small");
        // grown from 8 to 16 blocks; one write in the new part
        cbt.note_write("disk", BLOCK * 12, 1);
        cbt.snapshot("disk", "big");
        assert_eq!(
            cbt.changed_blocks("small", "big", BLOCK * 16).unwrap(),
            vec![0, 0b0000_1000]
        );
    }

    #[test]
    fn untracked_disks_log_nothing() {
        let mut cbt = Cbt::default();
        cbt.note_write("disk", 0, 10);
        cbt.enable("disk");
        cbt.snapshot("disk", "s");
        assert_eq!(cbt.changed_blocks("s", "disk", BLOCK * 8).unwrap(), vec![0]);
        cbt.disable("disk");
        assert!(!cbt.has_metadata("disk"));
        assert!(cbt.has_metadata("s"));
    }
}
