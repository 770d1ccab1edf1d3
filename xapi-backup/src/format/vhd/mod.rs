//! VHD images: fixed, dynamic and differencing (reference §6.4).

/// Failures while reading or writing a VHD.
#[derive(Debug, thiserror::Error)]
pub enum VhdError {
    /// Placeholder.
    #[error("vhd: {0}")]
    Other(String),
}
