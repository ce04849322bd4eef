//! The parts of the API description that handlers name: the shared error
//! responses, the `Error` schema narrowed to the codes an answer carries,
//! and the schemas of bodies that are not Rust types of their own. The
//! whole document is assembled in [`crate::http::openapi`].

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use crate::http::error::{ErrorBody, ErrorCode};

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
