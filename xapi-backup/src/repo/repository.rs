//! [`Repository`]: creating and opening a repository, and the handle every operation hangs on.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;

use super::clock::{Clock, SystemClock};
use super::config::{
    AEAD_XCHACHA20POLY1305, CHUNK_SIZE, CONFIG_OBJECT, CompressionConfig, EncryptionConfig,
    FORMAT_VERSION, HashAlgorithm, RepoConfig,
};
use super::crypto::{KdfParams, KeyDerivation, MasterKeys, Sealer, Secret, random_hex};
use super::error::RepoError;
use super::manifest::{Manifest, RestorePointKind, manifest_object};
use super::store::{Store, Target};

/// How a new repository is made.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Chunk compression (zstd level 3 by default).
    pub compression: CompressionConfig,
    /// Encrypt every object with a key opened by this secret; `None` stores in clear.
    /// Recommended: backups hold vTPM state, NVRAM and disk contents.
    pub encryption: Option<Secret>,
    /// Argon2id costs when the secret is a passphrase.
    pub kdf: KdfParams,
    /// The clock (the system's by default).
    pub clock: Arc<dyn Clock>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            compression: CompressionConfig::Zstd { level: 3 },
            encryption: None,
            kdf: KdfParams::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// How an existing repository is opened.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The secret of an encrypted repository.
    pub secret: Option<Secret>,
    /// The clock (the system's by default).
    pub clock: Arc<dyn Clock>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            secret: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// An open repository: cheap to clone, safe to share between tasks and with other processes
/// writing to the same target.
#[derive(Debug, Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: RepoConfig,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
}

impl Repository {
    /// Creates a repository at `target`: writes its `config` with a conditional create, so that
    /// two creators racing on one target cannot both succeed ([`RepoError::AlreadyExists`]).
    pub async fn create(target: &Target, options: CreateOptions) -> crate::Result<Self> {
        let store = Store::open(target)?;
        let repository_id = random_hex(16);
        let (encryption, sealer, hash) = match &options.encryption {
            None => (None, Sealer::plain(), HashAlgorithm::Blake3),
            Some(secret) => {
                let kdf = KeyDerivation::for_secret(secret, options.kdf);
                let kek = derive_kek(secret.clone(), kdf.clone()).await?;
                let keys = MasterKeys::generate();
                let encryption = EncryptionConfig {
                    aead: AEAD_XCHACHA20POLY1305.to_owned(),
                    key_derivation: kdf,
                    wrapped_keys: keys.wrap(&kek, &repository_id),
                };
                (
                    Some(encryption),
                    Sealer::encrypted(&keys),
                    HashAlgorithm::Blake3Keyed,
                )
            }
        };
        let config = RepoConfig {
            format_version: FORMAT_VERSION,
            repository_id,
            created_at: options.clock.now(),
            chunk_size: CHUNK_SIZE,
            hash,
            compression: options.compression,
            encryption,
        };
        store
            .put_new(CONFIG_OBJECT, Bytes::from(config.to_json()))
            .await?;
        Ok(Repository {
            inner: Arc::new(Inner {
                store,
                config,
                sealer,
                clock: options.clock,
            }),
        })
    }

