//! Opening one byte stream to a server: TCP, TCP + TLS, or a Unix socket.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::endpoint::{Endpoint, Target};
use super::tls::server_name;
use crate::Error;
use crate::error::TimeoutKind;

/// A connected byte stream.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// Open a TCP connection within `timeout`.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    timeout: Duration,
    url: &str,
) -> Result<TcpStream, Error> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| Error::Timeout {
            url: url.to_owned(),
            kind: TimeoutKind::Connect,
            after: timeout,
        })?
        .map_err(|e| Error::Connect {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
    // Small RPC requests must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Connect to `endpoint`; `tls` is required for `https://` endpoints.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<Conn, Error> {
    let url = endpoint.to_string();
    match &endpoint.target {
        Target::Unix { path } => {
            let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
                .await
                .map_err(|_| Error::Timeout {
                    url: url.clone(),
                    kind: TimeoutKind::Connect,
                    after: timeout,
                })?
                .map_err(|e| Error::Connect {
                    url,
                    source: Box::new(e),
                })?;
            Ok(Conn::Unix(stream))
        }
        Target::Tcp {
            host,
            port,
            tls: false,
        } => Ok(Conn::Tcp(connect_tcp(host, *port, timeout, &url).await?)),
        Target::Tcp {
            host,
            port,
            tls: true,
        } => {
            let config = tls.ok_or_else(|| Error::TlsConfig(format!("no tls policy for {url}")))?;
            let started = tokio::time::Instant::now();
            let tcp = connect_tcp(host, *port, timeout, &url).await?;
            let remaining = timeout.saturating_sub(started.elapsed());
            let connector = tokio_rustls::TlsConnector::from(config);
            let stream =
                tokio::time::timeout(remaining, connector.connect(server_name(host)?, tcp))
                    .await
                    .map_err(|_| Error::Timeout {
                        url: url.clone(),
                        kind: TimeoutKind::Connect,
                        after: timeout,
                    })?
                    .map_err(|e| classify_tls_error(e, &url))?;
            Ok(Conn::Tls(Box::new(stream)))
        }
    }
}

/// A handshake error: a certificate refusal or protocol error becomes [`Error::Tls`] with the
/// reason; anything else is a connection failure (the handshake comes before any request).
pub(crate) fn classify_tls_error(error: io::Error, url: &str) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match rustls_error {
        Some(rustls::Error::General(reason)) => Error::Tls {
            url: url.to_owned(),
            reason,
        },
        Some(other) => Error::Tls {
            url: url.to_owned(),
            reason: other.to_string(),
        },
        None if error.kind() == io::ErrorKind::InvalidData => Error::Tls {
            url: url.to_owned(),
            reason: error.to_string(),
        },
        None => Error::Connect {
            url: url.to_owned(),
            source: Box::new(error),
        },
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
