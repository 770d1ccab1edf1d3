//! The error of the engine's operations (backup, restore, jobs): which step failed and why.

/// What went wrong during a backup or a restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A call to the pool failed.
    #[error("{step}: {source}")]
    Xapi {
        /// What was being done.
        step: &'static str,
        /// The client's error.
        #[source]
        source: Box<xapi_core::Error>,
    },
    /// The XVA stream, the repository or a codec failed.
    #[error("{step}: {source}")]
    Backup {
        /// What was being done.
        step: &'static str,
        /// The error.
        #[source]
        source: Box<crate::Error>,
    },
    /// The exported `ova.xml` does not describe what was asked.
    #[error("{0}")]
    Unexpected(String),
    /// The job was cancelled: the task under way was cancelled, the snapshot destroyed.
    #[error("cancelled")]
    Cancelled,
    /// A pre- or post-snapshot hook failed; the backup stopped before exporting anything.
    #[error("{hook} hook failed: {reason}")]
    Hook {
        /// `pre-snapshot` or `post-snapshot`.
        hook: &'static str,
        /// Its exit status or error.
        reason: String,
    },
}

pub(crate) fn xapi(step: &'static str) -> impl FnOnce(xapi_core::Error) -> EngineError {
    move |source| EngineError::Xapi {
        step,
        source: Box::new(source),
    }
}

pub(crate) fn backup(step: &'static str) -> impl FnOnce(crate::Error) -> EngineError {
    move |source| EngineError::Backup {
        step,
        source: Box::new(source),
    }
}
