//! Hooks run around a VM's snapshot: before it (flush an application, freeze a database;
//! XAPI's quiesced snapshot was removed from the API) and after it (thaw). A hook is a command
//! or an async callback; a failing pre-snapshot hook stops that VM's backup before anything is
//! taken, a failing post-snapshot hook stops it after the snapshot (which is then destroyed).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::EngineError;

/// What a hook is told: the VM, and the snapshot once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    /// The VM's UUID.
    pub vm_uuid: String,
    /// The VM's name.
    pub vm_name: String,
    /// The snapshot's UUID (post-snapshot hooks only).
    pub snapshot_uuid: Option<String>,
}

/// The future a callback hook returns: `Err` with a reason stops the backup.
pub type HookFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A pre- or post-snapshot hook.
#[derive(Clone)]
pub enum Hook {
    /// A program and its arguments, run with `XAPI_BACKUP_VM_UUID`, `XAPI_BACKUP_VM_NAME` and
    /// (after the snapshot) `XAPI_BACKUP_SNAPSHOT_UUID` in its environment; a non-zero exit
    /// fails the hook.
    Command(Vec<String>),
    /// An async callback.
    Callback(Arc<dyn Fn(HookContext) -> HookFuture + Send + Sync>),
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(argv) => f.debug_tuple("Command").field(argv).finish(),
            Self::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

impl Hook {
    /// A callback hook from an async closure.
    pub fn callback<F, Fut>(f: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self::Callback(Arc::new(move |context| Box::pin(f(context))))
    }

    /// Run the hook (`which`: `pre-snapshot` or `post-snapshot`, for the error).
    pub async fn run(&self, which: &'static str, context: HookContext) -> Result<(), EngineError> {
        let failed = |reason: String| EngineError::Hook {
            hook: which,
            reason,
        };
        match self {
            Self::Callback(callback) => callback(context).await.map_err(failed),
            Self::Command(argv) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| failed("the command is empty".into()))?;
                let mut command = tokio::process::Command::new(program);
                command
                    .args(args)
                    .env("XAPI_BACKUP_VM_UUID", &context.vm_uuid)
                    .env("XAPI_BACKUP_VM_NAME", &context.vm_name)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                if let Some(snapshot) = &context.snapshot_uuid {
                    command.env("XAPI_BACKUP_SNAPSHOT_UUID", snapshot);
                }
                let status = command
                    .status()
                    .await
                    .map_err(|e| failed(format!("{program}: {e}")))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(failed(format!("{program} exited with {status}")))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> HookContext {
        HookContext {
            vm_uuid: "u".into(),
            vm_name: "n".into(),
            snapshot_uuid: None,
        }
    }

    #[tokio::test]
    async fn commands_fail_on_a_non_zero_exit_and_callbacks_on_err() {
        let ok = Hook::Command(vec![
            "sh".into(),
            "-c".into(),
            "test \"$XAPI_BACKUP_VM_UUID\" = u".into(),
        ]);
        ok.run("pre-snapshot", context()).await.unwrap();
        let bad = Hook::Command(vec!["sh".into(), "-c".into(), "exit 3".into()]);
        let err = bad.run("pre-snapshot", context()).await.unwrap_err();
        assert!(
            err.to_string().contains("pre-snapshot hook failed"),
            "{err}"
        );
        let callback = Hook::callback(|c: HookContext| async move {
            if c.vm_name == "n" {
                Err("frozen".to_owned())
            } else {
                Ok(())
            }
        });
        let err = callback.run("post-snapshot", context()).await.unwrap_err();
        assert!(err.to_string().contains("frozen"), "{err}");
    }
}
