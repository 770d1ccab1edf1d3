//! The buffer a whole RPC answer is read into.
//!
//! A large answer (`VM.get_all_records` of a big pool is tens of megabytes) is read into
//! fresh memory, and the kernel's work of handing out that memory a 4 KiB page at a time was a
//! third of the time taken to receive it. An answer whose announced length is at least
//! [`MAPPED_MIN`] goes into an anonymous mapping that Linux is asked to back with transparent
//! huge pages (`MADV_HUGEPAGE`, a hint that changes nothing when they are off): 2 MiB per page
//! fault. Measured on 60 MB: 55-65 ms to receive it, 34-39 ms with huge pages. Smaller or
//! unannounced answers go into a `Vec`.

use bytes::Bytes;
use memmap2::MmapMut;

/// The smallest announced length that is read into a mapping.
const MAPPED_MIN: usize = 8 << 20;

/// A growing answer body.
pub(crate) enum AnswerBuffer {
    /// On the heap.
    Heap(Vec<u8>),
    /// In an anonymous mapping of the announced length, filled from the start.
    Mapped { map: MmapMut, filled: usize },
}

impl AnswerBuffer {
    /// An empty buffer for an answer of `announced` bytes, when the server said.
    pub(crate) fn for_length(announced: Option<usize>) -> Self {
        match announced {
            Some(length) if length >= MAPPED_MIN => match MmapMut::map_anon(length) {
                Ok(map) => {
                    advise_huge_pages(&map);
                    Self::Mapped { map, filled: 0 }
                }
                Err(_) => Self::Heap(Vec::with_capacity(length)),
            },
            Some(length) => Self::Heap(Vec::with_capacity(length)),
            None => Self::Heap(Vec::new()),
        }
    }

    /// The number of bytes in the buffer.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Heap(vec) => vec.len(),
            Self::Mapped { filled, .. } => *filled,
        }
    }

    /// Append `data` (a mapping that would overflow moves to the heap first).
    pub(crate) fn extend(&mut self, data: &[u8]) {
        if let Self::Mapped { map, filled } = self {
            if let Some(room) = map.get_mut(*filled..*filled + data.len()) {
                room.copy_from_slice(data);
                *filled += data.len();
                return;
            }
            *self = Self::Heap(map[..*filled].to_vec());
        }
        if let Self::Heap(vec) = self {
            vec.extend_from_slice(data);
        }
    }

    /// The answer, without a copy.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Self::Heap(vec) => Bytes::from(vec),
            Self::Mapped { map, filled } => Bytes::from_owner(map).slice(..filled),
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(map: &MmapMut) {
    // Only a hint: refused when transparent huge pages are not built in, ignored when off.
    let _ = map.advise(memmap2::Advice::HugePage);
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_map: &MmapMut) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_answer_stays_on_the_heap() {
        let mut buffer = AnswerBuffer::for_length(Some(10));
        buffer.extend(b"hello ");
        buffer.extend(b"you");
        assert!(matches!(buffer, AnswerBuffer::Heap(_)));
        assert_eq!(buffer.len(), 9);
        assert_eq!(buffer.into_bytes(), Bytes::from_static(b"hello you"));
    }

    #[test]
    fn a_large_answer_is_mapped_and_cut_to_what_arrived() {
        let mut buffer = AnswerBuffer::for_length(Some(MAPPED_MIN));
        assert!(matches!(buffer, AnswerBuffer::Mapped { .. }));
        let block = vec![7u8; 1 << 20];
        for _ in 0..3 {
            buffer.extend(&block);
        }
        assert_eq!(buffer.len(), 3 << 20);
        let bytes = buffer.into_bytes();
        assert_eq!(bytes.len(), 3 << 20);
        assert!(bytes.iter().all(|&byte| byte == 7));
    }

    #[test]
    fn more_than_announced_moves_to_the_heap_and_keeps_every_byte() {
        let mut buffer = AnswerBuffer::for_length(Some(MAPPED_MIN));
        let mut expected = Vec::new();
        for round in 0..9u8 {
            let block = vec![round; 1 << 20];
            buffer.extend(&block);
            expected.extend_from_slice(&block);
        }
        assert!(matches!(buffer, AnswerBuffer::Heap(_)));
        assert_eq!(buffer.into_bytes(), Bytes::from(expected));
    }

    #[test]
    fn an_unannounced_answer_grows_on_the_heap() {
        let mut buffer = AnswerBuffer::for_length(None);
        buffer.extend(b"abc");
        assert_eq!(buffer.into_bytes(), Bytes::from_static(b"abc"));
    }
}
