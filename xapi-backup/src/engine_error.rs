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
