//! Host memory as xapi accounts it for placement (`Memory_check`): a host's free memory is its
//! `host_metrics.memory_total` less the host's own `memory_overhead` and what its resident VMs
//! take; a VM needs its `memory_dynamic_max` (its `memory_static_max` when that is unset) plus
//! its `memory_overhead`. `VM.start` refuses a host the VM does not fit on with
//! `HOST_NOT_ENOUGH_FREE_MEMORY [needed; available]`; `host.compute_free_memory` answers the
//! free memory, and `host_metrics.memory_free` follows every start and shutdown. A host without
//! a metrics row has no limit.

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use crate::api_error::failure;
use crate::model::store::Db;

/// The memory `vm` needs to start, in bytes.
pub(crate) fn vm_start_memory(db: &Db, vm: &str) -> i64 {
    let field = |name: &str| db.int_field("VM", vm, name).unwrap_or(0);
    let dynamic_max = field("memory_dynamic_max");
    let main = if dynamic_max > 0 {
        dynamic_max
    } else {
        field("memory_static_max")
    };
    main.saturating_add(field("memory_overhead"))
}

/// The `host_metrics` row of `host`, when it has one.
fn metrics_of(db: &Db, host: &str) -> Option<String> {
    db.str_field("host", host, "metrics")
        .ok()
        .filter(|m| db.exists("host_metrics", m))
}

/// The free memory of `host` in bytes (`None` when it has no metrics row: no limit).
pub(crate) fn free_memory(db: &Db, host: &str) -> Option<i64> {
    let metrics = metrics_of(db, host)?;
    let total = db
        .int_field("host_metrics", &metrics, "memory_total")
        .ok()?;
    let overhead = db.int_field("host", host, "memory_overhead").unwrap_or(0);
    let used: i64 = db
        .refs_field("host", host, "resident_VMs")
        .unwrap_or_default()
        .iter()
        .filter(|vm| {
            db.str_field("VM", vm, "power_state")
                .is_ok_and(|s| s != "Halted")
        })
        .map(|vm| vm_start_memory(db, vm))
        .sum();
    Some(total - overhead - used)
}

/// `HOST_NOT_ENOUGH_FREE_MEMORY [needed; available]` when `vm` does not fit on `host`.
pub(crate) fn assert_fits(db: &Db, vm: &str, host: &str) -> Result<(), Failure> {
    let Some(available) = free_memory(db, host) else {
        return Ok(());
    };
    let needed = vm_start_memory(db, vm);
    if needed > available {
        return Err(failure(
            ErrorCode::HostNotEnoughFreeMemory,
            [needed.to_string(), available.to_string()],
        ));
    }
    Ok(())
}

/// Write every host's free memory into its `host_metrics.memory_free`.
pub(crate) fn refresh(db: &mut Db) {
    for host in db.refs("host").unwrap_or_default() {
        let (Some(metrics), Some(free)) = (metrics_of(db, &host), free_memory(db, &host)) else {
            continue;
        };
        if db.int_field("host_metrics", &metrics, "memory_free").ok() != Some(free) {
            let _ = db.set_field("host_metrics", &metrics, "memory_free", Value::Int(free));
        }
    }
}
