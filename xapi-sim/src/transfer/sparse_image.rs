//! Reading a sparse disk image: its holes come back as zeros without a read.
//!
//! The simulator's disk images are sparse files, mostly holes (a 4 GiB disk with 1 GiB of
//! data). Reading a hole through the file system costs as much as reading data: the kernel
//! fills page after page with zeros and copies them out. xapi does not pay that either: it
//! reads only the allocated blocks of a VHD, and knows the rest is zeros. [`SparseImage`] asks
//! the file system where the data is (`lseek` with `SEEK_DATA` / `SEEK_HOLE`) and answers a
//! hole with zeros of its own. The bytes read are the same either way.

use std::io::{self, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

/// A disk image read from its start, holes answered without reading them.
#[derive(Debug)]
pub(crate) struct SparseImage {
    file: tokio::fs::File,
    /// The image opened a second time, for the `lseek` probes: moving `file`'s own offset would
    /// confuse its reads.
    probe: std::fs::File,
    /// Offset of the next byte to hand out.
    position: u64,
    /// Where `file`'s offset is (it moves only by reads and seeks of `file`).
    file_position: u64,
    /// The extent that holds `position`, once looked up.
    extent: Option<Extent>,
    /// A seek of `file` to `position` is under way.
    seeking: bool,
}

/// A stretch of the image that is all data or all hole: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    start: u64,
    end: u64,
    hole: bool,
}

impl SparseImage {
    /// Opens the image at `path` for reading from its start.
    pub(crate) async fn open(path: &Path) -> io::Result<Self> {
        let file = tokio::fs::File::open(path).await?;
        // opened on its own: a clone of `file` would share its offset
        let probe = tokio::fs::File::open(path).await?.into_std().await;
        Ok(Self {
            file,
            probe,
            position: 0,
            file_position: 0,
            extent: None,
            seeking: false,
        })
    }

    /// The extent holding `at`: a hole up to the next data, or data up to the next hole. At or
    /// past the end of the file, an empty data extent (the file itself reports the end).
    fn extent_at(&self, at: u64) -> io::Result<Extent> {
        let data = match rustix::fs::seek(&self.probe, rustix::fs::SeekFrom::Data(at)) {
            Ok(data) => data,
            // no data at or after `at`: a hole up to the end of the file, or the end itself
            Err(rustix::io::Errno::NXIO) => {
                let end = self.probe.metadata()?.len();
                return Ok(Extent {
                    start: at,
                    end: end.max(at),
                    hole: end > at,
                });
            }
            // a file system without the probes: all of it is data
            Err(rustix::io::Errno::INVAL) => {
                return Ok(Extent {
                    start: at,
                    end: u64::MAX,
                    hole: false,
                });
            }
            Err(errno) => return Err(errno.into()),
        };
        if data > at {
            return Ok(Extent {
                start: at,
                end: data,
                hole: true,
            });
        }
        let hole = rustix::fs::seek(&self.probe, rustix::fs::SeekFrom::Hole(at))?;
        Ok(Extent {
            start: at,
            end: hole.max(at),
            hole: false,
        })
    }
}

impl AsyncRead for SparseImage {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let extent = match this.extent {
            Some(extent) if extent.start <= this.position && this.position < extent.end => extent,
            _ => {
                let extent = this.extent_at(this.position)?;
                this.extent = Some(extent);
                extent
            }
        };
        // up to the end of the extent: what lies after it is answered on the next read
        let limit = usize::try_from(extent.end - this.position)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        if extent.hole {
            buf.initialize_unfilled_to(limit).fill(0);
            buf.advance(limit);
            this.position += limit as u64;
            return Poll::Ready(Ok(()));
        }
        if this.file_position != this.position {
            if !this.seeking {
                Pin::new(&mut this.file).start_seek(SeekFrom::Start(this.position))?;
                this.seeking = true;
            }
            let reached = ready!(Pin::new(&mut this.file).poll_complete(cx));
            this.seeking = false;
            this.file_position = reached?;
        }
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(limit));
        ready!(Pin::new(&mut this.file).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        this.position += n as u64;
        this.file_position += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt as _;
    use tokio::io::AsyncReadExt as _;

    /// A sparse image of `len` bytes with `data` written at each of `at`.
    fn image(dir: &Path, len: u64, at: &[u64], data: &[u8]) -> std::path::PathBuf {
        let path = dir.join("image");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(len).unwrap();
        for &offset in at {
            file.write_at(data, offset).unwrap();
        }
        path
    }

    async fn read_all_in(path: &Path, piece: usize) -> Vec<u8> {
        let mut image = SparseImage::open(path).await.unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0xAA; piece];
        loop {
            let n = image.read(&mut buf).await.unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn a_sparse_image_reads_as_its_bytes_whatever_the_read_size() {
        let dir = tempfile::tempdir().unwrap();
        let mib = 1 << 20;
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251 + 1) as u8).collect();
        // data at the start, in the middle across a MiB boundary, and at the very end
        let len = 8 * mib;
        let path = image(
            dir.path(),
            len,
            &[0, 3 * mib - 1000, len - data.len() as u64],
            &data,
        );
        let expected = std::fs::read(&path).unwrap();
        assert_eq!(expected.len() as u64, len);
        for piece in [1 << 20, 65_536, 4_096, 1_000_003] {
            let got = read_all_in(&path, piece).await;
            assert_eq!(got.len(), expected.len(), "reads of {piece} bytes: length");
            let first_difference = got.iter().zip(&expected).position(|(a, b)| a != b);
            assert_eq!(first_difference, None, "reads of {piece} bytes");
        }
    }

    #[tokio::test]
    async fn holes_up_to_the_end_and_empty_images_read_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = image(dir.path(), 3 << 20, &[4096], b"x");
        let got = read_all_in(&path, 1 << 20).await;
        assert_eq!(got.len(), 3 << 20);
        assert_eq!(got[4096], b'x');
        assert_eq!(got.iter().filter(|&&b| b != 0).count(), 1);

        let empty = dir.path().join("empty");
        std::fs::File::create(&empty).unwrap();
        assert!(read_all_in(&empty, 4096).await.is_empty());

        let all_hole = dir.path().join("hole");
        std::fs::File::create(&all_hole)
            .unwrap()
            .set_len(5_000_000)
            .unwrap();
        let got = read_all_in(&all_hole, 1 << 20).await;
        assert_eq!(got.len(), 5_000_000);
        assert!(got.iter().all(|&b| b == 0));
    }
}
