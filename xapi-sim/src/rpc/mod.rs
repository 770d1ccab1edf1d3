//! The RPC layer: one entry point for both wire protocols, from a method name and positional
//! parameters to a value or a XAPI failure.
//!
//! The order of checks is xapi's: the method must exist (`MESSAGE_METHOD_UNKNOWN`), then the
//! number of parameters must match (`MESSAGE_PARAMETER_COUNT_MISMATCH`, counted without the
//! session; trailing parameters that the datamodel marks optional may be left out and take
//! their type's empty value, and surplus ones after them are ignored), then the session must be
//! valid (`SESSION_INVALID`), then each parameter must have its declared type
//! (`FIELD_TYPE_ERROR`). `Async.` calls return a task at once and run in the background.
//! Messages the datamodel marks removed answer `MESSAGE_REMOVED` once the count and the
//! session are checked.

pub(crate) mod appliance;
pub(crate) mod args;
pub(crate) mod device_create;
pub(crate) mod dr_storage;
pub(crate) mod dr_task;
pub(crate) mod event;
pub(crate) mod event_legacy;
pub(crate) mod generic;
pub(crate) mod ha;
pub(crate) mod host;
pub(crate) mod host_memory;
pub(crate) mod licence;
pub(crate) mod metadata_cache;
pub(crate) mod query;
pub(crate) mod rbac;
pub(crate) mod recover;
pub(crate) mod removed;
pub(crate) mod session;
pub(crate) mod sr;
pub(crate) mod sr_probe;
pub(crate) mod storage_motion;
pub(crate) mod task;
pub(crate) mod vdi;
pub(crate) mod vdi_copy;
pub(crate) mod vif_move;
pub(crate) mod vm;
pub(crate) mod vm_devices;
pub(crate) mod vm_placement;
pub(crate) mod vtpm;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::api::meta::{ClassMeta, MessageMeta, Ty};
use xapi_core::wire::{Failure, Value};

use crate::api_error::{failure, field_type_error, method_unknown, session_invalid};
use crate::model::coerce::coerce;
use crate::model::defaults::zero_value;
use crate::pool::Pool;

/// A resolved call, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The class.
    pub(crate) class: &'static ClassMeta,
    /// The message.
    pub(crate) message: &'static MessageMeta,
    /// The session the call runs in (`None` for login calls).
    pub(crate) session: Option<String>,
    /// The arguments after the session, coerced to their declared types.
    pub(crate) args: Vec<Value>,
}

impl Call {
    /// `Class.message`.
    pub(crate) fn name(&self) -> String {
        format!("{}.{}", self.class.name, self.message.name)
    }
}

