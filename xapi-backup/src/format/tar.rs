//! A small V7 tar layer: exact headers as xapi writes them, streaming member bodies.
//!
//! Why not `astral-tokio-tar`: the XVA format needs (1) byte-exact V7 headers as ocaml-tar's
//! `HeaderWriter` produces them (no `ustar` magic, `mod_time` 0 for chunks), (2) member bodies
//! streamed chunk by chunk without any extra buffering or seeking, and (3) errors that name the
//! member and the byte offset in the stream where the damage is. The layer needed for that is a
//! few hundred lines; the reader accepts V7, ustar and GNU headers (and skips pax/GNU metadata
//! members it does not need), the writer only produces V7.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of one tar block.
pub const BLOCK: usize = 512;

/// Failures of the tar layer, each with the byte offset (in the uncompressed tar stream) of the
/// header or body concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// The stream ended inside a header or a member body.
    #[error("tar: stream truncated at byte {offset} inside {context}")]
    Truncated {
        /// Offset of the first missing byte.
        offset: u64,
        /// What was being read (`header`, or `member <name>`).
        context: String,
    },
    /// A header block's checksum does not match its contents.
    #[error(
        "tar: header at byte {offset}: checksum mismatch (stored {stored}, computed {computed})"
    )]
    HeaderChecksum {
        /// Offset of the header block.
        offset: u64,
        /// The value stored in the header (or -1 when unreadable).
        stored: i64,
        /// The sum computed over the block.
        computed: u64,
    },
    /// A numeric field of a header is not valid octal.
    #[error("tar: header at byte {offset}: field {field} is not a number ({raw:?})")]
    BadNumber {
        /// Offset of the header block.
        offset: u64,
        /// Name of the field (`size`, `mtime`, `chksum`).
        field: &'static str,
        /// The raw field text.
        raw: String,
    },
    /// The member is of a kind (directory, link, device...) that cannot appear here.
    #[error("tar: member {name:?} at byte {offset}: unsupported entry type {kind:?}")]
    UnsupportedEntry {
        /// Offset of the header block.
        offset: u64,
        /// Member name.
        name: String,
        /// The type flag byte, as a character.
        kind: char,
    },
    /// A member body is larger than the reader is willing to hold.
    #[error("tar: member {name:?} at byte {offset}: {size} bytes exceeds the limit of {limit}")]
    MemberTooLarge {
        /// Offset of the header block.
        offset: u64,
        /// Member name.
        name: String,
        /// Declared size.
        size: u64,
        /// Limit in force.
        limit: u64,
    },
    /// A member name does not fit a V7 header (100 bytes) or is not valid.
    #[error("tar: member name {name:?} cannot be written in a V7 header")]
    BadName {
        /// The offending name.
        name: String,
    },
    /// The bytes under the tar layer are damaged (e.g. a gzip or zstd stream fails to decode).
    #[error("tar: undecodable input at byte {offset}: {message}")]
    CorruptStream {
        /// Offset reached in the (decompressed) tar stream.
        offset: u64,
        /// What the decoder said.
        message: String,
    },
    /// The underlying reader failed.
    #[error("tar: io at byte {offset}: {source}")]
    Io {
        /// Offset where the read was attempted.
        offset: u64,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// One member header as read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Member name (ustar prefix joined with `/` when present).
    pub name: String,
    /// Body size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Byte offset of the header block in the tar stream.
    pub header_offset: u64,
}

