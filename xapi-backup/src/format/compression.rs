//! Whole-stream gzip and zstd, as xapi applies them to XVA exports (reference §1).
//!
//! [`Compression::detect`] recognises the magic numbers; [`DecompressingReader`] decodes an
//! `AsyncRead` incrementally (bounded buffers; decoding is cheap and runs in small bites on the
//! calling task); [`BlockingEncoder`] compresses on tokio's blocking pool so that the
//! CPU-heavy work never runs on the async executor.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

/// zstd frame magic.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// gzip member magic.
pub const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// Whole-stream compression of an XVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain tar.
    #[default]
    None,
    /// gzip (`use_compression=true` or `gzip`).
    Gzip,
    /// zstd (`use_compression=zstd`).
    Zstd,
}

impl Compression {
    /// Recognises a compressed stream by its first bytes. Plain tar is not recognised here:
    /// callers test for a tar header first, as xapi's importer does.
    pub fn detect(prefix: &[u8]) -> Option<Self> {
        if prefix.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else if prefix.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    /// The value of xapi's `use_compression` query argument.
    pub fn query_value(self) -> &'static str {
        match self {
            Compression::None => "false",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A push-style byte transform (compressor or decompressor) writing into an owned `Vec`.
trait Transform: Send {
    fn push(&mut self, input: &[u8]) -> std::io::Result<()>;
    fn flush_out(&mut self) -> std::io::Result<()>;
    fn finish(&mut self) -> std::io::Result<()>;
    fn take(&mut self) -> Vec<u8>;
}

struct GzipDecode(flate2::write::MultiGzDecoder<Vec<u8>>);
struct ZstdDecode {
    decoder: zstd::stream::raw::Decoder<'static>,
    out: Vec<u8>,
    scratch: Box<[u8]>,
    /// True while a frame has started and not ended: end of input there is a truncation.
    in_frame: bool,
}
struct GzipEncode(Option<flate2::write::GzEncoder<Vec<u8>>>);
struct ZstdEncode(Option<zstd::stream::write::Encoder<'static, Vec<u8>>>);

impl Transform for GzipDecode {
    fn push(&mut self, input: &[u8]) -> std::io::Result<()> {
        self.0.write_all(input)
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.0.try_finish()
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.0.get_mut())
    }
}

impl Transform for ZstdDecode {
    fn push(&mut self, input: &[u8]) -> std::io::Result<()> {
        use zstd::stream::raw::{InBuffer, Operation as _, OutBuffer};
        let mut inb = InBuffer::around(input);
        loop {
            let mut outb = OutBuffer::around(&mut self.scratch[..]);
            let hint = self.decoder.run(&mut inb, &mut outb)?;
            let produced = outb.pos();
            let full = produced == self.scratch.len();
            self.out.extend_from_slice(&self.scratch[..produced]);
            self.in_frame = hint != 0;
            if inb.pos() == input.len() && !full {
                return Ok(());
            }
        }
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        if self.in_frame {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "zstd frame not finished",
            ));
        }
        Ok(())
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

impl Transform for GzipEncode {
    fn push(&mut self, input: &[u8]) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.write_all(input)
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.flush()
    }
    fn finish(&mut self) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.try_finish()
    }
    fn take(&mut self) -> Vec<u8> {
        self.0
            .as_mut()
            .map(|e| std::mem::take(e.get_mut()))
            .unwrap_or_default()
    }
}

impl Transform for ZstdEncode {
    fn push(&mut self, input: &[u8]) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.write_all(input)
    }
    fn flush_out(&mut self) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.flush()
    }
    fn finish(&mut self) -> std::io::Result<()> {
        encoder_gone(self.0.as_mut())?.do_finish()
    }
    fn take(&mut self) -> Vec<u8> {
        self.0
            .as_mut()
            .map(|e| std::mem::take(e.get_mut()))
            .unwrap_or_default()
    }
}

fn encoder_gone<T>(e: Option<&mut T>) -> std::io::Result<&mut T> {
    e.ok_or_else(|| std::io::Error::other("encoder used after an earlier failure"))
}

