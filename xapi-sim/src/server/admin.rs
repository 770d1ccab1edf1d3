//! The simulator's own admin endpoints under `/_sim/` (faults, clock, storage mirror, DR
//! licence), matched
//! exactly and before xapi's routes.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::routes::{Body, full, html_error};
use crate::pool::Pool;

/// The answer to an admin request, or `None` when the request is not one.
pub(crate) fn answer(
    pool: &Pool,
    method: &Method,
    path: &str,
    query: &str,
) -> Option<Response<Body>> {
    let response = match (method.clone(), path) {
        (Method::POST, "/_sim/fault") => admin_fault(pool, query),
        (Method::POST, "/_sim/clock") => admin_clock(pool, query),
        (Method::POST, "/_sim/mirror") => admin_mirror(pool, query),
        (Method::POST, "/_sim/licence") => admin_licence(pool, query),
        (Method::GET, "/_sim/mirror") => match crate::mirror::mode(pool) {
            Some(mode) => Response::new(full(format!("{mode}\n"))),
            None => html_error(StatusCode::NOT_FOUND, "this pool reaches no storage mirror"),
        },
        _ => return None,
    };
    Some(response)
}

/// The `key=value` pairs of a query string (no percent-decoding needed for the admin keys).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// `POST /_sim/fault?delay_ms=N&http_500=N&session_invalid_after=N&fail_next_task=CODE&
/// cut_after_bytes=N&fill_sr=SR_UUID&corrupt_checksum&fail_call=METHOD:NTH:CODE` or `?clear`:
/// switch faults at run time.
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
            "fail_call" => fail_call(pool, value),
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

/// `fail_call=METHOD:NTH:CODE` (`VM.recover:2:SR_BACKEND_FAILURE`): arm
/// [`crate::Faults::fail_call`]; whether the setting was well formed.
fn fail_call(pool: &Pool, value: &str) -> bool {
    let mut parts = value.splitn(3, ':');
    let (Some(method), Some(nth), Some(code)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    match nth.parse::<u64>() {
        Ok(nth) if nth > 0 && method.contains('.') && !code.is_empty() => {
            pool.faults
                .fail_call(method, nth, xapi_core::api::ErrorCode::from_code(code));
            true
        }
        _ => false,
    }
}

/// `POST /_sim/licence?restrict_dr=true|false`: restrict DR by licence on this pool, or lift
/// the restriction.
fn admin_licence(pool: &Pool, query: &str) -> Response<Body> {
    let Some(restricted) = query_pairs(query)
        .find(|(k, _)| *k == "restrict_dr")
        .and_then(|(_, v)| v.parse::<bool>().ok())
    else {
        return html_error(StatusCode::BAD_REQUEST, "missing restrict_dr=true|false");
    };
    match crate::rpc::licence::set_dr_restricted(&mut pool.db(), restricted) {
        Ok(()) => Response::new(full(format!("restrict_dr={restricted}\n"))),
        Err(err) => html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{} {:?}", err.code.as_str(), err.params),
        ),
    }
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
