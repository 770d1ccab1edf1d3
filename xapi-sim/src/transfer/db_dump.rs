//! `GET /pool/xmldbdump`: the pool database in xapi's DB XML form (`xe pool-dump-database`),
//! framed as xapi sends it (HTTP/1.0, `Connection: close`, no length);
//! `PUT /pool/xmldbdump`: restore such a dump (`xe pool-restore-database`, `pool_db_backup.ml`).
//!
//! A restore needs a `Content-Length` (else 400, as xapi). The answer is `200` with `task-id`
//! before the database is read; the outcome is on the task: a document that does not parse is
//! `INTERNAL_ERROR`, a schema version other than the running one (5.909) is
//! `RESTORE_INCOMPATIBLE_VERSION` (`version_check`), a database without a pool and its master is
//! `INTERNAL_ERROR`. `dry_run=true` stops there. A real restore replaces every object of the
//! pool with the dump's and then behaves as the restart xapi does: sessions and tasks are gone
//! (every session, including the caller's, gets `SESSION_INVALID`). The replacement goes
//! through the ordinary store operations, so change subscribers, the state saver and metadata
//! replication see it as a series of changes.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value};
use xapi_dr::metadata::{Database, Manifest, db_xml_bytes, read_db_xml};

use super::export::{close_delimited, with_task};
use super::{RequestArgs, complete};
use crate::api_error::failure;
use crate::model::db_form::to_database;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::server::routes::{Body, full, html_error};

/// Largest database dump accepted by a restore.
const MAX_DUMP: u64 = 1 << 30;

/// Answer `GET /pool/xmldbdump`.
pub(crate) fn handle(pool: &Arc<Pool>, parts: &Parts) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "pool.dump_database") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let xml = Bytes::from(db_xml_bytes(&to_database(&pool.db())));
    complete(pool, &transfer.task, Ok(Value::Nil), Ty::Void);
    // as xapi: HTTP/1.0, no length, the document ends when the connection closes
    let body = StreamBody::new(futures::stream::once(async move {
        Ok::<_, std::io::Error>(Frame::data(xml))
    }));
    let mut response = close_delimited(Response::new(body.boxed_unsync()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    with_task(response, &transfer.task)
}

/// Answer `PUT /pool/xmldbdump`.
pub(crate) async fn restore(pool: &Arc<Pool>, parts: &Parts, body: Incoming) -> Response<Body> {
    let length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(length) = length else {
        return html_error(
            StatusCode::BAD_REQUEST,
            "a database restore needs a Content-Length",
        );
    };
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "pool.restore_database") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let task = transfer.task;
    let dry_run = args.flag("dry_run");
    let outcome = match read_dump(body, length).await {
        Ok(database) => check(&database).map(|()| database),
        Err(err) => Err(err),
    };
    let mut response = match outcome {
        Ok(database) if !dry_run => {
            // the task succeeds, then the "restart" takes it away with every session
            complete(pool, &task, Ok(Value::Nil), Ty::Void);
            replace_database(pool, &database);
            tracing::info!(pool = %pool.name, "database restored: sessions and tasks dropped");
            Response::new(full(Vec::new()))
        }
        Ok(_) => {
            complete(pool, &task, Ok(Value::Nil), Ty::Void);
            Response::new(full(Vec::new()))
        }
        Err(err) => {
            let text = format!("{} {:?}", err.code.as_str(), err.params);
            complete(pool, &task, Err(err), Ty::Void);
            Response::new(full(text))
        }
    };
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    with_task(response, &task)
}

/// The uploaded document, parsed.
async fn read_dump(body: Incoming, length: u64) -> Result<Database, Failure> {
    if length > MAX_DUMP {
        return Err(failure(
            "INTERNAL_ERROR",
            [format!(
                "database dump of {length} bytes exceeds the simulator's limit of {MAX_DUMP}"
            )],
        ));
    }
    let limit = usize::try_from(length).unwrap_or(usize::MAX);
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            failure(
                "INTERNAL_ERROR",
                [format!("reading the database dump: {e}")],
            )
        })?
        .to_bytes();
    read_db_xml(bytes.as_ref())
        .map_err(|e| failure("INTERNAL_ERROR", [format!("database dump: {e}")]))
}

/// `version_check`, then what `prepare_database_for_restore` needs: a pool and its master.
fn check(database: &Database) -> Result<(), Failure> {
    let running = Manifest::default();
    let manifest = &database.manifest;
    if (manifest.schema_major, manifest.schema_minor)
        != (running.schema_major, running.schema_minor)
    {
        tracing::warn!(
            expected = %format!("{}.{}", running.schema_major, running.schema_minor),
            actual = %format!("{}.{}", manifest.schema_major, manifest.schema_minor),
            "pool backup was created with an incompatible product version"
        );
        return Err(failure("RESTORE_INCOMPATIBLE_VERSION", [] as [&str; 0]));
    }
    let master = database
        .rows("pool")
        .next()
        .and_then(|(_, row)| row.get("master"))
        .map(str::to_owned);
    match master {
        Some(master) if database.row("host", &master).is_some() => Ok(()),
        Some(master) => Err(failure(
            "INTERNAL_ERROR",
            [format!(
                "database dump: the pool's master {master} is not in the host table"
            )],
        )),
        None => Err(failure(
            "INTERNAL_ERROR",
            ["database dump: no pool row".to_owned()],
        )),
    }
}

/// Replace every object of the pool with the dump's: all objects of every class go (sessions
/// and tasks too, as after a restart), the dump's rows come back with their references and one-
/// to-many sets are linked again.
fn replace_database(pool: &Pool, database: &Database) {
    let restored = Db::from_database(pool.classes, &pool.name, database);
    let mut db = pool.db();
    let classes: Vec<&'static str> = db.tables().map(|t| t.meta.name).collect();
    for class in &classes {
        let references: Vec<String> = db
            .table(class)
            .map(|t| t.objects.keys().cloned().collect())
            .unwrap_or_default();
        for reference in references {
            if let Err(err) = db.destroy(class, &reference) {
                tracing::warn!(
                    class,
                    reference,
                    code = err.code.as_str(),
                    "restore: destroy"
                );
            }
        }
    }
    for table in restored.tables() {
        for (reference, object) in &table.objects {
            let fields = object
                .fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            if let Err(err) = db.create_with_ref(table.meta.name, reference, fields) {
                tracing::warn!(
                    class = table.meta.name,
                    reference,
                    code = err.code.as_str(),
                    "restore: create"
                );
            }
        }
    }
    // a child created before its parent was not linked: set every reference field again
    // (through set_field, so that the parents' changes are events, unlike a silent load)
    for (relation, child, parent) in db.relation_links() {
        let _ = db.set_field(relation.many_class, &child, relation.many_field, parent);
    }
}
