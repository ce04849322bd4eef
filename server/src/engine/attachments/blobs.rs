//! Where the bytes of attached files live: a directory under the data
//! directory (one server), or a store every instance shares: S3-compatible
//! object storage, or the database itself.
//!
//! Directory and S3 go through `object_store`, whose local store writes a
//! file under a temporary name and renames it, so a crash never leaves
//! half a file under a real name. The database store is a table
//! (`attachment_blobs`): no extra service, at the price of bytes in the
//! database's backups and pages.

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::storage::Storage;

/// A blob store failed.
#[derive(Debug, thiserror::Error)]
#[error("attachment store: {0}")]
pub struct BlobError(String);

/// Bytes by key.
#[async_trait::async_trait]
pub trait Blobs: Send + Sync {
    /// Writes `bytes` under `key`, replacing what was there.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError>;
    /// The bytes under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;
    /// Deletes `key`; deleting what is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// A store reached through `object_store`: a local directory or S3.
pub struct ObjectBlobs(Arc<dyn ObjectStore>);

/// Settings of an S3-compatible store.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// The endpoint URL, for a store other than AWS (MinIO, Ceph, a
    /// cloud's S3-compatible service); unset: AWS.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Access key id; unset: from the environment (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret key; unset: from the environment.
    pub secret_access_key: Option<String>,
}

impl ObjectBlobs {
    /// Files in `dir`, created if missing.
    pub fn directory(dir: &std::path::Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BlobError(format!("cannot create {}: {e}", dir.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BlobError(e.to_string()))?;
        Ok(Self(Arc::new(store)))
    }

    /// Objects in an S3 bucket.
    pub fn s3(settings: &S3Settings) -> Result<Self, BlobError> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(|e| BlobError(e.to_string()))?;
        Ok(Self(Arc::new(store)))
    }
}

#[async_trait::async_trait]
impl Blobs for ObjectBlobs {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.0
            .put(&Path::from(key), bytes.into())
            .await
            .map_err(|e| BlobError(e.to_string()))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match self.0.get(&Path::from(key)).await {
            Ok(found) => Ok(Some(
                found.bytes().await.map_err(|e| BlobError(e.to_string()))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BlobError(e.to_string())),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.0.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError(e.to_string())),
        }
    }
}

/// Blobs in the database's `attachment_blobs` table.
pub struct DatabaseBlobs(pub Arc<dyn Storage>);

#[async_trait::async_trait]
impl Blobs for DatabaseBlobs {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.0
            .put_blob(key, &bytes)
            .await
            .map_err(|e| BlobError(e.to_string()))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let found = self
            .0
            .blob(key)
            .await
            .map_err(|e| BlobError(e.to_string()))?;
        Ok(found.map(Bytes::from))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.0
            .delete_blob(key)
            .await
            .map_err(|e| BlobError(e.to_string()))
    }
}
