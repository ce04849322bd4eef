//! Limits that keep one client from holding the server: how long a request's
//! body may take to arrive and the request to be answered, how many requests
//! are served at once (more are refused at once, not queued), and a net
//! under handlers so that a panic answers `500` instead of dropping the
//! connection. The header read timeout lives in [`crate::http::serve`], on the
//! connection; the cap on event streams in [`crate::http::events`].
//!
//! [`defend`] puts these around a router; [`crate::http::app`] uses it, and tests
//! can put it around routes of their own.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::http::error::{AppError, BodyTimedOut};

/// Puts the request limits of `config` and a panic net around `router`'s
/// routes (outermost first):
///
/// - a panic in a handler is answered `500 internal`, and logged;
/// - past `max_concurrent_requests` requests at once, `503 overloaded`
///   with `Retry-After` (load shedding: nothing waits in a queue);
/// - past `request_timeout_secs` before the answer starts, `503
///   timed_out` with `Retry-After`;
/// - a body not complete `body_read_timeout_secs` after the headers: `408
///   body_timeout` (answered by the extractor that reads it).
pub fn defend<S>(router: Router<S>, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let timeouts = Timeouts {
        body: Duration::from_secs(config.body_read_timeout_secs),
        request: Duration::from_secs(config.request_timeout_secs),
    };
    router
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| time_limits(timeouts, request, next),
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    crate::metrics::rate_limited("overloaded");
                    AppError::busy()
                }))
                .layer(LoadShedLayer::new())
                // Global: `Router::layer` wraps every route on its own, and
                // they must share one count.
                .layer(GlobalConcurrencyLimitLayer::new(
                    config.max_concurrent_requests,
                )),
        )
        .layer(CatchPanicLayer::custom(panic_answer))
}

#[derive(Clone, Copy)]
struct Timeouts {
    body: Duration,
    request: Duration,
}

/// Gives the body a deadline and the whole request another. The request
/// deadline ends when the answer starts: a streamed answer (`/v1/events`,
/// exports) is not cut off by it.
async fn time_limits(timeouts: Timeouts, request: Request, next: Next) -> Response {
    let request = if http_body::Body::is_end_stream(request.body()) {
        request
    } else {
        request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(timeouts.body)),
            })
        })
    };
    match tokio::time::timeout(timeouts.request, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_secs = timeouts.request.as_secs(),
                "request timed out"
            );
            AppError::TimedOut.into_response()
        }
    }
}

fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    AppError::internal(format!("handler panicked: {what}")).into_response()
}

/// A request body that fails with [`BodyTimedOut`] once `deadline` passes
/// before its end. tower-http's `RequestBodyTimeoutLayer` times the gap
/// between two chunks only, which a body trickled a byte at a time never
/// exceeds; this times the whole body.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn answer(router: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    // Paths as constants, so that the API description check skips them.
    const BOOM: &str = "/boom";
    const FINE: &str = "/fine";
    const SLOW: &str = "/slow";

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_internal() {
        let router = defend(
            Router::new()
                .route(BOOM, get(boom))
                .route(FINE, get(|| async { "fine" })),
            &Config::default(),
        );
        let (status, body) = answer(router.clone(), BOOM).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "internal");
        assert_eq!(body["message"], "internal error");
        let response = router
            .oneshot(Request::get(FINE).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_slow_handler_is_answered_503_timed_out() {
        let config = Config {
            request_timeout_secs: 1,
            ..Config::default()
        };
        let router = defend(
            Router::new().route(
                SLOW,
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            ),
            &config,
        );
        let response = router
            .oneshot(Request::get(SLOW).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }
}
