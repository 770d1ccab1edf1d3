//! `GET /host_backup` and `PUT /host_restore` (`xapi_host_backup.ml`): a backup of the serving
//! host's control domain, and its restore.
//!
//! Real xapi streams the stdout of the `host-backup` script, a gzip'd tar of dom0. The simulated
//! dom0 holds what identifies the host, in a gzip'd V7 tar that is a pure function of the pool
//! database (members in this order, mtime 0, gzip header without name or time):
//!
//! - `etc/xensource-inventory`: `INSTALLATION_UUID` (the host's UUID), `CONTROL_DOMAIN_UUID`,
//!   product brand, version and build, management interface;
//! - `etc/xensource/pool.conf`: `master` (the backup is of the master, which serves the
//!   data plane);
//! - `etc/hostname`: the host's `hostname`;
//! - `var/lib/xcp/state.db`: the pool database as DB XML (holding the pool's UUID and the
//!   host's record).
//!
//! While the script "runs" (a few polls of the simulated clock, 2 s apart) the task's progress
//! follows xapi's synthetic curve 0.9·(1 − e^(−0.1·n)) after n polls; the body goes out after
//! it, close-delimited as xapi sends it. `PUT /host_restore` reads the upload and checks what
//! the restore script would: a gzip'd tar that decodes to its end and holds an inventory naming
//! an installation; anything else fails the task with `RESTORE_SCRIPT_FAILED [log]`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use xapi_core::api::ErrorCode;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use xapi_backup::format::compression::{BlockingEncoder, Compression, DecompressingReader};
use xapi_backup::format::tar::{
    END_OF_ARCHIVE, TarError, TarReader, encode_v7_header, padding_len,
};
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};
use xapi_dr::metadata::db_xml_bytes;

use super::export::{TaskBody, close_delimited, with_task};
use super::{RequestArgs, complete, set_progress};
use crate::api_error::failure;
use crate::model::db_form::to_database;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::rpc::session::master_host;
use crate::server::routes::{Body, full};

/// Polls of the simulated backup script (xapi polls every 2 s while the script runs).
const SCRIPT_POLLS: u32 = 3;
/// Interval between two polls.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Largest restore upload read.
const MAX_RESTORE: usize = 1 << 30;

/// The task progress xapi reports after `polls` polls of a running backup script.
pub(crate) fn progress_after(polls: u32) -> f64 {
    0.9 * (1.0 - (-0.1 * f64::from(polls)).exp())
}

