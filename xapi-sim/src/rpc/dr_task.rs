//! `DR_task.create` and `DR_task.destroy` (`xapi_dr_task.ml`).
//!
//! `create(type, device_config, whitelist)`: the DR licence (`LICENCE_RESTRICTION`), an SM
//! driver of `type` with `SR_METADATA` (else `OPERATION_NOT_ALLOWED`), `SR.probe` on the master
//! with `metadata=true` (its errors pass through), then for each listed SR of the whitelist not
//! already known: `SR.introduce`, `PBD.create` and `PBD.plug` on every host (the plug scans the
//! mirror and recomputes `metadata_latest`), and `introduced_by` set to the task. When any of
//! this fails, what the call introduced is undone (PBDs unplugged and destroyed, SRs
//! forgotten, the task destroyed) and the failure is returned. These inner steps count as
//! calls for [`crate::Faults::fail_call`], as xapi makes them through its API.
//!
//! `destroy`: every SR still `introduced_by` the task is unplugged through `PBD.unplug` (so
//! its metadata VDIs leave the cache) and forgotten, then the task goes.

use std::collections::BTreeMap;

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::args;
use super::dr_storage::{forget, introduce, plug, string_map, unplug};
use super::session::master_host;
use super::sr_probe::{listed_srs, probe};
use crate::api_error::failure;
use crate::pool::Pool;

/// `DR_task.create`.
pub(crate) fn create(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let sr_type = args::string(a, 0)?;
    let config = string_map(a.get(1));
    let whitelist = args::strings(a, 2)?;
    let master = {
        let db = pool.db();
        super::licence::assert_dr_allowed(&db)?;
        if crate::model::sm::has_feature(&db, &sr_type, "SR_METADATA") != Some(true) {
            return Err(failure(
                ErrorCode::OperationNotAllowed,
                [format!(
                    "Disaster recovery not supported on SRs of type {sr_type}"
                )],
            ));
        }
        master_host(&db)
    };
    let listing = probe(pool, &master, &config, &sr_type, true)?;
    let task = pool.db().create("DR_task", BTreeMap::new())?;
    let mut introduced = Introduced::default();
    let outcome = introduce_all(
        pool,
        &task,
        &sr_type,
        &config,
        &whitelist,
        &listing,
        &mut introduced,
    );
    match outcome {
        Ok(()) => Ok(Value::String(task)),
        Err(err) => {
            introduced.roll_back(pool);
            if let Err(cleanup) = pool.db().destroy("DR_task", &task) {
                tracing::warn!(code = cleanup.code.as_str(), "DR_task.create clean-up");
            }
            Err(err)
        }
    }
}

/// What a `DR_task.create` has introduced so far.
#[derive(Debug, Default)]
struct Introduced {
    /// SRs introduced, in order.
    srs: Vec<String>,
    /// PBDs created, in order, and whether each was plugged.
    pbds: Vec<(String, bool)>,
}

impl Introduced {
    /// Undo it, as xapi does when `DR_task.create` fails: unplug the PBDs, forget the SRs.
    fn roll_back(self, pool: &Pool) {
        for (pbd, plugged) in self.pbds.iter().rev() {
            if *plugged && let Err(err) = unplug(pool, pbd) {
                tracing::warn!(pbd, code = err.code.as_str(), "DR_task.create roll-back");
            }
        }
        for sr in self.srs.iter().rev() {
            if let Err(err) = forget(pool, sr) {
                tracing::warn!(sr, code = err.code.as_str(), "DR_task.create roll-back");
            }
        }
        // PBDs of an SR that could not be forgotten
        let mut db = pool.db();
        for (pbd, _) in self.pbds {
            if db.exists("PBD", &pbd) {
                let _ = db.destroy("PBD", &pbd);
            }
        }
    }
}

/// Count one inner call: the failure armed for it with `Faults::fail_call`, if due.
fn inner_call(pool: &Pool, method: &str) -> Result<(), Failure> {
    pool.faults.take_call_failure(method).map_or(Ok(()), Err)
}

fn introduce_all(
    pool: &Pool,
    task: &str,
    sr_type: &str,
    config: &BTreeMap<String, String>,
    whitelist: &[String],
    listing: &str,
    introduced: &mut Introduced,
) -> Result<(), Failure> {
    for (uuid, name, description) in listed_srs(listing) {
        if !whitelist.contains(&uuid) || pool.db().by_uuid("SR", &uuid).is_ok() {
            continue;
        }
        inner_call(pool, "SR.introduce")?;
        let made = introduce(
            pool,
            &[
                Value::String(uuid),
                Value::String(name),
                Value::String(description),
                Value::String(sr_type.to_owned()),
                Value::String(String::new()),
                Value::Bool(true),
                Value::Struct(BTreeMap::new()),
            ],
        )?;
        let Value::String(sr) = made else {
            continue;
        };
        introduced.srs.push(sr.clone());
        let hosts = {
            let db = pool.db();
            let master = master_host(&db);
            // the master first, then the other hosts
            let mut hosts = db.refs("host")?;
            hosts.sort_by_key(|h| *h != master);
            hosts
        };
        for host in hosts {
            inner_call(pool, "PBD.create")?;
            let device_config = Value::Struct(
                config
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            );
            let pbd = pool.db().create(
                "PBD",
                BTreeMap::from([
                    ("host".to_owned(), Value::String(host)),
                    ("SR".to_owned(), Value::String(sr.clone())),
                    ("device_config".to_owned(), device_config),
                ]),
            )?;
            introduced.pbds.push((pbd.clone(), false));
            inner_call(pool, "PBD.plug")?;
            plug(pool, &pbd)?;
            if let Some(last) = introduced.pbds.last_mut() {
                last.1 = true;
            }
        }
        pool.db()
            .set_field("SR", &sr, "introduced_by", Value::String(task.to_owned()))?;
    }
    Ok(())
}

/// `DR_task.destroy`.
pub(crate) fn destroy(pool: &Pool, task: &str) -> Result<Value, Failure> {
    let srs = pool.db().refs_field("DR_task", task, "introduced_SRs")?;
    for sr in srs {
        let pbds = pool.db().refs_field("SR", &sr, "PBDs")?;
        for pbd in pbds {
            let attached = matches!(
                pool.db().field("PBD", &pbd, "currently_attached"),
                Ok(Value::Bool(true))
            );
            if attached {
                unplug(pool, &pbd)?;
            }
        }
        forget(pool, &sr)?;
    }
    pool.db().destroy("DR_task", task).map(|()| Value::Nil)
}
