//! Finding mirrored LUNs that hold pool metadata: `SR.probe` on the pool master with
//! `sm_config = {metadata: true}` (reference §8, §12.2 step 2).

use std::collections::BTreeMap;

use xapi_core::client::SessionHandle;
use xapi_core::wire::small_map::SmallMap;
use xapi_core::wire::small_string::SmallString;

use super::DrStorageType;
use super::sr_list::{ProbedSr, parse_sr_list};
use crate::Error;

/// The `sm_config` that asks a probe for SRs holding metadata.
fn metadata_only() -> SmallMap<SmallString, SmallString> {
    std::iter::once((SmallString::from("metadata"), SmallString::from("true"))).collect()
}

/// A device config as the generated call takes it.
pub(crate) fn small_map(config: &BTreeMap<String, String>) -> SmallMap<SmallString, SmallString> {
    config
        .iter()
        .map(|(k, v)| (SmallString::from(k.as_str()), SmallString::from(v.as_str())))
        .collect()
}

/// Lists the SRs holding pool metadata behind `device_config` (an iSCSI target and IQN, an
/// HBA's SCSI id, ...) of storage type `sr_type`, as seen by the master of the pool `session`
/// is logged in to.
///
/// `sr_type` must be `lvmoiscsi` or `lvmohba`, the only storage DR replicates to; any other
/// is refused with [`SourceError::UnsupportedStorageType`](super::SourceError::UnsupportedStorageType)
/// before any call.
pub async fn probe(
    session: &SessionHandle,
    sr_type: &str,
    device_config: &BTreeMap<String, String>,
) -> Result<Vec<ProbedSr>, Error> {
    let sr_type: DrStorageType = sr_type.parse()?;
    let pools = session.pool().get_all().await?;
    let Some(pool) = pools.first() else {
        return Ok(Vec::new());
    };
    let master = session.pool().get_master(pool).await?;
    let answer = session
        .sr()
        .probe(
            &master,
            &small_map(device_config),
            sr_type.as_str(),
            &metadata_only(),
        )
        .await?;
    Ok(parse_sr_list(&answer)?)
}
