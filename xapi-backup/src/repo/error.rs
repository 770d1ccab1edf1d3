//! The repository's error enum: what failed, on which object, at which chunk or byte.

use object_store::Error as StoreError;

/// A failure of the repository layer, naming the object (and where it matters the disk, chunk
/// number and byte offset) it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The object store refused or failed an operation.
    #[error("{operation} {object}: {source}")]
    Store {
        /// What was being done: `put`, `get`, `head`, `delete`, `list`, `multipart upload`.
        operation: &'static str,
        /// The object (or prefix) concerned.
        object: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A conditional create found the object already there (another writer won the race).
    #[error("{object}: already exists")]
    AlreadyExists {
        /// The object that exists.
        object: String,
    },
    /// An object that must exist does not.
    #[error("{object}: not found")]
    NotFound {
        /// The missing object.
        object: String,
    },
    /// The location holds no repository (no `config` object).
    #[error("no repository at {location}: the config object is missing")]
    NotARepository {
        /// The target, as displayed by the store.
        location: String,
    },
    /// The repository's format version is not one this build reads.
    #[error("repository format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The version in the `config` object.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The `config` object cannot be understood.
    #[error("config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The repository is encrypted and no key was given, or a key was given for a plain one.
    #[error("{reason}")]
    KeyMismatch {
        /// `the repository is encrypted: a passphrase or key file is needed`, or the converse.
        reason: &'static str,
    },
    /// The passphrase or key file does not open the repository's keys.
    #[error("wrong passphrase or key file: the repository's keys do not decrypt")]
    WrongKey,
    /// A key file is malformed.
    #[error("key file {path}: {reason}")]
    InvalidKeyFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An object's bytes are damaged: bad header, failed checksum or authentication, bad
    /// compression.
    #[error("{object}: corrupt at byte {offset}: {reason}")]
    CorruptObject {
        /// The object.
        object: String,
        /// Byte offset inside the object where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A chunk decoded, but its content does not hash to its name.
    #[error("{object}: content hashes to {actual}, not to its name")]
    ChunkHashMismatch {
        /// The chunk object.
        object: String,
        /// The hash of what was read.
        actual: String,
    },
    /// A chunk a disk index references is missing from the store.
    #[error("{index}: chunk {chunk_number} (disk byte {disk_offset}) is missing: {object}")]
    ChunkMissing {
        /// The index that references it.
        index: String,
        /// The chunk's number on the disk's chunk grid.
        chunk_number: u64,
        /// The chunk's first byte on the disk.
        disk_offset: u64,
        /// The missing chunk object.
        object: String,
    },
    /// A chunk index is damaged or inconsistent.
    #[error("{object}: index corrupt at byte {offset}: {reason}")]
    CorruptIndex {
        /// The index object.
        object: String,
        /// Byte offset inside the index object.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A manifest cannot be decoded.
    #[error("{object}: manifest does not decode: {reason}")]
    CorruptManifest {
        /// The manifest object.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest of a newer manifest format than this build reads.
    #[error("{object}: manifest version {found} is not supported (this build reads {supported})")]
    UnsupportedManifest {
        /// The manifest object.
        object: String,
        /// Its version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A restore point with this identity already has a manifest.
    #[error("restore point {object} already exists")]
    RestorePointExists {
        /// The manifest object.
        object: String,
    },
    /// Chunks this backup reused (found in the store, not uploaded) vanished before its manifest
    /// was written, and no source was given to upload them again. Retrying the backup is safe.
    #[error(
        "disk {disk}: {count} reused chunks vanished before the manifest was written \
         (first: chunk {first_chunk}); retry the backup"
    )]
    ReusedChunksVanished {
        /// The disk's key.
        disk: String,
        /// How many vanished.
        count: u64,
        /// The lowest chunk number among them.
        first_chunk: u64,
    },
    /// The caller broke the writer's contract (order, sizes).
    #[error("{reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the maintenance lock.
    #[error("the repository is locked for maintenance by {owner} until {expires_at}")]
    Locked {
        /// Who holds it.
        owner: String,
        /// When the lock expires if its owner does not renew it (RFC 3339).
        expires_at: String,
    },
    /// This process's maintenance lock expired or was taken away while it worked.
    #[error("the maintenance lock {object} was lost (expired or removed): stopped")]
    LockLost {
        /// The lock object.
        object: String,
    },
    /// Reading a source stream failed.
    #[error("{operation}: {source}")]
    Io {
        /// What was being done.
        operation: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A background task (hashing, compression, encryption) died.
    #[error("background task failed: {0}")]
    Task(String),
}

impl RepoError {
    /// True when the same operation may succeed if retried (store and IO failures, a lost race,
    /// vanished chunks, a busy lock); false for damage and misuse.
    pub fn is_retryable(&self) -> bool {
        match self {
            RepoError::Store { source, .. } => !matches!(
                source,
                StoreError::NotFound { .. }
                    | StoreError::InvalidPath { .. }
                    | StoreError::NotSupported { .. }
                    | StoreError::NotImplemented { .. }
            ),
            RepoError::Io { .. }
            | RepoError::ReusedChunksVanished { .. }
            | RepoError::Locked { .. }
            | RepoError::LockLost { .. }
            | RepoError::Task(_) => true,
            _ => false,
        }
    }

    /// True when the error reports damaged data in the repository.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            RepoError::CorruptObject { .. }
                | RepoError::ChunkHashMismatch { .. }
                | RepoError::ChunkMissing { .. }
                | RepoError::CorruptIndex { .. }
                | RepoError::CorruptManifest { .. }
        )
    }
}

/// Maps a store error on `object` during `operation`, turning the store's typed not-found and
/// already-exists answers into ours.
pub(crate) fn store(operation: &'static str, object: &str) -> impl FnOnce(StoreError) -> RepoError {
    let object = object.to_owned();
    move |source| match source {
        StoreError::NotFound { .. } => RepoError::NotFound { object },
        StoreError::AlreadyExists { .. } => RepoError::AlreadyExists { object },
        source => RepoError::Store {
            operation,
            object,
            source,
        },
    }
}
