//! The HTTP(S) server of one pool: accept loop, TLS, hyper connections.

pub(crate) mod member;
pub(crate) mod routes;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::pool::Pool;
use tls::TlsIdentity;

/// Bind `addr` and serve `pool` on it until the returned task is aborted.
pub(crate) async fn listen(
    pool: Arc<Pool>,
    addr: SocketAddr,
    tls: Option<TlsIdentity>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let pool = Arc::clone(&pool);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| routes::serve(Arc::clone(&pool), request));
                let served = match tls {
                    Some(tls) => match tls.acceptor.accept(stream).await {
                        Ok(stream) => {
                            http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Err(err) => {
                            tracing::debug!(%peer, error = %err, "tls handshake failed");
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
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }
    });
    Ok((local, task))
}
