//! `PUT /import_raw_vdi?vdi=<ref or uuid>&format=raw|tar|vhd[&chunked]`: write a disk from the
//! request body, as raw bytes (from offset 0), xapi's chunked extents (`format=raw&chunked`), a
//! raw tar of checksummed chunks or a VHD (fixed, dynamic or differencing, decoded by
//! `xapi_backup::format::vhd`: the sectors it holds are written, the others left as they are). Without `vdi` but with `sr_id`/`sr_uuid` and `format=raw`, a
//! VDI "Imported VDI" of the body's `Content-Length` is created first. As xapi, a
//! `Transfer-Encoding: chunked` body is refused (404, `INTERNAL_ERROR "Cannot handle
//! encoding"`); the outcome is on the task (its result is the VDI), the response carries
//! `task-id`. Every write is tracked for CBT.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use xapi_backup::format::chunked::ChunkedReader;
use xapi_backup::format::raw_tar::RawTarReader;
use xapi_backup::format::vhd::VhdReader;
use xapi_backup::format::xva::MismatchPolicy;
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};

use super::RequestArgs;
use crate::api_error::failure;
use crate::pool::Pool;
use crate::server::routes::{Body, html_error};

/// Answer `PUT /import_raw_vdi`.
pub(crate) fn import(pool: Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    if super::is_chunked_encoding(parts) {
        return html_error(
            StatusCode::NOT_FOUND,
            "INTERNAL_ERROR: Cannot handle encoding",
        );
    }
    let args = RequestArgs::of(parts);
    let format = args.get("format").unwrap_or("raw").to_owned();
    if !matches!(format.as_str(), "raw" | "tar" | "vhd") {
        return html_error(
            StatusCode::NOT_FOUND,
            &format!("format {format} is not simulated for import"),
        );
    }
    let transfer = match super::begin(&pool, &args, "VDI.import_raw_vdi") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let content_length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // xapi resolves the target before it answers; a bad one is an HTTP error and the task fails:
    // 400 for the cases it names (INTERNAL_ERROR), 500 for errors raised by the calls it makes
    let (vdi, uuid, size) = match target(&pool, &args, &format, content_length) {
        Ok(target) => target,
        Err(failure) => {
            let status = if failure.code == ErrorCode::InternalError {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let page = format!("{} {:?}", failure.code.as_str(), failure.params);
            super::complete(&pool, &task, Err(failure), VDI_REF);
            return html_error(status, &page);
        }
    };
    let reader = super::body_reader(body);
    let chunked = args.get("chunked").is_some();
    let work = {
        let pool = Arc::clone(&pool);
        async move {
            if crate::mirror::is_read_only_replica(&pool, &uuid) {
                // the replica of a storage mirror that is on takes no writes
                return Err(crate::api_error::failure(ErrorCode::VdiReadonly, [vdi]));
            }
            write_body(&pool, &uuid, size, &format, chunked, reader).await?;
            Ok(Value::String(vdi))
        }
    };
    super::take_over_upload(pool, &task, VDI_REF, work)
}

/// The result type of an `/import_raw_vdi` task.
static VDI_REF: Ty = Ty::Ref("VDI");

/// The VDI to write: the one named, or a new one on the SR named (raw only).
fn target(
    pool: &Pool,
    args: &RequestArgs,
    format: &str,
    content_length: Option<u64>,
) -> Result<(String, String, u64), Failure> {
    let mut db = pool.db();
    let vdi = if let Some(name) = args.get("vdi") {
        if db.exists("VDI", name) {
            name.to_owned()
        } else {
            db.by_uuid("VDI", name)?
        }
    } else {
        // xapi's cases, in its order: a VHD cannot go straight into an SR; a new raw VDI needs
        // both an SR and a Content-Length
        if format == "vhd" {
            return Err(failure(
                ErrorCode::InternalError,
                ["Importing a VHD directly into an SR not yet supported"],
            ));
        }
        let sr = match (args.get("sr_id"), args.get("sr_uuid")) {
            (Some(sr), _) => Some(sr.to_owned()),
            (None, Some(uuid)) => Some(db.by_uuid("SR", uuid)?),
            (None, None) => None,
        };
        let (Some(sr), Some(size), "raw") = (sr, content_length, format) else {
            return Err(failure(
                ErrorCode::InternalError,
                ["Not enough info supplied to import"],
            ));
        };
        db.object("SR", &sr)?;
        pool.assert_sr_has_space(&db, &sr)?;
        let record = BTreeMap::from([
            (
                "name_label".to_owned(),
                Value::String("Imported VDI".to_owned()),
            ),
            ("SR".to_owned(), Value::String(sr)),
            ("virtual_size".to_owned(), Value::Int(size as i64)),
            ("type".to_owned(), Value::String("user".to_owned())),
        ]);
        let vdi = db.create("VDI", record)?;
        let uuid = db.str_field("VDI", &vdi, "uuid")?;
        pool.storage.create(&uuid, size).map_err(|e| {
            failure(
                ErrorCode::SrBackendFailure,
                ["", "", &format!("creating the disk image: {e}")],
            )
        })?;
        db.set_field("VDI", &vdi, "location", Value::String(uuid))?;
        vdi
    };
    let uuid = db.str_field("VDI", &vdi, "uuid")?;
    let size = db.int_field("VDI", &vdi, "virtual_size")?.max(0) as u64;
    if db.str_field("VDI", &vdi, "type")? == "cbt_metadata" {
        return Err(failure(
            ErrorCode::VdiIncompatibleType,
            [vdi.as_str(), "cbt_metadata"],
        ));
    }
    Ok((vdi, uuid, size))
}

fn io_failure(what: &str, err: impl std::fmt::Display) -> Failure {
    failure(ErrorCode::VdiIoError, [format!("{what}: {err}")])
}

/// The disk image being written, with its size and change tracking.
struct DiskWriter<'a> {
    pool: &'a Pool,
    uuid: &'a str,
    size: u64,
    file: &'a mut tokio::fs::File,
}

