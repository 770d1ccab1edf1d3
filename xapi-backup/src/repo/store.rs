//! The store abstraction: one repository's objects on an `object_store` target, under a prefix.
//!
//! Everything the repository does to storage goes through [`Store`]: whole-object puts (atomic:
//! a reader sees all or nothing), conditional creates for manifests and locks, streamed multipart
//! uploads for objects that may be large (chunk indexes), gets, heads, deletes and listings.
//! A [`Target`] says where the objects live; the local directory is the first one.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, WriteMultipart,
};

use super::error::{RepoError, store};

/// Part size of streamed multipart uploads (S3's minimum is 5 MiB).
pub(super) const MULTIPART_PART_SIZE: usize = 5 * 1024 * 1024;

/// How many parts of one multipart upload may be in flight at once.
const MULTIPART_CONCURRENCY: usize = 2;

/// Where a repository's objects are stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Target {
    /// A directory on a local (or mounted) file system; created if missing. Every write is
    /// made durable (file and directory fsync) before it returns, so that "manifest last"
    /// also holds across a power failure.
    LocalDir(PathBuf),
    /// Any `object_store` implementation, with an optional prefix inside it: how an S3 (or
    /// in-memory) store is plugged in.
    Custom {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix (a "directory") holding the repository, empty for the root.
        prefix: String,
    },
}

/// A repository's view of its object store: names are relative to the repository's root.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    display: String,
    /// A [`Target::LocalDir`]'s directory, where chunks are written as files directly, and the
    /// chunks this handle's writers are staging there (shared by its clones).
    local: Option<(PathBuf, Arc<super::local_chunks::Staging>)>,
}

impl Store {
    /// Opens `target` (creating a local directory if needed).
    pub fn open(target: &Target) -> Result<Self, RepoError> {
        match target {
            Target::LocalDir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| RepoError::Io {
                    operation: format!("creating the repository directory {}", dir.display()),
                    source,
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(store("open", &dir.display().to_string()))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                Ok(Store {
                    inner: Arc::new(fs),
                    prefix: None,
                    display: dir.display().to_string(),
                    local: Some((dir.clone(), Arc::default())),
                })
            }
            Target::Custom {
                store: inner,
                prefix,
            } => {
                let prefix = prefix.trim_matches('/');
                Ok(Store {
                    inner: Arc::clone(inner),
                    prefix: (!prefix.is_empty()).then(|| Path::from(prefix)),
                    display: format!("{inner}/{prefix}"),
                    local: None,
                })
            }
        }
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> &str {
        &self.display
    }

    /// The underlying `object_store` (to open the same target again as [`Target::Custom`]).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner)
    }

    /// The prefix the repository lives under inside the object store, empty for the root.
    pub fn prefix(&self) -> &str {
        self.prefix.as_ref().map_or("", AsRef::as_ref)
    }

    /// The directory of a local-directory repository (`None` for other targets).
    pub(super) fn local_root(&self) -> Option<&std::path::Path> {
        self.local.as_ref().map(|(root, _)| root.as_path())
    }

    /// The chunks the writers sharing this handle are staging (local directory only).
    pub(super) fn staging(&self) -> Option<&Arc<super::local_chunks::Staging>> {
        self.local.as_ref().map(|(_, staging)| staging)
    }

    /// The file holding the repository object `name` in a local-directory repository (the
    /// layout `object_store`'s local file system uses: the name's segments as directories).
    pub(super) fn local_file(&self, name: &str) -> Option<PathBuf> {
        self.local_root().map(|root| root.join(name))
    }

    /// The full store path of the repository object `name`.
    fn path(&self, name: &str) -> Path {
        match &self.prefix {
            Some(prefix) => Path::from(format!("{prefix}/{name}")),
            None => Path::from(name),
        }
    }

    /// The repository name of a full store path (the inverse of [`Store::path`]).
    fn name_of(&self, path: &Path) -> String {
        let full = path.as_ref();
        match &self.prefix {
            Some(prefix) => full
                .strip_prefix(prefix.as_ref())
                .map_or(full, |rest| rest.trim_start_matches('/'))
                .to_owned(),
            None => full.to_owned(),
        }
    }

    /// Writes a whole object, replacing any object of that name (atomically).
    pub async fn put(&self, name: &str, body: Bytes) -> Result<(), RepoError> {
        self.inner
            .put(&self.path(name), PutPayload::from(body))
            .await
            .map_err(store("put", name))?;
        Ok(())
    }

