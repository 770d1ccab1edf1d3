//! Keys and sealing: content hashes (plain or keyed BLAKE3), authenticated encryption
//! (XChaCha20-Poly1305) or a checksum (xxh64) around every object body, key derivation from a
//! passphrase (Argon2id) or a key file, and the wrapping of the repository's keys.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::error::RepoError;
use super::hex;

/// Bytes of an XChaCha20-Poly1305 nonce.
pub(super) const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub(super) const TAG_LEN: usize = 16;
/// Bytes of the xxh64 checksum that ends an unencrypted sealed body.
pub(super) const CHECKSUM_LEN: usize = 8;

/// The first line of a key file.
const KEY_FILE_HEADER: &str = "xapi-backup repository key v1";
/// BLAKE3 `derive_key` context turning a key file's bytes into the key-encryption key.
const KEY_FILE_CONTEXT: &str = "xapi-backup 2026 key file v1 key-encryption key";
/// Associated data of the wrapped keys (followed by the repository id).
const WRAP_AAD: &[u8] = b"xapi-backup repository keys v1";

/// A 32-byte content hash: the name of a chunk.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// The 64 lower-case hex digits of the hash.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text)?;
        Some(ChunkId(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.to_hex())
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Argon2id cost parameters of a passphrase-protected repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second on a current core, and the cost an
    /// attacker pays per guess.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// What opens an encrypted repository.
#[derive(Clone)]
pub enum Secret {
    /// A passphrase, stretched with Argon2id and the salt in the repository's `config`.
    Passphrase(String),
    /// The 32 random bytes of a key file ([`Secret::generate_key_file`], [`Secret::key_file`]).
    KeyFile([u8; 32]),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Passphrase(_) => f.write_str("Secret::Passphrase(<redacted>)"),
            Secret::KeyFile(_) => f.write_str("Secret::KeyFile(<redacted>)"),
        }
    }
}

impl Secret {
    /// Writes a new key file of 32 random bytes at `path` (refusing to overwrite one) and
    /// returns the secret it holds. Keep the file apart from the repository.
    pub fn generate_key_file(path: &Path) -> Result<Self, RepoError> {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let text = format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(&key));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|source| RepoError::Io {
            operation: format!("creating the key file {}", path.display()),
            source,
        })?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|source| RepoError::Io {
            operation: format!("writing the key file {}", path.display()),
            source,
        })?;
        Ok(Secret::KeyFile(key))
    }

    /// Reads a key file written by [`Secret::generate_key_file`].
    pub fn key_file(path: &Path) -> Result<Self, RepoError> {
        let text = std::fs::read_to_string(path).map_err(|source| RepoError::Io {
            operation: format!("reading the key file {}", path.display()),
            source,
        })?;
        let invalid = |reason: &str| RepoError::InvalidKeyFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(invalid("the first line is not the key file header"));
        }
        let key = lines
            .next()
            .and_then(|line| hex::decode(line.trim()))
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| invalid("the second line is not 64 hex digits"))?;
        Ok(Secret::KeyFile(key))
    }

    /// The key-encryption key this secret yields with the repository's KDF settings.
    pub(crate) fn key_encryption_key(&self, kdf: &KeyDerivation) -> Result<[u8; 32], RepoError> {
        match (self, kdf) {
            (Secret::KeyFile(bytes), KeyDerivation::KeyFile) => {
                Ok(blake3::derive_key(KEY_FILE_CONTEXT, bytes))
            }
            (Secret::Passphrase(passphrase), KeyDerivation::Argon2id { params, salt }) => {
                let salt = hex::decode(salt).ok_or_else(|| RepoError::InvalidConfig {
                    reason: "the Argon2id salt is not hex".to_owned(),
                })?;
                let argon_params = argon2::Params::new(
                    params.memory_kib,
                    params.iterations,
                    params.parallelism,
                    Some(32),
                )
                .map_err(|err| RepoError::InvalidConfig {
                    reason: format!("Argon2id parameters: {err}"),
                })?;
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    argon_params,
                );
                let mut kek = [0u8; 32];
                argon
                    .hash_password_into(passphrase.as_bytes(), &salt, &mut kek)
                    .map_err(|err| RepoError::InvalidConfig {
                        reason: format!("Argon2id: {err}"),
                    })?;
                Ok(kek)
            }
            (Secret::KeyFile(_), KeyDerivation::Argon2id { .. }) => Err(RepoError::KeyMismatch {
                reason: "the repository is opened with a passphrase, not a key file",
            }),
            (Secret::Passphrase(_), KeyDerivation::KeyFile) => Err(RepoError::KeyMismatch {
                reason: "the repository is opened with a key file, not a passphrase",
            }),
        }
    }
}

/// How the key-encryption key is derived, as recorded in `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum KeyDerivation {
    /// Argon2id over the passphrase.
    Argon2id {
        /// Cost parameters.
        params: KdfParams,
        /// 16 random bytes, hex.
        salt: String,
    },
    /// BLAKE3 `derive_key` over a key file's 32 bytes.
    KeyFile,
}