impl DiskWriter<'_> {
    /// Write `data` at `offset`: refused past the end of the disk, noted for changed-block
    /// tracking and the mirror.
    async fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Failure> {
        let size = self.size;
        if offset + data.len() as u64 > size {
            return Err(io_failure(
                "writing",
                format!(
                    "{} bytes at offset {offset} go past the end of the {size}-byte disk",
                    data.len()
                ),
            ));
        }
        self.pool.note_write(self.uuid, offset, data.len() as u64);
        self.file
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| io_failure("seeking", e))?;
        self.file
            .write_all(data)
            .await
            .map_err(|e| io_failure("writing", e))
    }
}

/// Write the body into the image.
async fn write_body<R: AsyncRead + Unpin + Send + 'static>(
    pool: &Pool,
    uuid: &str,
    size: u64,
    format: &str,
    chunked: bool,
    mut body: R,
) -> Result<(), Failure> {
    pool.storage
        .prepare_write_async(uuid)
        .await
        .map_err(|e| io_failure("splitting the disk image from its snapshots", e))?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(pool.storage.path(uuid))
        .await
        .map_err(|e| io_failure("opening the disk image", e))?;
    let mut disk = DiskWriter {
        pool,
        uuid,
        size,
        file: &mut file,
    };
    match (format, chunked) {
        ("raw", true) => {
            let mut extents = ChunkedReader::new(body, Some(size));
            while let Some(extent) = extents
                .next_extent()
                .await
                .map_err(|e| io_failure("chunked body", e))?
            {
                disk.write_at(extent.offset, &extent.data).await?;
            }
        }
        ("vhd", _) => {
            // fixed, dynamic or differencing: the sectors present are written, the others
            // keep what the disk holds (a differencing VHD applies onto its base)
            let mut vhd = VhdReader::open(body)
                .await
                .map_err(|e| io_failure("vhd body", e))?;
            if let Some(footer) = vhd.footer()
                && footer.current_size > size
            {
                return Err(io_failure(
                    "vhd body",
                    format!(
                        "the VHD holds a {}-byte disk, larger than the {size}-byte VDI",
                        footer.current_size
                    ),
                ));
            }
            while let Some(extent) = vhd
                .next_extent()
                .await
                .map_err(|e| io_failure("vhd body", e))?
            {
                disk.write_at(extent.offset, &extent.data).await?;
            }
        }
        ("tar", _) => {
            let mut chunks =
                RawTarReader::open(body, size, super::xapi_read_options(MismatchPolicy::Fail))
                    .await
                    .map_err(|e| io_failure("tar body", e))?;
            while let Some(chunk) = chunks
                .next_chunk()
                .await
                .map_err(|e| io_failure("tar body", e))?
            {
                disk.write_at(chunk.offset, &chunk.data).await?;
            }
        }
        _ => {
            let mut buffer = vec![0_u8; 1 << 20];
            let mut offset = 0_u64;
            loop {
                let n = body
                    .read(&mut buffer)
                    .await
                    .map_err(|e| io_failure("reading the body", e))?;
                if n == 0 {
                    break;
                }
                disk.write_at(offset, &buffer[..n]).await?;
                offset += n as u64;
            }
        }
    }
    file.flush().await.map_err(|e| io_failure("flushing", e))?;
    Ok(())
}
