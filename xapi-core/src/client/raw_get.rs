//! A data-plane GET read by hand: the request head written on a fresh connection, the response
//! head parsed with `httparse`, the body read straight from the socket in large blocks.
//!
//! hyper hands the body of a response without a length (xapi's `/export` ends when the server
//! closes the connection) to its reader in frames of at most 8 KiB, each passed through a
//! channel from the task driving the connection: two task wake-ups per 8 KiB, 130,000 per GiB,
//! which cost a backup more CPU than hashing its data did. Read here, one block costs one read.
//!
//! Bodies are framed as RFC 9112 §6.3 says: `Transfer-Encoding: chunked`, else
//! `Content-Length`, else until the connection closes. The request asks for `Connection: close`:
//! a data-plane connection carries one transfer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::connection::Conn;
use crate::Error;
use crate::error::TimeoutKind;

/// Bytes asked of the socket per read of the body.
const BLOCK: usize = 256 * 1024;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The most header fields a response head may have.
const MAX_HEADERS: usize = 64;

/// The longest chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4096;

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// When the server closes the connection.
    Close,
    /// Chunked: before the next chunk-size line.
    ChunkSize,
    /// Chunked: after this many more bytes of the current chunk, then its CRLF.
    ChunkData(u64),
    /// Nothing more.
    Done,
}

/// The body of a response read by [`get`], still on the wire.
pub(crate) struct RawBody {
    conn: Conn,
    /// Bytes read from the socket and not yet handed out.
    buffered: BytesMut,
    framing: Framing,
    url: String,
    inactivity: Duration,
}

impl RawBody {
    /// The next block of the body, `None` at its end.
    pub(crate) async fn next_block(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.framing {
                Framing::Done => return Ok(None),
                Framing::Close => {
                    if self.buffered.is_empty() && self.fill(BLOCK).await? == 0 {
                        self.framing = Framing::Done;
                        return Ok(None);
                    }
                    return Ok(Some(self.buffered.split().freeze()));
                }
                Framing::Length(0) => self.framing = Framing::Done,
                Framing::Length(remaining) => {
                    let block = self.take_up_to(remaining, "the announced length").await?;
                    self.framing = Framing::Length(remaining - block.len() as u64);
                    return Ok(Some(block));
                }
                Framing::ChunkSize => {
                    let line = self.line().await?;
                    let size = chunk_size(&line).ok_or_else(|| self.malformed("chunk size"))?;
                    if size == 0 {
                        // trailer fields, up to an empty line
                        while !self.line().await?.is_empty() {}
                        self.framing = Framing::Done;
                    } else {
                        self.framing = Framing::ChunkData(size);
                    }
                }
                Framing::ChunkData(0) => {
                    if !self.line().await?.is_empty() {
                        return Err(self.malformed("end of chunk"));
                    }
                    self.framing = Framing::ChunkSize;
                }
                Framing::ChunkData(remaining) => {
                    let block = self.take_up_to(remaining, "a chunk").await?;
                    self.framing = Framing::ChunkData(remaining - block.len() as u64);
                    return Ok(Some(block));
                }
            }
        }
    }

    /// Up to `limit` bytes (at least one), reading if nothing is buffered; the end of the
    /// connection here is an error naming `what` was cut short.
    async fn take_up_to(&mut self, limit: u64, what: &str) -> Result<Bytes, Error> {
        if self.buffered.is_empty() {
            let want = usize::try_from(limit).unwrap_or(usize::MAX).min(BLOCK);
            if self.fill(want).await? == 0 {
                return Err(self.cut_short(what));
            }
        }
        let n = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(self.buffered.len());
        Ok(self.buffered.split_to(n).freeze())
    }

    /// One CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> Result<Bytes, Error> {
        let mut searched = 0;
        loop {
            if let Some(at) = memchr::memmem::find(&self.buffered[searched..], b"\r\n") {
                let line = self.buffered.split_to(searched + at + 2).freeze();
                return Ok(line.slice(..line.len() - 2));
            }
            searched = self.buffered.len().saturating_sub(1);
            if self.buffered.len() > MAX_LINE {
                return Err(self.malformed("line longer than 4 KiB"));
            }
            if self.fill(MAX_LINE).await? == 0 {
                return Err(self.cut_short("the chunked framing"));
            }
        }
    }

    /// Reads once more from the socket (at most `want` bytes, within the inactivity timeout);
    /// the bytes read, 0 at the end of the connection.
    async fn fill(&mut self, want: usize) -> Result<usize, Error> {
        read_some(
            &mut self.conn,
            &mut self.buffered,
            want,
            &self.url,
            self.inactivity,
        )
        .await
    }

    fn cut_short(&self, what: &str) -> Error {
        closed_before(&self.url, &format!("the end of {what}"))
    }

    fn malformed(&self, what: &str) -> Error {
        Error::Protocol {
            url: self.url.clone(),
            reason: format!("malformed chunked body: {what}"),
        }
    }
}

