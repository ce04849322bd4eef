//! The HTTP face of attached files: `PUT` and `GET /v1/attachments/…`.
//! The protocol, with its resumption, is in `api-spec/attachments.md`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::engine::attachments::{Caller, FileError, Put, Received, UploadState, state_of};
use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::{AppError, UPLOAD_OFFSET};
use crate::storage::Scope;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/attachments/{sha256}", get(download).put(upload))
        .route("/v1/attachments/{sha256}/thumbnail", get(thumbnail))
        .route("/v1/attachments/{sha256}/upload", get(upload_state))
}

/// The OpenAPI description of [`router`]'s routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(upload, upload_state, download, thumbnail))]
pub struct Api;

fn caller(auth: &AuthDevice) -> Caller {
    Caller {
        scope: Scope::of(&auth.user_id, auth.role),
        device_id: auth.device_id.clone(),
    }
}

/// `bytes <first>-<last>/<size>`: the part's start, its length and the
/// whole file's size.
fn content_range(value: &str) -> Option<(i64, i64, i64)> {
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size) = (
        first.parse::<i64>().ok()?,
        last.parse::<i64>().ok()?,
        size.parse().ok()?,
    );
    (first >= 0 && last >= first).then_some((first, last - first + 1, size))
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Upload a file, or a part of one
///
/// Sends the bytes of a file that a record names, under its SHA-256. The
/// whole file in one request, or in parts with `Content-Range: bytes
/// <first>-<last>/<size>` (first and last byte, counted from 0, and the
/// whole size), each part starting where the upload stands: after a
/// dropped connection, ask `GET /v1/attachments/{sha256}/upload` (or read
/// `Upload-Offset` from a `409 upload_offset`) and send from there. A part
/// starting at 0 starts the upload over.
///
/// Taken only from a caller who may read a record naming the file: sync
/// the record first (`409 not_referenced`). When the last byte is in, the
/// bytes are checked against the hash (`422 hash_mismatch`) and their type
/// read from them (`415 unsupported_media_type` for a type not allowed or
/// not the `Content-Type` sent); a file that fails is dropped with every
/// part. A file the server holds already is answered `200` at once, its
/// body unread: sending a file twice stores nothing twice.
#[utoipa::path(
    put,
    path = "/v1/attachments/{sha256}",
    operation_id = "uploadAttachment",
    tag = "attachments",
    security(("bearerAuth" = [])),
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "SHA-256 of the file's bytes, lowercase hex."),
        ("Content-Type" = String, Header, description = "The file's media type: image/jpeg, image/png, image/webp or application/pdf."),
        ("Content-Range" = Option<String>, Header, description = "`bytes <first>-<last>/<size>` for a part; absent for the whole file."),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes, or the part's."),
    responses(
        (status = 201, description = "The file is kept, by this request.", body = UploadState),
        (status = 200, description = "The file was kept already; nothing was read or stored.", body = UploadState),
        (status = 202, description = "The part is kept; send the next from `Upload-Offset`.", body = UploadState,
            headers(("Upload-Offset" = i64, description = "Bytes received from the start."))),
        (status = 400, description = "`invalid_sha256`, `bad_range` or `upload_interrupted`.", body = crate::http::error::ErrorBody),
        (status = 409, description = "`not_referenced`, or `upload_offset` with `Upload-Offset`.", body = crate::http::error::ErrorBody),
        (status = 413, description = "`file_too_large`.", body = crate::http::error::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: nothing kept.", body = crate::http::error::ErrorBody),
        (status = 422, description = "`hash_mismatch` or `bad_file`: nothing kept.", body = crate::http::error::ErrorBody),
        (status = 429, description = "`daily_limit`, with `Retry-After`.", body = crate::http::error::ErrorBody),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    )
)]
async fn upload(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let media_type = header(&headers, &CONTENT_TYPE)
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase())
        .ok_or(AppError::UnsupportedMediaType(
            "of the file: image/jpeg, image/png, image/webp or application/pdf",
        ))?;
    let length = header(&headers, &CONTENT_LENGTH).and_then(|l| l.parse::<i64>().ok());
    let (first, len, size) = match header(&headers, &CONTENT_RANGE) {
        Some(range) => content_range(range).ok_or_else(|| {
            FileError::BadRange(format!(
                "Content-Range {range:?} is not `bytes <first>-<last>/<size>`"
            ))
        })?,
        None => {
            let length = length.ok_or_else(|| {
                FileError::BadRange("send Content-Length, or Content-Range for a part".into())
            })?;
            (0, length, length)
        }
    };
    if length.is_some_and(|l| l != len) {
        return Err(FileError::BadRange(format!(
            "Content-Length says {} bytes, Content-Range {len}",
            length.unwrap_or_default()
        ))
        .into());
    }
    let put = Put {
        sha256: sha256.clone(),
        media_type,
        first,
        len,
        size,
    };
    let files = state.engine.files;
    let received = files
        .receive(&caller(&auth), put, body.into_data_stream())
        .await?;
    Ok(match received {
        Received::Kept(row, new) => {
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = (status, Json(state_of(&row))).into_response();
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(row.size));
            response
        }
        Received::Part { received, size } => {
            let body = UploadState {
                sha256,
                received,
                size: Some(size),
                complete: false,
                media_type: None,
            };
            let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(received));
            response
        }
    })
}

