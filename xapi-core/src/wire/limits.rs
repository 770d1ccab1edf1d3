//! Decoder limits.

/// Limits every decoder of this module enforces on untrusted input; past them decoding stops
/// with [`DecodeErrorKind::TooLarge`](super::DecodeErrorKind::TooLarge) or
/// [`DecodeErrorKind::TooDeep`](super::DecodeErrorKind::TooDeep).
///
/// The default accepts 1 GiB and 64 levels: a `VM.get_all_records` of thousands of VMs is tens of
/// megabytes and XAPI values nest a handful of levels deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest response accepted, in bytes.
    pub max_response_bytes: usize,
    /// Deepest nesting of arrays and structs accepted (the XML-RPC envelope struct counts as one).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: 1 << 30,
            max_depth: 64,
        }
    }
}
