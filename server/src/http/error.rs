//! One error type for every handler: an HTTP status, a stable
//! machine-readable `code`, and a message for people. Internal causes are
//! logged, never sent.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::EngineError;
use crate::storage::StorageError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or credentials that do not hold.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Username or password wrong.
    #[error("wrong username or password")]
    BadCredentials,
    /// The device was revoked.
    #[error("this device has been revoked")]
    DeviceRevoked,
    /// A JSON body that does not parse or lacks fields.
    #[error("{0}")]
    BadJson(String),
    /// A field value that is not acceptable.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A query string that does not parse.
    #[error("{0}")]
    BadQuery(String),
    /// A body that is not a sync message.
    #[error("{0}")]
    BadSyncMessage(String),
    /// A sync message of a protocol version this server does not speak.
    #[error("{0}")]
    UnsupportedVersion(String),
    /// A body of the wrong media type.
    #[error("expected a body of type {0}")]
    UnsupportedMediaType(&'static str),
    /// A body in a `Content-Encoding` the server does not decode.
    #[error("the body's Content-Encoding is not supported: send gzip or identity")]
    UnsupportedEncoding,
    /// A body over the configured limit.
    #[error("the request body is larger than this server accepts")]
    TooLarge,
    /// A sync request carrying more documents than the server takes in
    /// one request.
    #[error("{0}")]
    TooManyDocuments(String),
    /// A sync request whose changes hold more operations than the server
    /// takes in one request.
    #[error("{0}")]
    TooManyOperations(String),
    /// Something with that name exists already.
    #[error("{0} exists already")]
    Conflict(&'static str),
    /// An action that does not apply to the record as it stands.
    #[error("{0}")]
    Refused(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// A named thing does not exist.
    #[error("{0} not found")]
    Missing(&'static str),
    /// The route exists, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many sign-in attempts for this username or from this address.
    #[error("too many sign-in attempts: try again in {retry_after} s")]
    RateLimited {
        /// Seconds until an attempt is admitted again (`Retry-After`).
        retry_after: u64,
    },
    /// Every slot for this kind of work is taken: the server's limit of
    /// requests at once, the password-hashing slots, or the database pool
    /// gave no connection in time.
    #[error("the server is busy: try again in {retry_after} s")]
    Overloaded {
        /// Seconds to wait before trying again (`Retry-After`).
        retry_after: u64,
    },
    /// Our fault; the cause is logged.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),

    // Limits ([`crate::http::limits`]).
    /// The request took longer than the configured request timeout.
    #[error("the request took too long to answer; try again shortly")]
    TimedOut,
    /// The body did not arrive within the configured body timeout.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// The device holds as many event streams open as it may.
    #[error("this device has {0} event stream(s) open already, as many as it may; close one first")]
    TooManyStreams(usize),

    /// An attached file refused or not found ([`crate::engine::attachments`]).
    #[error(transparent)]
    File(crate::engine::attachments::FileError),
}

impl From<crate::engine::attachments::FileError> for AppError {
    fn from(e: crate::engine::attachments::FileError) -> Self {
        use crate::engine::attachments::FileError;
        match e {
            FileError::NotFound => AppError::NotFound,
            FileError::Storage(e) => e.into(),
            FileError::Blob(e) => AppError::internal(e),
            FileError::Task(e) => AppError::internal(e),
            other => AppError::File(other),
        }
    }
}

/// Seconds a client is told to wait (`Retry-After`) before it tries again
/// after `503 overloaded` or `503 timed_out`.
pub const RETRY_AFTER_SECS: u64 = 5;

impl AppError {
    /// [`AppError::Overloaded`], to be tried again after
    /// [`RETRY_AFTER_SECS`].
    pub fn busy() -> Self {
        AppError::Overloaded {
            retry_after: RETRY_AFTER_SECS,
        }
    }

    /// Wraps an unexpected failure.
    ///
    /// A database pool that gave no connection in time means the server is
    /// busy, not broken: that is [`AppError::Overloaded`].
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let e = e.into();
        if is_pool_timeout(e.as_ref()) {
            return AppError::busy();
        }
        AppError::Internal(e)
    }

    /// The status and code this error is answered with.
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            AppError::BadCredentials => (StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials),
            AppError::DeviceRevoked => (StatusCode::UNAUTHORIZED, ErrorCode::DeviceRevoked),
            AppError::BadJson(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadJson),
            AppError::BadQuery(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadQuery),
            AppError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField),
            AppError::BadSyncMessage(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadSyncMessage),
            AppError::UnsupportedVersion(_) => {
                (StatusCode::BAD_REQUEST, ErrorCode::UnsupportedVersion)
            }
            AppError::UnsupportedMediaType(_) | AppError::UnsupportedEncoding => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            AppError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BodyTooLarge),
            AppError::TooManyDocuments(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooManyDocuments)
            }
            AppError::TooManyOperations(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooManyOperations)
            }
            AppError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            AppError::Refused(_) => (StatusCode::CONFLICT, ErrorCode::NotApplicable),
            AppError::NotFound | AppError::Missing(_) => {
                (StatusCode::NOT_FOUND, ErrorCode::NotFound)
            }
            AppError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            AppError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
            AppError::TimedOut => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::TimedOut),
            AppError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, ErrorCode::BodyTimeout),
            AppError::TooManyStreams(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyStreams)
            }
            AppError::File(e) => file_status(e),
        }
    }
}

