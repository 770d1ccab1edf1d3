//! Restoring a VM restore point: the XVA is rebuilt from the repository's chunks (every chunk
//! verified as it is read) and sent with `PUT /import` to the chosen SR, as a new VM (new UUIDs
//! and MAC addresses, as xapi's import gives them).
//!
//! The restore point was taken from a snapshot; its `ova.xml` is rewritten so that the import
//! makes the VM it came from, not a snapshot: `is_a_snapshot` and `is_a_template` off, the
//! source VM's name (or the one asked for).
//!
//! xapi refuses chunked uploads, so the rebuilt XVA is first written to a temporary file to
//! learn its length (all-zero chunks are left out, so it is about the size of the data); then
//! that file is uploaded and removed.

use tokio::io::{AsyncSeekExt, BufWriter};
use xapi_core::api::{Sr, Vm};
use xapi_core::client::{SessionHandle, TaskHandle};
use xapi_core::wire::{OrderedValue, Ref};

use crate::EngineError;
use crate::format::xva::ova_xml::{OvaClass, OvaXml};
use crate::format::xva::{DiskSource, WriteOptions, write_xva};
use crate::repo::{Manifest, Repository, StreamRole};

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
}

/// Sets (or adds) the struct member `name`.
fn set_member(value: &mut OrderedValue, name: &str, new: OrderedValue) {
    if let OrderedValue::Struct(members) = value {
        match members.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = new,
            None => members.push((name.to_owned(), new)),
        }
    }
}

/// The restore point's `ova.xml`, made to describe the VM it was taken from.
fn as_source_vm(
    manifest: &Manifest,
    mut ova: OvaXml,
    name: Option<&str>,
    keep_uuid: bool,
) -> OvaXml {
    let source_name = manifest
        .vm
        .as_ref()
        .map(|vm| vm.name_label.clone())
        .unwrap_or_default();
    let name = name.map_or(source_name, str::to_owned);
    for object in &mut ova.objects {
        if object.class == OvaClass::Vm {
            set_member(
                &mut object.snapshot,
                "is_a_snapshot",
                OrderedValue::Bool(false),
            );
            set_member(
                &mut object.snapshot,
                "is_a_template",
                OrderedValue::Bool(false),
            );
            if !name.is_empty() {
                set_member(
                    &mut object.snapshot,
                    "name_label",
                    OrderedValue::String(name.clone()),
                );
            }
            if keep_uuid && let Some(vm) = &manifest.vm {
                set_member(
                    &mut object.snapshot,
                    "uuid",
                    OrderedValue::String(vm.uuid.clone()),
                );
            }
        }
    }
    ova
}

/// Restores `manifest` (a VM restore point) as a new VM; its reference.
pub async fn restore_vm(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<Ref<Vm>, EngineError> {
    // boxed: the generated calls' futures are large
    Box::pin(restore(session, repo, manifest, options)).await
}

async fn restore(
    session: &SessionHandle,
    repo: &Repository,
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<Ref<Vm>, EngineError> {
    let fail = |step: &'static str| {
        move |source: crate::Error| EngineError::Backup {
            step,
            source: Box::new(source),
        }
    };
    let xml = repo
        .read_ova_xml(manifest)
        .await
        .map_err(fail("reading ova.xml"))?;
    let ova = OvaXml::parse(&xml).map_err(|e| fail("parsing ova.xml")(e.into()))?;
    if options.overwrite {
        assert_replaceable(session, manifest).await?;
    }
    let ova = as_source_vm(
        manifest,
        ova,
        options.name_label.as_deref(),
        options.overwrite,
    );
    let mut disks = Vec::new();
    for stream in manifest
        .streams
        .iter()
        .filter(|s| s.role == StreamRole::Disk)
    {
        disks.push(DiskSource {
            prefix: stream.key.clone(),
            size: stream.size,
            reader: Box::new(
                repo.read_stream(manifest, &stream.key)
                    .await
                    .map_err(fail("opening a disk stream"))?,
            ),
        });
    }
    let spool = tempfile::tempfile().map_err(|e| fail("creating the spool file")(io(e)))?;
    let mut spool = tokio::fs::File::from_std(spool);
    let options_xva = WriteOptions {
        keepalive: None,
        ..WriteOptions::default()
    };
    let length = {
        let mut writer = BufWriter::new(&mut spool);
        let length = write_xva(&ova, disks, options_xva, &mut writer)
            .await
            .map_err(fail("rebuilding the XVA"))?;
        tokio::io::AsyncWriteExt::flush(&mut writer)
            .await
            .map_err(|e| fail("writing the spool file")(io(e)))?;
        length
    };
    spool
        .rewind()
        .await
        .map_err(|e| fail("rewinding the spool file")(io(e)))?;
    let task = session
        .create_task("xapi-backup restore", "PUT /import")
        .await
        .map_err(|e| EngineError::Xapi {
            step: "task.create",
            source: Box::new(e),
        })?;
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
        .put_seekable("/import", &query, Some(&task), spool, length)
        .await
        .map_err(|e| EngineError::Xapi {
            step: "PUT /import",
            source: Box::new(e),
        })?;
    let vms: Vec<Ref<Vm>> = TaskHandle::new(session.clone(), task)
        .wait()
        .await
        .map_err(|e| EngineError::Xapi {
            step: "the import task",
            source: Box::new(e),
        })?;
    vms.into_iter()
        .next()
        .ok_or_else(|| EngineError::Unexpected("the import made no VM".into()))
}

/// Refuses an overwrite while the VM to replace runs (xapi would skip it silently with
/// `force`), before anything is sent.
async fn assert_replaceable(
    session: &SessionHandle,
    manifest: &Manifest,
) -> Result<(), EngineError> {
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
            return Ok(());
        }
        Err(error) => {
            return Err(EngineError::Xapi {
                step: "VM.get_by_uuid",
                source: Box::new(error),
            });
        }
    };
    let state = session
        .vm()
        .get_power_state(&existing)
        .await
        .map_err(|e| EngineError::Xapi {
            step: "VM.get_power_state",
            source: Box::new(e),
        })?;
    if state != xapi_core::api::VmPowerState::Halted {
        return Err(EngineError::Unexpected(format!(
            "VM {} ({}) is {state}: shut it down before restoring over it",
            source.name_label, source.uuid
        )));
    }
    Ok(())
}

fn io(error: std::io::Error) -> crate::Error {
    crate::Error::Io {
        operation: "restoring a VM",
        source: error,
    }
}
