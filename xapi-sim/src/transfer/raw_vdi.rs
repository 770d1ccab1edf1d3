//! `GET /export_raw_vdi?vdi=<ref or uuid>&format=raw|vhd|tar`: one disk, as raw bytes, a
//! dynamic VHD (all-zero 2 MiB blocks unallocated) or a raw tar of checksummed 1 MiB chunks
//! (prefix `vdi`), written by `xapi_backup::format`. The task follows the transfer.
//!
//! As xapi (`export_raw_vdi.ml` writes `Connection: close` and no length before handing the
//! socket to `vhd-tool`), every format is sent without `Content-Length`, the body ending when
//! the connection closes; the status line says `HTTP/1.0` (xapi writes `HTTP/1.1` here, but
//! hyper frames a close-delimited body only under an HTTP/1.0 status line, and the framing is
//! what a client depends on).
//!
//! With `format=vhd&base=<ref or uuid>`, as xapi's delta exports, the VHD is a dynamic one
//! holding only the 2 MiB blocks whose bytes differ from the base disk (a block past the end of
//! the base differs when it holds any non-zero byte); applied onto a copy of the base (as
//! `/import_raw_vdi?format=vhd` does) it gives the disk. Any other format with `base` fails
//! with xapi's "Cannot compute differences on non-VHD images".

use std::sync::Arc;
use xapi_core::api::ErrorCode;

use futures::StreamExt as _;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use tokio_util::io::ReaderStream;
use xapi_backup::format::raw_tar::raw_tar_stream;
use xapi_backup::format::vhd::MAX_VHD_SIZE;
use xapi_backup::format::vhd::writer::{
    VhdWriteOptions, write_dynamic_vhd, write_dynamic_vhd_with_map,
};
use xapi_backup::format::xva::WriteOptions;
use xapi_core::api::meta::Ty;
use xapi_core::wire::Failure;

use super::export::{TaskBody, close_delimited, with_task};
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
                    ErrorCode::VdiIncompatibleType,
                    [vdi.as_str(), vdi_type.as_str()],
                ));
            }
            let base = match args.get("base") {
                Some(_) if format_name != "vhd" => {
                    return Err(failure(
                        ErrorCode::InternalError,
                        ["Cannot compute differences on non-VHD images"],
                    ));
                }
                Some(base) => Some(db.str_field("VDI", &find_vdi(&db, base)?, "uuid")?),
                None => None,
            };
            if format_name == "vhd" && size > MAX_VHD_SIZE {
                return Err(failure(
                    ErrorCode::VdiTooLarge,
                    [vdi.as_str(), &MAX_VHD_SIZE.to_string()],
                ));
            }
            Ok((uuid, size, base))
        })
    };
    let (uuid, size, base) = match found {
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
                Err(failure(ErrorCode::VdiMissing, ["", &uuid])),
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
            let base_path = base.map(|base| pool.storage.path(&base));
            let producer = tokio::spawn(async move {
                let mut writer = writer;
                match base_path {
                    Some(base_path) => delta_vhd(file, &base_path, size, &mut writer).await,
                    None => write_dynamic_vhd(file, size, VhdWriteOptions::default(), &mut writer)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                }
            });
            // the pipe ends either way: a failed write must still fail the transfer
            let outcome = futures::stream::once(async move {
                match producer.await {
                    Ok(Ok(())) => None,
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
    let body = TaskBody::new(stream, Arc::clone(&pool), task.clone());
    let mut response = close_delimited(Response::new(body.boxed_unsync()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{uuid}.{extension}\""))
    {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    with_task(response, &task)
}

/// Write a dynamic VHD of the `size`-byte `image` holding only the blocks that differ from the
/// disk image at `base`.
async fn delta_vhd<W: tokio::io::AsyncWrite + Unpin>(
    image: tokio::fs::File,
    base: &std::path::Path,
    size: u64,
    out: &mut W,
) -> Result<(), String> {
    let options = VhdWriteOptions::default();
    let block = u64::from(options.block_size);
    let image = image.into_std().await;
    let base = base.to_owned();
    let (image, changed) = tokio::task::spawn_blocking(move || {
        let changed = changed_blocks(&image, &base, size, block)?;
        Ok::<_, std::io::Error>((image, changed))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("comparing with the base: {e}"))?;
    // the writer reads the whole disk; unchanged blocks read as zeros
    let (mut feed, source) = tokio::io::duplex(1 << 20);
    let blocks = changed.clone();
    let feeder = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
        let mut image = tokio::fs::File::from_std(image);
        let mut buffer = vec![0_u8; usize::try_from(block).unwrap_or(1 << 21)];
        for (index, is_changed) in blocks.iter().enumerate() {
            let offset = index as u64 * block;
            let length = usize::try_from(block.min(size - offset)).unwrap_or(buffer.len());
            let data = &mut buffer[..length];
            data.fill(0);
            if *is_changed {
                image.seek(std::io::SeekFrom::Start(offset)).await?;
                let mut filled = 0;
                while filled < length {
                    let n = image.read(&mut data[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
            }
            feed.write_all(data).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let written = write_dynamic_vhd_with_map(source, size, &changed, options, out).await;
    let fed = feeder.await.map_err(|e| e.to_string())?;
    written.map_err(|e| e.to_string())?;
    fed.map_err(|e| format!("reading the disk: {e}"))
}

/// Which `block`-byte blocks of the first `size` bytes of `image` differ from `base` (bytes past
/// the end of either file read as zero).
fn changed_blocks(
    image: &std::fs::File,
    base: &std::path::Path,
    size: u64,
    block: u64,
) -> std::io::Result<Vec<bool>> {
    let base = std::fs::File::open(base)?;
    let length = usize::try_from(block).unwrap_or(1 << 21);
    let mut ours = vec![0_u8; length];
    let mut theirs = vec![0_u8; length];
    let mut changed = Vec::new();
    let mut offset = 0_u64;
    while offset < size {
        let n = usize::try_from(block.min(size - offset)).unwrap_or(length);
        read_at_or_zero(image, &mut ours[..n], offset)?;
        read_at_or_zero(&base, &mut theirs[..n], offset)?;
        changed.push(ours[..n] != theirs[..n]);
        offset += block;
    }
    Ok(changed)
}

/// Fill `buf` from `offset` of `file`; bytes past its end read as zero.
fn read_at_or_zero(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    buf.fill(0);
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
