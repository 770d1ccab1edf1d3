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
use xapi_core::wire::Ref;

use crate::EngineError;
use crate::format::xva::WriteOptions;
use crate::repo::{Manifest, Repository};
use crate::xva_io::{as_source_vm, xva_with_ova};

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
    let ova = crate::xva_io::read_ova(repo, manifest).await?;
    if options.overwrite {
        assert_replaceable(session, manifest).await?;
    }
    let ova = as_source_vm(
        manifest,
        ova,
        options.name_label.as_deref(),
        options.overwrite,
    );
    let spool = tempfile::tempfile().map_err(|e| fail("creating the spool file")(io(e)))?;
    let mut spool = tokio::fs::File::from_std(spool);
    let options_xva = WriteOptions {
        keepalive: None,
        ..WriteOptions::default()
    };
    let length = {
        let mut writer = BufWriter::new(&mut spool);
        let xva = xva_with_ova(repo, manifest, &ova, options_xva).await?;
        let length = crate::xva_io::drain(xva, &mut writer).await?;
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