/// Decompresses an `AsyncRead` on the fly, with bounded buffers.
pub struct DecompressingReader<R> {
    inner: R,
    transform: Box<dyn Transform>,
    input: Box<[u8]>,
    output: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<R> std::fmt::Debug for DecompressingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecompressingReader")
            .field("buffered", &(self.output.len() - self.out_pos))
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> DecompressingReader<R> {
    /// Wraps `inner`, which holds a stream compressed with `kind` (not `None`).
    pub fn new(inner: R, kind: Compression) -> std::io::Result<Self> {
        let transform: Box<dyn Transform> = match kind {
            Compression::Gzip => {
                Box::new(GzipDecode(flate2::write::MultiGzDecoder::new(Vec::new())))
            }
            Compression::Zstd => Box::new(ZstdDecode {
                decoder: zstd::stream::raw::Decoder::new()?,
                out: Vec::new(),
                scratch: vec![0u8; 128 * 1024].into_boxed_slice(),
                in_frame: false,
            }),
            Compression::None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "DecompressingReader needs gzip or zstd",
                ));
            }
        };
        Ok(Self {
            inner,
            transform,
            input: vec![0u8; 64 * 1024].into_boxed_slice(),
            output: Vec::new(),
            out_pos: 0,
            eof: false,
        })
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DecompressingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.output.len() {
                let n = (this.output.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.output[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.input);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                this.eof = true;
                this.transform.finish().map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("compressed stream ends early: {e}"),
                    )
                })?;
            } else {
                let data = &this.input[..n];
                this.transform.push(data)?;
                this.transform.flush_out()?;
            }
            this.output = this.transform.take();
            this.out_pos = 0;
        }
    }
}

/// A compressor that runs on tokio's blocking pool, one batch at a time.
///
/// Feed it with [`BlockingEncoder::compress`] (optionally asking for a flush, so that a
/// keep-alive reaches the wire instead of sitting in the compressor) and end with
/// [`BlockingEncoder::finish`].
pub struct BlockingEncoder {
    transform: Option<Box<dyn Transform>>,
}

impl std::fmt::Debug for BlockingEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingEncoder").finish_non_exhaustive()
    }
}

impl BlockingEncoder {
    /// A new encoder; `None` for [`Compression::None`].
    pub fn new(kind: Compression) -> std::io::Result<Option<Self>> {
        let transform: Box<dyn Transform> = match kind {
            Compression::None => return Ok(None),
            Compression::Gzip => Box::new(GzipEncode(Some(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(6),
            )))),
            Compression::Zstd => {
                // level 3 and an XXH64 content checksum: the zstd command's defaults, which
                // xapi's exports use; the checksum lets a reader catch damage anywhere
                let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3)?;
                encoder.include_checksum(true)?;
                Box::new(ZstdEncode(Some(encoder)))
            }
        };
        Ok(Some(Self {
            transform: Some(transform),
        }))
    }

    async fn run(
        &mut self,
        input: Bytes,
        flush: bool,
        finish: bool,
    ) -> Result<Bytes, crate::Error> {
        let mut t = self
            .transform
            .take()
            .ok_or_else(|| crate::Error::CompressionTask("encoder used after a failure".into()))?;
        let (t, out) = tokio::task::spawn_blocking(move || {
            let r = (|| {
                t.push(&input)?;
                if finish {
                    t.finish()?;
                } else if flush {
                    t.flush_out()?;
                }
                Ok::<_, std::io::Error>(t.take())
            })();
            (t, r)
        })
        .await
        .map_err(|e| crate::Error::CompressionTask(e.to_string()))?;
        self.transform = Some(t);
        Ok(Bytes::from(
            out.map_err(crate::error::io("decompressing the stream"))?,
        ))
    }

    /// Compresses one batch; returns whatever compressed bytes are ready.
    pub async fn compress(&mut self, input: Bytes, flush: bool) -> Result<Bytes, crate::Error> {
        self.run(input, flush, false).await
    }

    /// Ends the compressed stream and returns its last bytes.
    pub async fn finish(&mut self) -> Result<Bytes, crate::Error> {
        self.run(Bytes::new(), false, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn round_trip(kind: Compression) {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = BlockingEncoder::new(kind).expect("encoder").expect("some");
        let mut compressed = Vec::new();
        for part in data.chunks(70_000) {
            compressed.extend_from_slice(
                &enc.compress(Bytes::copy_from_slice(part), true)
                    .await
                    .expect("compress"),
            );
        }
        compressed.extend_from_slice(&enc.finish().await.expect("finish"));
        assert_eq!(Compression::detect(&compressed), Some(kind));
        let mut r = DecompressingReader::new(&compressed[..], kind).expect("reader");
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.expect("decompress");
        assert_eq!(out, data);
        // Truncated input is an error, never a short success.
        let mut r =
            DecompressingReader::new(&compressed[..compressed.len() - 5], kind).expect("reader");
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).await.is_err());
    }

    #[tokio::test]
    async fn gzip_round_trips_and_detects_truncation() {
        round_trip(Compression::Gzip).await;
    }

    #[tokio::test]
    async fn zstd_round_trips_and_detects_truncation() {
        round_trip(Compression::Zstd).await;
    }
}