/// The size on a chunk-size line (`1a2b;ext=1`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// One read into `buffer`, of at most `want` bytes, within `inactivity`.
async fn read_some(
    conn: &mut Conn,
    buffer: &mut BytesMut,
    want: usize,
    url: &str,
    inactivity: Duration,
) -> Result<usize, Error> {
    buffer.reserve(want);
    let mut limited = (&mut *conn).take(want as u64);
    within(inactivity, url, limited.read_buf(buffer))
        .await?
        .map_err(|source| Error::Transport {
            url: url.to_owned(),
            source: Box::new(source),
        })
}

/// `step`, failed with an inactivity timeout if it takes longer than `inactivity`.
async fn within<T>(
    inactivity: Duration,
    url: &str,
    step: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    tokio::time::timeout(inactivity, step)
        .await
        .map_err(|_| Error::Timeout {
            url: url.to_owned(),
            kind: TimeoutKind::Inactivity,
            after: inactivity,
        })
}

/// The connection to `url` ended before `what`.
fn closed_before(url: &str, what: &str) -> Error {
    Error::Transport {
        url: url.to_owned(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the connection closed before {what}"),
        )),
    }
}

/// Sends `GET target` with `headers` on `conn` and reads the response head (within
/// `inactivity` for each step); the body is left on the wire in the response.
pub(crate) async fn get(
    mut conn: Conn,
    target: &str,
    headers: &[(HeaderName, HeaderValue)],
    url: &str,
    inactivity: Duration,
) -> Result<Response<RawBody>, Error> {
    let mut head = format!("GET {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let sent = async {
        conn.write_all(&head).await?;
        conn.flush().await
    };
    within(inactivity, url, sent)
        .await?
        // Not (wholly) written: the server cannot have acted on it.
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
    let mut buffered = BytesMut::with_capacity(BLOCK);
    loop {
        let parsed = parse_head(&buffered, url)?;
        if let Some((length, response)) = parsed {
            let _ = buffered.split_to(length);
            if response.status().is_informational() {
                continue;
            }
            let framing = framing_of(&response, url)?;
            let (parts, ()) = response.into_parts();
            let body = RawBody {
                conn,
                buffered,
                framing,
                url: url.to_owned(),
                inactivity,
            };
            return Ok(Response::from_parts(parts, body));
        }
        if buffered.len() >= MAX_HEAD {
            return Err(Error::Protocol {
                url: url.to_owned(),
                reason: "response head larger than 64 KiB".into(),
            });
        }
        if read_some(&mut conn, &mut buffered, BLOCK, url, inactivity).await? == 0 {
            return Err(closed_before(url, "the response head"));
        }
    }
}

/// The response head at the start of `bytes` and its length, `None` if incomplete.
fn parse_head(bytes: &[u8], url: &str) -> Result<Option<(usize, Response<()>)>, Error> {
    let malformed = |reason: String| Error::Protocol {
        url: url.to_owned(),
        reason: format!("malformed response head: {reason}"),
    };
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut fields);
    let length = match head.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(malformed(error.to_string())),
    };
    let status = head
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| malformed("no valid status".into()))?;
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for field in head.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| malformed(format!("header name {:?}", field.name)))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| malformed(format!("value of {}", field.name)))?;
        headers.append(name, value);
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(Some((length, response)))
}

/// How the body of `response` (to a GET) ends.
fn framing_of(response: &Response<()>, url: &str) -> Result<Framing, Error> {
    let status = response.status();
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    let headers = response.headers();
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        return Ok(Framing::ChunkSize);
    }
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        // another coding last: the body runs to the end of the connection
        return Ok(Framing::Close);
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        None => Ok(Framing::Close),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Framing::Length)
            .ok_or_else(|| Error::Protocol {
                url: url.to_owned(),
                reason: format!("invalid Content-Length {value:?}"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_parse_with_and_without_extensions() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"FF;name=value"), Some(255));
        assert_eq!(chunk_size(b" 0 "), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"xyz"), None);
        assert_eq!(chunk_size(b"11111111111111111"), None);
    }

    #[test]
    fn heads_parse_and_frame_their_bodies() {
        let text = b"HTTP/1.0 200 OK\r\ntask-id: OpaqueRef:t\r\nConnection: close\r\n\r\nBODY";
        let (length, response) = parse_head(text, "u").unwrap().unwrap();
        assert_eq!(&text[length..], b"BODY");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["task-id"], "OpaqueRef:t");
        assert_eq!(framing_of(&response, "u").unwrap(), Framing::Close);
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", "u")
                .unwrap()
                .is_none()
        );
        let (_, sized) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "u")
            .unwrap()
            .unwrap();
        assert_eq!(framing_of(&sized, "u").unwrap(), Framing::Length(12));
        let (_, chunked) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            "u",
        )
        .unwrap()
        .unwrap();
        assert_eq!(framing_of(&chunked, "u").unwrap(), Framing::ChunkSize);
        let (_, bad) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "u")
            .unwrap()
            .unwrap();
        assert!(matches!(framing_of(&bad, "u"), Err(Error::Protocol { .. })));
        assert!(matches!(
            parse_head(b"HTTZ/1.1 200 OK\r\n\r\n", "u"),
            Err(Error::Protocol { .. })
        ));
    }
}
