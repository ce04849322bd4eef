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
//!    responses of this module where one fits (`response =
//!    crate::openapi::BearerRefused`, `BadJson`, `BadQuery`,
//!    `BodyTooLarge`, `UnsupportedEncoding`, `MethodNotAllowed`,
//!    `Internal`, …); otherwise give a description, one of the `…Error`
//!    schemas here (the [`Error`](crate::error::ErrorBody) schema with
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

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::error::{ErrorBody, ErrorCode};

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
    paths(crate::healthz),
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
            crate::query::figures::GroupBy,
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
            crate::auth::Api::openapi(),
            crate::sync::Api::openapi(),
            crate::events::Api::openapi(),
            crate::admin::Api::openapi(),
            crate::cases::Api::openapi(),
            crate::attachments::http::Api::openapi(),
            crate::query::Api::openapi(),
            crate::query::records::Api::openapi(),
            crate::query::figures::Api::openapi(),
            crate::metrics::Api::openapi(),
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

/// Doc-comment lines as one text, without the space after each `///`.
fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `Error` schema with `code` narrowed to `codes`.
fn error_with(description: &str, codes: &[ErrorCode]) -> RefOr<Schema> {
    let codes = codes
        .iter()
        .map(|c| serde_json::to_value(c).expect("an error code serializes"));
    AllOfBuilder::new()
        .description(Some(description))
        .item(Ref::from_schema_name(ErrorBody::name()))
        .item(
            ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes)),
            ),
        )
        .into()
}

/// Declares a schema: the `Error` schema with `code` narrowed to the given
/// codes.
macro_rules! error_schema {
    ($(#[doc = $doc:literal])+ $name:ident: $($code:ident),+) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                error_with(&doc_text(&[$($doc),+]), &[$(ErrorCode::$code),+])
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((ErrorBody::name().into(), ErrorBody::schema()));
                ErrorBody::schemas(schemas);
            }
        }
    };
}

error_schema! {
    /// An `Error` with code `forbidden`.
    ForbiddenError: Forbidden
}
error_schema! {
    /// An `Error` with code `not_found`; the message names what is missing.
    NotFoundError: NotFound
}
error_schema! {
    /// An `Error` with code `conflict`.
    ConflictError: Conflict
}
error_schema! {
    /// An `Error` with code `invalid_field`; the message starts with the
    /// field's name.
    InvalidFieldError: InvalidField
}
error_schema! {
    /// An `Error` with code `bad_credentials`.
    BadCredentialsError: BadCredentials
}
error_schema! {
    /// An `Error` with code `unauthorized` or `device_revoked`.
    UnauthorizedError: Unauthorized, DeviceRevoked
}
error_schema! {
    /// An `Error` with code `not_applicable`.
    NotApplicableError: NotApplicable
}
error_schema! {
    /// An `Error` with code `bad_sync_message` or `unsupported_version`.
    SyncMessageError: BadSyncMessage, UnsupportedVersion
}
error_schema! {
    /// An `Error` with code `body_too_large`, `too_many_documents` or
    /// `too_many_operations`.
    SyncTooLargeError: BodyTooLarge, TooManyDocuments, TooManyOperations
}
error_schema! {
    /// An `Error` with code `unsupported_media_type`.
    UnsupportedMediaTypeError: UnsupportedMediaType
}
error_schema! {
    /// An `Error` with code `bad_json`.
    BadJsonError: BadJson
}
error_schema! {
    /// An `Error` with code `bad_query`.
    BadQueryError: BadQuery
}
error_schema! {
    /// An `Error` with code `body_too_large`.
    BodyTooLargeError: BodyTooLarge
}
error_schema! {
    /// An `Error` with code `internal`.
    InternalError: Internal
}
error_schema! {
    /// An `Error` with code `method_not_allowed`.
    MethodNotAllowedError: MethodNotAllowed
}
error_schema! {
    /// An `Error` with code `rate_limited`; the `Retry-After` header says
    /// in how many seconds to try again.
    RateLimitedError: RateLimited
}
error_schema! {
    /// An `Error` with code `overloaded`; the `Retry-After` header says in
    /// how many seconds to try again.
    OverloadedError: Overloaded
}
error_schema! {
    /// An `Error` with code `too_many_streams`.
    TooManyStreamsError: TooManyStreams
}

