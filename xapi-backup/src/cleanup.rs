//! Removing what a restore or a deep verify created: a VM (shut down first if it runs) and
//! its disks, with an exact account of what was removed and what could not be.

use xapi_core::api::{VbdType, Vdi, Vm, VmPowerState};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

/// What a removal did: `VM <uuid>` / `VDI <uuid>` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Removal {
    /// Removed, in order.
    pub removed: Vec<String>,
    /// Not removed, each with the error.
    pub left: Vec<String>,
}

/// The disks (non-CD VDIs) of a VM.
pub(crate) async fn disks_of(
    session: &SessionHandle,
    vm: &Ref<Vm>,
) -> Result<Vec<Ref<Vdi>>, xapi_core::Error> {
    let record = session.vm().get_record(vm).await?;
    let mut disks = Vec::new();
    for vbd in &record.vbds {
        let vbd = session.vbd().get_record(vbd).await?;
        if vbd.r#type != VbdType::Cd && !vbd.vdi.is_null() {
            disks.push(vbd.vdi);
        }
    }
    Ok(disks)
}

/// Shuts `vm` down if needed, destroys it and then its disks (xapi's `VM.destroy` keeps
/// VDIs).
pub(crate) async fn remove_vm(session: &SessionHandle, vm: &Ref<Vm>) -> Removal {
    let mut removal = Removal::default();
    let name = match session.vm().get_uuid(vm).await {
        Ok(uuid) => format!("VM {uuid}"),
        Err(error) => {
            removal.left.push(format!("VM {}: {error}", vm.as_str()));
            return removal;
        }
    };
    let disks = match disks_of(session, vm).await {
        Ok(disks) => disks,
        Err(error) => {
            removal
                .left
                .push(format!("{name}: reading its disks: {error}"));
            return removal;
        }
    };
    if let Ok(state) = session.vm().get_power_state(vm).await
        && state != VmPowerState::Halted
        && let Err(error) = session.vm().hard_shutdown(vm).await
    {
        removal
            .left
            .push(format!("{name}: VM.hard_shutdown: {error}"));
        return removal;
    }
    if let Err(error) = session.vm().destroy(vm).await {
        removal.left.push(format!("{name}: VM.destroy: {error}"));
        return removal;
    }
    removal.removed.push(name);
    remove_vdis(session, &disks, &mut removal).await;
    removal
}

/// Destroys each VDI, recording the outcome.
pub(crate) async fn remove_vdis(session: &SessionHandle, vdis: &[Ref<Vdi>], into: &mut Removal) {
    for vdi in vdis {
        let name = session
            .vdi()
            .get_uuid(vdi)
            .await
            .map_or_else(|_| vdi.as_str().to_owned(), String::from);
        match session.vdi().destroy(vdi).await {
            Ok(()) => into.removed.push(format!("VDI {name}")),
            Err(error) => into.left.push(format!("VDI {name}: VDI.destroy: {error}")),
        }
    }
}