/// Answer `GET /host_backup`.
pub(crate) fn backup(pool: &Arc<Pool>, parts: &Parts) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "Downloading host backup") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let files = dom0_files(&pool.db());
    let worker_pool = Arc::clone(pool);
    let worker_task = task.clone();
    let body = futures::stream::once(async move {
        let files = files
            .map_err(|f| std::io::Error::other(format!("{} {:?}", f.code.as_str(), f.params)))?;
        for poll in 1..=SCRIPT_POLLS {
            worker_pool.clock.sleep(POLL_INTERVAL).await;
            set_progress(&worker_pool, &worker_task, progress_after(poll));
        }
        gzip_tar(&files)
            .await
            .map_err(|e| std::io::Error::other(format!("host-backup: {e}")))
    });
    let body = TaskBody::new(body, Arc::clone(pool), task.clone());
    let mut response = close_delimited(Response::new(body.boxed_unsync()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    with_task(response, &task)
}

/// The files of the simulated dom0 of the pool's master, in archive order.
fn dom0_files(db: &Db) -> Result<Vec<(&'static str, Vec<u8>)>, Failure> {
    let host = master_host(db);
    let uuid = db.str_field("host", &host, "uuid")?;
    let hostname = db.str_field("host", &host, "hostname").unwrap_or_default();
    let version = |key: &str, fallback: &str| match db.field("host", &host, "software_version") {
        Ok(Value::Struct(map)) => match map.get(key) {
            Some(Value::String(v)) => v.clone(),
            _ => fallback.to_owned(),
        },
        _ => fallback.to_owned(),
    };
    let control_domain = db
        .str_field("host", &host, "control_domain")
        .ok()
        .and_then(|dom0| db.str_field("VM", &dom0, "uuid").ok());
    let mut inventory = String::new();
    for (key, value) in [
        ("PRODUCT_BRAND", version("product_brand", "XCP-ng")),
        ("PRODUCT_VERSION", version("product_version", "8.3.0")),
        ("BUILD_NUMBER", version("build_number", "xapi-sim")),
        ("INSTALLATION_UUID", uuid.clone()),
    ] {
        let _ = writeln!(inventory, "{key}='{value}'");
    }
    if let Some(dom0) = control_domain {
        let _ = writeln!(inventory, "CONTROL_DOMAIN_UUID='{dom0}'");
    }
    inventory.push_str("MANAGEMENT_INTERFACE='xenbr0'\nMANAGEMENT_ADDRESS_TYPE='IPv4'\n");
    let pool_conf = "master\n".to_owned();
    Ok(vec![
        ("etc/xensource-inventory", inventory.into_bytes()),
        ("etc/xensource/pool.conf", pool_conf.into_bytes()),
        ("etc/hostname", format!("{hostname}\n").into_bytes()),
        ("var/lib/xcp/state.db", db_xml_bytes(&to_database(db))),
    ])
}

/// A V7 tar of `files` (mtime 0), gzip-compressed.
async fn gzip_tar(files: &[(&'static str, Vec<u8>)]) -> Result<Bytes, String> {
    let mut tar = Vec::new();
    for (name, contents) in files {
        let header = encode_v7_header(name, contents.len() as u64, 0).map_err(|e| e.to_string())?;
        tar.extend_from_slice(&header);
        tar.extend_from_slice(contents);
        tar.resize(tar.len() + padding_len(contents.len() as u64), 0);
    }
    tar.extend_from_slice(&END_OF_ARCHIVE);
    let mut encoder = BlockingEncoder::new(Compression::Gzip)
        .map_err(|e| e.to_string())?
        .ok_or("gzip has an encoder")?;
    let mut out = encoder
        .compress(Bytes::from(tar), false)
        .await
        .map_err(|e| e.to_string())?
        .to_vec();
    out.extend_from_slice(&encoder.finish().await.map_err(|e| e.to_string())?);
    Ok(Bytes::from(out))
}

/// Answer `PUT /host_restore`.
pub(crate) async fn restore(pool: &Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "Uploading host backup") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let outcome = match Limited::new(body, MAX_RESTORE).collect().await {
        Ok(collected) => check_backup(collected.to_bytes()).await,
        Err(err) => Err(format!("host-restore: reading the backup: {err}")),
    };
    let text = match outcome {
        Ok(installation) => {
            tracing::info!(pool = %pool.name, installation, "host backup accepted for restore");
            complete(pool, &task, Ok(Value::Nil), Ty::Void);
            String::new()
        }
        Err(log) => {
            let text = format!("RESTORE_SCRIPT_FAILED {log}");
            complete(
                pool,
                &task,
                Err(failure(ErrorCode::RestoreScriptFailed, [log])),
                Ty::Void,
            );
            text
        }
    };
    with_task(close_delimited(Response::new(full(text))), &task)
}

/// What the restore script checks; the installation UUID of the backup, or the script's log.
async fn check_backup(bytes: Bytes) -> Result<String, String> {
    if Compression::detect(&bytes) != Some(Compression::Gzip) {
        return Err("host-restore: the backup is not gzip-compressed".to_owned());
    }
    let reader = DecompressingReader::new(std::io::Cursor::new(bytes), Compression::Gzip)
        .map_err(|e| format!("host-restore: {e}"))?;
    let mut tar = TarReader::new(reader);
    let fail = |e: TarError| format!("host-restore: the backup is not a valid tar: {e}");
    let mut installation = None;
    while let Some(entry) = tar.next_entry().await.map_err(fail)? {
        if entry.name == "etc/xensource-inventory" {
            let text = tar.read_body(&entry, 1 << 20).await.map_err(fail)?;
            installation = String::from_utf8_lossy(&text).lines().find_map(|line| {
                line.strip_prefix("INSTALLATION_UUID=")
                    .map(|v| v.trim_matches('\'').to_owned())
            });
        }
    }
    tar.drain_to_end().await.map_err(fail)?;
    installation.ok_or_else(|| {
        "host-restore: the backup holds no etc/xensource-inventory naming an INSTALLATION_UUID"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_xapis_curve() {
        assert!(progress_after(0).abs() < 1e-12);
        assert!((progress_after(1) - 0.9 * (1.0 - (-0.1f64).exp())).abs() < 1e-12);
        assert!((progress_after(10) - 0.568_908_5).abs() < 1e-6);
        assert!(progress_after(50) < 0.9 && progress_after(1000) <= 0.9);
    }

    #[tokio::test]
    async fn a_backup_passes_the_restore_check_and_garbage_does_not() {
        let files = vec![
            (
                "etc/xensource-inventory",
                b"INSTALLATION_UUID='abc'\n".to_vec(),
            ),
            ("etc/hostname", b"h\n".to_vec()),
        ];
        let archive = gzip_tar(&files).await.unwrap();
        assert_eq!(archive, gzip_tar(&files).await.unwrap(), "deterministic");
        assert_eq!(check_backup(archive.clone()).await.unwrap(), "abc");
        let cut = archive.slice(..archive.len() / 2);
        assert!(check_backup(cut).await.is_err());
        assert!(
            check_backup(Bytes::from_static(b"plain text"))
                .await
                .unwrap_err()
                .contains("not gzip")
        );
        let no_inventory = gzip_tar(&files[1..]).await.unwrap();
        assert!(
            check_backup(no_inventory)
                .await
                .unwrap_err()
                .contains("INSTALLATION_UUID")
        );
    }
}
