//! [`Client`]: one XAPI host (or pool master) reached over one transport, speaking one of the
//! two RPC encodings; it makes sessions and session-less calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::endpoint::Endpoint;
use super::fingerprint::Sha256Fingerprint;
use super::password::Password;
use super::protocol::{self, Answer, Encoding, Protocol};
use super::session::{LoginParams, SessionHandle};
use super::tls::{TlsPolicy, parse_thumbprint_header};
use super::transport::{Timeouts, Transport};
use crate::Error;
use crate::api::{self, ErrorCode};
use crate::wire::{Failure, Limits, Ref, Value};

/// Request header asking a pool member for the master's certificate thumbprint.
pub(crate) const REQUEST_THUMBPRINT: &str = "x-xenapi-request-host-certificate-thumbprint";
/// Response header carrying the master's certificate thumbprint with `HOST_IS_SLAVE`.
pub(crate) const RESPONSE_THUMBPRINT: &str = "x-xenapi-response-host-certificate-thumbprint";

const ENCODING_UNDECIDED: u8 = 0;
const ENCODING_JSON: u8 = 1;
const ENCODING_XML: u8 = 2;

/// How many `HOST_IS_SLAVE` answers a login follows before giving up.
const MAX_MASTER_HOPS: usize = 3;

/// Builds a [`Client`]: URL, TLS policy, protocol, timeouts, limits.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    tls: TlsPolicy,
    protocol: Protocol,
    timeouts: Timeouts,
    limits: Limits,
    host_pins: HashMap<String, Sha256Fingerprint>,
    max_relogin: u32,
    task_poll_interval: Duration,
}

impl ClientBuilder {
    /// The TLS policy for the host of the URL (default [`TlsPolicy::Verified`]).
    pub fn tls(mut self, policy: TlsPolicy) -> Self {
        self.tls = policy;
        self
    }

    /// Pin the certificate of another pool member, named `host` or `host:port` as it appears in
    /// redirects (`HOST_IS_SLAVE`, HTTP 302). Needed with [`TlsPolicy::Pinned`], where a host
    /// without a pin is refused.
    pub fn pin_host(mut self, host: &str, fingerprint: Sha256Fingerprint) -> Self {
        self.host_pins.insert(pin_key(host), fingerprint);
        self
    }

    /// The RPC encoding (default [`Protocol::Auto`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// All deadlines at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The deadline for opening a connection (TLS handshake included).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// The deadline of one RPC call.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.call = timeout;
        self
    }

    /// Decoder limits; `max_response_bytes` also caps how much of an RPC answer is read.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How many times a session logs in again after `SESSION_INVALID` before giving up
    /// (default 3, as `XenAPI.py`).
    pub fn max_relogin(mut self, attempts: u32) -> Self {
        self.max_relogin = attempts;
        self
    }

    /// How often [`TaskHandle`](super::TaskHandle) polls a task (default 500 ms).
    pub fn task_poll_interval(mut self, interval: Duration) -> Self {
        self.task_poll_interval = interval;
        self
    }

    /// Check the URL and the TLS policy and make the client. No connection is opened yet.
    pub fn build(self) -> Result<Client, Error> {
        let endpoint = Endpoint::parse(&self.url)?;
        if endpoint.is_tls() {
            // Fail now, not at the first call, on an unreadable CA bundle.
            self.tls.client_config()?;
        }
        let shared = Arc::new(Shared {
            transport: Transport::new(self.timeouts),
            host_pins: Mutex::new(self.host_pins),
            limits: self.limits,
            max_relogin: self.max_relogin,
            task_poll_interval: self.task_poll_interval,
            next_id: AtomicU64::new(1),
        });
        let encoding = match self.protocol {
            Protocol::XmlRpc => ENCODING_XML,
            Protocol::JsonRpc => ENCODING_JSON,
            Protocol::Auto => ENCODING_UNDECIDED,
        };
        Ok(Client {
            inner: Arc::new(ClientInner {
                endpoint,
                tls: self.tls,
                protocol: self.protocol,
                encoding: AtomicU8::new(encoding),
                shared,
            }),
        })
    }
}

