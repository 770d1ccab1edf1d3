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
    /// Reading a disk over NBD failed (an incremental or NBD full run; what was stored is kept
    /// for a resumed run when the run keeps resume state).
    #[error("{step}: {source}")]
    Nbd {
        /// What was being done, naming the disk.
        step: String,
        /// The NBD client's error.
        #[source]
        source: Box<crate::incremental::nbd::NbdError>,
    },
    /// The resume state of an incremental run could not be read or written.
    #[error("resume state {}: {source}", path.display())]
    ResumeState {
        /// The state file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A pool database dump did not parse with xapi-dr's reader: it is not stored (backup) or
    /// not sent (restore).
    #[error("the pool database dump {what} does not parse: {source}")]
    InvalidPoolDump {
        /// Which dump (the pool it was read from, or the restore point).
        what: String,
        /// The reader's error.
        #[source]
        source: Box<xapi_dr::Error>,
    },
    /// The request cannot be carried out as asked (nothing was changed on the pool).
    #[error("refused: {reason}")]
    Refused {
        /// What is wrong.
        reason: String,
    },
    /// A restore failed; what it had created was removed (or could not be, and is listed).
    #[error("{cause}; removed what the restore created: {removed:?}{}", left_note(.left))]
    RestoreFailed {
        /// Why the restore failed.
        #[source]
        cause: Box<EngineError>,
        /// The objects removed (`VM <uuid>`, `VDI <uuid>`), in the order removed.
        removed: Vec<String>,
        /// Objects that could not be removed, each with the error.
        left: Vec<String>,
    },
}

fn left_note(left: &[String]) -> String {
    if left.is_empty() {
        String::new()
    } else {
        format!("; could not remove: {left:?}")
    }
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
