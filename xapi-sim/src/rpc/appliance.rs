//! `VM_appliance.start` and the shutdowns: the appliance's VMs grouped by `VM.order`, groups in
//! ascending order to start and descending order to shut down, the VMs of a group in parallel
//! (each sleeping its own delay inside `VM.start`), then `OPERATION_PARTIALLY_FAILED` if any VM
//! did not reach the target state.

use std::collections::BTreeMap;
use std::sync::Arc;
use xapi_core::api::ErrorCode;

use tokio::task::JoinSet;
use xapi_core::wire::{Failure, Value};

use super::Call;
use super::{args, vm};
use crate::api_error::failure;
use crate::pool::Pool;

/// Whether `message` is one this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(
        message,
        "start" | "clean_shutdown" | "hard_shutdown" | "shutdown"
    )
}

/// What an appliance operation does to each VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Start { paused: bool },
    Shutdown { hard: bool },
}

/// Handle a `VM_appliance` power operation.
pub(crate) async fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    let appliance = match args::string(a, 0) {
        Ok(appliance) => appliance,
        Err(err) => return Some(Err(err)),
    };
    let operation = match call.message.name {
        "start" => Operation::Start {
            paused: args::boolean(a, 1).unwrap_or(false),
        },
        "clean_shutdown" | "shutdown" => Operation::Shutdown { hard: false },
        "hard_shutdown" => Operation::Shutdown { hard: true },
        _ => return None,
    };
    let op_name = format!("VM_appliance.{}", call.message.name);
    Some(
        run(pool, &appliance, operation, &op_name)
            .await
            .map(|()| Value::Nil),
    )
}

async fn run(
    pool: &Arc<Pool>,
    appliance: &str,
    operation: Operation,
    op_name: &str,
) -> Result<(), Failure> {
    let target: &[&str] = match operation {
        Operation::Start { paused: false } => &["Running"],
        Operation::Start { paused: true } => &["Paused"],
        Operation::Shutdown { .. } => &["Halted"],
    };
    let groups = {
        let db = pool.db();
        let mut groups: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for vm in db.refs_field("VM_appliance", appliance, "VMs")? {
            let state = db.str_field("VM", &vm, "power_state")?;
            if !target.contains(&state.as_str()) {
                groups
                    .entry(db.int_field("VM", &vm, "order")?)
                    .or_default()
                    .push(vm);
            }
        }
        groups
    };
    let ordered: Vec<Vec<String>> = match operation {
        Operation::Start { .. } => groups.into_values().collect(),
        Operation::Shutdown { .. } => groups.into_values().rev().collect(),
    };
    let mut failed = Vec::new();
    for group in ordered {
        let mut jobs = JoinSet::new();
        for vm in group {
            let pool = Arc::clone(pool);
            jobs.spawn(async move {
                let _ = match operation {
                    Operation::Start { paused } => vm::start(&pool, &vm, paused, None).await,
                    Operation::Shutdown { hard } => vm::shutdown(&pool, &vm, hard).await,
                };
                vm
            });
        }
        while let Some(joined) = jobs.join_next().await {
            let vm = joined.map_err(|e| failure(ErrorCode::InternalError, [e.to_string()]))?;
            let state = pool.db().str_field("VM", &vm, "power_state")?;
            if !target.contains(&state.as_str()) {
                failed.push(vm);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        failed.sort();
        Err(failure(
            ErrorCode::OperationPartiallyFailed,
            std::iter::once(op_name.to_owned()).chain(failed),
        ))
    }
}