/// State shared by a client and the clients it derives for other pool members.
pub(crate) struct Shared {
    pub(crate) transport: Transport,
    host_pins: Mutex<HashMap<String, Sha256Fingerprint>>,
    pub(crate) limits: Limits,
    pub(crate) max_relogin: u32,
    pub(crate) task_poll_interval: Duration,
    next_id: AtomicU64,
}

struct ClientInner {
    endpoint: Endpoint,
    tls: TlsPolicy,
    protocol: Protocol,
    encoding: AtomicU8,
    shared: Arc<Shared>,
}

/// A connection point to one XAPI host. Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), xapi_core::Error> {
/// use xapi_core::client::{Client, Password, TlsPolicy};
/// let pin = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// let client = Client::builder("https://10.0.0.1")
///     .tls(TlsPolicy::Pinned(pin.parse().expect("valid pin")))
///     .build()?;
/// let session = client
///     .login_with_password("root", Password::new("password"), "1.0", "my-tool")
///     .await?;
/// let pools: Vec<String> = session.call("pool.get_all", ()).await?;
/// session.logout().await?;
/// # let _ = pools; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// A decoded RPC answer and the response headers it came with.
pub(crate) struct RpcReply<T> {
    pub(crate) result: Result<T, Failure>,
    pub(crate) headers: HeaderMap,
}

