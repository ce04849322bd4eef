//! The gridsync server: merges record documents from every device, answers
//! each with what it lacks, and keeps accounts and tokens.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown signal. `main` is a thin layer over these, so
//! tests drive exactly what production runs.

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;

pub mod admin;
pub mod apps;
pub mod attachments;
pub mod auth;
pub mod bulk;
pub mod cases;
pub mod cli;
pub mod compaction;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod import;
pub mod limits;
pub mod login_guard;
pub mod metrics;
pub mod openapi;
pub mod projection;
pub mod query;
pub mod reindex;
pub mod storage;
pub mod sync;

use crate::auth::{KeyRing, Keys};
use crate::config::Config;
use crate::error::AppError;
use crate::events::Notifier;
use crate::storage::Storage;
use crate::storage::postgres::{PoolSettings, PostgresStorage};
use crate::storage::sqlite::SqliteStorage;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// Token-signing keys.
    pub keys: Arc<KeyRing>,
    /// Settings.
    pub config: Arc<Config>,
    /// The database's instance id, first 8 bytes: stamped into cursors.
    pub instance: [u8; 8],
    /// A password hash to verify against when a username is unknown.
    pub dummy_hash: Arc<str>,
    /// Tells connected devices that documents changed.
    pub notifier: Notifier,
    /// Sign-in rate limits and the bound on concurrent password hashes.
    pub login: Arc<login_guard::LoginGuard>,
    /// The database's connection pool, for its gauges; `None` when the
    /// storage was built elsewhere ([`AppState::with_storage`]).
    pub db_pool: Option<metrics::DbPool>,
    /// Attached files and their blob store.
    pub files: attachments::Files,
    /// The sync rounds waiting to write, committed together.
    pub commits: Arc<sync::Commits>,
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
                let pool = metrics::DbPool::Sqlite(storage.pool().clone());
                (Arc::new(storage), Notifier::local(), pool)
            } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
                let settings = PoolSettings {
                    max_connections: config.db_max_connections,
                    acquire_timeout: Duration::from_secs(config.db_acquire_timeout_secs),
                };
                let storage = PostgresStorage::open(&url, settings).await?;
                let notifier = Notifier::postgres(storage.pool().clone()).await?;
                let pool = metrics::DbPool::Postgres(storage.pool().clone());
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
        let dummy_hash = auth::hash_password(random_hex(16)).await?.into();
        let files = attachments::Files::new(
            storage.clone(),
            open_blobs(&config, &storage)?,
            attachments::Limits {
                max_bytes: config.attachment_max_bytes as i64,
                daily_bytes_per_device: config.attachment_daily_bytes_per_device as i64,
            },
        );
        let state = Self {
            storage,
            keys: Arc::new(KeyRing::new(keys)),
            login: Arc::new(login_guard::LoginGuard::new(&config)),
            config: Arc::new(config),
            instance,
            dummy_hash,
            notifier,
            db_pool: None,
            files,
            commits: Default::default(),
        };
        reindex::reindex_if_stale(&*state.storage, &state.config.deadlines).await?;
        Ok(state)
    }
}

/// The configured blob store of attached files.
fn open_blobs(
    config: &Config,
    storage: &Arc<dyn Storage>,
) -> Result<Arc<dyn attachments::Blobs>, AppError> {
    use attachments::blobs::{DatabaseBlobs, ObjectBlobs, S3Settings};
    use config::AttachmentStore;
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

/// The whole HTTP API, with its limits ([`limits::defend`]) and, when
/// configured, its metrics ([`metrics`]).
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    if state.config.metrics_token.is_some() {
        metrics::install();
    }
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .merge(auth::router())
        .merge(sync::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(cases::router())
        .merge(attachments::http::router())
        .merge(query::router())
        .merge(metrics::router())
        .merge(apps::router())
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestDecompressionLayer::new());
    limits::defend(routes, &state.config)
        .layer(axum::middleware::map_response(json_errors))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then lets
/// requests in flight finish and ends event streams. Compacts the change
/// log periodically meanwhile ([`compaction::spawn`]).
///
/// Connections are served by hyper directly rather than through
/// `axum::serve`, which sets no header read timeout: a client that never
/// finishes its headers is cut off after `header_read_timeout_secs`.
/// Each request carries the address of the TCP peer it came from, as
/// `ConnectInfo<SocketAddr>` (for the sign-in limits).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let compactor = compaction::spawn(state.clone());
    let upkeep = metrics::spawn_upkeep();
    let notifier = state.notifier.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.config.header_read_timeout_secs));
    let app = app(state);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(addr));
                request
            },
        );
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, client = %addr, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Event streams never end on their own: end them, so that their
    // connections can close.
    notifier.close();
    connections.shutdown().await;
    // A batch cut off here rolls back; the next run starts from the horizon.
    for task in [compactor, upkeep].into_iter().flatten() {
        task.abort();
    }
    Ok(())
}

/// Health check
///
/// 200 when the database answers, 503 otherwise. Needs no authentication.
/// Suitable as a load balancer's health check.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "ops",
    responses(
        (status = 200, description = "The server and its database are up.",
            body = openapi::HealthOk,
            example = json!({"status": "ok", "documents": 1284})),
        (status = 405, response = openapi::MethodNotAllowed),
        (status = 503, description = "The database does not answer. The body is an `Error` \
            with code `database_unavailable`, plus `status: unavailable`.",
            body = openapi::HealthUnavailable,
            example = json!({"status": "unavailable", "code": "database_unavailable",
                "message": "the database does not answer"})),
    ),
)]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.storage.document_count().await {
        Ok(documents) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "documents": documents })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "code": "database_unavailable",
                    "message": "the database does not answer",
                })),
            )
                .into_response()
        }
    }
}

/// Answers the two refusals that come from below the handlers like every
/// other error:
///
/// - the request-decompression layer refuses a `Content-Encoding` it cannot
///   decode with an empty `415`; its `Accept-Encoding` header is kept;
/// - axum's `Path` extractor refuses a path segment that is not UTF-8 once
///   percent-decoded with a plain-text `400`, the only plain-text answer
///   there is: such a segment names nothing, so it is `404 not_found`, as
///   for an unknown id.
async fn json_errors(response: Response) -> Response {
    let content_type = response.headers().get(CONTENT_TYPE);
    match response.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE if content_type.is_none() => {
            let mut answer = AppError::UnsupportedEncoding.into_response();
            if let Some(accepted) = response.headers().get(ACCEPT_ENCODING) {
                answer
                    .headers_mut()
                    .insert(ACCEPT_ENCODING, accepted.clone());
            }
            answer
        }
        StatusCode::BAD_REQUEST
            if content_type.is_some_and(|t| t.as_bytes().starts_with(b"text/plain")) =>
        {
            AppError::NotFound.into_response()
        }
        _ => response,
    }
}

/// A query string whose rejections are answered like every other error.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body whose rejections are answered like every other error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

pub use domain::{now_ms, random_hex};
