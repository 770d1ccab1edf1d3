//! The "corrupt one chunk's checksum" fault: follows the tar members of an uncompressed XVA or
//! raw-tar stream as it goes out and changes the first digit of the first checksum member
//! (`.xxhash` or `.checksum`), so that a verifying reader must reject that chunk.

use bytes::{Bytes, BytesMut};

/// Tar block size.
const BLOCK: usize = 512;

/// Where the scanner stands in the tar stream.
#[derive(Debug)]
pub(crate) struct ChecksumCorrupter {
    /// Bytes of the current header block collected so far.
    header: Vec<u8>,
    /// Bytes of member data (with padding) still to pass before the next header.
    skip: u64,
    /// The next data byte is the first of a checksum member.
    in_checksum: bool,
    /// The corruption has been applied (the scanner is idle from then on).
    done: bool,
}

impl ChecksumCorrupter {
    /// A scanner at the start of a tar stream.
    pub(crate) fn new() -> Self {
        Self {
            header: Vec::with_capacity(BLOCK),
            skip: 0,
            in_checksum: false,
            done: false,
        }
    }

    /// Pass `bytes` through, corrupting the first checksum member's first digit.
    pub(crate) fn apply(&mut self, bytes: Bytes) -> Bytes {
        if self.done {
            return bytes;
        }
        let mut out = BytesMut::from(&bytes[..]);
        let mut i = 0;
        while i < out.len() && !self.done {
            if self.skip > 0 {
                if self.in_checksum {
                    out[i] = if out[i] == b'0' { b'1' } else { b'0' };
                    self.done = true;
                    break;
                }
                let n = (self.skip.min((out.len() - i) as u64)) as usize;
                self.skip -= n as u64;
                i += n;
                continue;
            }
            let n = (BLOCK - self.header.len()).min(out.len() - i);
            self.header.extend_from_slice(&out[i..i + n]);
            i += n;
            if self.header.len() == BLOCK {
                self.read_header();
                self.header.clear();
            }
        }
        out.freeze()
    }

    fn read_header(&mut self) {
        if self.header.iter().all(|b| *b == 0) {
            // end-of-archive blocks
            return;
        }
        let name_end = self.header[..100]
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(100);
        let name = String::from_utf8_lossy(&self.header[..name_end]);
        let size_text = String::from_utf8_lossy(&self.header[124..136]);
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .unwrap_or(0);
        self.in_checksum = size > 0 && (name.ends_with(".xxhash") || name.ends_with(".checksum"));
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: u64) -> Vec<u8> {
        let mut block = vec![0_u8; BLOCK];
        block[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        block[124..136].copy_from_slice(size.as_bytes());
        block
    }

    #[test]
    fn first_checksum_digit_changes_whatever_the_byte_boundaries() {
        let mut stream = header("Ref:1/00000000", 3);
        stream.extend_from_slice(&[1, 2, 3]);
        stream.resize(2 * BLOCK, 0);
        stream.extend_from_slice(&header("Ref:1/00000000.xxhash", 16));
        let digits_at = stream.len();
        stream.extend_from_slice(b"EF46DB3751D8E999");
        stream.resize(4 * BLOCK, 0);
        for split in [1, 7, 512, 1000, stream.len()] {
            let mut corrupter = ChecksumCorrupter::new();
            let out: Vec<u8> = stream
                .chunks(split)
                .flat_map(|c| corrupter.apply(Bytes::copy_from_slice(c)).to_vec())
                .collect();
            assert_eq!(out.len(), stream.len());
            assert_eq!(out[digits_at], b'0', "split {split}");
            let mut expected = stream.clone();
            expected[digits_at] = b'0';
            assert_eq!(out, expected, "only that byte changes (split {split})");
        }
    }
}
