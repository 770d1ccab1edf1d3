//! The HTTP data plane: credentials (cookie first, then query), the task that follows a
//! transfer (`task_id=` or one made for the request), the `task-id` response header.

pub(crate) mod corrupt;
pub(crate) mod db_dump;
pub(crate) mod db_restore;
pub(crate) mod export;
pub(crate) mod host_backup;
pub(crate) mod import;
pub(crate) mod import_metadata;
pub(crate) mod ova;
pub(crate) mod raw_import;
pub(crate) mod raw_vdi;
pub(crate) mod restore_checks;
pub(crate) mod sparse_image;
pub(crate) mod xva_intake;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use futures::{StreamExt as _, TryStreamExt as _};
use http::header::{COOKIE, TRANSFER_ENCODING};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;
use xapi_backup::format::xva::{AfterEndOfArchive, ChecksumText, MismatchPolicy, ReadOptions};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};

use crate::api_error::failure;
use crate::pool::Pool;
use crate::rpc::args;
use crate::rpc::generic::fields;
use crate::rpc::session::master_host;
use crate::rpc::task;
use crate::server::routes::{Body, html_error};
use crate::timestamp;

/// The arguments of a data-plane request: query string and cookies, decoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestArgs {
    query: BTreeMap<String, String>,
    cookies: BTreeMap<String, String>,
}

impl RequestArgs {
    /// Decode the query string and the `Cookie` headers of a request.
    pub(crate) fn of(parts: &Parts) -> Self {
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let cookies = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { query, cookies }
    }

    /// A query argument.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A credential-like argument: the cookie first, then the query (as xapi looks them up).
    pub(crate) fn credential(&self, key: &str) -> Option<&str> {
        self.cookies
            .get(key)
            .or_else(|| self.query.get(key))
            .map(String::as_str)
    }

    /// The query arguments whose key starts with `prefix`, the prefix removed (xapi's
    /// `read_map_params`, e.g. `vdi:<src>=<dst>`).
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.query
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    /// A boolean flag: true only for the literal `true` (xapi's `find_query_flag`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }
}

/// `%XX` and `+` decoding of one query component (invalid escapes are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// An authenticated transfer and the task that reports on it.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    /// The task reference (sent back in the `task-id` header).
    pub(crate) task: String,
}

/// Why a transfer was refused, for the error page.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// What went wrong.
    pub(crate) message: String,
}

impl Refusal {
    /// The error page.
    pub(crate) fn response(&self) -> http::Response<Body> {
        html_error(self.status, &self.message)
    }
}

/// Check the session and take over (or create) the task. The error says what to answer:
/// 401 when the session is not valid (the given task, if any, fails with
/// `SESSION_AUTHENTICATION_FAILED`), 403 when its role does not allow the data plane (the
/// read-only user: the given task fails with `RBAC_PERMISSION_DENIED`).
pub(crate) fn begin(pool: &Pool, request: &RequestArgs, label: &str) -> Result<Transfer, Refusal> {
    let session = request.credential("session_id").unwrap_or_default();
    let given_task = request
        .credential("task_id")
        .filter(|t| pool.db().exists("task", t))
        .map(str::to_owned);
    if !pool.db().exists("session", session) {
        if let Some(task) = &given_task {
            task::finish(
                &mut pool.db(),
                task,
                Err(failure(
                    ErrorCode::SessionAuthenticationFailed,
                    [session, "invalid session"],
                )),
                Ty::Void,
            );
        }
        return Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "authentication failed".to_owned(),
        });
    }
    // every data-plane handler needs more than the read-only role (xapi's `http/...`
    // permissions start at vm-admin): only a session of the local superuser may use them
    if !crate::rpc::rbac::session_has(&pool.db(), session, "http/*") {
        let denied = crate::rpc::rbac::denied(label);
        if let Some(task) = &given_task {
            task::finish(&mut pool.db(), task, Err(denied.clone()), Ty::Void);
        }
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!("{} {:?}", denied.code.as_str(), denied.params),
        });
    }
    let mut db = pool.db();
    let task = if let Some(task) = given_task {
        task
    } else {
        {
            let master = master_host(&db);
            db.create(
                "task",
                fields([
                    ("name_label", Value::String(label.to_owned())),
                    ("status", Value::String("pending".to_owned())),
                    ("created", timestamp::now()),
                    ("resident_on", Value::String(master)),
                    ("allowed_operations", args::text_set(["cancel"])),
                ]),
            )
            .map_err(|f| Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("cannot create the task: {} {:?}", f.code.as_str(), f.params),
            })?
        }
    };
    let _ = db.set_field("task", &task, "progress", Value::Double(0.0));
    Ok(Transfer { task })
}

