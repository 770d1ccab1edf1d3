//! The reader's input: the caller's `BufRead`, plus a spill buffer that lets the row scanner see
//! a whole tag when it straddles the end of the caller's buffer.
//!
//! Bytes are read where the caller's reader keeps them (a slice is never copied); only when a
//! tag is cut by the end of what is at hand are its bytes moved into the spill buffer, together
//! with as many more as it takes, doubling each time. quick-xml reads through the same
//! [`BufRead`], so both parsers always agree on where the unread input starts.

use std::io::{self, BufRead, Read};

/// Bytes asked from the inner reader the first time a tag is cut; doubled on every retry.
const FIRST_SPILL: usize = 4096;

/// A `BufRead` that can make more bytes available at once than its inner reader's buffer holds.
pub(super) struct Lookahead<R> {
    inner: R,
    /// Bytes taken from `inner` ahead of time; served before `inner`'s while any is unread.
    spill: Vec<u8>,
    /// How much of `spill` has been consumed.
    pos: usize,
}

impl<R: BufRead> Lookahead<R> {
    /// Wraps a reader; nothing is read yet.
    pub(super) fn new(inner: R) -> Self {
        Lookahead {
            inner,
            spill: Vec::new(),
            pos: 0,
        }
    }

    fn is_spilling(&self) -> bool {
        self.pos < self.spill.len()
    }

    /// Makes more bytes available in one piece than [`BufRead::fill_buf`] returned so far:
    /// afterwards `fill_buf` returns what it returned before followed by at least one more
    /// byte. Returns `false` at the end of the input (`fill_buf` then returns the same bytes
    /// as before).
    pub(super) fn read_more(&mut self) -> io::Result<bool> {
        if self.is_spilling() {
            self.spill.drain(..self.pos);
        } else {
            self.spill.clear();
            let at_hand = fill(&mut self.inner)?;
            self.spill.extend_from_slice(at_hand);
            let taken = at_hand.len();
            self.inner.consume(taken);
        }
        self.pos = 0;
        let want = self.spill.len().max(FIRST_SPILL);
        let mut added = 0;
        while added < want {
            let chunk = fill(&mut self.inner)?;
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(want - added);
            self.spill.extend_from_slice(&chunk[..take]);
            self.inner.consume(take);
            added += take;
        }
        Ok(added > 0)
    }
}

/// `fill_buf`, retried when interrupted (as quick-xml does).
fn fill<R: BufRead>(inner: &mut R) -> io::Result<&[u8]> {
    loop {
        match inner.fill_buf() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
            Ok(_) => break,
        }
    }
    // buffered now: this second call only returns the same bytes
    inner.fill_buf()
}

impl<R: BufRead> Read for Lookahead<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let at_hand = self.fill_buf()?;
        let n = at_hand.len().min(out.len());
        out[..n].copy_from_slice(&at_hand[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lookahead<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.is_spilling() {
            Ok(&self.spill[self.pos..])
        } else {
            self.inner.fill_buf()
        }
    }

    fn consume(&mut self, amount: usize) {
        if self.is_spilling() {
            self.pos = (self.pos + amount).min(self.spill.len());
            if !self.is_spilling() {
                self.spill.clear();
                self.pos = 0;
            }
        } else {
            self.inner.consume(amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per `fill_buf`, like a small `BufReader`.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.fill_buf()?.len().min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for Chunked<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(&self.data[..self.chunk.min(self.data.len())])
        }
        fn consume(&mut self, amount: usize) {
            self.data = &self.data[amount..];
        }
    }

    #[test]
    fn read_more_extends_what_is_at_hand_without_losing_bytes() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut input = Lookahead::new(Chunked {
            data: &data,
            chunk: 7,
        });
        let mut seen = Vec::new();
        loop {
            let before = input.fill_buf().unwrap().to_vec();
            if before.is_empty() {
                break;
            }
            // ask for more now and then, and check that it only ever appends
            if seen.len() % 3 == 0 && input.read_more().unwrap() {
                let after = input.fill_buf().unwrap();
                assert!(after.len() > before.len());
                assert_eq!(&after[..before.len()], &before[..]);
            }
            let at_hand = input.fill_buf().unwrap();
            let take = at_hand.len().min(5);
            seen.extend_from_slice(&at_hand[..take]);
            input.consume(take);
        }
        assert_eq!(seen, data);
        assert!(!input.read_more().unwrap());
    }

    #[test]
    fn a_slice_is_read_in_place() {
        let data = b"<row ref=\"a\"/>";
        let mut input = Lookahead::new(&data[..]);
        assert_eq!(input.fill_buf().unwrap(), data);
        assert!(!input.read_more().unwrap());
        assert_eq!(input.fill_buf().unwrap(), data);
        let mut all = Vec::new();
        input.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
    }
}
