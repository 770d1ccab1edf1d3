//! The HTTP data plane (`/export`, `/import`, `/export_raw_vdi`, ...): GET and PUT with the
//! session and task in the `Cookie` header, the `task-id` response header, redirects to other
//! pool members, streaming bodies both ways, and `Content-Length` on uploads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt};
use tracing::Instrument;

use tokio_util::io::{ReaderStream, StreamReader};

use super::body::{UploadBody, UploadEnd, stalled};
use super::connector::{Client, USER_AGENT};
use super::endpoint::Endpoint;
use super::raw_get::RawBody;
use super::session::SessionHandle;
use crate::Error;
use crate::api::Task;
use crate::error::{BoxError, TimeoutKind};
use crate::wire::Ref;

/// How many redirects a GET follows.
const MAX_REDIRECTS: usize = 5;

/// A stream of downloaded bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send + 'static>>;

/// The answer to a data-plane GET: its head, and the body still on the wire.
pub struct Download {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The task the handler runs in (`task-id` header), if the server sent one.
    pub task_id: Option<Ref<Task>>,
    /// The announced body length; exports have none.
    pub content_length: Option<u64>,
    /// The URL finally answered (after redirects), without credentials.
    pub url: String,
    body: RawBody,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("status", &self.status)
            .field("task_id", &self.task_id)
            .field("content_length", &self.content_length)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The body as a stream of chunks, with backpressure: nothing more is read from the socket
    /// until the consumer asks. A chunk that takes longer than the client's
    /// [`transfer_inactivity`](super::Timeouts::transfer_inactivity) fails with a timeout.
    pub fn into_stream(self) -> ByteStream {
        Box::pin(futures::stream::unfold(
            Some(self.body),
            |state| async move {
                let mut body = state?;
                match body.next_block().await {
                    Ok(Some(block)) => Some((Ok(block), Some(body))),
                    Ok(None) => None,
                    Err(error) => Some((Err(error), None)),
                }
            },
        ))
    }

    /// The body as an [`AsyncRead`].
    pub fn into_async_read(self) -> StreamReader<ByteStream, Bytes> {
        StreamReader::new(self.into_stream())
    }

