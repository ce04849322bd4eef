//! The HTTP layer: the router, what every handler shares, the extractors,
//! and the handlers of each part of the API.

use std::future::Future;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
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
pub mod auth;
pub mod cases;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod import;
pub mod limits;
pub mod login_guard;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod schemas;
pub mod state;
pub mod sync;

pub use extract::{ApiJson, ApiQuery};
pub use state::AppState;

use crate::http::error::AppError;

/// The whole HTTP API, with its limits ([`limits::defend`]) and, when
/// configured, its metrics ([`metrics`]).
pub fn app(state: AppState) -> Router {
    let limit = state.engine.config.max_body_bytes;
    if state.engine.config.metrics_token.is_some() {
        crate::metrics::install();
    }
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .merge(auth::router())
        .merge(sync::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(cases::router())
        .merge(files::router())
        .merge(query::router())
        .merge(metrics::router())
        .merge(apps::router())
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestDecompressionLayer::new());
    limits::defend(routes, &state.engine.config)
        .layer(axum::middleware::map_response(json_errors))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then lets
/// requests in flight finish and ends event streams. Compacts the change
/// log periodically meanwhile ([`crate::engine::compaction::spawn`]).
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

    let compactor = crate::engine::compaction::spawn(state.engine.clone());
    let upkeep = crate::metrics::spawn_upkeep();
    let notifier = state.engine.notifier.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            state.engine.config.header_read_timeout_secs,
        ));
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
            body = schemas::HealthOk,
            example = json!({"status": "ok", "documents": 1284})),
        (status = 405, response = schemas::MethodNotAllowed),
        (status = 503, description = "The database does not answer. The body is an `Error` \
            with code `database_unavailable`, plus `status: unavailable`.",
            body = schemas::HealthUnavailable,
            example = json!({"status": "unavailable", "code": "database_unavailable",
                "message": "the database does not answer"})),
    ),
)]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.storage.document_count().await {
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
