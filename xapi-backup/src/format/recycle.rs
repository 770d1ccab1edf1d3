//! Chunk buffers used again rather than freed: a chunk read from a stream is handed out as
//! [`Bytes`] whose memory goes back to its pool when the last clone is dropped, wherever that
//! happens (after a repository write, on another thread).
//!
//! A backup reads a 1 MiB chunk, hashes and stores it, and frees it, a thousand times per
//! GiB. Freed, each buffer goes back to the allocator, which returns the memory to the kernel
//! and later asks for it again: a page fault and a page zeroed for every 4 KiB read. Kept in a
//! pool, the same few buffers serve the whole stream.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Buffers kept for reuse at most; more in use at once are allocated and freed as usual.
const KEEP: usize = 16;

/// Buffers larger than this are freed rather than kept (a stream of unusual chunk sizes does
/// not pin more than `KEEP` times this).
const LARGEST_KEPT: usize = 2 << 20;

/// A pool of byte buffers shared by the [`Bytes`] it hands out.
#[derive(Debug, Clone)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    /// How many idle buffers it keeps at most.
    keep: usize,
}

impl Default for BufferPool {
    fn default() -> Self {
        Self::keeping(KEEP)
    }
}

impl BufferPool {
    /// An empty pool.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An empty pool that keeps at most `keep` idle buffers.
    pub(crate) fn keeping(keep: usize) -> Self {
        Self {
            free: Arc::default(),
            keep,
        }
    }

    /// An empty buffer with room for at least `len` bytes, from the pool when it has one.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.take_as_is();
        buf.clear();
        buf.reserve(len);
        buf
    }

    /// A buffer from the pool as its last user left it (length and bytes included), or a new
    /// empty one: for a caller that overwrites what it uses and would rather not zero it again.
    pub(crate) fn take_as_is(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// `buf` as [`Bytes`]; its memory comes back to this pool when the last clone is dropped.
    pub(crate) fn share(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    /// Buffers waiting to be used again.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Keeps `buf` for a later [`BufferPool::take`], unless the pool is full or `buf` is
    /// larger than it keeps.
    pub(crate) fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() <= LARGEST_KEPT {
            let mut free = self.lock();
            if free.len() < self.keep {
                free.push(buf);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding the lock leaves a list of buffers, still a valid one.
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The owner behind a pooled [`Bytes`].
struct Pooled {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_clone_is_dropped() {
        let pool = BufferPool::new();
        let mut buf = pool.take(1 << 20);
        buf.extend_from_slice(b"chunk");
        let address = buf.as_ptr();
        let shared = pool.share(buf);
        let clone = shared.slice(1..3);
        drop(shared);
        assert_eq!(pool.idle(), 0, "a clone still holds it");
        assert_eq!(&clone[..], b"hu");
        std::thread::spawn(move || drop(clone)).join().unwrap();
        assert_eq!(pool.idle(), 1);
        let again = pool.take(100);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address, "the same memory, used again");
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_ordinary_buffers() {
        let pool = BufferPool::new();
        let held: Vec<Bytes> = (0..KEEP + 4).map(|_| pool.share(pool.take(1024))).collect();
        drop(held);
        assert_eq!(pool.idle(), KEEP);
        drop(pool.share(Vec::with_capacity(LARGEST_KEPT + 1)));
        assert_eq!(pool.idle(), KEEP);
        let fresh = BufferPool::new();
        drop(fresh.share(Vec::with_capacity(LARGEST_KEPT + 1)));
        assert_eq!(fresh.idle(), 0, "an oversized buffer is freed");
    }
}
