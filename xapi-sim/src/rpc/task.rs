//! Tasks: `Async.*` calls run in the background and report through a task object
//! (`pending` → `success` / `failure` / `cancelled`), plus `task.create`, `task.cancel` and
//! `task.destroy`.

use std::sync::Arc;
use std::time::Duration;
use xapi_core::api::ErrorCode;

use xapi_core::api::meta::Ty;
use xapi_core::wire::{Failure, Value, xmlrpc};

use super::args;
use super::generic::fields;
use super::session::master_host;
use super::{Call, execute};
use crate::api_error::failure;
use crate::model::store::Db;
use crate::pool::Pool;
use crate::timestamp;

/// Start `call` as a task and return the task reference at once.
pub(crate) fn start_async(pool: &Arc<Pool>, call: Call) -> Result<Value, Failure> {
    let task = {
        let mut db = pool.db();
        let master = master_host(&db);
        db.create(
            "task",
            fields([
                (
                    "name_label",
                    Value::String(format!("Async.{}", call.name())),
                ),
                ("status", Value::String("pending".to_owned())),
                ("progress", Value::Double(0.0)),
                ("created", timestamp::now()),
                ("resident_on", Value::String(master)),
                ("allowed_operations", args::text_set(["cancel"])),
            ]),
        )?
    };
    let injected_failure = pool.faults.take_task_failure();
    let result_ty = call.message.result;
    let worker_pool = Arc::clone(pool);
    let worker_task = task.clone();
    let mut running = pool.running();
    let handle = tokio::spawn(async move {
        let outcome = match injected_failure {
            Some(code) => fail_midway(&worker_pool, &worker_task, &code).await,
            None => execute(&worker_pool, call).await,
        };
        finish(&mut worker_pool.db(), &worker_task, outcome, result_ty);
        worker_pool.running().remove(&worker_task);
    });
    running.insert(task.clone(), handle.abort_handle());
    Ok(Value::String(task))
}

/// Run `work` in the background inside a new task of `pool` and return the task reference (for
/// Async calls that do not go through the dispatcher, such as recoveries).
pub(crate) fn start_detached<F>(
    pool: &Arc<Pool>,
    label: &str,
    result_ty: Ty,
    work: F,
) -> Result<Value, Failure>
where
    F: FnOnce() -> Result<Value, Failure> + Send + 'static,
{
    let task = {
        let mut db = pool.db();
        let master = master_host(&db);
        db.create(
            "task",
            fields([
                ("name_label", Value::String(label.to_owned())),
                ("status", Value::String("pending".to_owned())),
                ("progress", Value::Double(0.0)),
                ("created", timestamp::now()),
                ("resident_on", Value::String(master)),
            ]),
        )?
    };
    let worker_pool = Arc::clone(pool);
    let worker_task = task.clone();
    tokio::spawn(async move {
        let outcome = work();
        finish(&mut worker_pool.db(), &worker_task, outcome, result_ty);
    });
    Ok(Value::String(task))
}

/// The injected "fail a task midway" fault: progress reaches 0.5, then the task fails.
async fn fail_midway(pool: &Pool, task: &str, code: &str) -> Result<Value, Failure> {
    let _ = pool
        .db()
        .set_field("task", task, "progress", Value::Double(0.5));
    pool.clock.sleep(Duration::from_millis(100)).await;
    Err(failure(
        ErrorCode::from_code(code),
        ["fault injected by xapi-sim"],
    ))
}

/// Record the outcome of a task, unless it was cancelled meanwhile.
pub(crate) fn finish(db: &mut Db, task: &str, outcome: Result<Value, Failure>, result_ty: Ty) {
    if db.str_field("task", task, "status").as_deref() != Ok("pending") {
        return;
    }
    // the task may have been destroyed while running: then there is nothing to record
    let _ = match outcome {
        Ok(value) => {
            let result = if result_ty == Ty::Void {
                String::new()
            } else {
                xmlrpc::encode_value(&value)
            };
            db.set_field("task", task, "result", Value::String(result))
                .and_then(|()| db.set_field("task", task, "progress", Value::Double(1.0)))
                .and_then(|()| db.set_field("task", task, "finished", timestamp::now()))
                .and_then(|()| {
                    db.set_field("task", task, "status", Value::String("success".into()))
                })
        }
        Err(err) => {
            let info = std::iter::once(err.code.as_str().to_owned()).chain(err.params);
            db.set_field("task", task, "error_info", args::text_set(info))
                .and_then(|()| db.set_field("task", task, "finished", timestamp::now()))
                .and_then(|()| {
                    db.set_field("task", task, "status", Value::String("failure".into()))
                })
        }
    };
}

/// `task.create`, `task.cancel`, `task.destroy`.
pub(crate) fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match call.message.name {
        "create" => {
            let label = args::string(a, 0).unwrap_or_default();
            let description = args::string(a, 1).unwrap_or_default();
            let mut db = pool.db();
            let master = master_host(&db);
            db.create(
                "task",
                fields([
                    ("name_label", Value::String(label)),
                    ("name_description", Value::String(description)),
                    ("status", Value::String("pending".to_owned())),
                    ("progress", Value::Double(0.0)),
                    ("created", timestamp::now()),
                    ("resident_on", Value::String(master)),
                    ("allowed_operations", args::text_set(["cancel"])),
                ]),
            )
            .map(Value::String)
        }
        "cancel" => args::string(a, 0).and_then(|task| cancel(pool, &task)),
        "destroy" => args::string(a, 0).and_then(|task| {
            if let Some(handle) = pool.running().remove(&task) {
                handle.abort();
            }
            pool.db().destroy("task", &task).map(|()| Value::Nil)
        }),
        _ => return None,
    })
}

/// Cancel a pending task: its work stops and it ends `cancelled` with `TASK_CANCELLED`.
fn cancel(pool: &Pool, task: &str) -> Result<Value, Failure> {
    let mut db = pool.db();
    let status = db.str_field("task", task, "status")?;
    let cancellable = db
        .refs_field("task", task, "allowed_operations")?
        .iter()
        .any(|op| op == "cancel");
    if status != "pending" || !cancellable {
        return Err(failure(
            ErrorCode::OperationNotAllowed,
            [format!("task {task} is {status} and cannot be cancelled")],
        ));
    }
    if let Some(handle) = pool.running().remove(task) {
        handle.abort();
    }
    db.set_field(
        "task",
        task,
        "error_info",
        args::text_set([ErrorCode::TaskCancelled.as_str(), task]),
    )?;
    db.set_field("task", task, "finished", timestamp::now())?;
    db.set_field("task", task, "allowed_operations", Value::Array(Vec::new()))?;
    db.set_field(
        "task",
        task,
        "status",
        Value::String("cancelled".to_owned()),
    )?;
    Ok(Value::Nil)
}