fn file_status(e: &crate::engine::attachments::FileError) -> (StatusCode, ErrorCode) {
    use crate::engine::attachments::FileError;
    use crate::engine::attachments::media::MediaError;
    match e {
        FileError::BadHash(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidSha256),
        FileError::BadRange(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRange),
        FileError::Interrupted(_) => (StatusCode::BAD_REQUEST, ErrorCode::UploadInterrupted),
        FileError::NotReferenced => (StatusCode::CONFLICT, ErrorCode::NotReferenced),
        FileError::Offset(_) => (StatusCode::CONFLICT, ErrorCode::UploadOffset),
        FileError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::FileTooLarge),
        FileError::DailyLimit(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::DailyLimit),
        FileError::HashMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::HashMismatch),
        FileError::Media(MediaError::BadImage(_)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadFile)
        }
        FileError::Media(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
        ),
        FileError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
        FileError::Storage(_) | FileError::Blob(_) | FileError::Task(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
        }
    }
}

/// Seconds from now to the next midnight, UTC: when a device's daily
/// upload limit starts over.
fn until_tomorrow() -> u64 {
    let day = 86_400_000;
    ((day - crate::domain::now_ms().rem_euclid(day)) / 1000 + 1) as u64
}

/// Stable machine-readable code of an error answer. Status per code:
///
/// | code | status |
/// |---|---|
/// | `bad_json` | 400 |
/// | `bad_query` | 400 |
/// | `bad_sync_message` | 400 |
/// | `unsupported_version` | 400 |
/// | `unauthorized` | 401 |
/// | `bad_credentials` | 401 |
/// | `device_revoked` | 401 |
/// | `forbidden` | 403 |
/// | `not_found` | 404 |
/// | `method_not_allowed` | 405 |
/// | `conflict` | 409 |
/// | `not_applicable` | 409 |
/// | `body_too_large` | 413 |
/// | `too_many_documents` | 413 |
/// | `too_many_operations` | 413 |
/// | `unsupported_media_type` | 415 |
/// | `invalid_sha256` | 400 |
/// | `bad_range` | 400 |
/// | `upload_interrupted` | 400, with `Upload-Offset` |
/// | `not_referenced` | 409 |
/// | `upload_offset` | 409, with `Upload-Offset` |
/// | `file_too_large` | 413 |
/// | `daily_limit` | 429, with `Retry-After` |
/// | `hash_mismatch` | 422 |
/// | `bad_file` | 422 |
/// | `body_timeout` | 408 |
/// | `invalid_field` | 422 |
/// | `rate_limited` | 429, with `Retry-After` |
/// | `too_many_streams` | 429 |
/// | `internal` | 500 |
/// | `overloaded` | 503, with `Retry-After` |
/// | `timed_out` | 503, with `Retry-After` |
/// | `database_unavailable` | 503 (`/healthz` only) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not acceptable JSON for the endpoint.
    BadJson,
    /// The query string cannot be read.
    BadQuery,
    /// The body is not a sync message.
    BadSyncMessage,
    /// A sync message of a protocol version this server does not speak.
    UnsupportedVersion,
    /// No credentials, or credentials that do not hold.
    Unauthorized,
    /// Username or password wrong.
    BadCredentials,
    /// The device was revoked.
    DeviceRevoked,
    /// Authenticated, but not allowed.
    Forbidden,
    /// No such route or resource.
    NotFound,
    /// The route exists, but not for this method.
    MethodNotAllowed,
    /// Something with that name exists already.
    Conflict,
    /// An action that does not apply to the record as it stands.
    NotApplicable,
    /// A body over the configured limit.
    BodyTooLarge,
    /// A sync request with more documents than `sync_max_docs`.
    TooManyDocuments,
    /// A sync request whose changes hold more operations than
    /// `sync_max_request_ops`.
    TooManyOperations,
    /// A body of the wrong media type or `Content-Encoding`.
    UnsupportedMediaType,
    /// A field value that is not acceptable.
    InvalidField,
    /// Too many attempts; `Retry-After` says when to try again.
    RateLimited,
    /// Our fault; the cause is logged.
    Internal,
    /// The database does not answer (`GET /healthz` only).
    DatabaseUnavailable,
    /// The server is busy: too many requests at once, every password-hashing
    /// slot taken, or no database connection free in time. Try again after
    /// `Retry-After` seconds.
    Overloaded,
    /// The request took longer than the server's request timeout. Try
    /// again after `Retry-After` seconds.
    TimedOut,
    /// The request body did not arrive within the server's body timeout.
    BodyTimeout,
    /// The device holds as many `/v1/events` streams open as it may.
    TooManyStreams,
    /// An attachment path that does not name a SHA-256.
    InvalidSha256,
    /// An upload's `Content-Range` or length does not fit the file.
    BadRange,
    /// The connection ended before the part did; `Upload-Offset` says
    /// where to resume.
    UploadInterrupted,
    /// No record the caller may read names the file yet: sync the record
    /// first.
    NotReferenced,
    /// The part does not start where the upload stands; `Upload-Offset`
    /// says where that is.
    UploadOffset,
    /// A file over the server's size limit.
    FileTooLarge,
    /// The device has uploaded its bytes for the day; `Retry-After` says
    /// when the next day starts.
    DailyLimit,
    /// The bytes do not have the SHA-256 they were sent under; nothing is
    /// kept.
    HashMismatch,
    /// An image that cannot be decoded; nothing is kept.
    BadFile,
}

