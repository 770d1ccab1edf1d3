//! `GET /export_raw_vdi?vdi=<ref or uuid>&format=raw|vhd|tar`: one disk, as raw bytes, a
//! dynamic VHD (all-zero 2 MiB blocks unallocated) or a raw tar of checksummed 1 MiB chunks
//! (prefix `vdi`), written by `xapi_backup::format`. The task follows the transfer.

use std::sync::Arc;

use futures::StreamExt as _;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use tokio_util::io::ReaderStream;
use xapi_backup::format::raw_tar::raw_tar_stream;
use xapi_backup::format::vhd::MAX_VHD_SIZE;
use xapi_backup::format::vhd::writer::{VhdWriteOptions, write_dynamic_vhd};
use xapi_backup::format::xva::WriteOptions;
use xapi_core::api::meta::Ty;
use xapi_core::wire::Failure;

use super::export::{TaskBody, with_task};
use super::{RequestArgs, complete};
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::server::routes::{Body, html_error};

/// The formats served, with their content type and file extension.
fn format_of(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "raw" => Some(("application/octet-stream", "raw")),
        "vhd" => Some(("application/vhd", "vhd")),
        "tar" => Some(("application/x-tar", "tar")),
        _ => None,
    }
}

/// The VDI named by `vdi=` (a reference or a uuid).
fn find_vdi(db: &Db, name: &str) -> Result<String, Failure> {
    if db.exists("VDI", name) {
        return Ok(name.to_owned());
    }
    db.by_uuid("VDI", name)
}

/// Answer `GET /export_raw_vdi`.
pub(crate) async fn export(pool: Arc<Pool>, parts: &Parts) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let format_name = args.get("format").unwrap_or("raw").to_owned();
    let Some((content_type, extension)) = format_of(&format_name) else {
        return html_error(
            StatusCode::NOT_FOUND,
            &format!("unknown format {format_name}"),
        );
    };
    let transfer = match super::begin(&pool, &args, "VDI.export_raw_vdi") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let found = {
        let db = pool.db();
        find_vdi(&db, args.get("vdi").unwrap_or_default()).and_then(|vdi| {
            let uuid = db.str_field("VDI", &vdi, "uuid")?;
            let size = db.int_field("VDI", &vdi, "virtual_size")?.max(0) as u64;
            let vdi_type = db.str_field("VDI", &vdi, "type")?;
            if vdi_type == "cbt_metadata" {
                return Err(failure(
                    "VDI_INCOMPATIBLE_TYPE",
                    [vdi.as_str(), vdi_type.as_str()],
                ));
            }
            if args.get("base").is_some() {
                return Err(failure(
                    "INTERNAL_ERROR",
                    ["Cannot compute differences on non-VHD images"],
                ));
            }
            if format_name == "vhd" && size > MAX_VHD_SIZE {
                return Err(failure(
                    "VDI_TOO_LARGE",
                    [vdi.as_str(), &MAX_VHD_SIZE.to_string()],
                ));
            }
            Ok((uuid, size))
        })
    };
    let (uuid, size) = match found {
        Ok(found) => found,
        Err(err) => {
            let message = format!("{} {:?}", err.code.as_str(), err.params);
            complete(&pool, &task, Err(err), Ty::Void);
            return with_task(html_error(StatusCode::NOT_FOUND, &message), &task);
        }
    };
    let file = match tokio::fs::File::open(pool.storage.path(&uuid)).await {
        Ok(file) => file,
        Err(err) => {
            complete(
                &pool,
                &task,
                Err(failure("VDI_MISSING", ["", &uuid])),
                Ty::Void,
            );
            return with_task(
                html_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("disk image: {err}"),
                ),
                &task,
            );
        }
    };
    let stream = match format_name.as_str() {
        "tar" => raw_tar_stream(Box::new(file), size, WriteOptions::default())
            .map(|item| item.map_err(|e| std::io::Error::other(e.to_string())))
            .boxed(),
        "vhd" => {
            let (writer, reader) = tokio::io::duplex(1 << 20);
            let producer = tokio::spawn(async move {
                let mut writer = writer;
                write_dynamic_vhd(file, size, VhdWriteOptions::default(), &mut writer)
                    .await
                    .map_err(|e| e.to_string())
            });
            // the pipe ends either way: a failed write must still fail the transfer
            let outcome = futures::stream::once(async move {
                match producer.await {
                    Ok(Ok(_)) => None,
                    Ok(Err(message)) => {
                        Some(Err(std::io::Error::other(format!("vhd export: {message}"))))
                    }
                    Err(join) => Some(Err(std::io::Error::other(format!("vhd export: {join}")))),
                }
            })
            .filter_map(std::future::ready);
            ReaderStream::new(reader).chain(outcome).boxed()
        }
        _ => ReaderStream::new(tokio::io::AsyncReadExt::take(file, size)).boxed(),
    };
    let mut body = TaskBody::new(stream, Arc::clone(&pool), task.clone());
    if format_name == "raw" {
        body = body.with_length(size);
    }
    let mut response = Response::new(body.boxed_unsync());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{uuid}.{extension}\""))
    {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    if format_name == "raw" {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
    }
    with_task(response, &task)
}