    /// [`Store::put`] of an object given in pieces written one after the other (no copy into
    /// one buffer first).
    pub async fn put_pieces(&self, name: &str, pieces: Vec<Bytes>) -> Result<(), RepoError> {
        self.inner
            .put(&self.path(name), pieces.into_iter().collect::<PutPayload>())
            .await
            .map_err(store("put", name))?;
        Ok(())
    }

    /// Writes a whole object only if no object of that name exists:
    /// [`RepoError::AlreadyExists`] when another writer got there first.
    pub async fn put_new(&self, name: &str, body: Bytes) -> Result<(), RepoError> {
        self.inner
            .put_opts(
                &self.path(name),
                PutPayload::from(body),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map_err(store("conditional put", name))?;
        Ok(())
    }

    /// Starts a streamed upload of `name`: the object appears whole when
    /// [`StreamUpload::finish`] succeeds, and never if it is aborted or dropped.
    pub async fn upload(&self, name: &str) -> Result<StreamUpload, RepoError> {
        let upload = self
            .inner
            .put_multipart(&self.path(name))
            .await
            .map_err(store("multipart upload", name))?;
        Ok(StreamUpload {
            name: name.to_owned(),
            writer: Some(WriteMultipart::new_with_chunk_size(
                upload,
                MULTIPART_PART_SIZE,
            )),
        })
    }

    /// Reads a whole object (for objects known to be small: chunks, manifests, config, locks).
    pub async fn get(&self, name: &str) -> Result<Bytes, RepoError> {
        let result = self
            .inner
            .get(&self.path(name))
            .await
            .map_err(store("get", name))?;
        result.bytes().await.map_err(store("get", name))
    }

    /// Reads an object as a stream of byte pieces (for objects that may be large).
    pub async fn get_stream(
        &self,
        name: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, RepoError>>, RepoError> {
        let result = self
            .inner
            .get(&self.path(name))
            .await
            .map_err(store("get", name))?;
        let name = name.to_owned();
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(move |err| store("get", &name)(err)),
        ))
    }

    /// The object's metadata, `None` if it does not exist.
    pub async fn head(&self, name: &str) -> Result<Option<ObjectInfo>, RepoError> {
        match self.inner.head(&self.path(name)).await {
            Ok(meta) => Ok(Some(self.info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(store("head", name)(err)),
        }
    }

    /// True if the object exists.
    pub async fn exists(&self, name: &str) -> Result<bool, RepoError> {
        Ok(self.head(name).await?.is_some())
    }

    /// Deletes an object; deleting one that is already gone succeeds.
    pub async fn delete(&self, name: &str) -> Result<(), RepoError> {
        match self.inner.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(store("delete", name)(err)),
        }
    }

    /// Every object whose name starts with the "directory" `prefix` (no trailing slash), in no
    /// particular order.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectInfo, RepoError>> {
        let this = self.clone();
        let prefix_name = prefix.to_owned();
        Box::pin(
            self.inner
                .list(Some(&self.path(prefix)))
                .map_ok(move |meta| this.info(meta))
                .map_err(move |err| store("list", &prefix_name)(err)),
        )
    }

    fn info(&self, meta: ObjectMeta) -> ObjectInfo {
        let ObjectMeta {
            location,
            size,
            last_modified,
            ..
        } = meta;
        ObjectInfo {
            name: self.name_of(&location),
            size,
            last_modified,
        }
    }
}

/// What a listing or a head says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name inside the repository (`chunks/ab/ab12…`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, by the store's clock.
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// A streamed (multipart) upload in progress: memory holds at most a couple of parts.
#[derive(Debug)]
pub struct StreamUpload {
    name: String,
    writer: Option<WriteMultipart>,
}

impl StreamUpload {
    /// Appends bytes, waiting while too many parts are in flight.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), RepoError> {
        let writer = self
            .writer
            .as_mut()
            .expect("a StreamUpload is used only until finish or abort");
        writer
            .wait_for_capacity(MULTIPART_CONCURRENCY)
            .await
            .map_err(store("multipart upload", &self.name))?;
        writer.put(bytes);
        Ok(())
    }

    /// Completes the upload: the object appears whole.
    pub async fn finish(mut self) -> Result<(), RepoError> {
        let writer = self
            .writer
            .take()
            .expect("a StreamUpload is used only until finish or abort");
        writer
            .finish()
            .await
            .map_err(store("multipart upload", &self.name))?;
        Ok(())
    }

    /// Abandons the upload: no object appears.
    pub async fn abort(mut self) -> Result<(), RepoError> {
        if let Some(writer) = self.writer.take() {
            writer
                .abort()
                .await
                .map_err(store("multipart abort", &self.name))?;
        }
        Ok(())
    }
}
