//! Shared pieces of the fuzz targets: a runtime to drive the async readers, and checks every
//! reader's output must satisfy whatever the input.

use std::future::Future;
use std::sync::LazyLock;

use bytes::Bytes;

pub mod arbitrary_value;
pub mod disk_recipe;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime can always be built")
});

/// Bit `bit` of the last input byte: how a target picks among reader options, so that one
/// corpus explores every combination.
pub fn option_bit(data: &[u8], bit: u32) -> bool {
    data.last().is_some_and(|b| b >> bit & 1 == 1)
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
