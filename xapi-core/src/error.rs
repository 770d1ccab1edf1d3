//! The one error type of xapi-core.

use crate::wire::{DecodeError, EncodeError, Failure};

/// Everything that can go wrong talking to XAPI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// XAPI answered with a failure.
    #[error("xapi failure {}: {:?}", .0.code.as_str(), .0.params)]
    Api(Failure),
    /// A response could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}
