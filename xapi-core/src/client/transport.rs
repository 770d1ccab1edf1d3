//! HTTP/1.1 over the connections of [`connection`](super::connection): a small keep-alive pool,
//! timeouts, and bounded reading of RPC responses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;

use super::answer_buffer::AnswerBuffer;
use super::connection;
use super::endpoint::Endpoint;
use super::raw_get::{self, RawBody};
use super::tls::TlsPolicy;
use crate::Error;
use crate::error::{BoxError, TimeoutKind};

/// The request body type of every request this client sends.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// Deadlines of a [`Client`](super::Client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection, TLS handshake included. Default 20 s.
    pub connect: Duration,
    /// One RPC call, from sending the request to the end of the response. Default 1 hour, as
    /// some synchronous XAPI calls (`VM.migrate_send`, `VDI.copy`) take long; `event.from`
    /// calls get their own deadline derived from their server-side timeout.
    pub call: Duration,
    /// How long an unused keep-alive connection stays in the pool. Default 60 s.
    pub idle: Duration,
    /// Data plane: the longest time without a byte moving, and the longest wait for the
    /// response head (compressed exports can take minutes before the first byte). Default 30 min.
    pub transfer_inactivity: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(20),
            call: Duration::from_secs(3600),
            idle: Duration::from_secs(60),
            transfer_inactivity: Duration::from_secs(30 * 60),
        }
    }
}

/// A complete, bounded response.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

