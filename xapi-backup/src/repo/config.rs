//! The `config` object: format version, chunk size, hash, compression and encryption of a
//! repository. It is the one object stored in clear (JSON): it holds no data, only public
//! parameters and the repository's keys wrapped under the key-encryption key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::crypto::KeyDerivation;
use super::error::RepoError;

/// The repository format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The name of the config object.
pub(super) const CONFIG_OBJECT: &str = "config";
/// The chunk size: the XVA chunk grid (1 MiB), a multiple of the 64 KiB changed-block grid.
pub const CHUNK_SIZE: u32 = 1024 * 1024;

/// The repository's parameters, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RepoConfig {
    /// The format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// 16 random bytes in hex, unique to this repository (bound into the wrapped keys).
    pub repository_id: String,
    /// When the repository was created.
    pub created_at: DateTime<Utc>,
    /// Bytes per chunk of disk data ([`CHUNK_SIZE`]).
    pub chunk_size: u32,
    /// How chunks are named.
    pub hash: HashAlgorithm,
    /// How chunk bodies are compressed.
    pub compression: CompressionConfig,
    /// Encryption at rest, if chosen at creation.
    pub encryption: Option<EncryptionConfig>,
}

/// The content hash naming chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlgorithm {
    /// BLAKE3, 256 bits.
    Blake3,
    /// BLAKE3 in keyed mode with the repository's secret id key: names reveal nothing.
    Blake3Keyed,
}

/// Compression of chunk bodies (and of manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
pub enum CompressionConfig {
    /// Stored as is.
    None,
    /// A zstd frame with its content checksum; a chunk that does not shrink is stored as is.
    Zstd {
        /// The zstd level (1 to 19; 3 is zstd's default).
        level: i32,
    },
}

impl CompressionConfig {
    /// The zstd level, if compression is on.
    pub fn zstd_level(self) -> Option<i32> {
        match self {
            CompressionConfig::None => None,
            CompressionConfig::Zstd { level } => Some(level),
        }
    }
}

/// Encryption parameters of an encrypted repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionConfig {
    /// The AEAD: always `xchacha20poly1305` in format 1.
    pub aead: String,
    /// How the key-encryption key comes from the user's secret.
    pub key_derivation: KeyDerivation,
    /// The data key and the chunk-id key (32 bytes each), sealed under the key-encryption key:
    /// hex of nonce(24) ‖ ciphertext(64) ‖ tag(16).
    pub wrapped_keys: String,
}

/// The AEAD name in [`EncryptionConfig::aead`].
pub(super) const AEAD_XCHACHA20POLY1305: &str = "xchacha20poly1305";

impl RepoConfig {
    /// The JSON bytes of the config object.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a RepoConfig always serializes")
    }

    /// Parses a config object: the version is checked before anything else, so a repository of
    /// a newer format is an [`RepoError::UnsupportedVersion`] whatever else changed.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RepoError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let version: VersionOnly =
            serde_json::from_slice(bytes).map_err(|err| RepoError::InvalidConfig {
                reason: format!("no format_version: {err}"),
            })?;
        if version.format_version != FORMAT_VERSION {
            return Err(RepoError::UnsupportedVersion {
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let config: RepoConfig =
            serde_json::from_slice(bytes).map_err(|err| RepoError::InvalidConfig {
                reason: err.to_string(),
            })?;
        if config.chunk_size != CHUNK_SIZE {
            return Err(RepoError::InvalidConfig {
                reason: format!(
                    "chunk size {} (format 1 uses {CHUNK_SIZE})",
                    config.chunk_size
                ),
            });
        }
        match (&config.encryption, config.hash) {
            (None, HashAlgorithm::Blake3) => {}
            (Some(enc), HashAlgorithm::Blake3Keyed) if enc.aead == AEAD_XCHACHA20POLY1305 => {}
            (Some(enc), HashAlgorithm::Blake3Keyed) => {
                return Err(RepoError::InvalidConfig {
                    reason: format!("unknown AEAD {:?}", enc.aead),
                });
            }
            _ => {
                return Err(RepoError::InvalidConfig {
                    reason: "an encrypted repository names chunks with keyed BLAKE3, a plain one \
                             with plain BLAKE3"
                        .to_owned(),
                });
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> RepoConfig {
        RepoConfig {
            format_version: FORMAT_VERSION,
            repository_id: "00".repeat(16),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            chunk_size: CHUNK_SIZE,
            hash: HashAlgorithm::Blake3,
            compression: CompressionConfig::Zstd { level: 3 },
            encryption: None,
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = plain();
        assert_eq!(RepoConfig::from_json(&config.to_json()).unwrap(), config);
    }

    #[test]
    fn unknown_version_is_a_typed_error_even_with_unknown_fields() {
        let json = br#"{"format_version": 2, "something_new": true}"#;
        assert!(matches!(
            RepoConfig::from_json(json),
            Err(RepoError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));
    }

    #[test]
    fn other_chunk_sizes_and_mismatched_hashes_are_refused() {
        let mut config = plain();
        config.chunk_size = 4096;
        assert!(matches!(
            RepoConfig::from_json(&config.to_json()),
            Err(RepoError::InvalidConfig { .. })
        ));
        let mut config = plain();
        config.hash = HashAlgorithm::Blake3Keyed;
        assert!(matches!(
            RepoConfig::from_json(&config.to_json()),
            Err(RepoError::InvalidConfig { .. })
        ));
    }
}
