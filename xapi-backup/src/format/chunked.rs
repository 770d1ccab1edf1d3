//! The chunked upload body of `PUT /import_raw_vdi?format=raw&chunked` (reference §6.3).
//!
//! A sequence of `[u64 LE offset][u32 LE length][length bytes]` extents, ended by a 12-byte
//! all-zero header. Lets a client send only the non-zero or changed extents of a disk.

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::xva::chunk::is_all_zeros;
use crate::Error;

/// Size of an extent header.
pub const HEADER_LEN: usize = 12;

/// The terminating header.
pub const END_MARKER: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// The longest extent one header may announce. vhd-tool (`serve_chunked_to_raw`) handles the
/// length as an OCaml `int32`, so 2 GiB and more would read as negative and fail the import.
pub const MAX_EXTENT_LEN: u32 = i32::MAX as u32;

/// Failures while decoding a chunked body, with the byte offset in the body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// The body ended inside a header or inside an extent's data, or without the end marker.
    #[error("chunked: body truncated at byte {stream_offset} inside {context}")]
    Truncated {
        /// Offset in the body where bytes are missing.
        stream_offset: u64,
        /// `header`, `end marker` or `extent at disk offset N`.
        context: String,
    },
    /// An extent reaches beyond the disk's size.
    #[error(
        "chunked: extent at body byte {stream_offset} covers disk bytes {offset}..{end}, beyond the disk size {size}"
    )]
    ExtentPastEnd {
        /// Offset of the extent header in the body.
        stream_offset: u64,
        /// Disk offset of the extent.
        offset: u64,
        /// End of the extent.
        end: u64,
        /// Disk size.
        size: u64,
    },
    /// An extent's end lies beyond the largest disk offset (`offset + len` overflows 64 bits).
    #[error(
        "chunked: extent at body byte {stream_offset} starts at disk offset {offset} and cannot hold {len} bytes (end overflows 64 bits)"
    )]
    ExtentOverflows {
        /// Offset of the extent header in the body.
        stream_offset: u64,
        /// Disk offset of the extent.
        offset: u64,
        /// Its declared length.
        len: u32,
    },
    /// A header announces 2 GiB or more, which xapi's vhd-tool cannot take.
    #[error(
        "chunked: extent at body byte {stream_offset} announces {len} bytes, more than the {max} one header may carry"
    )]
    ExtentTooLong {
        /// Offset of the extent header in the body.
        stream_offset: u64,
        /// The announced length.
        len: u32,
        /// [`MAX_EXTENT_LEN`].
        max: u32,
    },
    /// Bytes follow the end marker.
    #[error("chunked: data after the end marker at body byte {stream_offset}")]
    TrailingData {
        /// Offset of the first extra byte.
        stream_offset: u64,
    },
}

/// Encodes one extent header.
pub fn encode_header(offset: u64, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&offset.to_le_bytes());
    h[8..].copy_from_slice(&len.to_le_bytes());
    h
}

/// Decodes one extent header into `(offset, length)`.
pub fn decode_header(h: &[u8; HEADER_LEN]) -> (u64, u32) {
    let offset = u64::from_le_bytes(h[..8].try_into().expect("8 bytes of a 12-byte header"));
    let len = u32::from_le_bytes(h[8..].try_into().expect("4 bytes of a 12-byte header"));
    (offset, len)
}

/// The `(offset, length)` headers that carry `len` bytes at disk `offset`: pieces of at most
/// [`MAX_EXTENT_LEN`] bytes, in order.
pub fn extent_headers(offset: u64, len: u64) -> impl Iterator<Item = (u64, u32)> {
    let max = u64::from(MAX_EXTENT_LEN);
    (0..len.div_ceil(max)).map(move |i| {
        let start = i * max;
        let piece = (len - start).min(max);
        (
            offset + start,
            u32::try_from(piece).expect("a piece is at most MAX_EXTENT_LEN"),
        )
    })
}

/// Encodes a whole body from extents into one buffer (for small bodies and tests).
pub fn encode_extents<'a>(extents: impl IntoIterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (offset, data) in extents {
        let mut start = 0usize;
        for (at, len) in extent_headers(offset, data.len() as u64) {
            out.extend_from_slice(&encode_header(at, len));
            out.extend_from_slice(&data[start..start + len as usize]);
            start += len as usize;
        }
    }
    out.extend_from_slice(&END_MARKER);
    out
}