/// Encodes a V7 header exactly as ocaml-tar's `Header.marshal` does at its default V7 level:
/// name, mode `0000400\0`, uid/gid `0000000\0`, size and mtime as 11 octal digits and a NUL,
/// checksum as 7 octal digits and a NUL, link indicator NUL (a V7 regular file); everything else
/// zero (no `ustar` magic).
pub fn encode_v7_header(name: &str, size: u64, mtime: u64) -> Result<[u8; BLOCK], TarError> {
    if name.is_empty() || name.len() > 100 || name.as_bytes().contains(&0) {
        return Err(TarError::BadName {
            name: name.to_owned(),
        });
    }
    // 11 octal digits hold 8 GiB - 1; larger bodies need base-256, which V7 has not.
    if size > 0o777_7777_7777 || mtime > 0o777_7777_7777 {
        return Err(TarError::BadName {
            name: name.to_owned(),
        });
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    write_octal(&mut h[100..108], 0o400);
    write_octal(&mut h[108..116], 0);
    write_octal(&mut h[116..124], 0);
    write_octal(&mut h[124..136], size);
    write_octal(&mut h[136..148], mtime);
    h[156] = 0;
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    write_octal(&mut h[148..156], sum);
    Ok(h)
}

/// Number of zero bytes that pad a body of `size` bytes to a whole block.
pub fn padding_len(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The end-of-archive marker: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

fn write_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

fn parse_number(field: &[u8], offset: u64, name: &'static str) -> Result<u64, TarError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256: big-endian after the marker bit.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| bad_number(field, offset, name))?;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .filter(|&b| b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&text).map_err(|_| bad_number(field, offset, name))?;
    u64::from_str_radix(s, 8).map_err(|_| bad_number(field, offset, name))
}

fn bad_number(field: &[u8], offset: u64, name: &'static str) -> TarError {
    TarError::BadNumber {
        offset,
        field: name,
        raw: String::from_utf8_lossy(field).into_owned(),
    }
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Parses one header block. `Ok(None)` for an all-zero block (end of archive).
pub fn parse_header(block: &[u8; BLOCK], offset: u64) -> Result<Option<(TarEntry, u8)>, TarError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let stored = parse_number(&block[148..156], offset, "chksum")?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes; accept either.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && stored as i64 != signed {
        return Err(TarError::HeaderChecksum {
            offset,
            stored: stored as i64,
            computed: unsigned,
        });
    }
    let mut name = c_string(&block[..100]);
    if &block[257..262] == b"ustar" {
        let prefix = c_string(&block[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    let size = parse_number(&block[124..136], offset, "size")?;
    let mtime = parse_number(&block[136..148], offset, "mtime")?;
    Ok(Some((
        TarEntry {
            name,
            size,
            mtime,
            header_offset: offset,
        },
        block[156],
    )))
}

/// Streaming reader of regular tar members over any `AsyncRead`.
///
/// Call [`TarReader::next_entry`], then read the body with [`TarReader::read_body`] or
/// [`TarReader::read_body_part`]; a body not read in full is skipped by the next `next_entry`.
#[derive(Debug)]
pub struct TarReader<R> {
    inner: R,
    position: u64,
    /// Bytes of the current body not yet consumed.
    remaining: u64,
    /// Padding after the current body.
    pending_padding: u64,
    current: Option<String>,
    finished: bool,
}

impl<R: AsyncRead + Unpin> TarReader<R> {
    /// Wraps an uncompressed tar stream.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            position: 0,
            remaining: 0,
            pending_padding: 0,
            current: None,
            finished: false,
        }
    }

    /// Byte offset reached in the tar stream.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads the next regular member header; `Ok(None)` at the end-of-archive marker.
    /// Truncation before the marker is an error.
    pub async fn next_entry(&mut self) -> Result<Option<TarEntry>, TarError> {
        if self.finished {
            return Ok(None);
        }
        self.skip(self.remaining + self.pending_padding).await?;
        self.remaining = 0;
        self.pending_padding = 0;
        self.current = None;
        let mut long_name: Option<String> = None;
        loop {
            let offset = self.position;
            let mut block = [0u8; BLOCK];
            self.fill(&mut block, "header").await?;
            let Some((mut entry, kind)) = parse_header(&block, offset)? else {
                // First zero block; the second one is expected but its absence is tolerated
                // when the stream ends right there (some writers stop after one).
                let mut second = [0u8; BLOCK];
                match self.read_full(&mut second).await? {
                    0 => {}
                    n if n == BLOCK && second.iter().all(|&b| b == 0) => {}
                    _ => {
                        return Err(TarError::UnsupportedEntry {
                            offset: offset + BLOCK as u64,
                            name: String::from("<after end-of-archive block>"),
                            kind: '?',
                        });
                    }
                }
                self.finished = true;
                return Ok(None);
            };
            match kind {
                b'0' | 0 | b'7' => {
                    if let Some(n) = long_name.take() {
                        entry.name = n;
                    }
                    self.remaining = entry.size;
                    self.pending_padding = padding_len(entry.size) as u64;
                    self.current = Some(entry.name.clone());
                    return Ok(Some(entry));
                }
                b'L' => {
                    // GNU long name: the body is the name of the next member.
                    if entry.size > 64 * 1024 {
                        return Err(TarError::MemberTooLarge {
                            offset,
                            name: entry.name,
                            size: entry.size,
                            limit: 64 * 1024,
                        });
                    }
                    let mut body = vec![0u8; entry.size as usize];
                    self.fill(&mut body, "GNU long name").await?;
                    self.skip(padding_len(entry.size) as u64).await?;
                    long_name = Some(c_string(&body));
                }
                b'x' | b'g' => {
                    // pax metadata: not used by any XVA writer; skipped.
                    self.skip(entry.size + padding_len(entry.size) as u64)
                        .await?;
                }
                other => {
                    return Err(TarError::UnsupportedEntry {
                        offset,
                        name: entry.name,
                        kind: other as char,
                    });
                }
            }
        }
    }

    /// Reads the whole body of the current member, refusing bodies larger than `limit`.
    pub async fn read_body(&mut self, entry: &TarEntry, limit: u64) -> Result<Bytes, TarError> {
        self.read_body_into(entry, limit, Vec::new())
            .await
            .map(Bytes::from)
    }

    /// [`TarReader::read_body`] into `buf` (cleared first, grown as needed), so that a caller
    /// reading many bodies can use its buffers again.
    pub async fn read_body_into(
        &mut self,
        entry: &TarEntry,
        limit: u64,
        mut buf: Vec<u8>,
    ) -> Result<Vec<u8>, TarError> {
        if self.remaining > limit {
            return Err(TarError::MemberTooLarge {
                offset: entry.header_offset,
                name: entry.name.clone(),
                size: entry.size,
                limit,
            });
        }
        buf.clear();
        self.read_exact_into(&mut buf, self.remaining as usize, || {
            format!("member {}", entry.name)
        })
        .await?;
        self.remaining = 0;
        Ok(buf)
    }

    /// Reads up to `max` bytes of the current body; an empty result means the body is done.
    pub async fn read_body_part(&mut self, max: usize) -> Result<Bytes, TarError> {
        let n = (self.remaining.min(max as u64)) as usize;
        let current = self.current.clone();
        let mut buf = Vec::new();
        self.read_exact_into(&mut buf, n, || {
            format!("member {}", current.as_deref().unwrap_or("?"))
        })
        .await?;
        self.remaining -= n as u64;
        Ok(Bytes::from(buf))
    }

    /// Reads and discards everything up to the end of the underlying stream (after the
    /// end-of-archive marker: record padding, or the end of a compressed stream).
    pub async fn drain_to_end(&mut self) -> Result<u64, TarError> {
        let mut scratch = [0u8; 8192];
        let mut total = 0u64;
        loop {
            let n = self.read_full(&mut scratch).await?;
            total += n as u64;
            if n < scratch.len() {
                return Ok(total);
            }
        }
    }

    async fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .inner
                .read(&mut buf[done..])
                .await
                .map_err(|source| read_error(self.position, source))?;
            if n == 0 {
                break;
            }
            done += n;
            self.position += n as u64;
        }
        Ok(done)
    }

    /// Appends exactly `n` bytes of the stream to `buf`, without zeroing them first: the bytes
    /// go straight from the source into the buffer handed out (one copy, no `memset`).
    async fn read_exact_into(
        &mut self,
        buf: &mut Vec<u8>,
        n: usize,
        context: impl FnOnce() -> String,
    ) -> Result<(), TarError> {
        use bytes::BufMut as _;
        buf.reserve(n);
        let end = buf.len() + n;
        while buf.len() < end {
            let want = end - buf.len();
            let got = self
                .inner
                .read_buf(&mut (&mut *buf).limit(want))
                .await
                .map_err(|source| read_error(self.position, source))?;
            if got == 0 {
                return Err(TarError::Truncated {
                    offset: self.position,
                    context: context(),
                });
            }
            self.position += got as u64;
        }
        Ok(())
    }

    async fn fill(&mut self, buf: &mut [u8], context: &str) -> Result<(), TarError> {
        let n = self.read_full(buf).await?;
        if n < buf.len() {
            return Err(TarError::Truncated {
                offset: self.position,
                context: context.to_owned(),
            });
        }
        Ok(())
    }

    async fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let want = n.min(scratch.len() as u64) as usize;
            let got = self.read_full(&mut scratch[..want]).await?;
            if got < want {
                return Err(TarError::Truncated {
                    offset: self.position,
                    context: format!("member {}", self.current.as_deref().unwrap_or("?")),
                });
            }
            n -= want as u64;
        }
        Ok(())
    }
}

