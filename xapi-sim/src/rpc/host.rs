//! `host.*` messages that are not accessors: the host's clock and its free memory.
//!
//! Clients compare `host.get_servertime` with their own clock to find skew (Xen Orchestra
//! does); the simulated hosts run on this machine's clock, in UTC.
//! `host.compute_free_memory` answers what placement would leave a new VM (`host_memory`).

use xapi_core::wire::{Failure, Value};

use super::{Call, args, host_memory};
use crate::pool::Pool;
use crate::timestamp;

/// Whether `message` is a host message this module implements.
pub(crate) fn handles(message: &str) -> bool {
    matches!(
        message,
        "get_servertime" | "get_server_localtime" | "compute_free_memory"
    )
}

/// Answer a host clock or memory call.
pub(crate) fn handle(pool: &Pool, call: &Call) -> Result<Value, Failure> {
    debug_assert!(handles(call.message.name));
    if call.message.name == "compute_free_memory" {
        let host = args::string(&call.args, 0)?;
        let db = pool.db();
        db.object("host", &host)?;
        return Ok(Value::Int(
            host_memory::free_memory(&db, &host).unwrap_or(0),
        ));
    }
    Ok(timestamp::now())
}