/// Streams a chunked body from a raw disk of `size` bytes, sending only the blocks of
/// `block_size` bytes that are not all zero. Memory: one block.
pub fn chunked_stream_from_raw<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    size: u64,
    block_size: u32,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    let block = u64::from(block_size.clamp(1, MAX_EXTENT_LEN));
    futures::stream::try_unfold(
        (reader, 0u64, false),
        move |(mut reader, offset, done)| async move {
            if done {
                return Ok(None);
            }
            let mut offset = offset;
            while offset < size {
                let len = (size - offset).min(block) as usize;
                let mut buf = BytesMut::zeroed(HEADER_LEN + len);
                reader
                    .read_exact(&mut buf[HEADER_LEN..])
                    .await
                    .map_err(crate::error::io("reading the chunked upload body"))?;
                let at = offset;
                offset += len as u64;
                if !is_all_zeros(&buf[HEADER_LEN..]) {
                    buf[..HEADER_LEN].copy_from_slice(&encode_header(at, len as u32));
                    return Ok(Some((buf.freeze(), (reader, offset, false))));
                }
            }
            Ok(Some((
                Bytes::from_static(&END_MARKER),
                (reader, offset, true),
            )))
        },
    )
}

/// A piece of an extent: `data` goes at disk `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Disk offset.
    pub offset: u64,
    /// The bytes.
    pub data: Bytes,
}

/// Reads a chunked body, yielding extents in pieces of at most `max_piece` bytes.
#[derive(Debug)]
pub struct ChunkedReader<R> {
    inner: R,
    size: Option<u64>,
    max_piece: usize,
    position: u64,
    /// Current extent: next disk offset and bytes left.
    current: Option<(u64, u64)>,
    finished: bool,
}

impl<R: AsyncRead + Unpin> ChunkedReader<R> {
    /// Reads from `inner`; with `size`, extents beyond the disk are refused.
    pub fn new(inner: R, size: Option<u64>) -> Self {
        Self {
            inner,
            size,
            max_piece: 1 << 20,
            position: 0,
            current: None,
            finished: false,
        }
    }

    async fn fill(&mut self, buf: &mut [u8], context: &str) -> Result<(), ChunkedError> {
        let mut done = 0;
        while done < buf.len() {
            let n =
                self.inner
                    .read(&mut buf[done..])
                    .await
                    .map_err(|_| ChunkedError::Truncated {
                        stream_offset: self.position,
                        context: context.to_owned(),
                    })?;
            if n == 0 {
                return Err(ChunkedError::Truncated {
                    stream_offset: self.position,
                    context: context.to_owned(),
                });
            }
            done += n;
            self.position += n as u64;
        }
        Ok(())
    }

