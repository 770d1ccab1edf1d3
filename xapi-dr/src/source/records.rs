//! A foreign database read in bulk through the typed views: one `get_all_records` per class
//! (pool, host, SR, VDI, VBD, VIF, network, VM_appliance, VM), no per-object getter.

use std::collections::BTreeMap;

use xapi_core::client::SessionHandle;
use xapi_core::wire::Value;

use crate::Error;
use crate::metadata::views::{
    HostView, NetworkView, PoolView, SrView, VbdView, VdiView, View, VifView, VmApplianceView,
    VmView,
};
use crate::metadata::{PoolViews, RedoLogGeneration};

/// Every record of `V`'s class, as views, in reference order.
async fn all_records<V: View>(session: &SessionHandle) -> Result<Vec<V>, Error> {
    let method = format!("{}.get_all_records", V::TABLE);
    let records: BTreeMap<String, Value> = session.call(&method, ()).await?;
    records
        .iter()
        .map(|(reference, record)| V::from_record(reference, record).map_err(Error::from))
        .collect()
}

/// The views of the database `session` is bound to (a `VDI.open_database` session), with the
/// generation and schema version read from the VDI's framing (the API has neither).
pub async fn read_pool_views(
    session: &SessionHandle,
    framing: &RedoLogGeneration,
) -> Result<PoolViews, Error> {
    let (pools, hosts, srs, vdis, vbds, vifs, networks, vapps, vms) = futures::try_join!(
        all_records::<PoolView>(session),
        all_records::<HostView>(session),
        all_records::<SrView>(session),
        all_records::<VdiView>(session),
        all_records::<VbdView>(session),
        all_records::<VifView>(session),
        all_records::<NetworkView>(session),
        all_records::<VmApplianceView>(session),
        all_records::<VmView>(session),
    )?;
    let pool = pools.into_iter().next();
    let master_name = pool
        .as_ref()
        .and_then(|p| hosts.iter().find(|h| h.reference == p.master))
        .map(|host| host.name_label.clone())
        .unwrap_or_default();
    Ok(PoolViews {
        pool,
        master_name,
        srs,
        vdis,
        vbds,
        vifs,
        networks,
        vapps,
        vms,
        generation: framing.final_generation,
        schema_version: format!(
            "{}.{}",
            framing.manifest.schema_major, framing.manifest.schema_minor
        ),
    })
}
