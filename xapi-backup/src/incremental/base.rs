//! Bases: the snapshot VDIs an incremental run keeps (data destroyed, CBT metadata kept) so that
//! the next run can ask `VDI.list_changed_blocks(base, new snapshot)`. How a disk finds its base,
//! whether the base still serves, and how a run's snapshot becomes the next base.
//!
//! The links live in `other_config`: the disk names its base ([`SOURCE_BASE_KEY`]); the base
//! names its disk ([`BASE_OF_KEY`]) and the restore point it was read into
//! ([`BASE_RESTORE_POINT_KEY`]), and carries the tag [`BASE_TAG`]. A base is a lone VDI (the
//! snapshot VM is destroyed), so the leftover-snapshot sweeper never meets it.

use xapi_core::api::{ErrorCode, Vdi, VdiRecord};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use super::changed::ChangedBlocks;
use super::report::FullReason;
use crate::engine_error::{EngineError, xapi};
use crate::repo::Manifest;

/// `other_config` key on a disk: the UUID of its base.
pub const SOURCE_BASE_KEY: &str = "xapi-backup:base";
/// `other_config` key on a base: the UUID of the disk it is the base of.
pub const BASE_OF_KEY: &str = "xapi-backup:base-of";
/// `other_config` key on a base: the restore point that holds its data.
pub const BASE_RESTORE_POINT_KEY: &str = "xapi-backup:restore-point";
/// The tag on every base.
pub const BASE_TAG: &str = "xapi-backup:base";

/// What a disk's base allows.
#[derive(Debug)]
pub(crate) enum BasePlan {
    /// Read only the changed blocks; the rest from `previous`'s stream `key`.
    Changed {
        changed: ChangedBlocks,
        previous: Box<Manifest>,
        key: String,
        base: Ref<Vdi>,
    },
    /// Read the whole disk; `base` (if any) is replaced after the run.
    Full {
        reason: FullReason,
        base: Option<Ref<Vdi>>,
    },
}

/// Whether `error` is xapi refusing the call itself (licence, unknown method).
fn is_refusal(error: &xapi_core::Error) -> Option<String> {
    let failure = error.failure()?;
    matches!(
        failure.code,
        ErrorCode::MessageMethodUnknown
            | ErrorCode::LicenceRestriction
            | ErrorCode::MessageRemoved
            | ErrorCode::FeatureRestricted
    )
    .then(|| failure.code.as_str().to_owned())
}

/// The base `source` names, with its record; why there is none otherwise.
async fn find_base(
    session: &SessionHandle,
    source: &VdiRecord,
) -> Result<Result<(Ref<Vdi>, VdiRecord), FullReason>, EngineError> {
    let Some(base_uuid) = source.other_config.get(SOURCE_BASE_KEY) else {
        return Ok(Err(FullReason::FirstRun));
    };
    let Ok(base) = session.vdi().get_by_uuid(base_uuid).await else {
        return Ok(Err(FullReason::BaseMissing {
            base_uuid: base_uuid.to_string(),
        }));
    };
    let record = session
        .vdi()
        .get_record(&base)
        .await
        .map_err(xapi("VDI.get_record"))?;
    if record.other_config.get(BASE_OF_KEY).map(|s| &**s) != Some(&*source.uuid) {
        // a base of another disk (the disk came back from a restore, say): not ours
        return Ok(Err(FullReason::FirstRun));
    }
    Ok(Ok((base, record)))
}

