//! Restoring a VM restore point: the XVA is rebuilt from the repository's chunks (every chunk
//! verified as it is read, by [`crate::xva_io`], which also writes XVA files) and sent with
//! `PUT /import` to the chosen SR, as a new VM (new UUIDs and MAC addresses, as xapi's import
//! gives them) or, with [`RestoreOptions::overwrite`], in place of the VM it was taken from.
//!
//! The restore point was taken from a snapshot; its `ova.xml` is rewritten so that the import
//! makes the VM it came from, not a snapshot: `is_a_snapshot` and `is_a_template` off, the
//! source VM's name (or the one asked for).
//!
//! xapi refuses chunked uploads, so the rebuilt XVA is first written to a temporary file to
//! learn its length (all-zero chunks are left out, so it is about the size of the data); then
//! that file is uploaded and removed.
//!
//! Options beyond the plain restore:
//! - **register only** ([`RestoreOptions::register_only`]): only the `ova.xml` is sent, to
//!   `PUT /import_metadata` (with `dry_run=true` first: xapi checks it and looks the disks up,
//!   creating nothing); the VM's disks are VDIs already in the pool (named by
//!   [`RegisterOnly::disks`], else found by xapi through their SR and location), left as they
//!   are. It is for a VM whose record is gone: over an existing VM, xapi's version rule
//!   refuses it (`VM_TO_IMPORT_IS_NOT_NEWER_VERSION`; restore the whole VM instead), as
//!   `force`, which would skip a disk not found, is not sent.
//! - **replaced disks**: xapi's `restore=true` import destroys the replaced VM with its VBDs
//!   and VIFs but leaves its VDIs. After a successful overwrite they are destroyed (those the
//!   restored VM does not use), or kept and reported with
//!   [`RestoreOptions::keep_replaced_disks`].
//! - **start** ([`RestoreOptions::start`]).
//!
//! A failed restore removes what it created: xapi's import removes its own objects when its
//! task fails; anything left that carries this restore's task in `other_config["import_task"]`
//! is removed here, and a VM restored but failing to start is removed with its new disks.
//! [`EngineError::RestoreFailed`] then lists exactly what was removed, and what could not be.

use std::io::Cursor;

use tokio::io::{AsyncSeekExt, BufWriter};
use xapi_core::api::{Sr, Task, Vdi, Vm};
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::Ref;

use crate::EngineError;
use crate::cleanup::{Removal, disks_of, remove_vdis, remove_vm};
use crate::engine_error::xapi;
use crate::format::xva::WriteOptions;
use crate::repo::{Manifest, Repository};
use crate::xva_io::{as_source_vm, metadata_tar, xva_with_ova};

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The SR the disks go to (default: the pool's default SR).
    pub sr: Option<Ref<Sr>>,
    /// A name for the restored VM (default: the source VM's).
    pub name_label: Option<String>,
    /// Restore in place of the source VM: its UUID and MAC addresses come back, the existing
    /// VM (which must be halted) is replaced (`/import?restore=true`). Without it the restore
    /// is a new VM with new UUIDs and MACs.
    pub overwrite: bool,
    /// After a successful overwrite, keep the replaced VM's disks (listed in
    /// [`RestoreOutcome::replaced_disks_kept`]) instead of destroying them.
    pub keep_replaced_disks: bool,
    /// Register the VM only (`/import_metadata`): no disk data is sent, the VM is attached to
    /// disks already in the pool.
    pub register_only: Option<RegisterOnly>,
    /// Start the VM once restored.
    pub start: bool,
}

/// Which existing disks a register-only restore attaches.
#[derive(Debug, Clone, Default)]
pub struct RegisterOnly {
    /// `(VDI UUID in the restore point, UUID of the VDI in the pool)` pairs, sent as xapi's
    /// `vdi:<from>=<to>` arguments. A disk not named here is looked for by xapi on the SR with
    /// the restore point's SR UUID at the VDI's location; one not found fails the restore
    /// (`VDI_LOCATION_MISSING`).
    pub disks: Vec<(String, String)>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// The restored VM.
    pub vm: Ref<Vm>,
    /// Its UUID.
    pub uuid: String,
    /// The replaced VM's disks destroyed after the overwrite (`VDI <uuid>`).
    pub replaced_disks_removed: Vec<String>,
    /// The replaced VM's disks kept (asked for, still in use, or failing to be destroyed, with
    /// the reason).
    pub replaced_disks_kept: Vec<String>,
    /// The VM was started.
    pub started: bool,
}

