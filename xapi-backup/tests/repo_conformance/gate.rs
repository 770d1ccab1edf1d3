//! An object store wrapper that holds chunk uploads at a gate until the test opens it: shows
//! what a writer does while its uploads are still in flight.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use tokio::sync::watch;

/// Passes everything to `inner`, except puts of chunk objects (`chunks/…`), which wait until
/// [`GatedStore::open`].
#[derive(Debug)]
pub(crate) struct GatedStore {
    inner: Arc<dyn ObjectStore>,
    open: watch::Sender<bool>,
}

impl GatedStore {
    /// A closed gate in front of `inner`.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        GatedStore {
            inner,
            open: watch::Sender::new(false),
        }
    }

    /// Lets the held chunk uploads (and all later ones) through.
    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }
}

impl fmt::Display for GatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gated {}", self.inner)
    }
}

#[async_trait]
impl ObjectStore for GatedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if location.as_ref().contains("chunks/") {
            let mut open = self.open.subscribe();
            open.wait_for(|open| *open).await.expect("the gate lives");
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
