//! Errors of the sans-IO codecs.

use std::fmt;

/// Offset used internally for an error whose position is not known yet; the decoders replace it
/// with the position of the value being decoded before the error leaves them.
pub(crate) const UNKNOWN_OFFSET: u64 = u64::MAX;

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Malformed input (XML or JSON syntax, wrong nesting, stray bytes).
    Syntax(String),
    /// The input ended in the middle of a document.
    UnexpectedEof,
    /// An element or token other than the one the grammar requires at this place.
    Unexpected {
        /// What the decoder was looking for.
        expected: &'static str,
        /// What it found instead.
        found: String,
    },
    /// A number that does not parse as the type asked for.
    InvalidNumber {
        /// The text of the number.
        text: String,
        /// The type it was decoded as (`i64`, `f64`, ...).
        ty: &'static str,
    },
    /// A `<boolean>` or boolean text other than `0`, `1`, `true`, `false`.
    InvalidBool(String),
    /// A datetime in none of the accepted forms.
    InvalidDateTime(String),
    /// Malformed `<base64>` content.
    InvalidBase64(String),
    /// A DTD (`<!DOCTYPE ...>`): refused, it is the door to entity-expansion attacks.
    DoctypeNotAllowed,
    /// An entity reference other than the five predefined ones and character references.
    UnknownEntity(String),
    /// The input is larger than [`Limits::max_response_bytes`](super::Limits).
    TooLarge {
        /// The size of the input.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Arrays and structs are nested deeper than [`Limits::max_depth`](super::Limits).
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// An XML-RPC `<fault>` instead of the XAPI envelope (a protocol-level error, not a XAPI
    /// failure).
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
    /// The response envelope lacks a member it needs (`Status`, `Value`, `ErrorDescription`,
    /// `result`, `error`, `id`, `method`, ...).
    MissingMember(&'static str),
    /// A `Status` other than `Success` or `Failure`.
    InvalidStatus(String),
    /// A failure whose error description is empty (no error code).
    EmptyFailure,
    /// The value does not fit the type asked for (serde's message: invalid type, missing field,
    /// unknown variant, ...).
    Mismatch(String),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(msg) => write!(f, "malformed input: {msg}"),
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::Unexpected { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::InvalidNumber { text, ty } => write!(f, "invalid number {text:?} for {ty}"),
            Self::InvalidBool(text) => write!(f, "invalid boolean {text:?}"),
            Self::InvalidDateTime(text) => write!(f, "invalid datetime {text:?}"),
            Self::InvalidBase64(msg) => write!(f, "invalid base64: {msg}"),
            Self::DoctypeNotAllowed => f.write_str("DOCTYPE declarations are not allowed"),
            Self::UnknownEntity(name) => write!(f, "unknown entity &{name};"),
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "input of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            Self::TooDeep { limit } => write!(f, "nesting deeper than the limit of {limit}"),
            Self::Fault { code, message } => write!(f, "XML-RPC fault {code}: {message}"),
            Self::MissingMember(name) => write!(f, "missing member {name:?}"),
            Self::InvalidStatus(status) => write!(f, "invalid Status {status:?}"),
            Self::EmptyFailure => f.write_str("failure without an error code"),
            Self::Mismatch(msg) => f.write_str(msg),
        }
    }
}

/// A decode failure, with the byte offset in the input where it was detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decode error at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset in the input.
    pub offset: u64,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error of `kind` at byte `offset`.
    pub fn new(offset: u64, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }

    /// An error of `kind` whose offset the decoder fills in later.
    pub(crate) fn unplaced(kind: DecodeErrorKind) -> Self {
        Self::new(UNKNOWN_OFFSET, kind)
    }

    /// Sets the offset if it is not known yet.
    pub(crate) fn placed_at(mut self, offset: u64) -> Self {
        if self.offset == UNKNOWN_OFFSET {
            self.offset = offset;
        }
        self
    }

    /// Whether this is an XML-RPC fault (and not a malformed document).
    pub fn is_fault(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::Fault { .. })
    }
}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::unplaced(DecodeErrorKind::Mismatch(msg.to_string()))
    }
}

/// An encode failure (a value serde cannot express in XAPI's type system).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encode error: {0}")]
pub struct EncodeError(pub String);

impl serde::ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}
