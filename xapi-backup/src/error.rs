//! The crate's one error enum.

use crate::format::chunked::ChunkedError;
use crate::format::tar::TarError;
use crate::format::vhd::VhdError;
use crate::format::xva::XvaError;
use crate::format::xva::ova_xml::OvaXmlError;

/// Every failure of `xapi-backup`.
///
/// Format errors keep their rich inner enum (member name, chunk number, byte offset) so that
/// callers can match on them; [`Error::is_corrupt_input`] tells a damaged stream from an IO
/// failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tar layer under an XVA or raw-tar stream is damaged.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// The XVA container or one of its disk streams is damaged or inconsistent.
    #[error(transparent)]
    Xva(#[from] XvaError),
    /// `ova.xml` could not be parsed.
    #[error(transparent)]
    OvaXml(#[from] OvaXmlError),
    /// A VHD image is damaged or unsupported.
    #[error(transparent)]
    Vhd(#[from] VhdError),
    /// A chunked-upload body is damaged.
    #[error(transparent)]
    Chunked(#[from] ChunkedError),
    /// Reading or writing the underlying stream failed.
    #[error("{operation}: {source}")]
    Io {
        /// What was being done, naming the stream: `reading the XVA stream`, `writing the VHD
        /// image`.
        operation: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A repository operation failed (store, damaged object, lock, key).
    #[cfg(feature = "repo")]
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// A background compression task died (panicked or was cancelled).
    #[error("compression task failed: {0}")]
    CompressionTask(String),
}

impl Error {
    /// True when the error comes from damaged or inconsistent input (retrying the same bytes
    /// cannot help), false for IO failures of the underlying stream.
    pub fn is_corrupt_input(&self) -> bool {
        #[cfg(feature = "repo")]
        if let Error::Repo(err) = self {
            return err.is_corruption();
        }
        !matches!(
            self,
            Error::Io { .. } | Error::CompressionTask(_) | Error::Tar(TarError::Io { .. })
        )
    }
}

/// A `map_err` adapter: an I/O error while doing `operation`.
pub(crate) fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { operation, source }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
