//! One error type for every handler: an HTTP status, a stable
//! machine-readable `code`, and a message for people. Internal causes are
//! logged, never sent.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
    /// A body over the configured limit.
    #[error("the request body is larger than this server accepts")]
    TooLarge,
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
    /// Our fault; the cause is logged.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// Wraps an unexpected failure.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(e.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            AppError::DeviceRevoked => (StatusCode::UNAUTHORIZED, "device_revoked"),
            AppError::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            AppError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            AppError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            AppError::BadSyncMessage(_) => (StatusCode::BAD_REQUEST, "bad_sync_message"),
            AppError::UnsupportedVersion(_) => (StatusCode::BAD_REQUEST, "unsupported_version"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Refused(_) => (StatusCode::CONFLICT, "not_applicable"),
            AppError::NotFound | AppError::Missing(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For people.
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
        (status, Json(body)).into_response()
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(what) => AppError::Conflict(what),
            other => AppError::internal(other),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::TooLarge;
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
        AppError::BadSyncMessage(rejection.body_text())
    }
}