/// A JSON error answer whose body is schema `S`, with named examples of
/// `(code, message)`.
fn error_response<S: ToSchema>(
    description: &str,
    examples: &[(&str, ErrorCode, &str)],
) -> Response {
    let mut content = ContentBuilder::new().schema(Some(Ref::from_schema_name(S::name())));
    let example =
        |code: &ErrorCode, message: &str| serde_json::json!({ "code": code, "message": message });
    if let [(_, code, message)] = examples {
        content = content.example(Some(example(code, message)));
    } else {
        content = content.examples_from_iter(examples.iter().map(|(name, code, message)| {
            (
                *name,
                ExampleBuilder::new()
                    .value(Some(example(code, message)))
                    .build(),
            )
        }));
    }
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content.build())
        .build()
}

/// Declares a reusable response (`response = Name` in `responses(...)`):
/// an error answer with the given schema and examples.
macro_rules! error_response {
    (
        $(#[doc = $doc:literal])+
        $name:ident: $schema:ty, [$(($example:literal, $code:ident, $message:literal)),+ $(,)?]
        $(, header $header:literal: $header_doc:literal)?
    ) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                #[allow(unused_mut)]
                let mut response = error_response::<$schema>(
                    &doc_text(&[$($doc),+]),
                    &[$(($example, ErrorCode::$code, $message)),+],
                );
                $(
                    response.headers.insert(
                        $header.into(),
                        utoipa::openapi::header::HeaderBuilder::new()
                            .schema(Some(String::schema()))
                            .description(Some($header_doc))
                            .build()
                            .into(),
                    );
                )?
                (stringify!($name), response.into())
            }
        }
    };
}

error_response! {
    /// The body is not acceptable JSON for this endpoint: not JSON, a
    /// missing or unknown field, a wrong type, or a `Content-Type` other
    /// than `application/json`. The message is the parser's explanation.
    BadJson: BadJsonError,
    [("bad_json", BadJson, "Failed to deserialize the JSON body into the target type: missing field `password` at line 1 column 44")]
}

error_response! {
    /// The query string cannot be read: a required parameter is missing, a
    /// value has the wrong type, a parameter is given twice, or (where the
    /// endpoint says so) a parameter is unknown. The message is the
    /// parser's explanation.
    BadQuery: BadQueryError,
    [("bad_query", BadQuery, "Failed to deserialize query string: missing field `org_unit`")]
}

error_response! {
    /// The request body (after decompression) is larger than the server
    /// accepts.
    BodyTooLarge: BodyTooLargeError,
    [("too_large", BodyTooLarge, "the request body is larger than this server accepts")]
}

error_response! {
    /// - `unauthorized`: no `Authorization` header (message `missing bearer
    ///   token`), not of the form `Bearer <token>` (`authorization must be a
    ///   bearer token`), a token that fails verification or has expired
    ///   (`invalid or expired token`), a device that does not exist or
    ///   belongs to another user (`unknown device`), or a user who no longer
    ///   exists (`unknown user`). Refresh the access token and retry; if the
    ///   refresh is refused, sign in again.
    /// - `device_revoked`: the device was revoked. Do not retry.
    BearerRefused: UnauthorizedError,
    [
        ("missing", Unauthorized, "missing bearer token"),
        ("notBearer", Unauthorized, "authorization must be a bearer token"),
        ("expired", Unauthorized, "invalid or expired token"),
        ("unknownDevice", Unauthorized, "unknown device"),
        ("revoked", DeviceRevoked, "this device has been revoked"),
    ]
}

