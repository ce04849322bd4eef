//! Live push: `GET /v1/events` is a server-sent-event stream that tells a
//! connected device when documents changed, so that it syncs at once instead
//! of on its next timer.
//!
//! The announcements come from the engine's [`Notifier`].

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use tokio::sync::{broadcast, watch};

use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;

/// When the bearer token of `headers` expires. The extractor has verified
/// the token already; only its `exp` is read here.
fn token_expiry(headers: &HeaderMap) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let token = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Expiry>(token).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(claims.claims.exp))
}

/// The events route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", get(events))
}

/// The OpenAPI description of [`router`]'s route (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub struct Api;

/// Change notifications
///
/// `GET /v1/events`: a Server-Sent Events stream that tells the device when
/// documents changed, so that it runs a sync round at once instead of on its
/// next timer. See `sync-protocol.md` §14.
///
/// - First, once: event `ready` with data `{}`.
/// - Then, whenever a sync round through any server instance stored
///   changes: event `changed` with data `{"seq": n}` (schema
///   `ChangedEvent`), where `n` is the position the server's feed reached
///   (no interpretation needed). One event may stand for several changes,
///   and the device's own rounds are announced too.
/// - A comment line (`:`) after 20 seconds without traffic, to keep the
///   connection open.
///
/// Events carry no `id`; nothing is replayed on reconnection, so run a sync
/// round on `ready` as well as on `changed`. Every change on the server is
/// announced to every connected device, including changes to documents
/// outside the device's scope (the round it triggers may bring nothing);
/// changes of a user's role or org units are not announced. The stream ends
/// when the device is revoked (at the next change after revocation), when
/// the access token it was opened with expires (open a new one with a fresh
/// token), and when the server shuts down. The response is never
/// compressed.
///
/// A device may hold a few streams open at once on one server instance
/// (`max_event_streams_per_device`, default 4); one more is answered `429
/// too_many_streams` until one of them closes.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "events",
    tag = "sync",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The event stream. It stays open until the device is \
            revoked, its access token expires, the server shuts down or the connection closes. Events `ready` (data `{}`) and `changed` (data a \
            JSON `ChangedEvent`), and keep-alive comments.",
            body = String, content_type = "text/event-stream",
            headers(("Cache-Control" = String, description = "Always `no-cache`.")),
            example = json!("event: ready\ndata: {}\n\nevent: changed\ndata: {\"seq\":1842}\n\n:\n\n")),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 429, response = crate::http::schemas::TooManyStreams),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn events(
    State(state): State<AppState>,
    auth: AuthDevice,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let max = state.engine.config.max_event_streams_per_device;
    let Some(slot) = state.engine.notifier.open_stream(&auth.device_id, max) else {
        crate::metrics::rate_limited("event_streams");
        return Err(AppError::TooManyStreams(max));
    };
    let expires_in = token_expiry(&headers)
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    let closed = state.engine.notifier.closed();
    let end = async move {
        tokio::select! {
            () = tokio::time::sleep(expires_in) => {}
            () = shutting_down(closed) => {}
        }
    };
    tracing::debug!(user = %auth.user_id, device = %auth.device_id, "events stream opened");
    let rx = state.engine.notifier.subscribe();
    let ready = Event::default().event("ready").data("{}");
    let changes = stream::unfold(
        (rx, state, auth, slot),
        |(mut rx, state, auth, slot)| async move {
            let seq = loop {
                match rx.recv().await {
                    Ok(seq) => break seq,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            };
            match state.engine.storage.device(&auth.device_id).await {
                Ok(Some(device)) if device.revoked_at.is_none() => {}
                _ => return None,
            }
            let event = Event::default()
                .event("changed")
                .data(format!("{{\"seq\":{seq}}}"));
            Some((Ok(event), (rx, state, auth, slot)))
        },
    );
    Ok(Sse::new(
        stream::once(async { Ok(ready) })
            .chain(changes)
            .take_until(end),
    )
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}

/// Completes once the server shuts down ([`Notifier::close`]).
async fn shutting_down(mut closed: watch::Receiver<bool>) {
    // Not `wait_for`: the guard it hands out is not `Send`.
    loop {
        if *closed.borrow_and_update() {
            return;
        }
        if closed.changed().await.is_err() {
            return;
        }
    }
}
