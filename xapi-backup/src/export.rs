//! Backing up one VM into a repository: snapshot, `GET /export` of the snapshot, every chunk
//! verified as it passes (the XVA reader checks each chunk's checksum member), chunks into the
//! repository (deduplicated), the VM's `ova.xml`, the manifest last; the snapshot and its disks
//! destroyed afterwards, also when the backup fails.
//!
//! Snapshots this module makes carry the tag [`SNAPSHOT_TAG`], so that a later run can find
//! and remove any that a crash left behind ([`remove_leftover_snapshots`]).

use xapi_core::api::{VbdType, Vdi, Vm};
use xapi_core::client::SessionHandle;
use xapi_core::wire::Ref;

pub use crate::engine_error::EngineError;
use crate::engine_error::{backup, xapi};
use crate::format::xva::{ReadOptions, XvaReader};
use crate::repo::{
    Manifest, Repository, RestorePointInfo, RestorePointKind, SourceInfo, VmIdentity,
};

/// The tag on every snapshot a backup takes.
pub const SNAPSHOT_TAG: &str = "xapi-backup:snapshot";

/// What a backup of one VM did.
#[derive(Debug, Clone)]
pub struct VmBackup {
    /// The restore point.
    pub manifest: Manifest,
    /// Bytes of disk data read from the export (non-zero chunks).
    pub bytes_read: u64,
    /// Whether the snapshot was destroyed (a failure to destroy it is logged, and the next
    /// run's sweep removes it).
    pub snapshot_removed: bool,
}

/// Backs up `vm` into `repo`: snapshot (tagged), export, verified chunks into the repository,
/// manifest last, snapshot destroyed with its disks whatever happens.
pub async fn backup_vm(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    job_id: Option<&str>,
) -> Result<VmBackup, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(backup_vm_boxed(session, repo, vm, job_id)).await
}

async fn backup_vm_boxed(
    session: &SessionHandle,
    repo: &Repository,
    vm: &Ref<Vm>,
    job_id: Option<&str>,
) -> Result<VmBackup, EngineError> {
    let record = session
        .vm()
        .get_record(vm)
        .await
        .map_err(xapi("VM.get_record"))?;
    let snapshot = session
        .vm()
        .snapshot(vm, &format!("{} (xapi-backup)", &*record.name_label), &[])
        .await
        .map_err(xapi("VM.snapshot"))?;
    let result = async {
        session
            .vm()
            .add_tags(&snapshot, SNAPSHOT_TAG)
            .await
            .map_err(xapi("VM.add_tags"))?;
        export_snapshot(session, repo, &record, &snapshot, job_id).await
    }
    .await;
    let removed = destroy_snapshot(session, &snapshot).await;
    if let Err(error) = &removed {
        tracing::warn!(%error, "could not remove the backup snapshot; the next run's sweep will");
    }
    let (manifest, bytes_read) = result?;
    Ok(VmBackup {
        manifest,
        bytes_read,
        snapshot_removed: removed.is_ok(),
    })
}

/// The export of `snapshot` (of `vm`) into a new restore point; the manifest and the bytes read
/// (also the incremental runs' fallback when NBD is unreachable).
pub(crate) async fn export_snapshot(
    session: &SessionHandle,
    repo: &Repository,
    vm: &xapi_core::api::VmRecord,
    snapshot: &Ref<Vm>,
    job_id: Option<&str>,
) -> Result<(Manifest, u64), EngineError> {
    let snapshot_record = session
        .vm()
        .get_record(snapshot)
        .await
        .map_err(xapi("VM.get_record"))?;
    let download = session
        .get("/export", &[("ref", snapshot.as_str())], None)
        .await
        .map_err(xapi("GET /export"))?;
    let reader = XvaReader::open(download.into_async_read(), ReadOptions::default())
        .await
        .map_err(backup("reading the export's ova.xml"))?;
    let mut info = RestorePointInfo::new(RestorePointKind::Vm, (*vm.uuid).to_owned());
    info.job_id = job_id.map(str::to_owned);
    info.source = SourceInfo::default();
    info.vm = Some(VmIdentity {
        uuid: (*vm.uuid).to_owned(),
        name_label: (*vm.name_label).to_owned(),
        snapshot_uuid: Some((*snapshot_record.uuid).to_owned()),
        snapshot_name: Some((*snapshot_record.name_label).to_owned()),
        snapshot_time: None,
    });
    // the same path as an XVA file imported into the repository
    let stored = crate::xva_io::store_xva(repo, reader, info).await?;
    Ok((stored.manifest, stored.bytes_read))
}

/// Destroys a snapshot this module took, and its disks (xapi's `VM.destroy` keeps VDIs).
async fn destroy_snapshot(session: &SessionHandle, snapshot: &Ref<Vm>) -> Result<(), EngineError> {
    let record = session
        .vm()
        .get_record(snapshot)
        .await
        .map_err(xapi("VM.get_record"))?;
    let mut disks: Vec<Ref<Vdi>> = Vec::new();
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
    session
        .vm()
        .destroy(snapshot)
        .await
        .map_err(xapi("VM.destroy"))?;
    for vdi in disks {
        session
            .vdi()
            .destroy(&vdi)
            .await
            .map_err(xapi("VDI.destroy"))?;
    }
    Ok(())
}

/// Removes snapshots that an interrupted backup left (tagged [`SNAPSHOT_TAG`]); their number.
pub async fn remove_leftover_snapshots(session: &SessionHandle) -> Result<usize, EngineError> {
    Box::pin(remove_leftovers(session)).await
}

async fn remove_leftovers(session: &SessionHandle) -> Result<usize, EngineError> {
    let vms = session
        .vm()
        .get_all_records()
        .await
        .map_err(xapi("VM.get_all_records"))?;
    let mut removed = 0;
    for (reference, vm) in vms {
        // incremental runs' snapshots (tagged otherwise) are theirs to keep or remove
        if vm.is_a_snapshot
            && vm.tags.iter().any(|t| &**t == SNAPSHOT_TAG)
            && !vm
                .tags
                .iter()
                .any(|t| &**t == crate::incremental::INCREMENTAL_SNAPSHOT_TAG)
        {
            destroy_snapshot(session, &reference).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