/// Decides how to read the disk `source` (its record) whose new snapshot is `snapshot`, given
/// the VM's restore points in the repository. `cbt_was_off`: CBT was off on the disk when the
/// run began (the run enabled it); a snapshot without CBT is always [`FullReason::CbtOff`].
pub(crate) async fn plan_disk(
    session: &SessionHandle,
    restore_points: &[Manifest],
    source: &VdiRecord,
    snapshot: (&Ref<Vdi>, &VdiRecord),
    cbt_was_off: bool,
) -> Result<BasePlan, EngineError> {
    let base = match find_base(session, source).await? {
        Ok(base) => base,
        Err(reason) => {
            let reason = if snapshot.1.cbt_enabled {
                reason
            } else {
                FullReason::CbtOff
            };
            return Ok(BasePlan::Full { reason, base: None });
        }
    };
    let (base, record) = base;
    let full = |reason| {
        Ok(BasePlan::Full {
            reason,
            base: Some(base.clone()),
        })
    };
    if !snapshot.1.cbt_enabled {
        return full(FullReason::CbtOff);
    }
    if cbt_was_off {
        return full(FullReason::CbtOff);
    }
    if record.virtual_size != snapshot.1.virtual_size {
        return full(FullReason::DiskResized {
            from: record.virtual_size.max(0) as u64,
            to: snapshot.1.virtual_size.max(0) as u64,
        });
    }
    let id = record
        .other_config
        .get(BASE_RESTORE_POINT_KEY)
        .map(ToString::to_string)
        .unwrap_or_default();
    let previous = restore_points.iter().find(|m| m.id.as_str() == id);
    let Some((previous, key)) = previous.and_then(|m| {
        let key = m
            .streams
            .iter()
            .find(|s| s.vdi_uuid.as_deref() == Some(&*record.uuid))?
            .key
            .clone();
        Some((m.clone(), key))
    }) else {
        return full(FullReason::PreviousRestorePointMissing { id });
    };
    let answer = match session.vdi().list_changed_blocks(&base, snapshot.0).await {
        Ok(answer) => answer,
        Err(error) => {
            let reason = match is_refusal(&error) {
                Some(code) => FullReason::ChangedBlocksRefused { code },
                None => FullReason::CbtLogUnusable {
                    error: error.to_string(),
                },
            };
            return full(reason);
        }
    };
    match ChangedBlocks::decode(&answer, snapshot.1.virtual_size.max(0) as u64) {
        Ok(changed) => Ok(BasePlan::Changed {
            changed,
            previous: Box::new(previous),
            key,
            base,
        }),
        Err(error) => full(FullReason::CbtLogUnusable {
            error: error.to_string(),
        }),
    }
}

/// Makes `snapshot_vdi` (the run's snapshot of `source`, read into restore point `id`) the
/// disk's base: data destroyed, linked both ways, tagged; then destroys `old` (the previous base).
pub(crate) async fn keep_as_base(
    session: &SessionHandle,
    source: &Ref<Vdi>,
    snapshot_vdi: &Ref<Vdi>,
    restore_point: &str,
    old: Option<&Ref<Vdi>>,
) -> Result<(), EngineError> {
    let vdi = session.vdi();
    vdi.data_destroy(snapshot_vdi)
        .await
        .map_err(xapi("VDI.data_destroy"))?;
    let source_uuid = vdi.get_uuid(source).await.map_err(xapi("VDI.get_uuid"))?;
    let base_uuid = vdi
        .get_uuid(snapshot_vdi)
        .await
        .map_err(xapi("VDI.get_uuid"))?;
    // the snapshot copied the disk's other_config, its link to the old base included
    for key in [
        SOURCE_BASE_KEY,
        BASE_OF_KEY,
        BASE_RESTORE_POINT_KEY,
        super::run::CBT_ENABLED_BY_RUN,
    ] {
        vdi.remove_from_other_config(snapshot_vdi, key)
            .await
            .map_err(xapi("VDI.remove_from_other_config"))?;
    }
    vdi.add_to_other_config(snapshot_vdi, BASE_OF_KEY, &source_uuid)
        .await
        .map_err(xapi("VDI.add_to_other_config"))?;
    vdi.add_to_other_config(snapshot_vdi, BASE_RESTORE_POINT_KEY, restore_point)
        .await
        .map_err(xapi("VDI.add_to_other_config"))?;
    vdi.add_tags(snapshot_vdi, BASE_TAG)
        .await
        .map_err(xapi("VDI.add_tags"))?;
    vdi.remove_from_other_config(source, SOURCE_BASE_KEY)
        .await
        .map_err(xapi("VDI.remove_from_other_config"))?;
    vdi.add_to_other_config(source, SOURCE_BASE_KEY, &base_uuid)
        .await
        .map_err(xapi("VDI.add_to_other_config"))?;
    if let Some(old) = old
        && old != snapshot_vdi
    {
        forget_base(session, old).await;
    }
    Ok(())
}

/// Destroys an old base; a failure is only logged (the disk no longer points at it).
pub(crate) async fn forget_base(session: &SessionHandle, base: &Ref<Vdi>) {
    if let Err(error) = session.vdi().destroy(base).await {
        tracing::warn!(%error, "could not destroy an old incremental base");
    }
}
