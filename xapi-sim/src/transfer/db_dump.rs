//! `GET /pool/xmldbdump`: the pool database in xapi's DB XML form (`xe pool-dump-database`),
//! framed as xapi sends it (HTTP/1.0, `Connection: close`, no length). Restoring such a dump
//! is `db_restore`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use xapi_core::api::meta::Ty;
use xapi_core::wire::Value;
use xapi_dr::metadata::db_xml_bytes;

use super::export::{close_delimited, with_task};
use super::{RequestArgs, complete};
use crate::model::db_form::to_database;
use crate::pool::Pool;
use crate::server::routes::Body;

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
