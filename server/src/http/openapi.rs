//! The OpenAPI 3.1 description of the HTTP API, generated from the code.
//!
//! `api-spec/openapi.yaml` is the output of [`yaml`] (`gridsync openapi`
//! prints it). `server/tests/openapi.rs` fails when the file differs from
//! what the code generates, or when a route is not described;
//! `UPDATE_API_SPEC=1 cargo test -p gridsync-server --test openapi`
//! rewrites the file.
//!
//! # Describing an endpoint
//!
//! 1. Put `#[utoipa::path(...)]` on the handler, below its doc comment:
//!    the comment's first paragraph (one short line) becomes the
//!    operation's summary, the rest its description. Give `operation_id`
//!    (camelCase), `tag` (one of [`tags`]: `auth`, `sync`, `account`,
//!    `cases`, `admin`, `ops`; a new one goes into [`ApiDoc`]'s `tags`),
//!    `security(("bearerAuth" = []))` unless the endpoint needs no token,
//!    `params(...)` for path and query parameters (a query struct derives
//!    `utoipa::IntoParams`), `request_body = T` and `responses(...)`. In
//!    the description, say in which order the endpoint checks what.
//! 2. Derive `utoipa::ToSchema` on every request and response type (and
//!    `IntoParams` on query structs); field doc comments become the
//!    properties' descriptions. A field whose Rust type says less than the
//!    answer (a `String` that holds a role) takes
//!    `#[schema(value_type = …)]`.
//! 3. List every status the endpoint answers. Errors use the shared
//!    responses of [`crate::http::schemas`] where one fits (`response =
//!    crate::http::schemas::BearerRefused`, `BadJson`, `BadQuery`,
//!    `BodyTooLarge`, `UnsupportedEncoding`, `MethodNotAllowed`,
//!    `Internal`, …); otherwise give a description, one of the `…Error`
//!    schemas there (the [`Error`](crate::http::error::ErrorBody) schema with
//!    `code` narrowed to the codes it can carry) and an example. Every
//!    operation lists `405`; authenticated ones `401` and `500`.
//! 4. Add the handler to its module's `Api` struct (`#[derive(OpenApi)]`
//!    next to `router()`); a new module's `Api` joins the list in
//!    `Modules` below. A schema or shared response that only a response
//!    or parameter names goes into [`ApiDoc`]'s `components`.
//! 5. Run `UPDATE_API_SPEC=1 cargo test -p gridsync-server --test openapi`
//!    and commit `api-spec/openapi.yaml` with the code. The other tests
//!    there fail on a `.route(...)` without a description, a `$ref` that
//!    points nowhere, or an operation without summary or `401`/`405`/`500`.
//!    `.ci/schemathesis` then checks the server's answers against the file.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::{ErrorBody, ErrorCode};
use crate::http::schemas::*;

/// The top of the document: who may do what, the order of checks, errors.
const DESCRIPTION: &str = r#"Offline-first sync for household, case and visit records.

HTTP API of the gridsync server: sign-in and tokens, the public keys that
verify tokens, a health check, the sync endpoint, a stream of change
notifications, the signed-in user's description and devices, cases at the
desk (a case's state, desk actions, the overdue list and case figures),
supervisors' queries over the merged data (lists with filters and exports,
daily logs, records with their history and conflicts, figures per org
unit), and the administration of org units, users, quarantined changes and
the audit log.

Sync bodies are CBOR and are specified in `sync-protocol.md`; the change
notifications are Server-Sent Events; list exports are CSV or XLSX; every
other body is JSON. This
document is generated from the server's code (`gridsync openapi`).

**Who may do what.** Every endpoint except sign-in, refresh, the keys and
the health check needs a bearer token. Each request is judged by the user's
role and org units as the database holds them at that moment, not as they
were when the token was issued: a role change counts at the user's next
request. What each role may see and change in the synced records is set out
in `permissions.md`; the case workflow in `workflow.md`. Every
`/v1/admin/…` endpoint answers `403` with code `forbidden` to users whose
role is not `admin` (response `AdminOnly`).

**Admins act within their area.** An admin's area is every org unit in the
subtrees of the units they are bound to. Through the API an admin creates
org units only below a unit of their area, moves units only within it,
creates users only in it, changes the role, units or password only of users
all of whose units lie in it, revokes only the devices of such users (and
their own), and decides only on quarantined changes to records of their
area; anything else answers `403 forbidden`. Root org units are created
only with `gridsync admin` on the command line, which is not limited to an
area. The lists show only the admin's area: org units in it, users all of
whose units lie in it (and the admin), their devices, audit entries by
them, and quarantined changes to records of the area (or, for records the
server does not hold, sent by such users).

**Order of checks** on the account, case and admin endpoints:
authentication (`401`), then the query string (`400 bad_query`) or the
request body (`400 bad_json`, `413`), then the admin role (`403`), then the
request itself (`403`, `404`, `409`, `422`; each endpoint says in which
order). A refused request changes nothing.

**Errors.** Every error response produced by the server has a JSON body
`{"code": "...", "message": "..."}` (schema `Error`). `code` is stable and
machine-readable; `message` is for people and may change. Any path not
listed here answers `404` with code `not_found` (response `NotFound`); so
does a listed path naming something that does not exist (a user, a device,
an org unit, a quarantine entry, a case). A method a listed path does not
support answers `405` with code `method_not_allowed` and an `Allow` header
naming the supported methods (response `MethodNotAllowed`). A request whose
`Content-Encoding` is neither `gzip` nor `identity` answers `415` with code
`unsupported_media_type` and an `Accept-Encoding` header naming the
encodings the server decodes (response `UnsupportedEncoding`). A path
segment that is not UTF-8 once percent-decoded names nothing and answers
`404 not_found` too. A query string that cannot
be read (a required parameter missing, a value of the wrong type, a
parameter given twice, or an unknown parameter where the endpoint says so)
answers `400` with code `bad_query` (response `BadQuery`). Any endpoint may
answer `500` with code `internal`; the cause is logged on the server, never
sent.