/// Restores `manifest` (a VM restore point); the restored VM's reference. See
/// [`restore_vm_outcome`] for what else it did.
pub async fn restore_vm(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<Ref<Vm>, EngineError> {
    restore_vm_outcome(session, repo, manifest, options)
        .await
        .map(|outcome| outcome.vm)
}

/// Restores `manifest` (a VM restore point) as [`RestoreOptions`] say; what it did.
pub async fn restore_vm_outcome(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<RestoreOutcome, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(restore(session, repo, manifest, options)).await
}

async fn restore(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<RestoreOutcome, EngineError> {
    let ova = crate::xva_io::read_ova(repo, manifest).await?;
    let replaced_disks = if options.overwrite {
        replaceable(session, manifest).await?
    } else {
        Vec::new()
    };
    let ova = as_source_vm(
        manifest,
        ova,
        options.name_label.as_deref(),
        options.overwrite,
    );
    let task = session
        .create_task("xapi-backup restore", "PUT /import")
        .await
        .map_err(xapi("task.create"))?;
    let imported = match &options.register_only {
        None => import_xva(session, repo, manifest, &ova, options, &task).await,
        Some(register) => import_metadata(session, &ova, options, register, &task).await,
    };
    let vm = match imported {
        Ok(vm) => vm,
        Err(cause) => return Err(Box::pin(after_failed_import(session, &task, cause)).await),
    };
    let uuid = String::from(
        session
            .vm()
            .get_uuid(&vm)
            .await
            .map_err(xapi("VM.get_uuid"))?,
    );
    let mut outcome = RestoreOutcome {
        vm,
        uuid,
        replaced_disks_removed: Vec::new(),
        replaced_disks_kept: Vec::new(),
        started: false,
    };
    if options.start {
        if let Err(error) = session.vm().start(&outcome.vm, false, false).await {
            let removal = if options.register_only.is_some() {
                // the disks were there before: only the VM record goes
                remove_record(session, &outcome.vm).await
            } else {
                remove_vm(session, &outcome.vm).await
            };
            return Err(EngineError::RestoreFailed {
                cause: Box::new(xapi("VM.start")(error)),
                removed: removal.removed,
                left: removal.left,
            });
        }
        outcome.started = true;
    }
    settle_replaced_disks(session, &mut outcome, replaced_disks, options).await;
    Ok(outcome)
}

/// The whole XVA, rebuilt into a spool file, to `PUT /import`; the new VM.
async fn import_xva(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    ova: &crate::format::xva::ova_xml::OvaXml,
    options: &RestoreOptions,
    task: &Ref<Task>,
) -> Result<Ref<Vm>, EngineError> {
    let fail = |step: &'static str| {
        move |source: crate::Error| EngineError::Backup {
            step,
            source: Box::new(source),
        }
    };
    let spool = tempfile::tempfile().map_err(|e| fail("creating the spool file")(io(e)))?;
    let mut spool = tokio::fs::File::from_std(spool);
    let options_xva = WriteOptions {
        keepalive: None,
        ..WriteOptions::default()
    };
    let length = {
        let mut writer = BufWriter::new(&mut spool);
        let xva = xva_with_ova(repo, manifest, ova, options_xva).await?;
        crate::xva_io::drain(xva, &mut writer).await?
    };
    spool
        .rewind()
        .await
        .map_err(|e| fail("rewinding the spool file")(io(e)))?;
    let sr = options.sr.as_ref().map(|sr| sr.as_str().to_owned());
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(sr) = &sr {
        query.push(("sr_id", sr));
    }
    if options.overwrite {
        // force: the replaced VM has the restore point's version (a snapshot keeps it), which
        // xapi's version rule would refuse; the power state was checked above
        query.extend([("restore", "true"), ("force", "true")]);
    }
    session
        .put_seekable("/import", &query, Some(task), spool, length)
        .await
        .map_err(xapi("PUT /import"))?;
    first_vm(session, task).await
}

/// The `ova.xml` alone to `PUT /import_metadata`; the new VM.
async fn import_metadata(
    session: &SessionHandle,
    ova: &crate::format::xva::ova_xml::OvaXml,
    options: &RestoreOptions,
    register: &RegisterOnly,
    task: &Ref<Task>,
) -> Result<Ref<Vm>, EngineError> {
    let tar = metadata_tar(ova)?;
    let length = tar.len() as u64;
    let mapping: Vec<(String, String)> = register
        .disks
        .iter()
        .map(|(from, to)| (format!("vdi:{from}"), to.clone()))
        .collect();
    let mut query: Vec<(&str, &str)> = mapping
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if options.overwrite {
        // no `force`: with it xapi would skip a disk it cannot find (and its VBD) silently
        query.push(("restore", "true"));
    }
    // xapi's dry run first: the same checks and disk look-ups, nothing created
    let dry_task = session
        .create_task("xapi-backup register (dry run)", "PUT /import_metadata")
        .await
        .map_err(xapi("task.create"))?;
    let mut dry_query = query.clone();
    dry_query.push(("dry_run", "true"));
    session
        .put_seekable(
            "/import_metadata",
            &dry_query,
            Some(&dry_task),
            Cursor::new(tar.clone()),
            length,
        )
        .await
        .map_err(xapi("PUT /import_metadata?dry_run=true"))?;
    TaskHandle::<Vec<Ref<Vm>>>::new(session.clone(), dry_task)
        .wait()
        .await
        .map_err(xapi("the import_metadata dry run"))?;
    session
        .put_seekable(
            "/import_metadata",
            &query,
            Some(task),
            Cursor::new(tar),
            length,
        )
        .await
        .map_err(xapi("PUT /import_metadata"))?;
    first_vm(session, task).await
}

/// The first VM of an import task's result.
async fn first_vm(session: &SessionHandle, task: &Ref<Task>) -> Result<Ref<Vm>, EngineError> {
    let vms: Vec<Ref<Vm>> = TaskHandle::new(session.clone(), task.clone())
        .wait()
        .await
        .map_err(xapi("the import task"))?;
    vms.into_iter()
        .next()
        .ok_or_else(|| EngineError::Unexpected("the import made no VM".into()))
}

/// After a failed import: removes any VM that still carries this restore's task (xapi's own
/// clean-up normally leaves none) with its disks, and says what was removed.
async fn after_failed_import(
    session: &SessionHandle,
    task: &Ref<Task>,
    cause: EngineError,
) -> EngineError {
    let mut removal = Removal::default();
    match session.vm().get_all_records().await {
        Ok(vms) => {
            for (vm, record) in vms {
                let ours = record
                    .other_config
                    .get("import_task")
                    .is_some_and(|t| t.as_str() == task.as_str());
                if ours {
                    let done = remove_vm(session, &vm).await;
                    removal.removed.extend(done.removed);
                    removal.left.extend(done.left);
                }
            }
        }
        Err(error) => removal
            .left
            .push(format!("(unknown: VM.get_all_records failed: {error})")),
    }
    EngineError::RestoreFailed {
        cause: Box::new(cause),
        removed: removal.removed,
        left: removal.left,
    }
}

/// Destroys a VM record only (its disks stay).
async fn remove_record(session: &SessionHandle, vm: &Ref<Vm>) -> Removal {
    let mut removal = Removal::default();
    let name = session
        .vm()
        .get_uuid(vm)
        .await
        .map_or_else(|_| vm.as_str().to_owned(), String::from);
    match session.vm().destroy(vm).await {
        Ok(()) => removal.removed.push(format!("VM {name}")),
        Err(error) => removal.left.push(format!("VM {name}: VM.destroy: {error}")),
    }
    removal
}

/// Destroys the replaced VM's disks that the restored VM does not use, or keeps them.
async fn settle_replaced_disks(
    session: &SessionHandle,
    outcome: &mut RestoreOutcome,
    replaced: Vec<(Ref<Vdi>, String)>,
    options: &RestoreOptions,
) {
    let in_use = disks_of(session, &outcome.vm).await.unwrap_or_default();
    let mut to_remove = Vec::new();
    for (vdi, uuid) in replaced {
        if in_use.contains(&vdi) {
            outcome
                .replaced_disks_kept
                .push(format!("VDI {uuid} (used by the restored VM)"));
        } else if options.keep_replaced_disks {
            outcome.replaced_disks_kept.push(format!("VDI {uuid}"));
        } else {
            to_remove.push(vdi);
        }
    }
    let mut removal = Removal::default();
    remove_vdis(session, &to_remove, &mut removal).await;
    outcome.replaced_disks_removed = removal.removed;
    outcome.replaced_disks_kept.extend(removal.left);
}

/// Refuses an overwrite while the VM to replace runs (xapi would skip it silently with
/// `force`), before anything is sent; the disks of the VM to replace (none if it is gone).
async fn replaceable(
    session: &SessionHandle,
    manifest: &Manifest,
) -> Result<Vec<(Ref<Vdi>, String)>, EngineError> {
    let Some(source) = &manifest.vm else {
        return Err(EngineError::Unexpected(format!(
            "restore point {} names no VM to restore over",
            manifest.id
        )));
    };
    let existing = match session.vm().get_by_uuid(&source.uuid).await {
        Ok(vm) => vm,
        // gone: the restore brings it back
        Err(xapi_core::Error::Api(failure))
            if failure.code == xapi_core::api::ErrorCode::UuidInvalid =>
        {
            return Ok(Vec::new());
        }
        Err(error) => return Err(xapi("VM.get_by_uuid")(error)),
    };
    let state = session
        .vm()
        .get_power_state(&existing)
        .await
        .map_err(xapi("VM.get_power_state"))?;
    if state != xapi_core::api::VmPowerState::Halted {
        return Err(EngineError::Unexpected(format!(
            "VM {} ({}) is {state}: shut it down before restoring over it",
            source.name_label, source.uuid
        )));
    }
    let mut disks = Vec::new();
    for vdi in disks_of(session, &existing)
        .await
        .map_err(xapi("reading the replaced VM's disks"))?
    {
        let uuid = session
            .vdi()
            .get_uuid(&vdi)
            .await
            .map_err(xapi("VDI.get_uuid"))?;
        disks.push((vdi, String::from(uuid)));
    }
    Ok(disks)
}

fn io(error: std::io::Error) -> crate::Error {
    crate::Error::Io {
        operation: "restoring a VM",
        source: error,
    }
}
