//! What every handler shares ([`AppState`]): the engine, and the HTTP
//! layer's own parts (token keys, sign-in limits, the pool's gauges).

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::notify::Notifier;
use crate::http::auth::{self, KeyRing, Keys};
use crate::http::error::AppError;
use crate::http::login_guard;
use crate::storage::Storage;
use crate::storage::postgres::{PoolSettings, PostgresStorage};
use crate::storage::sqlite::SqliteStorage;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database, the settings and what the engine shares.
    pub engine: Engine,
    /// Token-signing keys.
    pub keys: Arc<KeyRing>,
    /// A password hash to verify against when a username is unknown.
    pub dummy_hash: Arc<str>,
    /// Sign-in rate limits and the bound on concurrent password hashes.
    pub login: Arc<login_guard::LoginGuard>,
    /// The database's connection pool, for its gauges; `None` when the
    /// storage was built elsewhere ([`AppState::with_storage`]).
    pub db_pool: Option<crate::metrics::DbPool>,
}

impl AppState {
    /// Opens the configured database (migrating it) and loads the keys.
    pub async fn open(config: Config) -> Result<Self, AppError> {
        let url = config.database_url();
        let (storage, notifier, pool): (Arc<dyn Storage>, Notifier, _) =
            if url.starts_with("sqlite:") {
                if config.database_url.is_none() {
                    std::fs::create_dir_all(&config.data_dir).map_err(AppError::internal)?;
                }
                let storage = SqliteStorage::open(&url).await?;
                let pool = crate::metrics::DbPool::Sqlite(storage.pool().clone());
                (Arc::new(storage), Notifier::local(), pool)
            } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
                let settings = PoolSettings {
                    max_connections: config.db_max_connections,
                    acquire_timeout: Duration::from_secs(config.db_acquire_timeout_secs),
                };
                let storage = PostgresStorage::open(&url, settings).await?;
                let notifier = Notifier::postgres(storage.pool().clone())
                    .await
                    .map_err(AppError::internal)?;
                let pool = crate::metrics::DbPool::Postgres(storage.pool().clone());
                (Arc::new(storage), notifier, pool)
            } else {
                return Err(AppError::internal(format!(
                    "unsupported database URL scheme {:?}: use sqlite: or postgres:",
                    url.split(':').next().unwrap_or("")
                )));
            };
        let mut state = Self::with_storage(config, storage, notifier).await?;
        state.db_pool = Some(pool);
        Ok(state)
    }

    /// Builds the state over an open storage.
    pub async fn with_storage(
        config: Config,
        storage: Arc<dyn Storage>,
        notifier: Notifier,
    ) -> Result<Self, AppError> {
        let keys = Keys::load_or_create(storage.as_ref()).await?;
        let instance_hex = storage.instance_id().await?;
        let mut instance = [0u8; 8];
        hex::decode_to_slice(&instance_hex[..16], &mut instance).map_err(AppError::internal)?;
        let dummy_hash = auth::hash_password(crate::domain::random_hex(16))
            .await?
            .into();
        let files = crate::engine::attachments::Files::new(
            storage.clone(),
            open_blobs(&config, &storage)?,
            crate::engine::attachments::Limits {
                max_bytes: config.attachment_max_bytes as i64,
                daily_bytes_per_device: config.attachment_daily_bytes_per_device as i64,
            },
        );
        let state = Self {
            keys: Arc::new(KeyRing::new(keys)),
            login: Arc::new(login_guard::LoginGuard::new(&config)),
            dummy_hash,
            db_pool: None,
            engine: Engine {
                storage,
                config: Arc::new(config),
                instance,
                notifier,
                files,
                commits: Default::default(),
            },
        };
        crate::engine::reindex::reindex_if_stale(
            &*state.engine.storage,
            &state.engine.config.deadlines,
        )
        .await?;
        Ok(state)
    }
}

/// The configured blob store of attached files.
fn open_blobs(
    config: &Config,
    storage: &Arc<dyn Storage>,
) -> Result<Arc<dyn crate::engine::attachments::Blobs>, AppError> {
    use crate::config::AttachmentStore;
    use crate::engine::attachments::blobs::{DatabaseBlobs, ObjectBlobs, S3Settings};
    Ok(match config.attachment_store {
        AttachmentStore::Directory => {
            Arc::new(ObjectBlobs::directory(&config.attachment_dir()).map_err(AppError::internal)?)
        }
        AttachmentStore::Database => Arc::new(DatabaseBlobs(storage.clone())),
        AttachmentStore::S3 => Arc::new(
            ObjectBlobs::s3(&S3Settings {
                bucket: config.s3_bucket.clone().unwrap_or_default(),
                endpoint: config.s3_endpoint.clone(),
                region: config.s3_region.clone(),
                access_key_id: config.s3_access_key_id.clone(),
                secret_access_key: config.s3_secret_access_key.clone(),
            })
            .map_err(AppError::internal)?,
        ),
    })
}