struct IdleSender {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// Connections and TLS configurations, shared by every client derived from one builder.
pub(crate) struct Transport {
    idle: Mutex<HashMap<String, Vec<IdleSender>>>,
    tls_configs: Mutex<HashMap<String, Arc<ClientConfig>>>,
    pub(crate) timeouts: Timeouts,
}

impl Transport {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            tls_configs: Mutex::new(HashMap::new()),
            timeouts,
        }
    }

    fn tls_config(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
    ) -> Result<Option<Arc<ClientConfig>>, Error> {
        if !endpoint.is_tls() {
            return Ok(None);
        }
        let key = policy.cache_key();
        if let Some(config) = self
            .tls_configs
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(Some(config));
        }
        let config = policy.client_config()?;
        if let Ok(mut configs) = self.tls_configs.lock() {
            configs.insert(key, config.clone());
        }
        Ok(Some(config))
    }

    fn pool_key(endpoint: &Endpoint, policy: &TlsPolicy) -> String {
        if endpoint.is_tls() {
            format!("{}|{}", endpoint.authority(), policy.cache_key())
        } else {
            endpoint.authority()
        }
    }

    /// Open a new HTTP/1.1 connection; its driver runs on a spawned task.
    async fn open(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
    ) -> Result<SendRequest<RequestBody>, Error> {
        self.open_driven(endpoint, policy)
            .await
            .map(|(sender, _driver)| sender)
    }

    /// [`open`](Self::open), also returning the handle of the task driving the connection
    /// (aborting it closes the connection and drops the request body).
    async fn open_driven(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
    ) -> Result<(SendRequest<RequestBody>, tokio::task::JoinHandle<()>), Error> {
        let tls = self.tls_config(endpoint, policy)?;
        let conn = connection::connect(endpoint, tls, self.timeouts.connect).await?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| Error::Connect {
                url: endpoint.to_string(),
                source: Box::new(e),
            })?;
        let driver = tokio::spawn(async move {
            if let Err(error) = driver.await {
                tracing::debug!(%error, "http connection ended with an error");
            }
        });
        Ok((sender, driver))
    }

    fn take_idle(&self, key: &str) -> Option<SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < self.timeouts.idle && !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_idle(&self, key: String, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let list = idle.entry(key).or_default();
            list.retain(|e| e.since.elapsed() < self.timeouts.idle && !e.sender.is_closed());
            list.push(IdleSender {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Send a request built by `build` (called again if a pooled connection turns out to be
    /// dead before answering) and read the whole response, at most `limit` bytes, within
    /// `timeout`. The connection goes back to the pool afterwards.
    pub(crate) async fn exchange(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
        path_and_query: &str,
        build: impl Fn() -> Request<RequestBody>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let url = endpoint.url_for(path_and_query);
        tokio::time::timeout(
            timeout,
            self.exchange_inner(endpoint, policy, &url, build, limit),
        )
        .await
        .map_err(|_| Error::Timeout {
            url,
            kind: TimeoutKind::Call,
            after: timeout,
        })?
    }

    async fn exchange_inner(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
        url: &str,
        build: impl Fn() -> Request<RequestBody>,
        limit: usize,
    ) -> Result<Reply, Error> {
        let key = Self::pool_key(endpoint, policy);
        let transport_error = |e: hyper::Error| sent_request_error(url, e);
        let (mut sender, response) = loop {
            let (mut sender, reused) = match self.take_idle(&key) {
                Some(sender) => (sender, true),
                None => (self.open(endpoint, policy).await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                // The connection closed before the request was written.
                return Err(Error::Connect {
                    url: url.to_owned(),
                    source: Box::new(e),
                });
            }
            match sender.send_request(build()).await {
                Ok(response) => break (sender, response),
                // A kept-alive connection the server closed meanwhile: try a fresh one.
                Err(e)
                    if reused
                        && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) =>
                {
                    tracing::debug!(error = %e, "pooled connection was dead, reconnecting");
                }
                Err(e) => return Err(transport_error(e)),
            }
        };
        let (parts, body) = response.into_parts();
        let closes = parts
            .headers
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let body = read_whole(body, limit, url).await?;
        if !closes && sender.ready().await.is_ok() {
            self.put_idle(key, sender);
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A data-plane `GET target` on a fresh connection, read by hand (see [`raw_get`]): the
    /// response head, with its body still on the wire. Waits at most `transfer_inactivity`
    /// for each step.
    pub(crate) async fn raw_get(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
        url: &str,
        target: &str,
        headers: &[(http::HeaderName, http::HeaderValue)],
    ) -> Result<Response<RawBody>, Error> {
        let tls = self.tls_config(endpoint, policy)?;
        let conn = connection::connect(endpoint, tls, self.timeouts.connect).await?;
        raw_get::get(
            conn,
            target,
            headers,
            url,
            self.timeouts.transfer_inactivity,
        )
        .await
    }

    /// Send one request on a fresh connection and return the response head with its streaming
    /// body, keeping the connection tied to the returned [`OwnedConnection`]: dropping it closes the connection at once, even while the request
    /// body is still being sent (an upload answered early with a redirect stops there).
    pub(crate) async fn stream_owned(
        &self,
        endpoint: &Endpoint,
        policy: &TlsPolicy,
        url: &str,
        request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, OwnedConnection), Error> {
        let (mut sender, driver) = self.open_driven(endpoint, policy).await?;
        let connection = OwnedConnection {
            driver: Some(driver),
        };
        let transport_error = |e: hyper::Error| sent_request_error(url, e);
        sender.ready().await.map_err(|e| Error::Connect {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        let after = self.timeouts.transfer_inactivity;
        tokio::time::timeout(after, sender.send_request(request))
            .await
            .map_err(|_| Error::Timeout {
                url: url.to_owned(),
                kind: TimeoutKind::Inactivity,
                after,
            })?
            .map_err(transport_error)
            .map(|response| (response, connection))
    }
}

/// The error of a request hyper was given: one it cancelled before writing it (the connection
/// closed first) was not sent; any other may have reached the server.
fn sent_request_error(url: &str, error: hyper::Error) -> Error {
    if error.is_canceled() {
        Error::Connect {
            url: url.to_owned(),
            source: Box::new(error),
        }
    } else {
        Error::Transport {
            url: url.to_owned(),
            source: Box::new(error),
        }
    }
}

/// A data-plane connection that closes when dropped.
pub(crate) struct OwnedConnection {
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for OwnedConnection {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

/// A whole response body of at most `limit` bytes, in one buffer.
///
/// Each frame is copied into the buffer as it arrives and dropped, so that hyper reuses its
/// read buffer; the buffer is sized once from `Content-Length` when the server sent one (see
/// [`AnswerBuffer`]). (With `collect`, every frame of a 60 MB answer stayed alive until the
/// end and was then copied into a second buffer: twice the memory, and twice the page faults.)
async fn read_whole(mut body: Incoming, limit: usize, url: &str) -> Result<Bytes, Error> {
    use hyper::body::Body as _;

    let too_large = || Error::ResponseTooLarge {
        url: url.to_owned(),
        limit,
    };
    let announced = body.size_hint().exact();
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut whole = AnswerBuffer::for_length(announced.map(|length| length as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - whole.len() {
                return Err(too_large());
            }
            whole.extend(&data);
        }
    }
    Ok(whole.into_bytes())
}