error_response! {
    /// A server fault. The cause is logged on the server, not sent. Retry
    /// later.
    Internal: InternalError,
    [("internal", Internal, "internal error")]
}

error_response! {
    /// The device holds as many `/v1/events` streams open on this server
    /// instance as it may (`max_event_streams_per_device`). Close one first.
    TooManyStreams: TooManyStreamsError,
    [("too_many_streams", TooManyStreams, "this device has 4 event stream(s) open already, as many as it may; close one first")]
}

error_response! {
    /// No such path. Returned for every path not listed in this document.
    NotFound: NotFoundError,
    [("not_found", NotFound, "not found")]
}

error_response! {
    /// The path exists, but not for this method.
    MethodNotAllowed: MethodNotAllowedError,
    [("method_not_allowed", MethodNotAllowed, "method not allowed")],
    header "Allow": "The methods the path supports, e.g. `POST`, or `GET,HEAD`."
}

error_response! {
    /// The request's `Content-Encoding` is neither `gzip` nor `identity`.
    UnsupportedEncoding: UnsupportedMediaTypeError,
    [("encoding", UnsupportedMediaType, "the body's Content-Encoding is not supported: send gzip or identity")],
    header "Accept-Encoding": "The encodings the server decodes."
}

error_response! {
    /// The user's role is not `admin` (as the database holds it now,
    /// whatever the token says).
    AdminOnly: ForbiddenError,
    [("forbidden", Forbidden, "this needs the admin role")]
}

error_response! {
    /// The user's role is not `admin`, or what the request acts on lies
    /// outside the admin's area (an org unit not in the subtrees of the
    /// admin's units, or a user bound to such a unit).
    AdminOutsideArea: ForbiddenError,
    [
        ("notAdmin", Forbidden, "this needs the admin role"),
        ("outsideArea", Forbidden, "org unit \"demo.t2.c1\" is outside the area you administer"),
    ]
}

error_response! {
    /// No user has this id.
    UserNotFound: NotFoundError,
    [("user", NotFound, "user not found")]
}

error_response! {
    /// A field of the new user is not acceptable.
    UserFieldInvalid: InvalidFieldError,
    [
        ("username", InvalidField, "username: must be 1 to 64 characters"),
        ("password", InvalidField, "password: must have at least 8 characters"),
        ("role", InvalidField, "role: unknown role \"root\""),
        ("noUnit", InvalidField, "org_units: a grid_worker needs at least one org unit"),
        ("unknownUnit", InvalidField, "org_units: no org unit \"demo.t9\""),
    ]
}

error_response! {
    /// No case has this id, the id is not a case id, or the user may not
    /// see the case.
    CaseNotFound: NotFoundError,
    [("case", NotFound, "case not found")]
}

error_response! {
    /// No org unit has the id given in `org_unit`, or it lies outside the
    /// caller's area (answered alike, so that nothing is learnt of units
    /// the caller may not see).
    OrgUnitNotFound: NotFoundError,
    [("org_unit", NotFound, "org unit not found")]
}

error_response! {
    /// No record has this id, or the user may not see it.
    RecordNotFound: NotFoundError,
    [("record", NotFound, "record not found")]
}

error_response! {
    /// A query value is not acceptable: an unknown filter value (tag,
    /// residence, category, class, status, level), an unknown sort, a
    /// `limit` outside 1–1000, a `cursor` this list did not issue for this
    /// sort, or `days` outside 1–3660. The message starts with the
    /// parameter's name.
    QueryValueInvalid: InvalidFieldError,
    [
        ("tag", InvalidField, "tag: must be one of elderly_alone, left_behind_child, disabled, low_income, veteran, released_from_prison, community_correction, drug_rehabilitation, severe_mental_disorder"),
        ("cursor", InvalidField, "cursor: is not a cursor this list issued for this sort"),
    ]
}

