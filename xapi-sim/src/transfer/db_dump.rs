//! `GET /pool/xmldbdump`: the pool database in xapi's DB XML form (`xe pool-dump-database`).

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response};
use xapi_core::api::meta::Ty;
use xapi_core::wire::Value;
use xapi_dr::metadata::db_xml_bytes;

use super::export::with_task;
use super::{RequestArgs, complete};
use crate::model::db_form::to_database;
use crate::pool::Pool;
use crate::server::routes::{Body, full};

/// Answer `GET /pool/xmldbdump`.
pub(crate) fn handle(pool: &Arc<Pool>, parts: &Parts) -> Response<Body> {
    let args = RequestArgs::of(parts);
    let transfer = match super::begin(pool, &args, "pool.dump_database") {
        Ok(transfer) => transfer,
        Err(refusal) => return refusal.response(),
    };
    let xml = db_xml_bytes(&to_database(&pool.db()));
    complete(pool, &transfer.task, Ok(Value::Nil), Ty::Void);
    let length = xml.len();
    let mut response = Response::new(full(xml));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    with_task(response, &transfer.task)
}