    /// The next piece of data; `Ok(None)` after the end marker.
    pub async fn next_extent(&mut self) -> Result<Option<Extent>, Error> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if let Some((offset, left)) = self.current {
                if left == 0 {
                    self.current = None;
                    continue;
                }
                let n = left.min(self.max_piece as u64) as usize;
                let mut buf = BytesMut::zeroed(n);
                self.fill(&mut buf, &format!("extent at disk offset {offset}"))
                    .await?;
                self.current = Some((offset + n as u64, left - n as u64));
                return Ok(Some(Extent {
                    offset,
                    data: buf.freeze(),
                }));
            }
            let at = self.position;
            let mut h = [0u8; HEADER_LEN];
            self.fill(&mut h, "header").await?;
            let (offset, len) = decode_header(&h);
            if len > MAX_EXTENT_LEN {
                return Err(ChunkedError::ExtentTooLong {
                    stream_offset: at,
                    len,
                    max: MAX_EXTENT_LEN,
                }
                .into());
            }
            if offset == 0 && len == 0 {
                self.finished = true;
                let mut probe = [0u8; 1];
                let extra = self
                    .inner
                    .read(&mut probe)
                    .await
                    .map_err(crate::error::io("reading the chunked upload body"))?;
                if extra > 0 {
                    return Err(ChunkedError::TrailingData {
                        stream_offset: self.position,
                    }
                    .into());
                }
                return Ok(None);
            }
            let Some(end) = offset.checked_add(u64::from(len)) else {
                return Err(ChunkedError::ExtentOverflows {
                    stream_offset: at,
                    offset,
                    len,
                }
                .into());
            };
            if let Some(size) = self.size
                && end > size
            {
                return Err(ChunkedError::ExtentPastEnd {
                    stream_offset: at,
                    offset,
                    end,
                    size,
                }
                .into());
            }
            self.current = Some((offset, u64::from(len)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;
    use proptest::prelude::*;

    async fn decode_all(body: &[u8], size: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let mut r = ChunkedReader::new(body, size);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        while let Some(e) = r.next_extent().await? {
            match out.last_mut() {
                Some((o, d)) if *o + d.len() as u64 == e.offset => d.extend_from_slice(&e.data),
                _ => out.push((e.offset, e.data.to_vec())),
            }
        }
        Ok(out)
    }

    #[test]
    fn hand_made_body_decodes() {
        // offset 512, length 3, "abc"; then the end marker.
        let body: Vec<u8> = [
            &[0x00, 0x02, 0, 0, 0, 0, 0, 0][..],
            &[3, 0, 0, 0],
            b"abc",
            &[0; 12],
        ]
        .concat();
        assert_eq!(body, encode_extents([(512, &b"abc"[..])]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let got = rt.block_on(decode_all(&body, Some(1024))).expect("decodes");
        assert_eq!(got, vec![(512, b"abc".to_vec())]);
    }

    #[tokio::test]
    async fn corrupt_bodies_are_typed_errors() {
        let body = encode_extents([(0, &[7u8; 100][..]), (4096, &[9u8; 10][..])]);
        for cut in 0..body.len() {
            let err = decode_all(&body[..cut], None).await.expect_err("truncated");
            assert!(
                matches!(err, Error::Chunked(ChunkedError::Truncated { .. })),
                "{cut}: {err}"
            );
        }
        let err = decode_all(&body, Some(4100)).await.expect_err("past end");
        assert!(matches!(
            err,
            Error::Chunked(ChunkedError::ExtentPastEnd { offset: 4096, .. })
        ));
        let mut trailing = body.clone();
        trailing.push(1);
        assert!(matches!(
            decode_all(&trailing, None).await,
            Err(Error::Chunked(ChunkedError::TrailingData { .. }))
        ));
    }

    #[test]
    fn extents_are_split_below_two_gib_for_vhd_tool() {
        // vhd-tool reads the length as a signed 32-bit int: 5 GiB at 1 MiB goes out as
        // 2 GiB - 1, 2 GiB - 1 and the 2 bytes + 1 GiB left.
        let max = u64::from(MAX_EXTENT_LEN);
        assert_eq!(max, 0x7FFF_FFFF);
        let headers: Vec<(u64, u32)> = extent_headers(1 << 20, 5 << 30).collect();
        assert_eq!(
            headers,
            vec![
                (1 << 20, MAX_EXTENT_LEN),
                ((1 << 20) + max, MAX_EXTENT_LEN),
                ((1 << 20) + 2 * max, ((5u64 << 30) - 2 * max) as u32),
            ]
        );
        assert_eq!(extent_headers(0, 0).count(), 0);
        assert_eq!(extent_headers(7, 3).collect::<Vec<_>>(), vec![(7, 3)]);
    }

    #[tokio::test]
    async fn a_length_of_two_gib_or_more_is_refused_like_vhd_tool() {
        let body = [&encode_header(4096, 0x8000_0000)[..], &[0; 12]].concat();
        let err = decode_all(&body, None).await.expect_err("too long");
        assert!(
            matches!(
                err,
                Error::Chunked(ChunkedError::ExtentTooLong {
                    stream_offset: 0,
                    len: 0x8000_0000,
                    ..
                })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn raw_disk_sends_only_non_zero_blocks() {
        let mut disk = vec![0u8; 10 * 4096 + 100];
        disk[4096 * 3 + 5] = 1;
        disk[10 * 4096 + 99] = 2;
        let body: Vec<u8> =
            chunked_stream_from_raw(std::io::Cursor::new(disk.clone()), disk.len() as u64, 4096)
                .try_fold(Vec::new(), |mut v, b| async move {
                    v.extend_from_slice(&b);
                    Ok(v)
                })
                .await
                .expect("encodes");
        assert_eq!(body.len(), 12 + 4096 + 12 + 100 + 12);
        let mut rebuilt = vec![0u8; disk.len()];
        for (o, d) in decode_all(&body, Some(disk.len() as u64))
            .await
            .expect("decodes")
        {
            rebuilt[o as usize..o as usize + d.len()].copy_from_slice(&d);
        }
        assert_eq!(rebuilt, disk);
    }

    proptest! {
        #[test]
        fn extents_round_trip(extents in proptest::collection::vec((0u64..1 << 40, proptest::collection::vec(any::<u8>(), 1..3000)), 0..8)) {
            let body = encode_extents(extents.iter().map(|(o, d)| (*o, &d[..])));
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let mut r = ChunkedReader::new(&body[..], None);
            let mut got = Vec::new();
            rt.block_on(async {
                while let Some(e) = r.next_extent().await.expect("decodes") {
                    got.push((e.offset, e.data.to_vec()));
                }
            });
            prop_assert_eq!(got, extents);
        }
    }
}
