//! A small XAPI stand-in for the client's integration tests: a real hyper 1 server on a real
//! socket (TCP, TLS or Unix), whose answers a test writes as a closure.
//!
//! Requests are parsed and answers are written here by hand (plain JSON via serde_json, XML by
//! string building), independently of `xapi_core::wire`, so that these tests check the client
//! against the wire format itself rather than against its own codec.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::needless_pass_by_value,
    clippy::format_collect,
    clippy::unused_async,
    clippy::map_unwrap_or,
    clippy::redundant_closure_for_method_calls
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, UnixListener};

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The RPC call in the body, parsed by hand for either encoding.
    pub fn rpc(&self) -> RpcCall {
        if self.path == "/jsonrpc" {
            let json: serde_json::Value =
                serde_json::from_slice(&self.body).expect("client sent valid json");
            let method = json["method"]
                .as_str()
                .expect("method is a string")
                .to_owned();
            let params = json["params"]
                .as_array()
                .expect("params is an array")
                .iter()
                .map(|p| match p {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            RpcCall {
                method,
                params,
                json: true,
                id: json["id"].clone(),
                v2: json.get("jsonrpc").is_some(),
            }
        } else {
            let text = std::str::from_utf8(&self.body).expect("xml is utf-8");
            let method = between(text, "<methodName>", "</methodName>")
                .expect("methodName present")
                .to_owned();
            let params = text
                .split("<param>")
                .skip(1)
                .map(|p| strip_tags(p.split("</param>").next().unwrap_or("")))
                .collect();
            RpcCall {
                method,
                params,
                json: false,
                id: serde_json::Value::Null,
                v2: false,
            }
        }
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The text content of an XML fragment, elements removed (nested arrays concatenate).
fn strip_tags(fragment: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// A parsed RPC call. Params are strings (JSON non-strings are given as JSON text; XML params
/// as their text content).
#[derive(Debug, Clone)]
pub struct RpcCall {
    pub method: String,
    pub params: Vec<String>,
    pub json: bool,
    pub id: serde_json::Value,
    pub v2: bool,
}

/// A value the mock answers with, written in either encoding exactly as xapi does.
#[derive(Debug, Clone)]
pub enum V {
    S(String),
    D(f64),
    A(Vec<V>),
    St(Vec<(String, V)>),
}

pub fn s(text: &str) -> V {
    V::S(text.to_owned())
}

impl V {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            V::S(t) => serde_json::Value::String(t.clone()),
            V::D(d) => serde_json::json!(d),
            V::A(items) => serde_json::Value::Array(items.iter().map(V::to_json).collect()),
            V::St(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn to_xml(&self) -> String {
        match self {
            V::S(t) => format!(
                "<value>{}</value>",
                t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            ),
            V::D(d) => format!("<value><double>{d}</double></value>"),
            V::A(items) => format!(
                "<value><array><data>{}</data></array></value>",
                items.iter().map(V::to_xml).collect::<String>()
            ),
            V::St(fields) => format!(
                "<value><struct>{}</struct></value>",
                fields
                    .iter()
                    .map(|(k, v)| format!("<member><name>{k}</name>{}</member>", v.to_xml()))
                    .collect::<String>()
            ),
        }
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A successful RPC answer in the call's encoding.
    pub fn ok(call: &RpcCall, value: V) -> Self {
        if call.json {
            let body = if call.v2 {
                serde_json::json!({"jsonrpc": "2.0", "result": value.to_json(), "id": call.id})
            } else {
                serde_json::json!({"result": value.to_json(), "error": null, "id": call.id})
            };
            Self::new(200, body.to_string()).header("content-type", "application/json")
        } else {
            let body = format!(
                "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
                 <member><name>Status</name><value>Success</value></member>\
                 <member><name>Value</name>{}</member>\
                 </struct></value></param></params></methodResponse>",
                value.to_xml()
            );
            Self::new(200, body).header("content-type", "text/xml")
        }
    }

    /// A XAPI failure in the call's encoding.
    pub fn failure(call: &RpcCall, code: &str, params: &[&str]) -> Self {
        if call.json {
            let body = if call.v2 {
                serde_json::json!({"jsonrpc": "2.0", "error": {"code": 1, "message": code, "data": params}, "id": call.id})
            } else {
                let mut all = vec![code];
                all.extend_from_slice(params);
                serde_json::json!({"result": null, "error": all, "id": call.id})
            };
            Self::new(200, body.to_string()).header("content-type", "application/json")
        } else {
            let mut all = vec![s(code)];
            all.extend(params.iter().map(|p| s(p)));
            let body = format!(
                "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
                 <member><name>Status</name><value>Failure</value></member>\
                 <member><name>ErrorDescription</name>{}</member>\
                 </struct></value></param></params></methodResponse>",
                V::A(all).to_xml()
            );
            Self::new(200, body).header("content-type", "text/xml")
        }
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// A running mock server.
pub struct Mock {
    pub url: String,
    pub addr: Option<SocketAddr>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub accepted: Arc<AtomicUsize>,
}

impl Mock {
    /// Every request received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("mock log lock").clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The RPC method names received so far, in order.
    pub fn methods(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method == Method::POST)
            .map(|r| r.rpc().method)
            .collect()
    }
}

async fn answer(
    request: Request<Incoming>,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    read_body: bool,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = if read_body {
        body.collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default()
    } else {
        // Answer from the head alone, as xapi's /import does; the body is never read.
        drop(body);
        Bytes::new()
    };
    let request = Seen {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    seen.lock().expect("mock log lock").push(request.clone());
    let answer = handler(&request);
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).expect("valid status");
    for (name, value) in answer.headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            value.parse().expect("valid header value"),
        );
    }
    Ok(response)
}

fn serve<S>(stream: S, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    serve_with(stream, handler, seen, true);
}

fn serve_with<S>(stream: S, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>, read_body: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    tokio::spawn(async move {
        let service = service_fn(move |req| answer(req, handler.clone(), seen.clone(), read_body));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

/// Plain HTTP on `ip:port` (port 0 = any).
pub async fn start_on(ip: &str, port: u16, handler: Handler) -> std::io::Result<Mock> {
    let listener = TcpListener::bind((ip, port)).await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            serve(stream, handler.clone(), log.clone());
        }
    });
    Ok(Mock {
        url: format!("http://{addr}"),
        addr: Some(addr),
        seen,
        accepted,
    })
}

/// Plain HTTP on 127.0.0.1, answering every request from its head alone without reading the
/// body (the handler sees an empty body), as xapi answers uploads it redirects.
pub async fn start_answer_first(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Mock {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            serve_with(stream, handler.clone(), log.clone(), false);
        }
    });
    Mock {
        url: format!("http://{addr}"),
        addr: Some(addr),
        seen,
        accepted,
    }
}

/// Plain HTTP on 127.0.0.1.
pub async fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Mock {
    start_on("127.0.0.1", 0, Arc::new(handler))
        .await
        .expect("bind a loopback port")
}

/// A self-signed certificate for 127.0.0.1 and its key.
pub struct TestCert {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_der: Vec<u8>,
}

pub fn self_signed() -> TestCert {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("generate a certificate");
    TestCert {
        der: certified.cert.der().clone(),
        pem: certified.cert.pem(),
        key_der: certified.signing_key.serialize_der(),
    }
}

/// The server configuration presenting `cert`.
pub fn server_config(cert: &TestCert) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
        )
        .expect("server certificate")
}

/// HTTPS with `cert` on `ip:port`.
pub async fn start_tls_on(
    ip: &str,
    port: u16,
    cert: &TestCert,
    handler: Handler,
) -> std::io::Result<Mock> {
    start_tls_with(ip, port, server_config(cert), handler).await
}

/// HTTPS with any server configuration on `ip:port`.
pub async fn start_tls_with(
    ip: &str,
    port: u16,
    config: rustls::ServerConfig,
    handler: Handler,
) -> std::io::Result<Mock> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((ip, port)).await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(tls, handler, log);
                }
            });
        }
    });
    Ok(Mock {
        url: format!("https://{addr}"),
        addr: Some(addr),
        seen,
        accepted,
    })
}

pub async fn start_tls(
    cert: &TestCert,
    handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> Mock {
    start_tls_on("127.0.0.1", 0, cert, Arc::new(handler))
        .await
        .expect("bind a loopback port")
}

/// Plain HTTP on a fresh Unix socket.
pub async fn start_unix(
    handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> (Mock, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "xapi-core-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("create socket dir");
    let path = dir.join("xapi");
    let listener = UnixListener::bind(&path).expect("bind unix socket");
    let handler: Handler = Arc::new(handler);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            serve(stream, handler.clone(), log.clone());
        }
    });
    (
        Mock {
            url: format!("unix://{}", path.display()),
            addr: None,
            seen,
            accepted,
        },
        path,
    )
}

/// Bytes of a deterministic pattern, for transfer tests.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}
