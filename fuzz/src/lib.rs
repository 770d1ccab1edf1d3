//! Shared pieces of the fuzz targets: a runtime to drive the async readers, and checks every
//! reader's output must satisfy whatever the input.

use std::future::Future;
use std::sync::LazyLock;

use bytes::Bytes;
use xapi_backup::format::xva::{AfterEndOfArchive, ChecksumText, MismatchPolicy, ReadOptions};

pub mod arbitrary_value;
pub mod disk_recipe;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime can always be built")
});

/// Reader options for an XVA or raw-tar target: small limits, and every combination of the
/// other options, picked by bits of the last input byte so that one corpus explores them all
/// (Record hands out mismatching chunks, Stop reads nothing past the end-of-archive marker,
/// Exact compares checksum texts byte for byte).
pub fn fuzzed_read_options(data: &[u8]) -> ReadOptions {
    let bit = |n: u32| data.last().is_some_and(|b| b >> n & 1 == 1);
    ReadOptions {
        max_chunk: 4 << 20,
        max_ova_xml: 4 << 20,
        on_checksum_mismatch: if bit(0) {
            MismatchPolicy::Record
        } else {
            MismatchPolicy::Fail
        },
        after_end_of_archive: if bit(1) {
            AfterEndOfArchive::Stop
        } else {
            AfterEndOfArchive::Drain
        },
        checksum_text: if bit(2) {
            ChecksumText::Exact
        } else {
            ChecksumText::Lenient
        },
    }
}

/// Runs `future` to completion on the shared current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// Checks that pieces of disk data arrive in increasing, non-overlapping order inside a disk of
/// `size` bytes, and rebuilds the disk image from them (absent ranges are zero).
#[derive(Debug, Default)]
pub struct DiskImage {
    /// The rebuilt bytes.
    pub bytes: Vec<u8>,
    next: u64,
}

impl DiskImage {
    /// Places `data` at `offset`; panics if it overlaps what came before or ends beyond `size`.
    pub fn place(&mut self, offset: u64, data: &Bytes, size: u64, keep: bool) {
        assert!(
            offset >= self.next,
            "piece at {offset} overlaps the previous one ending at {}",
            self.next
        );
        let end = offset + data.len() as u64;
        assert!(
            end <= size,
            "piece ends at {end}, beyond the disk size {size}"
        );
        self.next = end;
        if keep {
            if self.bytes.len() < offset as usize {
                self.bytes.resize(offset as usize, 0);
            }
            self.bytes.extend_from_slice(data);
        }
    }
}