impl Client {
    /// Start building a client for `url` (`https://host[:port]`, `http://...` or
    /// `unix:///var/lib/xcp/xapi`).
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            tls: TlsPolicy::Verified,
            protocol: Protocol::Auto,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            host_pins: HashMap::new(),
            max_relogin: 3,
            task_poll_interval: Duration::from_millis(500),
        }
    }

    /// The server URL (no credentials are ever part of it).
    pub fn url(&self) -> String {
        self.inner.endpoint.to_string()
    }

    /// The encoding in use: [`Protocol::XmlRpc`] after an automatic fallback, [`Protocol::Auto`]
    /// while undecided.
    pub fn protocol(&self) -> Protocol {
        match self.inner.encoding.load(Ordering::Relaxed) {
            ENCODING_JSON => Protocol::JsonRpc,
            ENCODING_XML => Protocol::XmlRpc,
            _ => Protocol::Auto,
        }
    }

    /// The TLS policy used for this client's host.
    pub fn tls_policy(&self) -> &TlsPolicy {
        &self.inner.tls
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The TLS policy for `endpoint`: this client's own for its host, a per-host pin for
    /// other hosts, or the same policy when it does not depend on the host.
    pub(crate) fn policy_for(&self, endpoint: &Endpoint) -> Result<TlsPolicy, Error> {
        if !endpoint.is_tls() || endpoint.authority() == self.inner.endpoint.authority() {
            return Ok(self.inner.tls.clone());
        }
        if let Some(pin) = self.pinned_host(endpoint) {
            return Ok(TlsPolicy::Pinned(pin));
        }
        match &self.inner.tls {
            TlsPolicy::Pinned(_) => Err(Error::Tls {
                url: endpoint.to_string(),
                reason: format!(
                    "no certificate pin for host {}; add one with ClientBuilder::pin_host",
                    endpoint.authority()
                ),
            }),
            other => Ok(other.clone()),
        }
    }

    fn pinned_host(&self, endpoint: &Endpoint) -> Option<Sha256Fingerprint> {
        let pins = self.inner.shared.host_pins.lock().ok()?;
        let authority = endpoint.authority();
        pins.get(&pin_key(&authority)).copied().or_else(|| {
            let host = match authority.rsplit_once(':') {
                Some((host, _)) => host,
                None => &authority,
            };
            pins.get(&pin_key(host))
                .or_else(|| pins.get(&pin_key(host.trim_matches(['[', ']']))))
                .copied()
        })
    }

    /// A client for another pool member, sharing connections and pins.
    pub(crate) fn for_endpoint(&self, endpoint: Endpoint, tls: TlsPolicy) -> Client {
        Client {
            inner: Arc::new(ClientInner {
                endpoint,
                tls,
                protocol: self.inner.protocol,
                encoding: AtomicU8::new(self.inner.encoding.load(Ordering::Relaxed)),
                shared: self.inner.shared.clone(),
            }),
        }
    }

    /// Call a method that takes no session (`session.login_with_password`,
    /// `session.slave_local_login_with_password`, ...) with positional `params` (a tuple or a
    /// sequence).
    pub async fn call_raw<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        let params = protocol::params_to_values(method, &params)?;
        let span = tracing::info_span!("call", method = %method);
        async {
            self.rpc::<T>(method, &params, &HeaderMap::new(), None)
                .await?
                .result
                .map_err(crate::error::api_failure)
        }
        .instrument(span)
        .await
    }

    /// Log in with a user name and password. `version` is the API version the client speaks
    /// (`"1.0"` is fine), `originator` names the tool in the server's logs.
    ///
    /// A pool member answers `HOST_IS_SLAVE`: the login moves to the master it names (up to 3
    /// hops). With [`TlsPolicy::Pinned`] the member is asked for the master's certificate
    /// thumbprint, and the master is pinned to it.
    pub async fn login_with_password(
        &self,
        uname: &str,
        password: Password,
        version: &str,
        originator: &str,
    ) -> Result<SessionHandle, Error> {
        let params = LoginParams {
            uname: uname.to_owned(),
            password,
            version: version.to_owned(),
            originator: originator.to_owned(),
        };
        let span = tracing::info_span!("call", method = "session.login_with_password");
        let (client, reference) = self.login(&params).instrument(span).await?;
        Ok(SessionHandle::logged_in(client, reference, params))
    }

    /// Use a session reference obtained elsewhere (a Python `XenAPI` handle, a shared login).
    /// The session is not logged out on drop and cannot log in again on `SESSION_INVALID`.
    pub fn attach_session(&self, reference: Ref<api::Session>) -> SessionHandle {
        SessionHandle::attached(self.clone(), reference)
    }

    /// The login exchange, following `HOST_IS_SLAVE`; returns the client of the host that
    /// accepted the login.
    pub(crate) async fn login(
        &self,
        params: &LoginParams,
    ) -> Result<(Client, Ref<api::Session>), Error> {
        let values = [
            Value::String(params.uname.clone()),
            Value::String(params.password.expose().to_owned()),
            Value::String(params.version.clone()),
            Value::String(params.originator.clone()),
        ];
        let mut client = self.clone();
        for _ in 0..=MAX_MASTER_HOPS {
            let mut headers = HeaderMap::new();
            if client.inner.endpoint.is_tls() && matches!(client.inner.tls, TlsPolicy::Pinned(_)) {
                headers.insert(
                    REQUEST_THUMBPRINT,
                    HeaderValue::from_static("sha-256:master"),
                );
            }
            let reply = client
                .rpc::<Ref<api::Session>>("session.login_with_password", &values, &headers, None)
                .await?;
            match reply.result {
                Ok(reference) => return Ok((client, reference)),
                Err(failure) if matches!(failure.code, ErrorCode::HostIsSlave) => {
                    client = client.master_from(failure, &reply.headers)?;
                }
                Err(failure) => return Err(crate::error::api_failure(failure)),
            }
        }
        Err(Error::Protocol {
            url: self.url(),
            reason: format!(
                "login followed {MAX_MASTER_HOPS} HOST_IS_SLAVE answers without reaching the master"
            ),
        })
    }

    /// The client for the master a `HOST_IS_SLAVE` failure names.
    fn master_from(&self, failure: Failure, headers: &HeaderMap) -> Result<Client, Error> {
        let Some(address) = failure.params.first().filter(|a| !a.trim().is_empty()) else {
            return Err(Error::Api(failure));
        };
        let endpoint = self.inner.endpoint.with_host(address)?;
        let thumbprint = headers
            .get(RESPONSE_THUMBPRINT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_thumbprint_header);
        let policy = match (&self.inner.tls, thumbprint) {
            (TlsPolicy::Pinned(_), Some(pin)) if endpoint.is_tls() => {
                if let Ok(mut pins) = self.inner.shared.host_pins.lock() {
                    pins.insert(pin_key(&endpoint.authority()), pin);
                }
                TlsPolicy::Pinned(pin)
            }
            _ => self.policy_for(&endpoint)?,
        };
        tracing::info!(
            member = %self.inner.endpoint,
            master = %endpoint,
            "host is not the pool master; moving to the master"
        );
        Ok(self.for_endpoint(endpoint, policy))
    }

    /// One RPC: encode, send, decode; falls back to XML-RPC when the protocol is
    /// [`Protocol::Auto`] and the host has no JSON-RPC.
    pub(crate) async fn rpc<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
        headers: &HeaderMap,
        timeout: Option<Duration>,
    ) -> Result<RpcReply<T>, Error> {
        let encoding = match self.inner.encoding.load(Ordering::Relaxed) {
            ENCODING_XML => Encoding::Xml,
            _ => Encoding::Json,
        };
        match self
            .rpc_once::<T>(encoding, method, params, headers, timeout)
            .await?
        {
            (Answer::Decoded(result), reply_headers) => {
                if self.inner.protocol == Protocol::Auto && encoding == Encoding::Json {
                    self.inner.encoding.store(ENCODING_JSON, Ordering::Relaxed);
                }
                Ok(RpcReply {
                    result,
                    headers: reply_headers,
                })
            }
            (Answer::NoJsonRpc(reason), _) if self.inner.protocol == Protocol::Auto => {
                tracing::info!(url = %self.inner.endpoint, %reason, "no json-rpc on this host; using xml-rpc");
                self.inner.encoding.store(ENCODING_XML, Ordering::Relaxed);
                match self
                    .rpc_once::<T>(Encoding::Xml, method, params, headers, timeout)
                    .await?
                {
                    (Answer::Decoded(result), headers) => Ok(RpcReply { result, headers }),
                    (Answer::NoJsonRpc(reason), _) => Err(self.no_json(method, &reason)),
                }
            }
            (Answer::NoJsonRpc(reason), _) => Err(self.no_json(method, &reason)),
        }
    }

    fn no_json(&self, method: &str, reason: &str) -> Error {
        Error::Protocol {
            url: self.inner.endpoint.url_for(Encoding::Json.path()),
            reason: format!("{method}: no json-rpc endpoint ({reason}); try Protocol::XmlRpc"),
        }
    }

    async fn rpc_once<T: DeserializeOwned>(
        &self,
        encoding: Encoding,
        method: &str,
        params: &[Value],
        headers: &HeaderMap,
        timeout: Option<Duration>,
    ) -> Result<(Answer<T>, HeaderMap), Error> {
        let shared = &self.inner.shared;
        let endpoint = &self.inner.endpoint;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let body = encoding.encode(method, params, id);
        let path = endpoint.path(encoding.path());
        let host = endpoint.host_header();
        let build = || {
            let mut request = Request::post(path.as_str())
                .header(http::header::HOST, host.as_str())
                .header(http::header::CONTENT_TYPE, encoding.content_type())
                .header(http::header::USER_AGENT, USER_AGENT)
                .body(
                    Full::new(body.clone())
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                )
                .expect("a request from a valid path and static headers is valid");
            for (name, value) in headers {
                request.headers_mut().insert(name, value.clone());
            }
            request
        };
        let url = endpoint.url_for(&path);
        let reply = shared
            .transport
            .exchange(
                endpoint,
                &self.inner.tls,
                &path,
                build,
                shared.limits.max_response_bytes,
                timeout.unwrap_or(shared.transport.timeouts.call),
            )
            .await?;
        let answer = protocol::read_answer::<T>(encoding, method, &url, &reply, &shared.limits)?;
        Ok((answer, reply.headers))
    }
}

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("xapi-rs/", env!("CARGO_PKG_VERSION"));

/// Normalise a host or authority for the pin table.
fn pin_key(host: &str) -> String {
    host.trim().to_ascii_lowercase()
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url())
            .field("tls", &self.inner.tls)
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}