error_response! {
    /// No quarantine entry has this id.
    QuarantineEntryNotFound: NotFoundError,
    [("entry", NotFound, "quarantine entry not found")]
}

error_response! {
    /// The entry was approved or discarded already.
    AlreadyDecided: ConflictError,
    [("decided", Conflict, "a decision on this change exists already")]
}

/// The data of a `changed` event on `/v1/events`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChangedEvent {
    /// The position the server's feed reached with the announced changes.
    /// Informational; the sync cursor is what tells the server where the
    /// device stands.
    #[schema(minimum = 1)]
    seq: i64,
}

/// Declares `fn $name() -> ObjectBuilder`: the schema of a string that is
/// always `$value`, for `#[schema(schema_with = …)]`.
macro_rules! constant {
    ($(#[doc = $doc:literal])+ $name:ident = $value:literal) => {
        $(#[doc = $doc])+
        pub fn $name() -> ObjectBuilder {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([$value]))
                .description(Some(concat!("Always `", $value, "`.")))
        }
    };
}

constant! {
    /// `status` of an answer that went well.
    status_ok = "ok"
}
constant! {
    /// `status` of `/healthz` when the database does not answer.
    status_unavailable = "unavailable"
}
constant! {
    /// `code` of `/healthz` when the database does not answer.
    database_unavailable = "database_unavailable"
}
constant! {
    /// `token_type` of a token answer.
    bearer = "Bearer"
}
constant! {
    /// `kty` of a JWK.
    okp = "OKP"
}
constant! {
    /// `crv` of a JWK.
    ed25519 = "Ed25519"
}
constant! {
    /// `alg` of a JWK.
    eddsa = "EdDSA"
}
constant! {
    /// `use` of a JWK.
    sig = "sig"
}

/// `GET /healthz` when the database answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HealthOk {
    #[schema(schema_with = status_ok)]
    status: String,
    /// How many documents the server stores.
    #[schema(minimum = 0)]
    documents: i64,
}

/// `GET /healthz` when the database does not answer: an `Error` with code
/// `database_unavailable`, plus `status`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HealthUnavailable {
    #[schema(schema_with = status_unavailable)]
    status: String,
    #[schema(schema_with = database_unavailable)]
    code: ErrorCode,
    /// For people.
    message: String,
}

/// The answer of an action that has nothing else to say.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatusOk {
    #[schema(schema_with = status_ok)]
    status: String,
}

/// A list exported as CSV: UTF-8 with a byte-order mark, a header row,
/// CRLF line ends (RFC 4180).
#[derive(ToSchema)]
#[schema(value_type = String)]
#[allow(dead_code)]
pub struct Csv(String);

/// A list exported as an Excel workbook (Office Open XML) with one sheet.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Xlsx(Vec<u8>);

/// A request or response body of the sync protocol: CBOR (RFC 8949), see
/// `sync-protocol.md`.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Cbor(Vec<u8>);

/// A JWK Set (RFC 7517): the keys that verify access tokens, as
/// `auth::Keys` publishes them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    /// Every key not yet retired, newest first.
    keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    #[schema(schema_with = okp)]
    kty: String,
    #[schema(schema_with = ed25519)]
    crv: String,
    #[schema(schema_with = eddsa)]
    alg: String,
    #[schema(schema_with = sig, rename = "use")]
    use_: String,
    /// Key id, matched against the `kid` of a token's header.
    kid: String,
    /// The 32-byte public key, unpadded base64url.
    x: String,
}

/// The kind of a record, as the API names it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RecordKindName {
    /// A household (`hh_`).
    Household,
    /// A case (`cs_`).
    Case,
    /// A visit (`vs_`).
    Visit,
    /// Special-population details of a household (`hs_`).
    Sensitive,
}

/// A `Content-Encoding` of request bodies the server decodes.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ContentEncoding {
    /// Compressed with gzip.
    Gzip,
    /// Not compressed.
    Identity,
}