    /// Opens the repository at `target`: reads `config` (an unknown format version is
    /// [`RepoError::UnsupportedVersion`]) and, if it is encrypted, opens its keys with the
    /// secret ([`RepoError::WrongKey`] if they do not open).
    pub async fn open(target: &Target, options: OpenOptions) -> crate::Result<Self> {
        let store = Store::open(target)?;
        let bytes = match store.get(CONFIG_OBJECT).await {
            Ok(bytes) => bytes,
            Err(RepoError::NotFound { .. }) => {
                return Err(RepoError::NotARepository {
                    location: store.location().to_owned(),
                }
                .into());
            }
            Err(err) => return Err(err.into()),
        };
        let config = RepoConfig::from_json(&bytes)?;
        let sealer = match (&config.encryption, options.secret) {
            (None, None) => Sealer::plain(),
            (None, Some(_)) => {
                return Err(RepoError::KeyMismatch {
                    reason: "the repository is not encrypted: open it without a secret",
                }
                .into());
            }
            (Some(_), None) => {
                return Err(RepoError::KeyMismatch {
                    reason: "the repository is encrypted: a passphrase or key file is needed",
                }
                .into());
            }
            (Some(encryption), Some(secret)) => {
                let kek = derive_kek(secret, encryption.key_derivation.clone()).await?;
                let keys =
                    MasterKeys::unwrap(&encryption.wrapped_keys, &kek, &config.repository_id)?;
                Sealer::encrypted(&keys)
            }
        };
        Ok(Repository {
            inner: Arc::new(Inner {
                store,
                config,
                sealer,
                clock: options.clock,
            }),
        })
    }

    /// The repository's parameters.
    pub fn config(&self) -> &RepoConfig {
        &self.inner.config
    }

    /// The underlying store (for tools and tests that look at objects directly).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The repository's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// True if the repository is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.inner.sealer.is_encrypted()
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// The chunk size in bytes.
    pub fn chunk_size(&self) -> u32 {
        self.inner.config.chunk_size
    }

    /// The object name of a restore point's manifest.
    pub fn manifest_object(&self, manifest: &Manifest) -> String {
        manifest_object(
            manifest.kind,
            &self.inner.sealer.subject_dir(&manifest.subject),
            &manifest.id,
        )
    }

    /// The restore points of `kind`, oldest first. Only restore points with a manifest exist.
    pub async fn list(&self, kind: RestorePointKind) -> crate::Result<Vec<Manifest>> {
        self.list_prefix(&format!("manifests/{}", kind.dir())).await
    }

    /// The restore points of `kind` about `subject` (a VM's UUID for kind VM), oldest first.
    pub async fn list_subject(
        &self,
        kind: RestorePointKind,
        subject: &str,
    ) -> crate::Result<Vec<Manifest>> {
        let dir = self.inner.sealer.subject_dir(subject);
        let mut found = self
            .list_prefix(&format!("manifests/{}/{dir}", kind.dir()))
            .await?;
        found.retain(|m| m.subject == subject);
        Ok(found)
    }

    /// Every restore point of every kind, oldest first.
    pub async fn list_all(&self) -> crate::Result<Vec<Manifest>> {
        self.list_prefix("manifests").await
    }

    /// Reads the manifest object `name`.
    pub async fn read_manifest(&self, name: &str) -> crate::Result<Manifest> {
        let bytes = self.inner.store.get(name).await?;
        Ok(Manifest::decode(name, &self.inner.sealer, &bytes)?)
    }

    /// The names of every manifest object under `prefix`, sorted.
    pub(crate) async fn manifest_names(&self, prefix: &str) -> Result<Vec<String>, RepoError> {
        let mut names: Vec<String> = self
            .inner
            .store
            .list(prefix)
            .map_ok(|info| info.name)
            .try_collect()
            .await?;
        names.sort();
        Ok(names)
    }

    async fn list_prefix(&self, prefix: &str) -> crate::Result<Vec<Manifest>> {
        let mut manifests = Vec::new();
        for name in self.manifest_names(prefix).await? {
            match self.read_manifest(&name).await {
                Ok(manifest) => manifests.push(manifest),
                // Forgotten between the listing and the read.
                Err(crate::Error::Repo(RepoError::NotFound { .. })) => {}
                Err(err) => return Err(err),
            }
        }
        manifests.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(manifests)
    }
}

/// The key-encryption key, derived on the blocking pool (Argon2id is slow on purpose).
async fn derive_kek(secret: Secret, kdf: KeyDerivation) -> Result<[u8; 32], RepoError> {
    tokio::task::spawn_blocking(move || secret.key_encryption_key(&kdf))
        .await
        .map_err(|err| RepoError::Task(err.to_string()))?
}
