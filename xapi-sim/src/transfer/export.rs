//! `GET /export` and `GET /export_metadata`: a VM as an XVA stream written by
//! `xapi_backup::format::xva` (xxhash checksums, as xapi writes them; whole-stream gzip or zstd
//! with `use_compression`; zero chunks omitted), followed by a task.
//!
//! As xapi, a full export takes a VM that is halted or suspended (a snapshot, typically): a
//! running or paused VM is refused with `VM_BAD_POWER_STATE [vm; halted; running]` before a
//! byte is sent, its task failed with the same error. Metadata exports take any VM.
//!
//! As xapi (§5.4 of the data-plane reference), `/export` answers `HTTP/1.0 200 OK` with
//! `Connection: close`, `task-id`, no `Content-Length` and no chunked encoding: the body ends
//! when the server closes the connection, also when the request was HTTP/1.1 keep-alive. The
//! task's progress follows the disk bytes read and it succeeds when the last byte has gone out.
//! `/export_metadata` (a tar holding `ova.xml` only) carries a `Content-Length`.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use xapi_core::api::ErrorCode;

use bytes::Bytes;
use futures::Stream;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, ReadBuf};
use xapi_backup::format::compression::Compression;
use xapi_backup::format::ova_xml::OvaXml;
use xapi_backup::format::tar::{END_OF_ARCHIVE, TarError, encode_v7_header, padding_len};
use xapi_backup::format::xva::{ChecksumKind, DiskSource, WriteOptions, xva_stream};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};

use super::corrupt::ChecksumCorrupter;
use super::ova::{self, ExportOptions};
use super::sparse_image::SparseImage;
use super::{RequestArgs, complete, set_progress};
use crate::api_error::failure;
use crate::pool::Pool;
use crate::server::routes::{Body, full, html_error};

/// Answer `GET /export` (`metadata_only` false) or `GET /export_metadata`.
pub(crate) async fn handle(pool: Arc<Pool>, parts: &Parts, metadata_only: bool) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let label = if metadata_only {
        "VM.export_metadata"
    } else {
        "VM.export"
    };
    // `/export_metadata`'s `excluded_device_types` (a comma list of `vif`, `vbd`, `vgpu`,
    // `vtpm`): the simulator exports no VGPU or VTPM objects, so those two change nothing
    let excluded: Vec<&str> = if metadata_only {
        args.get("excluded_device_types")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let transfer = match super::begin(&pool, &args, label) {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let built = {
        let db = pool.db();
        find_vm(&db, &args).and_then(|vm| {
            ova::build(
                &db,
                &vm,
                ExportOptions {
                    preserve_power_state: args.flag("preserve_power_state"),
                    metadata_only,
                    exclude_vbds: excluded.contains(&"vbd"),
                    exclude_vifs: excluded.contains(&"vif"),
                },
            )
            .map(|built| (vm, built))
        })
    };
    let (vm, (ova, disks)) = match built {
        Ok(built) => built,
        Err(err) => {
            let message = format!("{} {:?}", err.code.as_str(), err.params);
            complete(&pool, &task, Err(err), Ty::Void);
            return with_task(html_error(StatusCode::NOT_FOUND, &message), &task);
        }
    };
    // a full export is an operation on the VM while its bytes flow, as in xapi, allowed only
    // on a halted or suspended VM (export of a running VM needs a snapshot first)
    let operation = if metadata_only {
        None
    } else {
        match exportable(&pool, &vm)
            .and_then(|()| crate::rpc::vm::begin_operation(&pool, &vm, "export"))
        {
            Ok(operation) => Some(operation),
            Err(err) => {
                let message = format!("{} {:?}", err.code.as_str(), err.params);
                complete(&pool, &task, Err(err), Ty::Void);
                return with_task(
                    html_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
                    &task,
                );
            }
        }
    };
    let options = WriteOptions {
        checksum: ChecksumKind::Xxhash,
        compression: match args.get("use_compression") {
            Some("true" | "gzip") => Compression::Gzip,
            Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        },
        ova_xml_mtime: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..WriteOptions::default()
    };
    let total: u64 = disks.iter().map(|d| d.size).sum();
    let mut stall_for = pool.faults.take_stall();
    let mut sources = Vec::with_capacity(disks.len());
    for disk in &disks {
        let file = match SparseImage::open(&pool.storage.path(&disk.uuid)).await {
            Ok(file) => file,
            Err(err) => {
                let err = failure(
                    ErrorCode::VdiMissing,
                    ["", &format!("disk image {}: {err}", disk.uuid)],
                );
                complete(&pool, &task, Err(err), Ty::Void);
                return with_task(
                    html_error(StatusCode::INTERNAL_SERVER_ERROR, "disk image missing"),
                    &task,
                );
            }
        };
        sources.push(DiskSource {
            prefix: disk.id.clone(),
            size: disk.size,
            reader: Box::new(ProgressReader {
                inner: file,
                pool: Arc::clone(&pool),
                task: task.clone(),
                total,
                done: 0,
                reported: 0,
                stall: None,
                stall_for: stall_for.take(),
            }),
        });
    }
    if metadata_only {
        // a tar with ova.xml only, with a Content-Length
        let response = match ova_xml_tar(&ova, options.ova_xml_mtime) {
            Ok(bytes) => {
                complete(&pool, &task, Ok(Value::Nil), Ty::Void);
                let length = bytes.len();
                let mut response = attachment(full(bytes));
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(length));
                response
            }
            Err(err) => {
                complete(
                    &pool,
                    &task,
                    Err(failure(ErrorCode::InternalError, [err.to_string()])),
                    Ty::Void,
                );
                html_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
            }
        };
        return with_task(response, &task);
    }
    let stream = match xva_stream(&ova, sources, options) {
        Ok(stream) => stream,
        Err(err) => {
            complete(
                &pool,
                &task,
                Err(failure(ErrorCode::InternalError, [err.to_string()])),
                Ty::Void,
            );
            return with_task(
                html_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
                &task,
            );
        }
    };
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, xapi_backup::Error>> + Send>> =
        if options.compression == Compression::None && pool.faults.take_corrupt_checksum() {
            let mut corrupter = ChecksumCorrupter::new();
            Box::pin(futures::StreamExt::map(stream, move |item| {
                item.map(|bytes| corrupter.apply(bytes))
            }))
        } else {
            Box::pin(stream)
        };
    let body = TaskBody::new(stream, Arc::clone(&pool), task.clone()).with_operation(operation);
    with_task(close_delimited(attachment(body.boxed_unsync())), &task)
}

