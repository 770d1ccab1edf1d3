//! The S3-compatible target (feature `s3`): object_store's S3 client over reqwest and rustls
//! with the ring provider, turned into a [`Target`].

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;

use super::error::RepoError;
use super::store::Target;

/// Where and how to reach an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Target {
    /// The endpoint URL (`https://s3.example.com`); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The region (any value for most S3-compatible servers).
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (a trusted network or loopback only).
    pub allow_http: bool,
    /// The prefix ("directory") holding the repository inside the bucket, empty for the root.
    pub prefix: String,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3Target {
    /// The repository target: path-style requests, conditional creates with
    /// `If-None-Match: *`, TLS through rustls with the ring provider.
    pub fn into_target(self) -> Result<Target, RepoError> {
        // reqwest is built without a default provider: ring is the workspace's. Installing
        // fails only if a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_allow_http(self.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|source| RepoError::Store {
            operation: "configure S3",
            object: format!("bucket {}", self.bucket),
            source,
        })?;
        Ok(Target::Custom {
            store: Arc::new(store),
            prefix: self.prefix,
        })
    }
}
