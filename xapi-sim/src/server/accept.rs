//! The accept loop every listener of the simulator runs (pool HTTP(S), pool members, NBD), and
//! the HTTP/1 connection with optional TLS that the pool and its members serve.

use std::future::Future;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::routes::Body;
use super::tls::TlsIdentity;
use crate::error::Error;

/// Bind `addr` and hand each accepted connection to `handle` on a task of its own, until the
/// returned task is aborted; the bound address (the port chosen when `addr` has port 0).
/// A failed `accept` (out of file descriptors...) is logged under `what` and the loop goes on.
pub(crate) async fn accept_loop<F, Fut>(
    addr: SocketAddr,
    what: &'static str,
    handle: F,
) -> Result<(SocketAddr, JoinHandle<()>), Error>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(handle(stream, peer));
                }
                Err(err) => tracing::warn!(listener = what, error = %err, "accept failed"),
            }
        }
    });
    Ok((local, task))
}

/// Serve HTTP/1 connections on `stream` with `service`, through a TLS handshake first when
/// `tls` is given; handshake and connection errors are logged under `what`.
pub(crate) async fn serve_http<S>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsIdentity>,
    service: S,
    what: &'static str,
) where
    S: HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = stream.set_nodelay(true);
    let served = match tls {
        Some(tls) => match tls.acceptor.accept(stream).await {
            Ok(stream) => {
                http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            Err(err) => {
                tracing::debug!(listener = what, %peer, error = %err, "tls handshake failed");
                return;
            }
        },
        None => {
            http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
    };
    if let Err(err) = served {
        tracing::debug!(listener = what, %peer, error = %err, "connection ended with an error");
    }
}
