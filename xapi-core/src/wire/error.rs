//! Errors of the sans-IO codecs.

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Malformed input.
    Syntax(String),
}

/// A decode failure, with the byte offset in the input where it was detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decode error at byte {offset}: {kind:?}")]
pub struct DecodeError {
    /// Byte offset in the input.
    pub offset: u64,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

/// An encode failure (a value serde cannot express in XAPI's type system).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encode error: {0}")]
pub struct EncodeError(pub String);
