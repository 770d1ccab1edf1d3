//! Decoder limits.

/// Limits a decoder enforces on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest response accepted, in bytes.
    pub max_response_bytes: usize,
    /// Deepest nesting of arrays and structs accepted.
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