impl KeyDerivation {
    /// The derivation for a new repository opened by `secret`, with a fresh salt.
    pub(crate) fn for_secret(secret: &Secret, params: KdfParams) -> Self {
        match secret {
            Secret::KeyFile(_) => KeyDerivation::KeyFile,
            Secret::Passphrase(_) => {
                let mut salt = [0u8; 16];
                OsRng.fill_bytes(&mut salt);
                KeyDerivation::Argon2id {
                    params,
                    salt: hex::encode(&salt),
                }
            }
        }
    }
}

/// The repository's two random keys: one encrypts, one names chunks.
#[derive(Clone)]
pub(crate) struct MasterKeys {
    data: [u8; 32],
    id: [u8; 32],
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKeys(<redacted>)")
    }
}

impl MasterKeys {
    /// Fresh random keys.
    pub(crate) fn generate() -> Self {
        let mut data = [0u8; 32];
        let mut id = [0u8; 32];
        OsRng.fill_bytes(&mut data);
        OsRng.fill_bytes(&mut id);
        MasterKeys { data, id }
    }

    /// The keys encrypted under `kek`: nonce ‖ ciphertext ‖ tag, hex.
    pub(crate) fn wrap(&self, kek: &[u8; 32], repository_id: &str) -> String {
        let mut plain = Vec::with_capacity(64);
        plain.extend_from_slice(&self.data);
        plain.extend_from_slice(&self.id);
        let aad = [WRAP_AAD, repository_id.as_bytes()].concat();
        hex::encode(&seal_aead(kek, &aad, &plain))
    }

    /// The keys from their wrapped form: [`RepoError::WrongKey`] if `kek` does not open them.
    pub(crate) fn unwrap(
        wrapped: &str,
        kek: &[u8; 32],
        repository_id: &str,
    ) -> Result<Self, RepoError> {
        let sealed = hex::decode(wrapped).ok_or_else(|| RepoError::InvalidConfig {
            reason: "the wrapped keys are not hex".to_owned(),
        })?;
        let aad = [WRAP_AAD, repository_id.as_bytes()].concat();
        let plain = open_aead(kek, &aad, &sealed).ok_or(RepoError::WrongKey)?;
        if plain.len() != 64 {
            return Err(RepoError::InvalidConfig {
                reason: format!("the wrapped keys are {} bytes, not 64", plain.len()),
            });
        }
        let mut keys = MasterKeys {
            data: [0; 32],
            id: [0; 32],
        };
        keys.data.copy_from_slice(&plain[..32]);
        keys.id.copy_from_slice(&plain[32..]);
        Ok(keys)
    }
}

/// Seals and opens object bodies, and names chunks: the one place that knows whether the
/// repository is encrypted.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: Option<XChaCha20Poly1305>,
    id_key: Option<[u8; 32]>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("encrypted", &self.is_encrypted())
            .finish()
    }
}

impl Sealer {
    /// An unencrypted repository's sealer: xxh64 checksums, plain BLAKE3 names.
    pub(crate) fn plain() -> Self {
        Sealer {
            cipher: None,
            id_key: None,
        }
    }

    /// An encrypted repository's sealer.
    pub(crate) fn encrypted(keys: &MasterKeys) -> Self {
        Sealer {
            cipher: Some(XChaCha20Poly1305::new(Key::from_slice(&keys.data))),
            id_key: Some(keys.id),
        }
    }

    /// True when bodies are encrypted.
    pub(crate) fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The name of a chunk with this content: BLAKE3, keyed with the id key when encrypted.
    pub(crate) fn chunk_id(&self, data: &[u8]) -> ChunkId {
        let hash = match &self.id_key {
            Some(key) => blake3::keyed_hash(key, data),
            None => blake3::hash(data),
        };
        ChunkId(*hash.as_bytes())
    }

    /// The directory name of a restore point subject under `manifests/<kind>/`: the subject
    /// itself in a plain repository, 32 hex digits of its keyed hash in an encrypted one (so
    /// that names reveal no VM UUIDs).
    pub(crate) fn subject_dir(&self, subject: &str) -> String {
        match &self.id_key {
            Some(key) => {
                let mut hasher = blake3::Hasher::new_keyed(key);
                hasher.update(b"subject\0");
                hasher.update(subject.as_bytes());
                hex::encode(&hasher.finalize().as_bytes()[..16])
            }
            None => subject.to_owned(),
        }
    }

    /// Bytes `seal` adds to a body.
    pub(crate) fn overhead(&self) -> usize {
        if self.is_encrypted() {
            NONCE_LEN + TAG_LEN
        } else {
            CHECKSUM_LEN
        }
    }

