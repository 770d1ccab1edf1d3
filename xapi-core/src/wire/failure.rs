//! A XAPI failure: an error code and its parameters.

use crate::api::ErrorCode;

/// A failure reported by XAPI (`ErrorDescription` / JSON-RPC `error`): the code, then its
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error code.
    pub code: ErrorCode,
    /// The parameters, in wire order.
    pub params: Vec<String>,
}
