//! Configure a pool's metadata replication: which SRs can hold its database, which do, and
//! enabling or disabling it on a set of at most [`MAX_REPLICATION_SRS`] SRs.
//!
//! As XenCenter's "Configure DR" dialog: candidates are the SRs for which
//! `SR.assert_supports_database_replication` succeeds (LVM over iSCSI or HBA: the SM drivers
//! with the `SR_METADATA` feature); an SR "has replication" when it holds a VDI of type
//! `metadata` whose `metadata_of_pool` is this pool; a change disables first, then enables
//! (reference: metadata-vdi §12.8). xapi keeps at most 8 redo logs (`NO_MORE_REDO_LOGS_ALLOWED`
//! for a 9th): asking for more is refused before any call.

use std::collections::BTreeSet;

use serde::Serialize;
use xapi_core::api::{Pool, Sr, VdiRecord, VdiType};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::Error;

/// The most SRs a pool replicates its database to (xapi's `redo_log_max_instances`).
pub const MAX_REPLICATION_SRS: usize = 8;

/// An SR that can hold the pool's replicated database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationCandidate {
    /// The SR.
    pub sr: Ref<Sr>,
    /// Its UUID.
    pub uuid: String,
    /// Its name.
    pub name_label: String,
    /// Its SM type (`lvmoiscsi`, `lvmohba`).
    pub sr_type: String,
    /// Free space in bytes (physical size less utilisation).
    pub free_space: i64,
    /// Whether it holds this pool's metadata VDI (replication is on).
    pub enabled: bool,
    /// Whether that metadata VDI is the newest copy xapi knows (`metadata_latest`).
    pub latest: bool,
}

/// Whether `vdi` is the metadata VDI on `sr` into which `pool` replicates its database.
pub fn holds_replicated_database(vdi: &VdiRecord, sr: &Ref<Sr>, pool: &Ref<Pool>) -> bool {
    vdi.sr == *sr && vdi.r#type == VdiType::Metadata && vdi.metadata_of_pool == *pool
}

/// What [`set_replication`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicationChange {
    /// SR UUIDs on which replication was disabled, in call order.
    pub disabled: Vec<String>,
    /// SR UUIDs on which replication was enabled, in call order.
    pub enabled: Vec<String>,
    /// SR UUIDs that were already as asked.
    pub unchanged: Vec<String>,
}

/// The SRs of the pool that can hold its replicated database, by name, with whether each
/// does. Reads SRs and VDIs in bulk; one `SR.assert_supports_database_replication` per SR.
pub async fn replication_candidates(
    session: &SessionHandle,
) -> Result<Vec<ReplicationCandidate>, Error> {
    let pools = session.pool().get_all().await?;
    let this_pool = pools.into_iter().next().unwrap_or_else(Ref::null);
    let srs = session.sr().get_all_records().await?;
    let vdis = session.vdi().get_all_records().await?;
    let mut candidates = Vec::new();
    for (sr, record) in srs {
        match session.sr().assert_supports_database_replication(&sr).await {
            Ok(()) => {}
            // The SR's driver lacks SR_METADATA (or the SR is not shared): not a candidate.
            Err(xapi_core::Error::Api(_)) => continue,
            Err(other) => return Err(other.into()),
        }
        let metadata = vdis
            .values()
            .find(|vdi| holds_replicated_database(vdi, &sr, &this_pool));
        candidates.push(ReplicationCandidate {
            uuid: (*record.uuid).to_owned(),
            name_label: (*record.name_label).to_owned(),
            sr_type: (*record.r#type).to_owned(),
            free_space: record.physical_size - record.physical_utilisation,
            enabled: metadata.is_some(),
            latest: metadata.is_some_and(|vdi| vdi.metadata_latest),
            sr,
        });
    }
    candidates.sort_by(|a, b| {
        a.name_label
            .cmp(&b.name_label)
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    Ok(candidates)
}

/// Replicate the pool's database to exactly the SRs `wanted` (UUIDs): disable it on the
/// others first, then enable it on the new ones, as XenCenter does.
///
/// Refused before any call: more than [`MAX_REPLICATION_SRS`] SRs, or an SR that is not a
/// candidate (unknown, or its storage cannot hold the database).
pub async fn set_replication(
    session: &SessionHandle,
    wanted: &[&str],
) -> Result<ReplicationChange, Error> {
    let wanted: BTreeSet<&str> = wanted.iter().copied().collect();
    if wanted.len() > MAX_REPLICATION_SRS {
        return Err(Error::TooManyReplicationSrs {
            asked: wanted.len(),
            max: MAX_REPLICATION_SRS,
        });
    }
    let candidates = replication_candidates(session).await?;
    for uuid in &wanted {
        if !candidates.iter().any(|c| c.uuid == *uuid) {
            return Err(Error::NotAReplicationCandidate {
                sr_uuid: (*uuid).to_owned(),
            });
        }
    }
    let mut change = ReplicationChange::default();
    for candidate in candidates.iter().filter(|c| c.enabled) {
        if wanted.contains(candidate.uuid.as_str()) {
            change.unchanged.push(candidate.uuid.clone());
        } else {
            session
                .sr()
                .disable_database_replication(&candidate.sr)
                .await?;
            change.disabled.push(candidate.uuid.clone());
        }
    }
    for candidate in candidates.iter().filter(|c| !c.enabled) {
        if wanted.contains(candidate.uuid.as_str()) {
            session
                .sr()
                .enable_database_replication(&candidate.sr)
                .await?;
            change.enabled.push(candidate.uuid.clone());
        }
    }
    Ok(change)
}
