//! The HTTP endpoints of one pool, routed as xapi routes them (`endpoints`): XML-RPC, JSON-RPC,
//! CORS preflight, the data plane; and the simulator's admin endpoints under `/_sim/`.
//!
//! As xapi does, a request that cannot be parsed gets HTTP 500 with an HTML body rather than an
//! RPC error structure, and RPC bodies are capped at 300 KiB.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use xapi_core::wire::{Limits, jsonrpc, xmlrpc};

use super::admin;
use super::endpoints::{Endpoint, route};
use crate::pool::Pool;
use crate::rpc;
use crate::transfer::{
    db_dump, db_restore, export, host_backup, import, import_metadata, raw_import, raw_vdi,
};

/// Largest RPC request body accepted (xapi's `http_limit_max_rpc_size`).
pub(crate) const MAX_RPC_BODY: usize = 300 * 1024;

/// The response body type.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Answer one HTTP request.
pub(crate) async fn serve(
    pool: Arc<Pool>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if pool.faults.take_http_500() {
        return Ok(html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fault injected by xapi-sim",
        ));
    }
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    if let Some(response) = admin::answer(&pool, request.method(), &path, &query) {
        return Ok(response);
    }
    let Some(endpoint) = route(request.method(), &path) else {
        return Ok(forbidden());
    };
    let (parts, body) = request.into_parts();
    let response = match endpoint {
        Endpoint::XmlRpc => match read_body(body).await {
            Ok(body) => xml_rpc(&pool, &body).await,
            Err(response) => response,
        },
        Endpoint::JsonRpc => match read_body(body).await {
            Ok(body) => json_rpc(&pool, &body).await,
            Err(response) => response,
        },
        Endpoint::Preflight => preflight(),
        Endpoint::DbDump => db_dump::handle(&pool, &parts),
        Endpoint::DbRestore => db_restore::restore(&pool, &parts, body),
        Endpoint::HostBackup => host_backup::backup(&pool, &parts),
        Endpoint::HostRestore => host_backup::restore(&pool, &parts, body).await,
        Endpoint::Import => import::import(Arc::clone(&pool), &parts, body),
        Endpoint::ImportMetadata => import_metadata::import(Arc::clone(&pool), &parts, body),
        Endpoint::ImportRawVdi => raw_import::import(Arc::clone(&pool), &parts, body),
        Endpoint::ExportRawVdi => raw_vdi::export(Arc::clone(&pool), &parts).await,
        Endpoint::Export => export::handle(Arc::clone(&pool), &parts, false).await,
        Endpoint::ExportMetadata => export::handle(Arc::clone(&pool), &parts, true).await,
    };
    Ok(response)
}

/// The request body, or the error response when it is too large or cut.
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, MAX_RPC_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the request body (limit {MAX_RPC_BODY} bytes): {err}"),
        )),
    }
}

async fn xml_rpc(pool: &Arc<Pool>, body: &[u8]) -> Response<Body> {
    let (method, params) = match xmlrpc::decode_call(body, &Limits::default()) {
        Ok(call) => call,
        Err(err) => {
            return html_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("unparsable XML-RPC request: {err}"),
            );
        }
    };
    tracing::debug!(pool = %pool.name, method = %method, protocol = "xmlrpc", "call");
    let result = rpc::call(pool, &method, params).await;
    delay(pool).await;
    let bytes = match &result {
        // xapi answers introspection with the bare list, outside its Status/Value envelope
        Ok(methods) if method == "system.listMethods" => format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param>{}</param></params></methodResponse>",
            xmlrpc::encode_value(methods)
        )
        .into_bytes(),
        Ok(batch) if method == "event.from" => rpc::event::encode_xmlrpc_batch(batch),
        _ => xmlrpc::encode_response(result.as_ref()),
    };
    rpc_response("text/xml", bytes)
}

async fn json_rpc(pool: &Arc<Pool>, body: &[u8]) -> Response<Body> {
    let call = match jsonrpc::decode_call(body, &Limits::default()) {
        Ok(call) => call,
        Err(err) => {
            return html_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("unparsable JSON-RPC request: {err}"),
            );
        }
    };
    tracing::debug!(pool = %pool.name, method = %call.method, protocol = "jsonrpc", "call");
    let result = rpc::call(pool, &call.method, call.params).await;
    delay(pool).await;
    let bytes = jsonrpc::encode_response(call.version, &call.id, result.as_ref());
    rpc_response("application/json", bytes)
}

async fn delay(pool: &Pool) {
    if let Some(delay) = pool.faults.response_delay() {
        tokio::time::sleep(delay).await;
    }
}

fn rpc_response(content_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    headers.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    response
}

fn preflight() -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        http::HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_HEADERS,
        http::HeaderValue::from_static("content-type"),
    );
    response
}

/// An HTML error page, as xapi sends for transport-level failures.
pub(crate) fn html_error(status: StatusCode, message: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = format!(
        "<html><body><h1>HTTP {} {reason}</h1>{escaped}</body></html>",
        status.as_u16()
    );
    html_page(status, page)
}

/// An HTML page with xapi's error headers (`Connection: close`, no caching).
fn html_page(status: StatusCode, page: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, http::HeaderValue::from_static("text/html"));
    headers.insert(CONNECTION, http::HeaderValue::from_static("close"));
    headers.insert(
        CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, no-store"),
    );
    response
}

/// xapi's answer to a path no handler claims (`http_svr.ml`'s default callback).
pub(crate) fn forbidden() -> Response<Body> {
    html_page(
        StatusCode::FORBIDDEN,
        "<html><body><h1>HTTP 403 forbidden</h1>Access to the requested resource is \
         forbidden.</body></html>",
    )
}
