//! `GET /metrics` and the middleware that counts requests (the metrics
//! themselves: [`crate::metrics`]).

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;
use crate::http::error::AppError;
use crate::metrics::{HTTP_REQUESTS, SYNC_ROUND_SECONDS, handle, login_failed};

/// Counts every request by route and status, times sync rounds, and counts
/// refused sign-ins. A middleware inside the router, so that the matched
/// route is known.
pub async fn track(request: Request, next: Next) -> Response {
    if handle().is_none() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    if method == Method::POST {
        match route.as_str() {
            "/v1/sync" => metrics::histogram!(SYNC_ROUND_SECONDS).record(started.elapsed()),
            "/v1/auth/login" if status == StatusCode::UNAUTHORIZED => login_failed(),
            _ => {}
        }
    }
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route,
        "method" => method.as_str().to_owned(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    response
}

/// The metrics route.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The OpenAPI description of [`router`]'s route (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(scrape))]
pub struct Api;

/// Prometheus metrics
///
/// `GET /metrics`: the server's metrics in the Prometheus text format, for
/// an operator's scraper. Only when the server is configured with a
/// `metrics_token`, which the request must carry as its bearer token;
/// otherwise `404`. Not an access token: devices and users have no access.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "ops",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Metrics in the Prometheus text exposition format \
            (`text/plain; version=0.0.4`).",
            body = String, content_type = "text/plain",
            example = json!("# TYPE gridsync_login_failures_total counter\ngridsync_login_failures_total 3\n")),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, description = "Metrics are off: no `metrics_token` is configured.",
            body = crate::http::schemas::NotFoundError),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (Some(expected), Some(handle)) = (&state.engine.config.metrics_token, handle()) else {
        return Err(AppError::NotFound);
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    if !given.is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes())) {
        return Err(AppError::Unauthorized("missing or wrong metrics token"));
    }
    if let Some(pool) = &state.db_pool {
        pool.record();
    }
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}

/// Compares two secrets in time that does not depend on where they differ
/// (their hashes, so that the length does not show either).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
