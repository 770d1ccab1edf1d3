//! A pool member that is not the master: every RPC gets `HOST_IS_SLAVE [master address]` (in
//! the protocol it came in), every data-plane request a `302` to the same path and query on the
//! master. The member listens on its own loopback address with the master's port, so a client
//! that swaps the host of its URL for the address in `HOST_IS_SLAVE` reaches the master.
//! With TLS, a member presents a certificate of its own, as every host of a pool does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::task::JoinHandle;
use xapi_core::wire::{Limits, jsonrpc, xmlrpc};

use super::accept::{accept_loop, serve_http};
use super::endpoints::{Endpoint, route};
use super::routes::{Body, forbidden, full, html_error, read_body};
use super::tls::TlsIdentity;
use crate::api_error::failure;
use crate::error::Error;
use crate::pool::Pool;

/// Where the master is, for the member's answers.
#[derive(Debug, Clone)]
pub(crate) struct MasterAddress {
    /// The master's `host.address` (what `HOST_IS_SLAVE` names).
    pub(crate) address: String,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// The port both listen on.
    pub(crate) port: u16,
}

/// Bind `addr` and answer as a member of `pool` until the task is aborted (refusing
/// connections while the pool is unreachable, as the rest of a lost site).
pub(crate) async fn listen(
    pool: Arc<Pool>,
    addr: SocketAddr,
    master: MasterAddress,
    tls: Option<TlsIdentity>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let master = Arc::new(master);
    accept_loop(addr, "member", move |stream, peer| {
        let master = Arc::clone(&master);
        let pool = Arc::clone(&pool);
        let tls = tls.clone();
        async move {
            let serving = Arc::clone(&pool);
            let service = service_fn(move |request| {
                let (pool, master) = (Arc::clone(&serving), Arc::clone(&master));
                async move {
                    // the master moved: to this host (serve the pool) or to another member
                    match pool.faults.moved_master(&pool.name) {
                        Some(address) if address == addr.ip().to_string() => {
                            super::routes::serve(pool, request).await
                        }
                        Some(address) => {
                            let moved = MasterAddress {
                                address,
                                ..(*master).clone()
                            };
                            answer(Arc::new(moved), request).await
                        }
                        None => answer(master, request).await,
                    }
                }
            });
            pool.reachability
                .guard(stream, |stream| {
                    serve_http(stream, peer, tls, service, "member")
                })
                .await;
        }
    })
    .await
}

/// Answer one request as a member whose master is `master`.
pub(crate) async fn answer(
    master: Arc<MasterAddress>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let is_slave = || failure(ErrorCode::HostIsSlave, [master.address.as_str()]);
    let path = request.uri().path().to_owned();
    let Some(endpoint) = route(request.method(), &path) else {
        return Ok(forbidden());
    };
    let response = if endpoint.is_rpc() {
        {
            let body = match read_body(request.into_body()).await {
                Ok(body) => body,
                Err(response) => return Ok(response),
            };
            if endpoint == Endpoint::JsonRpc {
                match jsonrpc::decode_call(&body, &Limits::default()) {
                    Ok(call) => rpc(
                        "application/json",
                        jsonrpc::encode_response(call.version, &call.id, Err(&is_slave())),
                    ),
                    Err(err) => html_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
                }
            } else {
                match xmlrpc::decode_call(&body, &Limits::default()) {
                    Ok(_) => rpc("text/xml", xmlrpc::encode_response(Err(&is_slave()))),
                    Err(err) => html_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
                }
            }
        }
    } else {
        {
            let query = request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let location = format!(
                "{}://{}:{}{path}{query}",
                master.scheme, master.address, master.port
            );
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::FOUND;
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
    };
    Ok(response)
}

fn rpc(content_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