/// Record progress (0.0 to 1.0) on the transfer's task.
pub(crate) fn set_progress(pool: &Pool, task: &str, progress: f64) {
    let _ = pool.db().set_field(
        "task",
        task,
        "progress",
        Value::Double(progress.clamp(0.0, 1.0)),
    );
}

/// Complete the transfer's task.
pub(crate) fn complete(pool: &Pool, task: &str, outcome: Result<Value, Failure>, result_ty: Ty) {
    task::finish(&mut pool.db(), task, outcome, result_ty);
}

/// True when the request body comes `Transfer-Encoding: chunked`, which xapi's importers
/// refuse (each with its own answer).
pub(crate) fn is_chunked_encoding(parts: &Parts) -> bool {
    parts
        .headers
        .get(TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// Start an XVA upload (`/import`, `/import_metadata`): chunked bodies refused with xapi's
/// 403 `IMPORT_ERROR_CANNOT_HANDLE_CHUNKED`, then the credentials checked and the task made.
/// The request's arguments and the task, or why the upload is refused.
pub(crate) fn begin_xva_upload(
    pool: &Pool,
    parts: &Parts,
    label: &str,
) -> Result<(RequestArgs, String), Refusal> {
    if is_chunked_encoding(parts) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: ErrorCode::ImportErrorCannotHandleChunked
                .as_str()
                .to_owned(),
        });
    }
    let args = RequestArgs::of(parts);
    let transfer = begin(pool, &args, label)?;
    Ok((args, transfer.task))
}

/// How xapi's importer reads an uploaded archive (XVA or raw tar): it stops at the
/// end-of-archive marker (the client may keep its side open) and compares checksum texts byte
/// for byte; `on_mismatch` says what a bad chunk does.
pub(crate) fn xapi_read_options(on_mismatch: MismatchPolicy) -> ReadOptions {
    ReadOptions {
        on_checksum_mismatch: on_mismatch,
        after_end_of_archive: AfterEndOfArchive::Stop,
        checksum_text: ChecksumText::Exact,
        ..ReadOptions::default()
    }
}

/// An upload's body as a byte reader.
pub(crate) fn body_reader(body: Incoming) -> impl AsyncRead + Send + Unpin + 'static {
    StreamReader::new(BodyDataStream::new(body).map_err(std::io::Error::other))
}

/// Take an upload over as xapi does once its checks have passed: `200 OK` with the `task-id`
/// header goes out at once, before the body is read; `work` then reads the body and its outcome
/// completes the task (the client learns success or failure from the task, never from the HTTP
/// status). The response carries no body and ends, with the connection, when the work is done
/// (reference §5.4), so a client that reads it to the end has waited for the task too.
///
/// A client that sends the whole body before reading the answer, and one that streams with a
/// huge `Content-Length` and stops reading the body once the upload is taken over (Xen
/// Orchestra's `putResource`), are both served.
pub(crate) fn take_over_upload<F>(
    pool: Arc<Pool>,
    task: &str,
    result_ty: Ty,
    work: F,
) -> Response<Body>
where
    F: Future<Output = Result<Value, Failure>> + Send + 'static,
{
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let task_ref = task.to_owned();
    tokio::spawn(async move {
        let outcome = work.await;
        if let Err(failure) = &outcome {
            tracing::debug!(task = %task_ref, code = failure.code.as_str(), "upload failed");
        }
        complete(&pool, &task_ref, outcome, result_ty);
        let _ = done.send(());
    });
    let ends_when_done = futures::stream::once(finished).filter_map(|_| {
        std::future::ready(None::<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>)
    });
    let body = http_body_util::StreamBody::new(ends_when_done);
    let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    export::with_task(export::close_delimited(response), task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(percent_decode("OpaqueRef%3Aabc"), "OpaqueRef:abc");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn cookie_wins_over_query() {
        let request = http::Request::builder()
            .uri("/export?session_id=from-query&uuid=u")
            .header(COOKIE, "session_id=from-cookie; task_id=t")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let args = RequestArgs::of(&parts);
        assert_eq!(args.credential("session_id"), Some("from-cookie"));
        assert_eq!(args.credential("task_id"), Some("t"));
        assert_eq!(args.get("uuid"), Some("u"));
        assert!(!args.flag("uuid"));
    }
}