**Instances.** A deployment may run several server instances on one
database. Any instance may answer any request: tokens, sync cursors and
acknowledged heads are valid at every instance of the same database.

**Compression.** Requests may be sent with `Content-Encoding: gzip`.
Responses are gzip-compressed when the request carries `Accept-Encoding:
gzip`, except very small ones.

**Body size.** Request bodies larger than the server's limit (default 16
MiB, measured after decompression) are refused with `413 body_too_large`.

**Limits.** Any endpoint may answer `503` with code `overloaded` (the
server is serving as many requests as it may at once, or no database
connection came free in time) or `timed_out` (the request took longer than
the server's request timeout, default 120 s, until its answer started),
both with a `Retry-After` header in seconds: nothing was changed, send the
request again after that. A request body that is not complete 60 s (by
default) after the headers is answered `408` with code `body_timeout`;
headers not complete after 10 s close the connection. A handler fault is
answered `500 internal`, never a dropped connection.
"#;

/// How a client presents its access token.
const BEARER_DESCRIPTION: &str = r#"`Authorization: Bearer <access_token>`, with the scheme word exactly
`Bearer` followed by one space. The access token is a JWT signed with EdDSA
(Ed25519); its header carries `alg: EdDSA` and the `kid` of a key published
at `/.well-known/jwks.json`.

Claims: `sub` (user id), `dev` (device id), `role` (the user's role when
the token was issued; informational only: the server judges every request
by the role the database holds now), `iss` and `aud` (both `gridsync` by
default, set by the server's configuration), `iat` and `exp` (seconds since
the Unix epoch). Tokens live 15 minutes by default; `expires_in` in
`TokenResponse` gives the actual lifetime. Expiry is checked with 30
seconds of leeway.

Every request also looks up the device and the user, so a revoked device is
refused (`401 device_revoked`) at its next request, before its token
expires, and a changed role counts at once.
"#;

/// The whole API: the document's head here, the operations from each
/// module's `Api` (see the module documentation).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gridsync API",
        description = DESCRIPTION,
        license(name = "MIT OR Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:8080", description = "Default listen address of a local server.")),
    paths(crate::http::healthz),
    components(
        schemas(
            ErrorBody,
            ErrorCode,
            BadJsonError,
            BadQueryError,
            SyncMessageError,
            SyncTooLargeError,
            UnauthorizedError,
            BadCredentialsError,
            ForbiddenError,
            NotFoundError,
            MethodNotAllowedError,
            TooManyStreamsError,
            ConflictError,
            NotApplicableError,
            BodyTooLargeError,
            UnsupportedMediaTypeError,
            InvalidFieldError,
            InternalError,
            RateLimitedError,
            OverloadedError,
            ChangedEvent,
            ContentEncoding,
            crate::export::Format,
            crate::export::Lang,
            crate::http::query::figures::GroupBy,
        ),
        responses(
            BadJson,
            BadQuery,
            BodyTooLarge,
            BearerRefused,
            Internal,
            NotFound,
            MethodNotAllowed,
            TooManyStreams,
            AdminOnly,
            AdminOutsideArea,
            UserNotFound,
            UserFieldInvalid,
            UnsupportedEncoding,
            CaseNotFound,
            OrgUnitNotFound,
            RecordNotFound,
            QueryValueInvalid,
            QuarantineEntryNotFound,
            AlreadyDecided,
        ),
    ),
    modifiers(&Modules, &BearerAuth),
    tags(
        (name = "auth", description = "Sign-in, token refresh and token-verification keys."),
        (name = "sync", description = "Batched document sync and change notifications."),
        (name = "account", description = "The signed-in user and their devices."),
        (name = "cases", description = "Cases at the desk: a case's folded state, desk actions, the overdue list for supervision and case figures. See `workflow.md`."),
        (name = "attachments", description = "Files attached to records (photos, scanned papers): resumable uploads by SHA-256, downloads and thumbnails for those who may read a record naming the file. See `attachments.md`."),
        (name = "queries", description = "What supervisors ask of the merged data: households, cases and visits with filters, sorts and cursors, exported as CSV or XLSX; workers' daily logs; one record's merged JSON, history and conflicts; figures per org unit. Narrowed by the caller's scope as sync is."),
        (name = "admin", description = "Org units, users and roles, passwords, quarantined changes and the audit log. Admins only."),
        (name = "ops", description = "Operations."),
    ),
)]
pub struct ApiDoc;

/// The tags operations are grouped by, as declared on [`ApiDoc`].
pub fn tags() -> Vec<String> {
    ApiDoc::openapi()
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// The document as YAML: what `api-spec/openapi.yaml` holds.
pub fn yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

/// Adds the operations of every module that serves routes.
struct Modules;

impl Modify for Modules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for part in [
            crate::http::auth::Api::openapi(),
            crate::http::sync::Api::openapi(),
            crate::http::events::Api::openapi(),
            crate::http::admin::Api::openapi(),
            crate::http::cases::Api::openapi(),
            crate::http::files::Api::openapi(),
            crate::http::query::Api::openapi(),
            crate::http::query::records::Api::openapi(),
            crate::http::query::figures::Api::openapi(),
            crate::http::metrics::Api::openapi(),
        ] {
            openapi.merge(part);
        }
    }
}

/// Declares the `bearerAuth` scheme that operations name in `security`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(BEARER_DESCRIPTION))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}