/// Frame a streamed response as xapi does (§5.4 of the data-plane reference): an `HTTP/1.0`
/// status line, `Connection: close`, no `Content-Length` and no chunked encoding; the body ends
/// when the server closes the connection, whatever the request's HTTP version.
pub(crate) fn close_delimited(mut response: Response<Body>) -> Response<Body> {
    *response.version_mut() = http::Version::HTTP_10;
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A tar holding `ova.xml` only (what `/export_metadata` serves): V7 header, the document,
/// padding, the two zero blocks that end an archive.
pub(crate) fn ova_xml_tar(ova: &OvaXml, mtime: u64) -> Result<Vec<u8>, TarError> {
    let xml = ova.to_xml();
    let header = encode_v7_header("ova.xml", xml.len() as u64, mtime)?;
    let mut bytes = Vec::with_capacity(header.len() + xml.len() + 3 * 512);
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(xml.as_bytes());
    bytes.resize(bytes.len() + padding_len(xml.len() as u64), 0);
    bytes.extend_from_slice(&END_OF_ARCHIVE);
    Ok(bytes)
}

/// xapi's power-state rule for `export`: the VM must be halted or suspended.
fn exportable(pool: &Pool, vm: &str) -> Result<(), Failure> {
    let state = pool.db().str_field("VM", vm, "power_state")?;
    if matches!(state.as_str(), "Halted" | "Suspended") {
        Ok(())
    } else {
        Err(crate::api_error::vm_bad_power_state(vm, "halted", &state))
    }
}

/// The VM named by `ref=` or `uuid=`.
fn find_vm(db: &crate::model::store::Db, args: &RequestArgs) -> Result<String, Failure> {
    if let Some(reference) = args.get("ref") {
        db.object("VM", reference)?;
        return Ok(reference.to_owned());
    }
    db.by_uuid("VM", args.get("uuid").unwrap_or_default())
}

fn attachment(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"export.xva\""),
    );
    response
}

/// Add the `task-id` header.
pub(crate) fn with_task(mut response: Response<Body>, task: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(task) {
        response.headers_mut().insert("task-id", value);
    }
    response
}

