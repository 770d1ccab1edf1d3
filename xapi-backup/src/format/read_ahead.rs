//! Reading a local file on a thread of its own, a few blocks ahead of the consumer: the reads
//! (one kernel copy each) overlap with the consumer's work (checksums, hashing, compression),
//! and no read blocks the async runtime.
//!
//! `tokio::fs::File` sends every read to the blocking pool and copies the bytes once more out
//! of its own buffer; for a large file read from start to end, as an XVA is, this source does
//! each read once, in large blocks, while the consumer works on the previous ones.

use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Bytes read per block (a few XVA chunks).
pub const DEFAULT_BLOCK: usize = 4 << 20;

/// Blocks read ahead of the consumer; with the block being consumed this bounds memory to
/// `(DEPTH + 2) * block`.
pub const DEFAULT_DEPTH: usize = 2;

/// An [`AsyncRead`] over a file read ahead by a thread of its own.
///
/// ```no_run
/// # async fn demo() -> Result<(), xapi_backup::Error> {
/// use xapi_backup::format::read_ahead::ReadAhead;
/// use xapi_backup::format::xva::{ReadOptions, XvaReader};
/// let file = ReadAhead::open(std::path::Path::new("vm.xva"))
///     .map_err(|source| xapi_backup::Error::Io { operation: "opening vm.xva", source })?;
/// let mut xva = XvaReader::open(file, ReadOptions::default()).await?;
/// while let Some(chunk) = xva.next_chunk().await? { /* ... */ }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReadAhead {
    blocks: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

impl ReadAhead {
    /// Opens `path` and starts reading it ahead in [`DEFAULT_BLOCK`] blocks.
    ///
    /// # Errors
    /// When the file cannot be opened or the reading thread cannot be started.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Self::new(std::fs::File::open(path)?, DEFAULT_BLOCK, DEFAULT_DEPTH)
    }

    /// Starts reading `source` (from where it stands) ahead, `depth` blocks of `block` bytes.
    /// The thread stops at the end of `source`, on an error (handed to the consumer), or when
    /// the reader is dropped.
    ///
    /// # Errors
    /// When the reading thread cannot be started.
    pub fn new<R: Read + Send + 'static>(
        mut source: R,
        block: usize,
        depth: usize,
    ) -> std::io::Result<Self> {
        let block = block.max(1);
        let (sender, blocks) = mpsc::channel(depth.max(1));
        std::thread::Builder::new()
            .name("xva-read-ahead".to_owned())
            .spawn(move || {
                loop {
                    let mut buf = BytesMut::zeroed(block);
                    let mut filled = 0;
                    let result = loop {
                        match source.read(&mut buf[filled..]) {
                            Ok(0) => break Ok(()),
                            Ok(n) => {
                                filled += n;
                                if filled == block {
                                    break Ok(());
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    buf.truncate(filled);
                    let at_end = filled < block;
                    if filled > 0 && sender.blocking_send(Ok(buf.freeze())).is_err() {
                        return;
                    }
                    if let Err(e) = result {
                        let _ = sender.blocking_send(Err(e));
                        return;
                    }
                    if at_end {
                        return;
                    }
                }
            })?;
        Ok(Self {
            blocks,
            current: Bytes::new(),
            done: false,
        })
    }
}

impl AsyncRead for ReadAhead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                buf.put_slice(&self.current[..n]);
                self.current.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match self.blocks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(block))) => self.current = block,
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn reads_the_source_whole_whatever_the_block_size() {
        let data: Vec<u8> = (0..100_003_u32).map(|i| (i * 7 % 251) as u8).collect();
        for block in [1, 4096, 65_536, 1 << 20] {
            let mut reader = ReadAhead::new(std::io::Cursor::new(data.clone()), block, 2).unwrap();
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.unwrap();
            assert_eq!(out, data, "block {block}");
        }
    }

    #[tokio::test]
    async fn a_read_error_reaches_the_consumer_after_the_bytes_before_it() {
        struct Failing(u8);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[0] = 42;
                Ok(1)
            }
        }
        let mut reader = ReadAhead::new(Failing(3), 2, 1).unwrap();
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(out, [42, 42, 42]);
    }
}
