//! Attaching mirrored SRs to the recovery pool with `DR_task.create`, and forgetting them with
//! `DR_task.destroy` (reference §8): the task introduces each whitelisted SR the probe lists,
//! plugs it on every host and waits until its metadata VDIs are scanned.

use std::collections::BTreeMap;

use serde::Serialize;
use xapi_core::api::{DrTask, Sr};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;
use xapi_core::wire::small_string::SmallString;

use super::DrStorageType;
use super::probe::small_map;
use crate::Error;

/// SRs a `DR_task` introduced. Destroy the task ([`IntroducedStorage::destroy`]) to unplug and
/// forget them, unless a recovery needs them (a recovery keeps the SRs of the VMs it brought
/// back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntroducedStorage {
    /// The DR task.
    pub dr_task: Ref<DrTask>,
    /// The SRs it introduced (`DR_task.introduced_SRs`), with their UUIDs.
    pub srs: Vec<IntroducedSr>,
}

/// One SR a `DR_task` introduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntroducedSr {
    /// The SR in the recovery pool.
    pub sr: Ref<Sr>,
    /// Its UUID (the one it has in the source pool).
    pub uuid: String,
}

/// Introduces the SRs of `whitelist` (UUIDs from [`probe`](super::probe)) found behind
/// `device_config` on storage of type `sr_type` (`lvmoiscsi` or `lvmohba`; others are refused
/// before any call), with `DR_task.create`. SRs the pool already has are not introduced again
/// and are not listed.
pub async fn introduce(
    session: &SessionHandle,
    sr_type: &str,
    device_config: &BTreeMap<String, String>,
    whitelist: &[&str],
) -> Result<IntroducedStorage, Error> {
    let sr_type: DrStorageType = sr_type.parse()?;
    let whitelist: Vec<SmallString> = whitelist.iter().map(|u| SmallString::from(*u)).collect();
    let dr_task = session
        .dr_task()
        .create(sr_type.as_str(), &small_map(device_config), &whitelist)
        .await?;
    let mut srs = Vec::new();
    for sr in session.dr_task().get_introduced_srs(&dr_task).await? {
        let uuid = session.sr().get_uuid(&sr).await?.into_string();
        srs.push(IntroducedSr { sr, uuid });
    }
    srs.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    Ok(IntroducedStorage { dr_task, srs })
}

impl IntroducedStorage {
    /// The UUIDs of the introduced SRs.
    pub fn sr_uuids(&self) -> impl Iterator<Item = &str> {
        self.srs.iter().map(|s| s.uuid.as_str())
    }

    /// `DR_task.destroy`: unplugs and forgets every SR the task still lists, then the task.
    pub async fn destroy(self, session: &SessionHandle) -> Result<(), Error> {
        session.dr_task().destroy(&self.dr_task).await?;
        Ok(())
    }
}