    /// Appends the sealed form of `body` to `out`: nonce ‖ ciphertext ‖ tag when encrypted,
    /// body ‖ xxh64(aad ‖ body) otherwise. `aad` binds the body to its place (object name,
    /// frame number).
    pub(crate) fn seal_into(&self, aad: &[u8], body: &[u8], out: &mut Vec<u8>) {
        if let Some(cipher) = &self.cipher {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let sealed = cipher
                .encrypt(&nonce, Payload { msg: body, aad })
                .expect("XChaCha20-Poly1305 encrypts any body under 256 GiB");
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
        } else {
            out.extend_from_slice(body);
            out.extend_from_slice(&checksum(aad, body).to_le_bytes());
        }
    }

    /// What [`Sealer::seal_into`] appends after `body` in an unencrypted repository (its
    /// xxh64 checksum), so that the body can be stored as is, without being copied; `None`
    /// when bodies are encrypted.
    pub(crate) fn plain_trailer(&self, aad: &[u8], body: &[u8]) -> Option<[u8; CHECKSUM_LEN]> {
        (!self.is_encrypted()).then(|| checksum(aad, body).to_le_bytes())
    }

    /// The body of a sealed form, or a reason why it does not open.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, &'static str> {
        if let Some(cipher) = &self.cipher {
            if sealed.len() < NONCE_LEN + TAG_LEN {
                return Err("shorter than a nonce and a tag");
            }
            let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
            cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .map_err(|_| "authentication failed (damaged, moved, or another key)")
        } else {
            if sealed.len() < CHECKSUM_LEN {
                return Err("shorter than its checksum");
            }
            let (body, sum) = sealed.split_at(sealed.len() - CHECKSUM_LEN);
            let expected = u64::from_le_bytes(sum.try_into().expect("8 bytes split off"));
            if checksum(aad, body) == expected {
                Ok(body.to_vec())
            } else {
                Err("xxh64 checksum mismatch")
            }
        }
    }
}

/// xxh64 of `aad ‖ body`.
fn checksum(aad: &[u8], body: &[u8]) -> u64 {
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    hasher.update(aad);
    hasher.update(body);
    hasher.digest()
}

/// nonce ‖ XChaCha20-Poly1305(key, aad, plain).
fn seal_aead(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .expect("XChaCha20-Poly1305 encrypts 64 bytes");
    [nonce.as_slice(), &sealed].concat()
}

/// The inverse of [`seal_aead`], `None` if it does not authenticate.
fn open_aead(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// 16 random bytes as hex: repository ids, restore point suffixes, lock owners.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_seal_detects_a_flipped_byte_and_a_moved_body() {
        let sealer = Sealer::plain();
        let mut sealed = Vec::new();
        sealer.seal_into(b"chunks/aa", b"hello", &mut sealed);
        assert_eq!(sealer.open(b"chunks/aa", &sealed).unwrap(), b"hello");
        assert!(sealer.open(b"chunks/bb", &sealed).is_err());
        sealed[1] ^= 1;
        assert!(sealer.open(b"chunks/aa", &sealed).is_err());
    }

    #[test]
    fn encrypted_seal_hides_the_body_and_rejects_another_key() {
        let keys = MasterKeys::generate();
        let sealer = Sealer::encrypted(&keys);
        let mut sealed = Vec::new();
        sealer.seal_into(b"name", b"secret vTPM state", &mut sealed);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(sealer.open(b"name", &sealed).unwrap(), b"secret vTPM state");
        let other = Sealer::encrypted(&MasterKeys::generate());
        assert!(other.open(b"name", &sealed).is_err());
        assert_ne!(sealer.chunk_id(b"x"), Sealer::plain().chunk_id(b"x"));
        assert_eq!(
            Sealer::plain().chunk_id(b"x").0,
            *blake3::hash(b"x").as_bytes()
        );
    }

    #[test]
    fn wrapped_keys_open_only_with_their_key_encryption_key() {
        let keys = MasterKeys::generate();
        let wrapped = keys.wrap(&[7; 32], "repo1");
        let back = MasterKeys::unwrap(&wrapped, &[7; 32], "repo1").unwrap();
        assert_eq!(back.data, keys.data);
        assert_eq!(back.id, keys.id);
        assert!(matches!(
            MasterKeys::unwrap(&wrapped, &[8; 32], "repo1"),
            Err(RepoError::WrongKey)
        ));
        assert!(matches!(
            MasterKeys::unwrap(&wrapped, &[7; 32], "repo2"),
            Err(RepoError::WrongKey)
        ));
    }

    #[test]
    fn key_files_round_trip_and_malformed_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo.key");
        let Secret::KeyFile(written) = Secret::generate_key_file(&path).unwrap() else {
            panic!("a key file secret")
        };
        let Secret::KeyFile(read) = Secret::key_file(&path).unwrap() else {
            panic!("a key file secret")
        };
        assert_eq!(written, read);
        assert!(
            Secret::generate_key_file(&path).is_err(),
            "never overwritten"
        );
        std::fs::write(&path, "something else\n").unwrap();
        assert!(matches!(
            Secret::key_file(&path),
            Err(RepoError::InvalidKeyFile { .. })
        ));
    }
}