/// Run one RPC call: `method` as it came on the wire, with its positional parameters.
pub(crate) async fn call(
    pool: &Arc<Pool>,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, Failure> {
    if method == "system.listMethods" {
        return Ok(list_methods(pool));
    }
    let (is_async, name) = match method.strip_prefix("Async.") {
        Some(rest) => (true, rest),
        None => (false, method),
    };
    let (class_name, message_name) = name.split_once('.').ok_or_else(|| method_unknown(method))?;
    if let Some(count) = removed::removed_message(class_name, message_name) {
        return removed_call(pool, name, count, &params);
    }
    let class = pool
        .class(class_name)
        .ok_or_else(|| method_unknown(method))?;
    if message_name == "get_all_records_where" && !is_async {
        return records_where(pool, class, method, &params);
    }
    let message = class
        .messages
        .iter()
        .find(|m| m.name == message_name)
        .ok_or_else(|| method_unknown(method))?;
    if is_async && !message.is_async {
        return Err(method_unknown(method));
    }
    let takes_session = message
        .params
        .first()
        .is_some_and(|p| p.name == "session_id");
    check_parameter_count(name, message, takes_session, params.len())?;
    if let Some(failed) = pool.faults.take_call_failure(name) {
        // a fault armed with `Faults::fail_call`: the call fails before it does anything
        return if is_async {
            task::start_detached(pool, method, message.result, move || Err(failed))
        } else {
            Err(failed)
        };
    }
    let foreign = match (takes_session, params.first()) {
        (true, Some(Value::String(handle))) => pool.foreign(handle).map(|f| (handle.clone(), f)),
        _ => None,
    };
    if let Some((handle, foreign)) = foreign {
        return call_foreign(pool, &foreign, handle, class, message, method, params).await;
    }
    let mut params = params.into_iter();
    let session = if takes_session {
        let handle = match params.next() {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        check_session(pool, &handle)?;
        rbac::check(&pool.db(), &handle, class.name, message.name)?;
        Some(handle)
    } else {
        None
    };
    let declared = &message.params[usize::from(takes_session)..];
    // surplus parameters of a message with defaults are ignored, as xapi's dispatcher does
    let mut args = params
        .zip(declared)
        .map(|(value, param)| coerce(value, &param.ty).ok_or_else(|| field_type_error(param.name)))
        .collect::<Result<Vec<_>, _>>()?;
    // parameters added in later releases may be left out, as xapi fills them with defaults
    let given = args.len();
    args.extend(declared[given..].iter().map(|param| zero_value(&param.ty)));
    let call = Call {
        class,
        message,
        session,
        args,
    };
    if is_async {
        task::start_async(pool, call)
    } else {
        execute(pool, call).await
    }
}

/// A message the datamodel marks removed, called synchronously or not: xapi checks the
/// parameter count and the session, then answers `MESSAGE_REMOVED []`.
fn removed_call(pool: &Pool, name: &str, count: usize, params: &[Value]) -> Result<Value, Failure> {
    if params.len() != count + 1 {
        return Err(parameter_count_mismatch(name, count, params.len(), true));
    }
    let handle = match params.first() {
        Some(Value::String(handle)) => handle.as_str(),
        _ => "",
    };
    if pool.foreign(handle).is_none() {
        check_session(pool, handle)?;
    }
    Err(failure(ErrorCode::MessageRemoved, [] as [&str; 0]))
}

/// xapi's arity rule: a message without default parameters takes exactly its mandatory ones;
/// one with defaults takes at least them (those left out get defaults, surplus ones are
/// ignored). Otherwise `MESSAGE_PARAMETER_COUNT_MISMATCH [method; expected; received]`, both
/// counts leaving out the session, `method` without its `Async.` prefix (xapi's generated
/// dispatcher, gen_server.ml).
fn check_parameter_count(
    name: &str,
    message: &MessageMeta,
    takes_session: bool,
    given: usize,
) -> Result<(), Failure> {
    let required = message.params.iter().filter(|p| p.required).count();
    let has_defaults = message.params.iter().any(|p| !p.required);
    let fits = if has_defaults {
        given >= required
    } else {
        given == required
    };
    if fits {
        return Ok(());
    }
    let mandatory = required - usize::from(takes_session);
    Err(parameter_count_mismatch(
        name,
        mandatory,
        given,
        takes_session,
    ))
}

/// `MESSAGE_PARAMETER_COUNT_MISMATCH [method; expected; received]`: `expected` leaves out the
/// session already; `given` counts every parameter on the wire, so the session is taken off
/// it, as xapi does, even when none came (which reads `-1`).
fn parameter_count_mismatch(
    name: &str,
    expected: usize,
    given: usize,
    takes_session: bool,
) -> Failure {
    let received = i64::try_from(given).unwrap_or(i64::MAX) - i64::from(takes_session);
    failure(
        ErrorCode::MessageParameterCountMismatch,
        [name.to_owned(), expected.to_string(), received.to_string()],
    )
}

/// A call made with a session from `VDI.open_database`: it reads the foreign database; the
/// session is read-only, so only getters, `event.from` and `session.logout` are allowed.
async fn call_foreign(
    pool: &Arc<Pool>,
    foreign: &Arc<Pool>,
    handle: String,
    class: &'static ClassMeta,
    message: &'static MessageMeta,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, Failure> {
    if class.name == "session" && matches!(message.name, "logout" | "local_logout") {
        pool.remove_foreign(&handle);
        return Ok(Value::String(String::new()));
    }
    if recover::handles(class.name, message.name) {
        if method.starts_with("Async.") {
            let (foreign, target) = (Arc::clone(foreign), Arc::clone(pool));
            let (class_name, name) = (class.name, message.name);
            return task::start_detached(pool, method, message.result, move || {
                recover::handle(&foreign, &target, class_name, name, &params)
            });
        }
        return recover::handle(foreign, pool, class.name, message.name, &params);
    }
    let is_read =
        message.name.starts_with("get_") || (class.name == "event" && message.name == "from");
    if !is_read {
        return Err(failure(
            ErrorCode::RbacPermissionDenied,
            [
                method,
                "the read-only session of VDI.open_database cannot make changes",
            ],
        ));
    }
    Box::pin(call(foreign, method, params)).await
}

/// `<class>.get_all_records_where(session, expr)`, hidden from the datamodel but served by
/// xapi for every class; read-only sessions of `VDI.open_database` query their database.
fn records_where(
    pool: &Pool,
    class: &ClassMeta,
    method: &str,
    params: &[Value],
) -> Result<Value, Failure> {
    let [handle, expression] = params else {
        let name = method.strip_prefix("Async.").unwrap_or(method);
        return Err(parameter_count_mismatch(name, 1, params.len(), true));
    };
    let Value::String(handle) = handle else {
        return Err(session_invalid(""));
    };
    let Value::String(expression) = expression else {
        return Err(field_type_error("expr"));
    };
    if let Some(foreign) = pool.foreign(handle) {
        return query::records_where(&foreign.db(), class.name, expression);
    }
    check_session(pool, handle)?;
    query::records_where(&pool.db(), class.name, expression)
}

/// Check a session handle, honouring the `SESSION_INVALID after N calls` fault.
fn check_session(pool: &Pool, handle: &str) -> Result<(), Failure> {
    let mut db = pool.db();
    if !db.exists("session", handle) {
        return Err(session_invalid(handle));
    }
    if pool.faults.take_session_invalid() {
        // as after a toolstack restart: the session is gone for good
        db.destroy("session", handle)?;
        return Err(session_invalid(handle));
    }
    Ok(())
}

/// Run a resolved call to completion.
pub(crate) async fn execute(pool: &Arc<Pool>, call: Call) -> Result<Value, Failure> {
    let name = call.name();
    let result = match (call.class.name, call.message.name) {
        ("session", _) => session::handle(pool, &call),
        ("task", "cancel" | "create" | "destroy") => task::handle(pool, &call),
        ("event", _) => event::handle(pool, &call).await,
        ("host", message) if host::handles(message) => Some(host::handle(pool, &call)),
        ("VM", _) if vm::handles(call.message.name) => vm::handle(pool, &call).await,
        ("VM", _) if vm_devices::handles(call.message.name) => {
            Some(vm_devices::handle(pool, &call))
        }
        ("VM", _) if vm_placement::handles(call.message.name) => {
            Some(vm_placement::handle(pool, &call))
        }
        (class, message) if device_create::handles(class, message) => {
            Some(device_create::handle(&mut pool.db(), class, &call.args))
        }
        (class, message) if storage_motion::handles(class, message) => {
            Some(storage_motion::handle(pool, &call))
        }
        ("VDI", _) if vdi::handles(call.message.name) => vdi::handle(pool, &call),
        ("VDI", _) if vdi_copy::handles(call.message.name) => Some(vdi_copy::handle(pool, &call)),
        (class, message) if vif_move::handles(class, message) => {
            Some(vif_move::handle(&mut pool.db(), &call.args))
        }
        (class, message) if sr::handles(class, message) => sr::handle(pool, &call),
        (class, message) if dr_storage::handles(class, message) => dr_storage::handle(pool, &call),
        (class, message) if ha::handles(class, message) => Some(ha::handle(pool, &call)),
        ("VM_appliance", _) if appliance::handles(call.message.name) => {
            appliance::handle(pool, &call).await
        }
        _ => None,
    };
    match result {
        Some(result) => result,
        None => generic::handle(&mut pool.db(), &call)
            .unwrap_or_else(|| Err(failure(ErrorCode::NotImplemented, [name]))),
    }
    .map(|value| {
        if call.message.result == Ty::Void {
            Value::String(String::new())
        } else {
            value
        }
    })
}

/// Every method the server answers, for `system.listMethods`.
fn list_methods(pool: &Pool) -> Value {
    let mut names = vec![Value::String("system.listMethods".to_owned())];
    for class in pool.classes {
        for message in class.messages {
            names.push(Value::String(format!("{}.{}", class.name, message.name)));
            if message.is_async {
                names.push(Value::String(format!(
                    "Async.{}.{}",
                    class.name, message.name
                )));
            }
        }
    }
    Value::Array(names)
}
