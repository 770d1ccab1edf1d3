//! `session.*`: login as root (or as the read-only user of `rbac`) with the pool's password,
//! logout, and the session record.

use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::Call;
use super::args;
use super::generic::{self, fields};
use crate::api_error::{failure, session_invalid};
use crate::model::store::Db;
use crate::pool::Pool;
use crate::timestamp;

/// Handle a `session.*` call (`None`: not a session call the simulator implements specially).
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    Some(match call.message.name {
        "login_with_password" | "slave_local_login_with_password" => login(pool, &call.args),
        "logout" | "local_logout" => {
            let handle = call.session.as_deref().unwrap_or_default();
            super::event_legacy::forget(pool, handle);
            logout(&mut pool.db(), handle)
        }
        _ => return generic::handle(&mut pool.db(), call),
    })
}

/// Check the credentials and create a session.
fn login(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let user = args::string(a, 0)?;
    let password = args::string(a, 1)?;
    let is_known = user == "root" || user == super::rbac::READ_ONLY_USER;
    if !is_known || password != pool.password {
        return Err(failure(
            ErrorCode::SessionAuthenticationFailed,
            [user.as_str(), "Authentication failure"],
        ));
    }
    let originator = args::string(a, 3).unwrap_or_default();
    let mut db = pool.db();
    let master = master_host(&db);
    let mut session = fields([
        ("this_host", Value::String(master)),
        ("last_active", timestamp::now()),
        ("pool", Value::Bool(false)),
        ("is_local_superuser", Value::Bool(true)),
        ("auth_user_name", Value::String(user.clone())),
        ("originator", Value::String(originator)),
    ]);
    if user != "root" {
        for (field, value) in super::rbac::read_only_session_fields(&db, pool.classes)? {
            session.insert(field.to_owned(), value);
        }
    }
    db.create("session", session).map(Value::String)
}

/// Destroy a session.
fn logout(db: &mut Db, handle: &str) -> Result<Value, Failure> {
    db.destroy("session", handle)
        .map_err(|_| session_invalid(handle))?;
    Ok(Value::String(String::new()))
}

/// The pool master's reference (the null reference when the pool has no pool object yet).
pub(crate) fn master_host(db: &Db) -> String {
    db.refs("pool")
        .ok()
        .and_then(|pools| pools.into_iter().next())
        .and_then(|pool| db.str_field("pool", &pool, "master").ok())
        .unwrap_or_else(|| crate::model::defaults::NULL_REF.to_owned())
}