    /// Read the whole body into memory, at most `limit` bytes (for small answers such as
    /// `/pool/xmldbdump`; stream disks with [`into_stream`](Self::into_stream)).
    pub async fn bytes(self, limit: usize) -> Result<Bytes, Error> {
        let url = self.url.clone();
        let mut stream = self.into_stream();
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(Error::ResponseTooLarge { url, limit });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// The answer to a data-plane PUT, once the whole body was sent.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The task the handler runs in (`task-id` header). XAPI reports the import's outcome
    /// through this task, not through the HTTP status.
    pub task_id: Option<Ref<Task>>,
    /// The bytes sent.
    pub bytes_sent: u64,
    /// True when the server answered, then stopped reading and closed the connection before
    /// the whole body was sent ([`bytes_sent`](Self::bytes_sent) is short). xapi does so when
    /// the work it took over fails (a bad chunk checksum, a disk it cannot write): the reason is
    /// on the task.
    pub stopped_early: bool,
    /// The (small) response body.
    pub body: Bytes,
}

/// Percent-encode a query component (RFC 3986 unreserved characters pass).
fn encode_component(text: &str, out: &mut String) {
    use std::fmt::Write as _;
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// `path?k=v&...` with the values percent-encoded.
pub(crate) fn path_and_query(path: &str, query: &[(&str, &str)]) -> String {
    let mut out = path.to_owned();
    for (i, (key, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode_component(key, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

/// The `Host` header for `endpoint`.
fn host_header_value(endpoint: &Endpoint, url: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(&endpoint.host_header()).map_err(|_| Error::InvalidUrl {
        url: url.to_owned(),
        reason: "the host is not a valid Host header".into(),
    })
}

fn task_id_of<B>(response: &Response<B>) -> Option<Ref<Task>> {
    response
        .headers()
        .get("task-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| Ref::new(v.trim()))
}

impl SessionHandle {
    fn cookie(&self, reference: &str, task: Option<&Ref<Task>>) -> Result<HeaderValue, Error> {
        let mut cookie = format!("session_id={reference}");
        if let Some(task) = task {
            cookie.push_str("; task_id=");
            cookie.push_str(task.as_str());
        }
        HeaderValue::from_str(&cookie).map_err(|_| Error::Protocol {
            url: self.client().url(),
            reason: "session or task reference is not a valid cookie value".into(),
        })
    }

    /// `GET path?query` on the session's host, with `session_id` (and `task_id`, to run the
    /// handler inside a task made with `task.create`) in the `Cookie` header. Follows redirects
    /// to other pool members (up to 5), re-adding the cookie and applying that host's TLS pin.
    ///
    /// Returns once the response head has arrived; stream the body from the [`Download`].
    ///
    /// A `401` (the session expired) makes a session with stored credentials log in again and
    /// retry once.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
    ) -> Result<Download, Error> {
        self.get_on(None, path, query, task).await
    }

    /// [`get`](Self::get) over plain HTTP to the session's host on `port` (xapi serves plain
    /// HTTP on port 80 next to HTTPS on 443), for bulk transfers on a trusted network where TLS
    /// costs more than it protects.
    ///
    /// Only the data-plane request goes in the clear, with the session reference in its
    /// cookie: anyone on the path can read the data and reuse the session until it ends. XAPI
    /// calls keep using the session's verified TLS connection. Verify what arrives (XVA
    /// checksums) as usual. Redirects are followed as with [`get`](Self::get).
    pub async fn get_plain_http(
        &self,
        port: u16,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
    ) -> Result<Download, Error> {
        self.get_on(Some(port), path, query, task).await
    }

    /// `get`, on the session's endpoint or (with `plain_port`) the same host over plain HTTP.
    async fn get_on(
        &self,
        plain_port: Option<u16>,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
    ) -> Result<Download, Error> {
        let span = tracing::info_span!("transfer", method = "GET", path = %path);
        async move {
            let (_, reference) = self.snapshot()?;
            match self.get_once(plain_port, path, query, task).await {
                Err(Error::Http { status: 401, .. }) if self.can_relogin() => {
                    tracing::info!("data plane answered 401; logging in again");
                    self.relogin(&reference).await?;
                    self.get_once(plain_port, path, query, task).await
                }
                other => other,
            }
        }
        .instrument(span)
        .await
    }

    async fn get_once(
        &self,
        plain_port: Option<u16>,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
    ) -> Result<Download, Error> {
        let (client, reference) = self.snapshot()?;
        let cookie = self.cookie(reference.as_str(), task)?;
        {
            let mut endpoint = match plain_port {
                Some(port) => client.endpoint().plain_http(port)?,
                None => client.endpoint().clone(),
            };
            let mut target = endpoint.path(&path_and_query(path, query));
            for _ in 0..=MAX_REDIRECTS {
                let policy = client.policy_for(&endpoint)?;
                let url = endpoint.url_for(&target);
                let headers = [
                    (http::header::HOST, host_header_value(&endpoint, &url)?),
                    (
                        http::header::USER_AGENT,
                        HeaderValue::from_static(USER_AGENT),
                    ),
                    (http::header::COOKIE, cookie.clone()),
                ];
                let response = client
                    .shared()
                    .transport
                    .raw_get(&endpoint, &policy, &url, &target, &headers)
                    .await?;
                let status = response.status();
                if status.is_redirection() {
                    let (next, next_target) = redirect_target(&endpoint, &url, &response)?;
                    tracing::info!(from = %url, to = %next.url_for(&next_target), "following redirect");
                    endpoint = next;
                    target = next_target;
                    continue;
                }
                if !status.is_success() {
                    return Err(Error::Http {
                        status: status.as_u16(),
                        url,
                    });
                }
                let task_id = task_id_of(&response);
                let content_length = response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                return Ok(Download {
                    status: status.as_u16(),
                    task_id,
                    content_length,
                    url,
                    body: response.into_body(),
                });
            }
            Err(Error::Protocol {
                url: client.endpoint().url_for(path),
                reason: format!("more than {MAX_REDIRECTS} redirects"),
            })
        }
    }

    /// `PUT path?query` of exactly `content_length` bytes from `body`, with the session (and
    /// task) in the `Cookie` header and a `Content-Length` header (xapi refuses chunked
    /// uploads). The body is pulled only as fast as the connection takes it.
    ///
    /// Returns once every byte was sent and the response was read, or once the server, having
    /// answered `2xx`, stopped reading and closed the connection ([`Upload::stopped_early`]:
    /// xapi's way of ending an import that failed; the task says why). A body shorter or longer
    /// than announced fails with [`Error::BodyLength`]. A redirect cannot be followed, since a
    /// one-shot body cannot be sent twice: it fails with [`Error::Protocol`] naming the new
    /// location; use [`put_reopenable`](Self::put_reopenable) or
    /// [`put_seekable`](Self::put_seekable) where the server may redirect (`/import` to a host
    /// that sees the SR).
    pub async fn put<S, E>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
        body: S,
        content_length: u64,
    ) -> Result<Upload, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let (client, reference) = self.snapshot()?;
        let cookie = self.cookie(reference.as_str(), task)?;
        let span =
            tracing::info_span!("transfer", method = "PUT", path = %path, bytes = content_length);
        let body = body.map(|r| r.map_err(Into::into)).boxed();
        let endpoint = client.endpoint().clone();
        let target = endpoint.path(&path_and_query(path, query));
        let attempt = put_attempt(&client, &endpoint, &target, cookie, body, content_length)
            .instrument(span)
            .await?;
        match attempt {
            PutAttempt::Done(upload) => Ok(upload),
            PutAttempt::Redirect { from, location } => Err(Error::Protocol {
                url: from,
                reason: format!(
                    "upload redirected to {}; a one-shot body cannot be sent again: \
                     use SessionHandle::put_reopenable or SessionHandle::put_seekable to follow redirects",
                    crate::client::endpoint::redact_url(&location)
                ),
            }),
        }
    }

    /// [`put`](Self::put) from an [`AsyncRead`], read in 1 MiB chunks. Like `put`, it does not
    /// follow redirects; see [`put_seekable`](Self::put_seekable).
    pub async fn put_reader<R: AsyncRead + Send + Unpin + 'static>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
        reader: R,
        content_length: u64,
    ) -> Result<Upload, Error> {
        self.put(
            path,
            query,
            task,
            ReaderStream::with_capacity(reader, 1 << 20),
            content_length,
        )
        .await
    }

    /// [`put`](Self::put) with a body that can be opened again, so that redirects are
    /// followed (up to 5, as [`get`](Self::get)): `open` is called once per attempt and must
    /// yield the same `content_length` bytes from the start every time.
    ///
    /// xapi answers a redirect before reading the body: the response head is read while the
    /// body is sent, and on an early `3xx` the client stops sending, closes that connection,
    /// opens the body again and sends it to the `Location` with the cookie re-added and the
    /// target host's TLS pin applied. A `401` (the session expired) makes a session with
    /// stored credentials log in again and send once more.
    ///
    /// ```no_run
    /// # async fn doc(session: xapi_core::client::SessionHandle) -> Result<(), xapi_core::Error> {
    /// let path = std::path::PathBuf::from("vm.xva");
    /// let length = std::fs::metadata(&path).map_err(|e| xapi_core::Error::Body {
    ///     url: "file".into(),
    ///     source: e.into(),
    /// })?.len();
    /// let upload = session
    ///     .put_reopenable("/import", &[("sr_id", "OpaqueRef:sr")], None, length, || {
    ///         let path = path.clone();
    ///         async move {
    ///             let file = tokio::fs::File::open(path).await?;
    ///             Ok::<_, std::io::Error>(xapi_core::client::read_chunks(file))
    ///         }
    ///     })
    ///     .await?;
    /// # let _ = upload; Ok(()) }
    /// ```
    pub async fn put_reopenable<F, Fut, S, E, E2>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
        content_length: u64,
        mut open: F,
    ) -> Result<Upload, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<S, E>>,
        E: Into<BoxError>,
        S: Stream<Item = Result<Bytes, E2>> + Send + 'static,
        E2: Into<BoxError> + 'static,
    {
        let span =
            tracing::info_span!("transfer", method = "PUT", path = %path, bytes = content_length);
        async move {
            let (_, reference) = self.snapshot()?;
            let mut relogged = false;
            loop {
                match self
                    .put_following(path, query, task, content_length, &mut open)
                    .await
                {
                    Err(Error::Http { status: 401, .. }) if !relogged && self.can_relogin() => {
                        tracing::info!("data plane answered 401; logging in again");
                        relogged = true;
                        self.relogin(&reference).await?;
                    }
                    other => return other,
                }
            }
        }
        .instrument(span)
        .await
    }

    /// [`put_reopenable`](Self::put_reopenable) from a seekable reader (a file): each attempt
    /// rewinds it to the position it had when passed in and sends `content_length` bytes from
    /// there, in 1 MiB chunks.
    pub async fn put_seekable<R>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
        mut reader: R,
        content_length: u64,
    ) -> Result<Upload, Error>
    where
        R: AsyncRead + AsyncSeek + Send + Unpin + 'static,
    {
        let url = self.client().endpoint().url_for(path);
        let start = reader.stream_position().await.map_err(|e| Error::Body {
            url,
            source: Box::new(e),
        })?;
        let shared = Arc::new(tokio::sync::Mutex::new(reader));
        self.put_reopenable(path, query, task, content_length, move || {
            let shared = shared.clone();
            async move {
                // The previous attempt's body releases the reader when its connection closes.
                let mut guard = shared.lock_owned().await;
                guard.seek(std::io::SeekFrom::Start(start)).await?;
                Ok::<_, std::io::Error>(ReaderStream::with_capacity(
                    GuardedReader(guard).take(content_length),
                    1 << 20,
                ))
            }
        })
        .await
    }

    /// Send the body to the session's host, following redirects.
    async fn put_following<F, Fut, S, E, E2>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        task: Option<&Ref<Task>>,
        content_length: u64,
        open: &mut F,
    ) -> Result<Upload, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<S, E>>,
        E: Into<BoxError>,
        S: Stream<Item = Result<Bytes, E2>> + Send + 'static,
        E2: Into<BoxError> + 'static,
    {
        let (client, reference) = self.snapshot()?;
        let cookie = self.cookie(reference.as_str(), task)?;
        let mut endpoint = client.endpoint().clone();
        let mut target = endpoint.path(&path_and_query(path, query));
        for _ in 0..=MAX_REDIRECTS {
            let url = endpoint.url_for(&target);
            let body = open().await.map_err(|e| Error::Body {
                url: url.clone(),
                source: e.into(),
            })?;
            let body = body.map(|r| r.map_err(Into::into)).boxed();
            match put_attempt(
                &client,
                &endpoint,
                &target,
                cookie.clone(),
                body,
                content_length,
            )
            .await?
            {
                PutAttempt::Done(upload) => return Ok(upload),
                PutAttempt::Redirect { from, location } => {
                    let (next, next_target) = endpoint.resolve_location(&location)?;
                    tracing::info!(
                        from = %from,
                        to = %next.url_for(&next_target),
                        "following upload redirect"
                    );
                    endpoint = next;
                    target = next_target;
                }
            }
        }
        Err(Error::Protocol {
            url: client.endpoint().url_for(path),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// An [`AsyncRead`] through the lock of a shared reader.
struct GuardedReader<R>(tokio::sync::OwnedMutexGuard<R>);

impl<R: AsyncRead + Unpin> AsyncRead for GuardedReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

/// Read an [`AsyncRead`] as a stream of chunks of at most 1 MiB: the body for
/// [`SessionHandle::put_reopenable`] (or [`SessionHandle::put`]) from a file or any reader.
pub fn read_chunks<R: AsyncRead + Send + Unpin + 'static>(
    reader: R,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    ReaderStream::with_capacity(reader, 1 << 20)
}

fn redirect_target<B>(
    endpoint: &Endpoint,
    url: &str,
    response: &Response<B>,
) -> Result<(Endpoint, String), Error> {
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Protocol {
            url: url.to_owned(),
            reason: format!(
                "http status {} without a Location header",
                response.status().as_u16()
            ),
        })?;
    endpoint.resolve_location(location)
}

/// How one upload attempt ended.
enum PutAttempt {
    /// The server took the body and answered 2xx.
    Done(Upload),
    /// The server answered 3xx (possibly before reading the body, which was not sent further).
    Redirect {
        /// The URL that redirected, without credentials.
        from: String,
        /// The `Location` header as sent.
        location: String,
    },
}

/// One PUT on a fresh connection to `endpoint`.
async fn put_attempt(
    client: &Client,
    endpoint: &Endpoint,
    target: &str,
    cookie: HeaderValue,
    body: futures::stream::BoxStream<'static, Result<Bytes, BoxError>>,
    content_length: u64,
) -> Result<PutAttempt, Error> {
    let url = endpoint.url_for(target);
    let policy = client.policy_for(endpoint)?;
    let inactivity = client.shared().transport.timeouts.transfer_inactivity;
    let (upload, sent, mut done) = UploadBody::new(body, content_length);
    let request = Request::put(target)
        .header(http::header::HOST, endpoint.host_header())
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(http::header::COOKIE, cookie)
        .header(http::header::CONTENT_LENGTH, content_length)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(upload.boxed_unsync())
        .map_err(|e| Error::InvalidUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let transport = &client.shared().transport;
    let stall = |url: &str| Error::Timeout {
        url: url.to_owned(),
        kind: TimeoutKind::Inactivity,
        after: inactivity,
    };
    // The response head is read while the body goes out: xapi answers a redirect (or a
    // refusal) before it reads the body.
    let response = tokio::select! {
        response = transport.stream_owned(endpoint, &policy, &url, request) => response,
        () = stalled(&sent, inactivity) => return Err(stall(&url)),
    };
    let (response, connection) = match response {
        Ok(response) => response,
        // The connection failed while sending: report the body's own failure if it had one.
        Err(error) => {
            return Err(match done.try_recv() {
                Ok(end) => upload_end_error(end, &url, content_length).unwrap_or(error),
                Err(_) => error,
            });
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol {
                url: url.clone(),
                reason: format!("http status {} without a Location header", status.as_u16()),
            })?;
        let sent_bytes = sent.load(std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(
            sent = sent_bytes,
            of = content_length,
            "upload answered with a redirect; closing the connection"
        );
        // Stop sending: close the connection, which drops the rest of the body.
        drop(connection);
        return Ok(PutAttempt::Redirect {
            from: url,
            location,
        });
    }
    if !status.is_success() {
        return Err(Error::Http {
            status: status.as_u16(),
            url,
        });
    }
    // xapi answers 200 before it reads the body: wait until every byte has gone out.
    let end = tokio::select! {
        end = &mut done => end.ok(),
        () = stalled(&sent, inactivity) => return Err(stall(&url)),
    };
    let sent_bytes = sent.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(end) = end
        && let Some(error) = upload_end_error(end, &url, content_length)
    {
        return Err(error);
    }
    // Without an end from the body, the connection went away after the 2xx: the server took
    // the upload over and stopped reading (xapi, when the import fails); its task tells why.
    let stopped_early = sent_bytes < content_length;
    if stopped_early {
        tracing::debug!(
            sent = sent_bytes,
            of = content_length,
            "the server stopped reading the upload after answering"
        );
    }
    let task_id = task_id_of(&response);
    let body = tokio::time::timeout(
        inactivity,
        http_body_util::Limited::new(response.into_body(), 1 << 20).collect(),
    )
    .await
    .map_err(|_| stall(&url))?
    .map(http_body_util::Collected::to_bytes)
    .unwrap_or_default();
    drop(connection);
    Ok(PutAttempt::Done(Upload {
        status: status.as_u16(),
        task_id,
        bytes_sent: sent_bytes,
        stopped_early,
        body,
    }))
}

fn upload_end_error(end: UploadEnd, url: &str, expected: u64) -> Option<Error> {
    match end {
        UploadEnd::Complete => None,
        UploadEnd::LengthMismatch { actual } => Some(Error::BodyLength {
            url: url.to_owned(),
            expected,
            actual,
        }),
        UploadEnd::Failed(source) => Some(Error::Body {
            url: url.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            path_and_query(
                "/export_raw_vdi",
                &[("vdi", "OpaqueRef:a b"), ("format", "vhd")]
            ),
            "/export_raw_vdi?vdi=OpaqueRef%3Aa%20b&format=vhd"
        );
        assert_eq!(path_and_query("/host_backup", &[]), "/host_backup");
    }
}