/// The JSON body of every error response the server produces. `code` is
/// stable and machine-readable; `message` is for people and may change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for people. Not stable; do not parse.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let body = ErrorBody {
            code,
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            AppError::RateLimited { retry_after } | AppError::Overloaded { retry_after } => {
                Some(*retry_after)
            }
            AppError::TimedOut => Some(RETRY_AFTER_SECS),
            AppError::File(crate::engine::attachments::FileError::DailyLimit(_)) => {
                Some(until_tomorrow())
            }
            _ => None,
        };
        if let AppError::File(
            crate::engine::attachments::FileError::Offset(at)
            | crate::engine::attachments::FileError::Interrupted(at),
        ) = &self
        {
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(*at));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadSyncMessage(m) => AppError::BadSyncMessage(m),
            EngineError::TooManyDocuments(m) => AppError::TooManyDocuments(m),
            EngineError::TooManyOperations(m) => AppError::TooManyOperations(m),
            EngineError::Invalid { field, problem } => AppError::Invalid { field, problem },
            EngineError::Conflict(what) => AppError::Conflict(what),
            EngineError::Forbidden(m) => AppError::Forbidden(m),
            EngineError::Missing(what) => AppError::Missing(what),
            EngineError::Storage(e) => e.into(),
            EngineError::Internal(e) => AppError::internal(e),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => AppError::Conflict(what),
            StorageError::Database(sqlx::Error::PoolTimedOut) => AppError::busy(),
            other => AppError::internal(other),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::TooLarge;
        }
        if is_body_timeout(&rejection) {
            return AppError::BodyTimeout;
        }
        AppError::BadJson(rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadQuery(rejection.body_text())
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::TooLarge;
        }
        if is_body_timeout(&rejection) {
            return AppError::BodyTimeout;
        }
        AppError::BadSyncMessage(rejection.body_text())
    }
}

/// Whether `e`, or an error it wraps, is the pool's "timed out while
/// waiting for an open connection".
fn is_pool_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let timed_out = matches!(e.downcast_ref(), Some(sqlx::Error::PoolTimedOut))
            || matches!(
                e.downcast_ref(),
                Some(StorageError::Database(sqlx::Error::PoolTimedOut))
            );
        if timed_out {
            return true;
        }
        next = e.source();
    }
    false
}

/// Where an upload stands, in bytes from the start: on every answer to a
/// part, and on the errors that ask the client to resume.
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");

/// The error a body gives when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether a body extractor's rejection comes from [`BodyTimedOut`].
pub fn is_body_timeout(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(rejection);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_timeout_is_503_overloaded_with_retry_after() {
        let from_storage = AppError::from(StorageError::Database(sqlx::Error::PoolTimedOut));
        let wrapped = AppError::internal(StorageError::Database(sqlx::Error::PoolTimedOut));
        let direct = AppError::internal(sqlx::Error::PoolTimedOut);
        for error in [from_storage, wrapped, direct] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers()[RETRY_AFTER],
                RETRY_AFTER_SECS.to_string()
            );
        }
        let other = AppError::internal(sqlx::Error::RowNotFound).into_response();
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