/// A read failure as a [`TarError`] at `offset`: an early end is truncation, a decoder's
/// complaint is a corrupt stream, anything else an I/O error.
fn read_error(offset: u64, source: std::io::Error) -> TarError {
    match source.kind() {
        std::io::ErrorKind::UnexpectedEof => TarError::Truncated {
            offset,
            context: source.to_string(),
        },
        std::io::ErrorKind::InvalidData
        | std::io::ErrorKind::InvalidInput
        | std::io::ErrorKind::Other
            if source.get_ref().is_some() =>
        {
            TarError::CorruptStream {
                offset,
                message: source.to_string(),
            }
        }
        _ => TarError::Io { offset, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_header_matches_hand_computed_bytes() {
        let h = encode_v7_header("Ref:1/00000000", 1_048_576, 0).expect("valid name");
        assert_eq!(&h[..14], b"Ref:1/00000000");
        assert_eq!(&h[100..108], b"0000400\0");
        assert_eq!(&h[124..136], b"00004000000\0");
        assert_eq!(&h[136..148], b"00000000000\0");
        assert_eq!(h[156], 0, "V7 regular file");
        assert_eq!(&h[157..], &[0u8; 355][..], "no link name, no ustar magic");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(&h[148..156], format!("{sum:07o}\0").as_bytes());
        let (entry, kind) = parse_header(&h, 0).expect("parses").expect("not zero");
        assert_eq!(kind, 0);
        assert_eq!(entry.name, "Ref:1/00000000");
        assert_eq!(entry.size, 1_048_576);
    }

    #[test]
    fn flipped_header_byte_is_a_checksum_error() {
        let mut h = encode_v7_header("ova.xml", 10, 5).expect("valid name");
        h[3] ^= 0x01;
        let err = parse_header(&h, 1024).expect_err("must fail");
        assert!(matches!(err, TarError::HeaderChecksum { offset: 1024, .. }));
    }

    #[test]
    fn names_longer_than_v7_allows_are_refused() {
        let long = "x".repeat(101);
        assert!(matches!(
            encode_v7_header(&long, 0, 0),
            Err(TarError::BadName { .. })
        ));
    }

    #[test]
    fn padding_rounds_to_block() {
        assert_eq!(padding_len(0), 0);
        assert_eq!(padding_len(1), 511);
        assert_eq!(padding_len(512), 0);
        assert_eq!(padding_len(513), 511);
    }
}

/// Test support: lists the member names of an uncompressed tar in memory.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::{BLOCK, padding_len, parse_header};

    /// Member names in order, stopping at the end-of-archive marker.
    pub(crate) fn member_names(tar: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        let mut at = 0;
        while at + BLOCK <= tar.len() {
            let block: &[u8; BLOCK] = tar[at..at + BLOCK].try_into().expect("one block");
            let Ok(Some((entry, _))) = parse_header(block, at as u64) else {
                break;
            };
            at += BLOCK + entry.size as usize + padding_len(entry.size);
            names.push(entry.name);
        }
        names
    }
}
