//! The HTTP endpoints of one pool: XML-RPC on `/` and `/RPC2`, JSON-RPC on `/jsonrpc`, CORS
//! preflight, and the simulator's admin endpoints under `/_sim/`.
//!
//! As xapi does, a request that cannot be parsed gets HTTP 500 with an HTML body rather than an
//! RPC error structure, and RPC bodies are capped at 300 KiB.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use xapi_core::wire::{Limits, jsonrpc, xmlrpc};

use crate::pool::Pool;
use crate::rpc;
use crate::transfer::{db_dump, export, host_backup, import, import_metadata, raw_import, raw_vdi};

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
    let response = match (request.method().clone(), path.as_str()) {
        (Method::POST, "/" | "/RPC2") => match read_body(request).await {
            Ok(body) => xml_rpc(&pool, &body).await,
            Err(response) => response,
        },
        (Method::POST, "/jsonrpc") => match read_body(request).await {
            Ok(body) => json_rpc(&pool, &body).await,
            Err(response) => response,
        },
        (Method::OPTIONS, "/" | "/json" | "/jsonrpc") => preflight(),
        (Method::GET, "/pool/xmldbdump") => {
            let (parts, _) = request.into_parts();
            db_dump::handle(&pool, &parts)
        }
        (Method::PUT, "/pool/xmldbdump") => {
            let (parts, body) = request.into_parts();
            db_dump::restore(&pool, &parts, body).await
        }
        (Method::GET, "/host_backup") => {
            let (parts, _) = request.into_parts();
            host_backup::backup(&pool, &parts)
        }
        (Method::PUT, "/host_restore") => {
            let (parts, body) = request.into_parts();
            host_backup::restore(&pool, &parts, body).await
        }
        (Method::PUT, "/import") => {
            let (parts, body) = request.into_parts();
            import::import(Arc::clone(&pool), &parts, body).await
        }
        (Method::PUT, "/import_metadata") => {
            let (parts, body) = request.into_parts();
            import_metadata::import(Arc::clone(&pool), &parts, body).await
        }
        (Method::PUT, "/import_raw_vdi") => {
            let (parts, body) = request.into_parts();
            raw_import::import(Arc::clone(&pool), &parts, body).await
        }
        (Method::GET, "/export_raw_vdi") => {
            let (parts, _) = request.into_parts();
            raw_vdi::export(Arc::clone(&pool), &parts).await
        }
        (Method::GET, "/export" | "/export_metadata") => {
            let (parts, _) = request.into_parts();
            export::handle(Arc::clone(&pool), &parts, path == "/export_metadata").await
        }
        (Method::POST, "/_sim/fault") => admin_fault(&pool, &query),
        (Method::POST, "/_sim/clock") => admin_clock(&pool, &query),
        (Method::POST, "/_sim/mirror") => admin_mirror(&pool, &query),
        (Method::GET, "/_sim/mirror") => match crate::mirror::mode(&pool) {
            Some(mode) => Response::new(full(format!("{mode}\n"))),
            None => html_error(StatusCode::NOT_FOUND, "this pool reaches no storage mirror"),
        },
        _ => html_error(StatusCode::NOT_FOUND, &format!("no handler for {path}")),
    };
    Ok(response)
}

/// The request body, or the error response when it is too large or cut.
async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(request.into_body(), MAX_RPC_BODY)
        .collect()
        .await
    {
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
    let bytes = xmlrpc::encode_response(result.as_ref());
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
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("text/html"));
    response
}

/// The `key=value` pairs of a query string (no percent-decoding needed for the admin keys).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// `POST /_sim/fault?delay_ms=N&http_500=N&session_invalid_after=N&fail_next_task=CODE&
/// cut_after_bytes=N&fill_sr=SR_UUID&corrupt_checksum` or `?clear`: switch faults at run time.
fn admin_fault(pool: &Pool, query: &str) -> Response<Body> {
    for (key, value) in query_pairs(query) {
        let applied = match key {
            "clear" => {
                pool.faults.clear();
                true
            }
            "delay_ms" => value
                .parse()
                .map(|ms: u64| {
                    pool.faults
                        .set_response_delay((ms > 0).then(|| Duration::from_millis(ms)));
                })
                .is_ok(),
            "http_500" => value
                .parse()
                .map(|n| pool.faults.fail_next_requests_with_http_500(n))
                .is_ok(),
            "session_invalid_after" => value
                .parse()
                .map(|n| pool.faults.invalidate_session_after(n))
                .is_ok(),
            "fail_next_task" if !value.is_empty() => {
                pool.faults.fail_next_task(value);
                true
            }
            "cut_after_bytes" => value
                .parse()
                .map(|n| pool.faults.cut_next_download_after(n))
                .is_ok(),
            "stall_export_ms" => value
                .parse()
                .map(|ms| pool.faults.stall_next_export(Duration::from_millis(ms)))
                .is_ok(),
            "corrupt_checksum" => {
                pool.faults.corrupt_next_export_checksum();
                true
            }
            "fill_sr" if !value.is_empty() => {
                pool.faults.fill_sr(value);
                true
            }
            _ => false,
        };
        if !applied {
            return html_error(
                StatusCode::BAD_REQUEST,
                &format!("bad fault setting {key}={value}"),
            );
        }
    }
    Response::new(full(Bytes::from_static(b"ok\n")))
}

/// `POST /_sim/clock?speed=F`: run simulated delays `F` times faster.
fn admin_clock(pool: &Pool, query: &str) -> Response<Body> {
    for (key, value) in query_pairs(query) {
        match (key, value.parse::<f64>()) {
            ("speed", Ok(speed)) if speed.is_finite() && speed > 0.0 => pool.clock.set_speed(speed),
            _ => {
                return html_error(
                    StatusCode::BAD_REQUEST,
                    &format!("bad clock setting {key}={value}"),
                );
            }
        }
    }
    Response::new(full(Bytes::from_static(b"ok\n")))
}

/// `POST /_sim/mirror?mode=mirrored|broken|resync`: switch the storage mirror this pool reaches;
/// answers the resulting mode.
fn admin_mirror(pool: &Pool, query: &str) -> Response<Body> {
    let Some((_, value)) = query_pairs(query).find(|(k, _)| *k == "mode") else {
        return html_error(
            StatusCode::BAD_REQUEST,
            "missing mode=mirrored|broken|resync",
        );
    };
    let mode = match value.parse::<crate::MirrorMode>() {
        Ok(mode) => mode,
        Err(err) => return html_error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    match crate::mirror::switch(pool, mode) {
        None => html_error(StatusCode::NOT_FOUND, "this pool reaches no storage mirror"),
        Some(Err(err)) => html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("switching the mirror to {mode}: {err}"),
        ),
        Some(Ok(now)) => Response::new(full(format!("{now}\n"))),
    }
}
