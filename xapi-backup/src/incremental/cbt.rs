//! Turning changed-block tracking on and off for the disks of a VM (`VDI.enable_cbt`,
//! `VDI.disable_cbt`): incremental backups are opt-in per VM.
//!
//! **CBT blocks storage motion**: xapi refuses to move a CBT-enabled disk to another SR
//! (`VDI.pool_migrate`, `VM.migrate_send` with storage, answered `VDI_CBT_ENABLED`). Disable CBT
//! before such a move; the log restarts when it is enabled again, so the next incremental run
//! of the VM is a full one (its report says why).

use xapi_core::api::{VbdType, Vdi, Vm};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

use crate::engine_error::{EngineError, xapi};

/// The disks (not CDs, not empty drives) of a VM, in VBD order.
pub(crate) async fn disks_of(
    session: &SessionHandle,
    vm: &Ref<Vm>,
) -> Result<Vec<Ref<Vdi>>, EngineError> {
    let record = session
        .vm()
        .get_record(vm)
        .await
        .map_err(xapi("VM.get_record"))?;
    let mut disks = Vec::new();
    for vbd in &record.vbds {
        let vbd = session
            .vbd()
            .get_record(vbd)
            .await
            .map_err(xapi("VBD.get_record"))?;
        if vbd.r#type != VbdType::Cd && !vbd.vdi.is_null() {
            disks.push(vbd.vdi);
        }
    }
    Ok(disks)
}

/// Enables CBT on every disk of `vm` (idempotent); the disks on which it was off.
///
/// Remember that CBT blocks storage motion of these disks (module documentation).
pub async fn enable_cbt(
    session: &SessionHandle,
    vm: &Ref<Vm>,
) -> Result<Vec<Ref<Vdi>>, EngineError> {
    Box::pin(set_cbt(session, vm, true)).await
}

/// Disables CBT on every disk of `vm` (idempotent): storage motion is allowed again, and the
/// next incremental run of the VM is a full one. The disks on which it was on.
pub async fn disable_cbt(
    session: &SessionHandle,
    vm: &Ref<Vm>,
) -> Result<Vec<Ref<Vdi>>, EngineError> {
    Box::pin(set_cbt(session, vm, false)).await
}

async fn set_cbt(
    session: &SessionHandle,
    vm: &Ref<Vm>,
    enabled: bool,
) -> Result<Vec<Ref<Vdi>>, EngineError> {
    let mut changed = Vec::new();
    for vdi in disks_of(session, vm).await? {
        let now = session
            .vdi()
            .get_cbt_enabled(&vdi)
            .await
            .map_err(xapi("VDI.get_cbt_enabled"))?;
        if now == enabled {
            continue;
        }
        if enabled {
            session
                .vdi()
                .enable_cbt(&vdi)
                .await
                .map_err(xapi("VDI.enable_cbt"))?;
        } else {
            session
                .vdi()
                .disable_cbt(&vdi)
                .await
                .map_err(xapi("VDI.disable_cbt"))?;
        }
        changed.push(vdi);
    }
    Ok(changed)
}