/// Where an upload stands
///
/// How many bytes of the file this device has sent so far (`received`,
/// where to resume), or `complete` when the server holds the file. Answers
/// only a caller who may read a record naming the file (`409
/// not_referenced` otherwise).
#[utoipa::path(
    get,
    path = "/v1/attachments/{sha256}/upload",
    operation_id = "attachmentUploadState",
    tag = "attachments",
    security(("bearerAuth" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "SHA-256 of the file's bytes.")),
    responses(
        (status = 200, description = "Where the upload stands.", body = UploadState),
        (status = 400, description = "`invalid_sha256`.", body = crate::http::error::ErrorBody),
        (status = 409, description = "`not_referenced`.", body = crate::http::error::ErrorBody),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    )
)]
async fn upload_state(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(sha256): Path<String>,
) -> Result<Json<UploadState>, AppError> {
    Ok(Json(
        state.engine.files.state(&caller(&auth), &sha256).await?,
    ))
}

/// Download a file
///
/// The file as the server keeps it: images re-encoded without their
/// metadata (no EXIF, no GPS position), PDFs as sent. Answers only a
/// caller who may read a record naming the file now; for anyone else, as
/// for a file that does not exist, `404`.
#[utoipa::path(
    get,
    path = "/v1/attachments/{sha256}",
    operation_id = "downloadAttachment",
    tag = "attachments",
    security(("bearerAuth" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "SHA-256 of the file's bytes as uploaded.")),
    responses(
        (status = 200, description = "The file.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such file, or not for you.", body = crate::http::error::ErrorBody),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    )
)]
async fn download(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    serve(&state, &auth, &sha256, false).await
}

/// Download a file's thumbnail
///
/// A JPEG at most 320 pixels on its longer side, for images; `404` for
/// other files, and as `GET /v1/attachments/{sha256}` does.
#[utoipa::path(
    get,
    path = "/v1/attachments/{sha256}/thumbnail",
    operation_id = "attachmentThumbnail",
    tag = "attachments",
    security(("bearerAuth" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "SHA-256 of the file's bytes as uploaded.")),
    responses(
        (status = 200, description = "The thumbnail.", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such file, no thumbnail, or not for you.", body = crate::http::error::ErrorBody),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    )
)]
async fn thumbnail(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    serve(&state, &auth, &sha256, true).await
}

async fn serve(
    state: &AppState,
    auth: &AuthDevice,
    sha256: &str,
    thumbnail: bool,
) -> Result<Response, AppError> {
    let scope = Scope::of(&auth.user_id, auth.role);
    let (media_type, bytes) = state.engine.files.open(&scope, sha256, thumbnail).await?;
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&media_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    // The bytes under a hash never change; who may read them can, so only
    // the reader's own cache keeps them.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(ETAG, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_ranges() {
        assert_eq!(
            super::content_range("bytes 0-99/1000"),
            Some((0, 100, 1000))
        );
        assert_eq!(
            super::content_range("bytes 100-100/101"),
            Some((100, 1, 101))
        );
        for bad in [
            "bytes 5-4/10",
            "bytes */10",
            "0-1/2",
            "bytes 0-1",
            "bytes -1-2/3",
        ] {
            assert_eq!(super::content_range(bad), None, "{bad}");
        }
    }
}
