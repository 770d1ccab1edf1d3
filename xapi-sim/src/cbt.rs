//! Changed-block tracking: writes to a CBT-enabled disk are logged per 64 KiB block with a
//! sequence number; a snapshot remembers where the log stood; `list_changed_blocks(from, to)`
//! is the set of blocks written between the two points, as a base64 bitmap (one bit per block,
//! most significant bit first).

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

/// The CBT state of a pool (in memory; it does not survive a restart).
#[derive(Debug, Default)]
pub(crate) struct Cbt {
    points: HashMap<String, Point>,
    logs: HashMap<String, Log>,
}

/// Why two VDIs cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CbtError {
    /// This VDI has no CBT metadata (CBT was never enabled on its disk).
    NoMetadata(String),
    /// The two VDIs are not snapshots of the same disk.
    Unrelated,
}

impl Cbt {
    /// Start tracking a live disk (idempotent).
    pub(crate) fn enable(&mut self, uuid: &str) {
        self.points.entry(uuid.to_owned()).or_insert_with(|| Point {
            lineage: uuid.to_owned(),
            at: None,
        });
        self.logs.entry(uuid.to_owned()).or_default();
    }

    /// Stop tracking a disk: its metadata goes; snapshots keep theirs.
    pub(crate) fn disable(&mut self, uuid: &str) {
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