/// Reads a disk image and reports the share of all disk bytes read as task progress.
struct ProgressReader {
    inner: SparseImage,
    pool: Arc<Pool>,
    task: String,
    total: u64,
    done: u64,
    reported: u64,
    /// The "stall the source" fault: once the first MiB has been read, reading pauses this long.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    stall_for: Option<std::time::Duration>,
}

/// Report progress every this many bytes.
const PROGRESS_STEP: u64 = 8 << 20;

impl AsyncRead for ProgressReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(duration) = self.stall_for.filter(|_| self.done >= 1 << 20) {
            self.stall_for = None;
            self.stall = Some(Box::pin(tokio::time::sleep(duration)));
        }
        if let Some(stall) = self.stall.as_mut() {
            if stall.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.stall = None;
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            self.done += (buf.filled().len() - before) as u64;
            if self.done - self.reported >= PROGRESS_STEP && self.total > 0 {
                self.reported = self.done;
                // the last bytes are reported by the body when it ends
                set_progress(
                    &self.pool,
                    &self.task,
                    (self.done as f64 / self.total as f64).min(0.99),
                );
            }
        }
        poll
    }
}

/// A transfer body: a byte stream that completes the task when it ends (success), fails or is
/// dropped before the end (the client went away: failure).
pub(crate) struct TaskBody<S> {
    stream: Pin<Box<S>>,
    pool: Arc<Pool>,
    task: String,
    finished: bool,
    sent: u64,
    /// The "cut the download" fault: stop with an error after this many bytes.
    cut_after: Option<u64>,
    /// The VM operation the transfer is, under way until the body is dropped.
    operation: Option<crate::rpc::vm::Operation>,
}

fn pool_cut(pool: &Pool) -> Option<u64> {
    pool.faults.take_cut()
}

impl<S> TaskBody<S> {
    /// A body streaming `stream` and reporting on `task`.
    pub(crate) fn new(stream: S, pool: Arc<Pool>, task: String) -> Self {
        let cut_after = pool_cut(&pool);
        Self {
            stream: Box::pin(stream),
            pool,
            task,
            finished: false,
            sent: 0,
            cut_after,
            operation: None,
        }
    }

    /// The same body, keeping `operation` under way until it is dropped.
    pub(crate) fn with_operation(mut self, operation: Option<crate::rpc::vm::Operation>) -> Self {
        self.operation = operation;
        self
    }

    fn succeed(&mut self) {
        if !self.finished {
            self.finished = true;
            // the operation ends before the task does, so that a client that waited for the
            // task finds the VM free
            self.operation = None;
            complete(&self.pool, &self.task, Ok(Value::Nil), Ty::Void);
        }
    }
}

impl<S, E> http_body::Body for TaskBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(mut bytes))) => {
                if let Some(cut) = self.cut_after {
                    if self.sent >= cut {
                        self.finished = true;
                        self.operation = None;
                        let err = failure(
                            ErrorCode::InternalError,
                            ["connection cut by an injected fault"],
                        );
                        complete(&self.pool, &self.task, Err(err), Ty::Void);
                        return Poll::Ready(Some(Err(io::Error::other(
                            "connection cut by an injected fault",
                        ))));
                    }
                    bytes.truncate((cut - self.sent).min(bytes.len() as u64) as usize);
                }
                self.sent += bytes.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(err))) => {
                self.finished = true;
                self.operation = None;
                let message = err.to_string();
                complete(
                    &self.pool,
                    &self.task,
                    Err(failure(ErrorCode::InternalError, [message.clone()])),
                    Ty::Void,
                );
                Poll::Ready(Some(Err(io::Error::other(message))))
            }
            Poll::Ready(None) => {
                if let Some(cut) = self.cut_after.take().filter(|&cut| self.sent < cut) {
                    // too short to be cut: the next download is
                    self.pool.faults.hand_on_cut(cut);
                }
                self.succeed();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S> Drop for TaskBody<S> {
    fn drop(&mut self) {
        self.operation = None;
        if !self.finished {
            complete(
                &self.pool,
                &self.task,
                Err(failure(
                    ErrorCode::InternalError,
                    ["the client closed the connection before the end of the export"],
                )),
                Ty::Void,
            );
        }
    }
}
