//! `POST /v1/sync`: decodes a sync round's request, hands it to the
//! engine ([`crate::engine::sync::round`]) and encodes the answer.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sync_core::protocol::{CONTENT_TYPE, DecodeError, SyncRequest};

use crate::engine::sync::round;
use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;

/// The sync route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", post(sync))
}

/// The OpenAPI description of [`router`]'s route (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(sync))]
pub struct Api;

/// The request headers of a sync round that the API description names.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct SyncHeaders {
    /// `gzip` for a compressed body. Any value other than `gzip` or
    /// `identity` is answered `415`.
    #[param(
        rename = "Content-Encoding",
        required = false,
        value_type = crate::http::schemas::ContentEncoding
    )]
    content_encoding: String,
}

/// One sync round
///
/// Sends changes the server has not acknowledged, for any number of
/// documents, and receives everything the device lacks. The request and
/// response bodies are CBOR (RFC 8949) messages `SyncRequest` and
/// `SyncResponse`, specified in `sync-protocol.md`, protocol version 1;
/// this document describes them only as binary.
///
/// Order of checks: authentication (`401`), media type (`415`), body size
/// and readability (`413`, `400`), protocol version (`400
/// unsupported_version`, read before the rest of the message), message
/// shape (`400 bad_sync_message`), the number of documents (`413
/// too_many_documents`), cursor format (`400 bad_sync_message`), the
/// operations in all changes together (`413 too_many_operations`),
/// announced actor ids (`400 bad_sync_message`). When any of these refuses
/// the request, nothing is stored. Otherwise the response is `200`, sent
/// only after the round is committed; documents the server refused are
/// listed in its `errors` field (per-document codes `corrupt_change`,
/// `compressed_change`, `change_too_large`, `invalid_change`,
/// `missing_dependencies`, `unregistered_actor`, `invalid_record`,
/// `forbidden`, `unreadable_document`, `duplicate_document`,
/// `bad_am_sync_message`; see `sync-protocol.md` §9).
///
/// **Actors.** The request's `actors` field announces the Automerge actor
/// ids the device writes with. Each is registered to the device the first
/// time the server sees it; a change is accepted only from an actor
/// registered to the device that sends it (otherwise `unregistered_actor`).
///
/// **Permissions.** Every pushed document is checked against the policy for
/// the user's current role and org units (`permissions.md`). Refused
/// changes, with everything that depends on them, are held in quarantine
/// for an admin (`/v1/admin/quarantine`); the rest of the document's changes
/// are stored, and the document is answered with `forbidden`. The device
/// receives only documents in its scope, and the response's `drop` field
/// lists documents it must no longer hold (`sync-protocol.md` §8.2, §8.3,
/// §9.1).
///
/// A well-formed cursor the server does not recognise (issued by another
/// database, or past the end of the feed after a restore from an older
/// backup) is not an error: the response starts the device's feed over and
/// carries `reset: true`, and the device must clear the acknowledged heads
/// of every document before applying it (`sync-protocol.md` §8.1).
///
/// A round is idempotent: repeating a request stores nothing twice.
#[utoipa::path(
    post,
    path = "/v1/sync",
    operation_id = "sync",
    tag = "sync",
    security(("bearerAuth" = [])),
    params(SyncHeaders),
    request_body(
        content = crate::http::schemas::Cbor,
        content_type = CONTENT_TYPE,
        description = "A `SyncRequest` encoded as CBOR (fields `v`, `cursor`, `actors`, `docs`, \
            `am_sync`). See `sync-protocol.md` §3 and §4.",
    ),
    responses(
        (status = 200, description = "A `SyncResponse` encoded as CBOR (fields `v`, `cursor`, \
            `more`, `reset`, `docs`, `errors`, `drop`, `am_sync`). See `sync-protocol.md` §5. \
            Sent after the round's changes are committed durably.",
            body = crate::http::schemas::Cbor, content_type = CONTENT_TYPE,
            headers(("Content-Encoding" = String, description = "`gzip` when the response is compressed."))),
        (status = 400, description = "The whole request was refused; nothing was stored.\n\
            - `bad_sync_message`: the body is not CBOR, has bytes after its single CBOR item, \
            or is not a sync request (missing `v`, malformed record id, heads not a multiple of \
            32 bytes, wrong types); the cursor is malformed (not 40 bytes, as a cursor from an \
            earlier server version, or inconsistent contents); `actors` has more than 8 entries \
            or an entry that is empty or longer than 32 bytes; or the body could not be read \
            (e.g. broken gzip).\n\
            - `unsupported_version`: `v` is not `1`, whatever the rest of the message.",
            body = crate::http::schemas::SyncMessageError,
            examples(
                ("malformed" = (value = json!({"code": "bad_sync_message",
                    "message": "not a sync message: missing field `v`"}))),
                ("truncated" = (value = json!({"code": "bad_sync_message",
                    "message": "not a sync message: the message ends early or cannot be read"}))),
                ("trailing" = (value = json!({"code": "bad_sync_message",
                    "message": "not a sync message: 1 bytes after the end of the message"}))),
                ("cursor" = (value = json!({"code": "bad_sync_message",
                    "message": "cursor is not one this server issued"}))),
                ("actors" = (value = json!({"code": "bad_sync_message",
                    "message": "announce at most 8 actor ids of 1 to 32 bytes"}))),
                ("version" = (value = json!({"code": "unsupported_version",
                    "message": "unsupported sync protocol version 2 (this server speaks 1)"}))),
            )),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, description = "The whole request was refused; nothing was stored.\n\
            - `body_too_large`: the body, after decompression, is over `max_body_bytes`;\n\
            - `too_many_documents`: `docs` and `am_sync` together have more than \
            `sync_max_docs` entries (default 1000);\n\
            - `too_many_operations`: the changes together hold more than \
            `sync_max_request_ops` operations (default 1,000,000).",
            body = crate::http::schemas::SyncTooLargeError,
            examples(
                ("body" = (value = json!({"code": "body_too_large",
                    "message": "the request body is larger than this server accepts"}))),
                ("documents" = (value = json!({"code": "too_many_documents",
                    "message": "a sync request carries at most 1000 documents; this one carries 1200: send the rest in the next round"}))),
                ("operations" = (value = json!({"code": "too_many_operations",
                    "message": "the changes of one sync request hold at most 1000000 operations; send fewer changes per round"}))),
            )),
        (status = 415, description = "Code `unsupported_media_type`, when:\n\
            - the `Content-Type` is not `application/vnd.gridsync.sync+cbor` (parameters after \
            `;` are ignored; the comparison is case-insensitive);\n\
            - the `Content-Encoding` is neither `gzip` nor `identity`; the answer has an \
            `Accept-Encoding` header.",
            body = crate::http::schemas::UnsupportedMediaTypeError,
            headers(("Accept-Encoding" = String,
                description = "When the `Content-Encoding` was refused: the encodings the server decodes.")),
            examples(
                ("mediaType" = (value = json!({"code": "unsupported_media_type",
                    "message": "expected a body of type application/vnd.gridsync.sync+cbor"}))),
                ("encoding" = (value = json!({"code": "unsupported_media_type",
                    "message": "the body's Content-Encoding is not supported: send gzip or identity"}))),
            )),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
#[tracing::instrument(
    name = "sync_round",
    skip_all,
    fields(user = %auth.user_id, device = %auth.device_id, docs_up, docs_down, errors)
)]
async fn sync(
    State(state): State<AppState>,
    auth: AuthDevice,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(CONTENT_TYPE)) {
        return Err(AppError::UnsupportedMediaType(CONTENT_TYPE));
    }
    let request = SyncRequest::decode(&body?).map_err(|e| match e {
        DecodeError::Version(_) => AppError::UnsupportedVersion(e.to_string()),
        DecodeError::Malformed(_) => AppError::BadSyncMessage(e.to_string()),
    })?;
    let span = tracing::Span::current();
    span.record("docs_up", request.docs.len() + request.am_sync.len());
    let response = round(&state.engine, &auth, request).await?;
    span.record("docs_down", response.docs.len());
    span.record("errors", response.errors.len());
    if !response.errors.is_empty() {
        tracing::warn!(errors = ?response.errors, "documents refused");
    }
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        response.encode(),
    )
        .into_response())
}
