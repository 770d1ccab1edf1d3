//! The HTTP(S) server of one pool: its listener and routes; pool members answer on their own.

pub(crate) mod accept;
pub(crate) mod admin;
pub(crate) mod endpoints;
pub(crate) mod member;
pub(crate) mod reachability;
pub(crate) mod routes;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::pool::Pool;
use accept::{accept_loop, serve_http};
use tls::TlsIdentity;

/// Bind `addr` and serve `pool` on it until the returned task is aborted (refusing connections
/// while the pool is unreachable).
pub(crate) async fn listen(
    pool: Arc<Pool>,
    addr: SocketAddr,
    tls: Option<TlsIdentity>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    accept_loop(addr, "pool", move |stream, peer| {
        let pool = Arc::clone(&pool);
        let tls = tls.clone();
        async move {
            let serving = Arc::clone(&pool);
            let service = service_fn(move |request| {
                let pool = Arc::clone(&serving);
                async move {
                    // the master moved to a member: this host now answers as a member does
                    match pool.faults.moved_master(&pool.name) {
                        Some(address) if address != addr.ip().to_string() => {
                            let master = member::MasterAddress {
                                address,
                                scheme,
                                port: addr.port(),
                            };
                            member::answer(Arc::new(master), request).await
                        }
                        _ => routes::serve(pool, request).await,
                    }
                }
            });
            pool.reachability
                .guard(stream, |stream| {
                    serve_http(stream, peer, tls, service, "pool")
                })
                .await;
        }
    })
    .await
}
