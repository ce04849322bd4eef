//! The HTTP face of administration: each handler checks who is calling and
//! calls the function in [`super`] that the command line calls too.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sync_core::policy::Role;

use super::{
    Actor, NewOrgUnit, NewUser, RoleAssignment, UserView, create_org_unit, create_user, decide,
    import_households, move_org_unit, quarantine_page, reset_password, revoke_device, set_role,
};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::query::ListPage;
use crate::http::{ApiJson, ApiQuery, AppState};
use crate::storage::{AuditEntry, DeviceRow, OrgUnitRow, QuarantineRow};

/// The admin and device routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/org-units", get(list_units).post(post_unit))
        .route("/v1/admin/org-units/{id}/move", post(post_move_unit))
        .route("/v1/admin/users", get(list_users).post(post_user))
        .route("/v1/admin/users/{id}/role", put(put_role))
        .route("/v1/admin/users/{id}/password", put(put_password))
        .route("/v1/admin/audit", get(list_audit))
        .route("/v1/admin/quarantine", get(list_quarantine))
        .route("/v1/admin/quarantine/{id}/approve", post(post_approve))
        .route("/v1/admin/quarantine/{id}/discard", post(post_discard))
        .route("/v1/admin/import/households", post(post_import))
        .route("/v1/admin/import/households/template", get(get_template))
        .route("/v1/devices", get(list_devices))
        .route("/v1/devices/{id}/revoke", post(post_revoke))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_devices,
    post_revoke,
    list_units,
    post_unit,
    post_move_unit,
    list_users,
    post_user,
    put_role,
    put_password,
    list_audit,
    list_quarantine,
    post_approve,
    post_discard,
    post_import,
    get_template,
))]
pub struct Api;

/// List org units
///
/// The org units of the admin's area, ordered by path (each unit before the
/// units below it).
#[utoipa::path(
    get,
    path = "/v1/admin/org-units",
    operation_id = "listOrgUnits",
    tag = "admin",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The org units of the admin's area.", body = Vec<OrgUnitRow>,
            example = json!([
                {"id": "demo", "parent_id": null, "kind": "county", "name": "示范县",
                 "path": "/demo/", "created_at": 1732406400000_i64},
                {"id": "demo.t1", "parent_id": "demo", "kind": "township", "name": "城关街道",
                 "path": "/demo/demo.t1/", "created_at": 1732406400000_i64}
            ])),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn list_units(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<OrgUnitRow>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let mut units = state.engine.storage.org_units().await?;
    units.retain(|u| actor.check_area([u.id.as_str()]).is_ok());
    Ok(Json(units))
}

/// Create an org unit
///
/// Adds a unit to the tree, below `parent`, which must lie in the admin's
/// area. Root org units (no `parent`) are created only with `gridsync admin
/// create-org-unit` on the command line. Checks, in order: `id` (`422`),
/// `kind` (`422`), `parent` is given (`403`), `parent` lies in the admin's
/// area (`403`; an unknown parent does not), the id is free (`409`).
/// Recorded in the audit log (`create_org_unit`).
#[utoipa::path(
    post,
    path = "/v1/admin/org-units",
    operation_id = "createOrgUnit",
    tag = "admin",
    security(("bearerAuth" = [])),
    request_body(content = NewOrgUnit, example = json!({
        "id": "demo.t1.c1.g3", "parent": "demo.t1.c1", "kind": "grid", "name": "第1社区第3网格"
    })),
    responses(
        (status = 200, description = "The new org unit.", body = OrgUnitRow,
            example = json!({"id": "demo.t1.c1.g3", "parent_id": "demo.t1.c1", "kind": "grid",
                "name": "第1社区第3网格", "path": "/demo/demo.t1/demo.t1.c1/demo.t1.c1.g3/",
                "created_at": 1732406400000_i64})),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, description = "The user is not an admin, `parent` is absent or `null` \
            (a root), or `parent` is not an org unit of the admin's area (unknown units included).",
            body = crate::http::schemas::ForbiddenError,
            examples(
                ("notAdmin" = (value = json!({"code": "forbidden", "message": "this needs the admin role"}))),
                ("root" = (value = json!({"code": "forbidden",
                    "message": "root org units are created on the command line"}))),
                ("outsideArea" = (value = json!({"code": "forbidden",
                    "message": "org unit \"demo.t2\" is outside the area you administer"}))),
            )),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, description = "An org unit with this id exists already.",
            body = crate::http::schemas::ConflictError,
            example = json!({"code": "conflict", "message": "org unit exists already"})),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "`id` or `kind` is not acceptable.",
            body = crate::http::schemas::InvalidFieldError,
            examples(
                ("id" = (value = json!({"code": "invalid_field",
                    "message": "id: must be 1 to 64 of a-z, 0-9, '.', '-'"}))),
                ("kind" = (value = json!({"code": "invalid_field",
                    "message": "kind: must be one of county, township, community, grid"}))),
            )),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_unit(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(new): ApiJson<NewOrgUnit>,
) -> Result<Json<OrgUnitRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        create_org_unit(&state, &Actor::admin(&state, &auth).await?, new).await?,
    ))
}

/// `POST /v1/admin/org-units/{id}/move`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = MoveOrgUnit)]
#[serde(deny_unknown_fields)]
struct MoveUnit {
    /// The id of the new parent.
    parent: String,
}

/// Move an org unit
///
/// Moves the unit, with everything below it, under another parent. The
/// records keep their org units; what moves is who sees them. Every user's
/// devices rescan their scope at their next sync, receiving what entered it
/// and dropping what left it. A unit cannot be moved under itself or below
/// itself, nor made a root. Both the unit and the new parent must lie in the
/// admin's area. Checks, in order: the unit exists (`404`), the new parent
/// exists (`404`), both lie in the admin's area (`403`), the parent is
/// outside the unit's subtree (`422`). Recorded in the audit log
/// (`move_org_unit`, with the old and new paths).
#[utoipa::path(
    post,
    path = "/v1/admin/org-units/{id}/move",
    operation_id = "moveOrgUnit",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Org unit id.")),
    request_body(content = MoveUnit, example = json!({"parent": "demo.t1.c2"})),
    responses(
        (status = 200, description = "The unit after the move.", body = OrgUnitRow,
            example = json!({"id": "demo.t1.c1.g3", "parent_id": "demo.t1.c2", "kind": "grid",
                "name": "第1社区第3网格", "path": "/demo/demo.t1/demo.t1.c2/demo.t1.c1.g3/",
                "created_at": 1732406400000_i64})),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 404, description = "The unit or the new parent does not exist.",
            body = crate::http::schemas::NotFoundError,
            examples(
                ("unit" = (value = json!({"code": "not_found", "message": "org unit not found"}))),
                ("parent" = (value = json!({"code": "not_found", "message": "parent org unit not found"}))),
            )),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "The new parent is the unit itself or below it.",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field", "message": "parent: cannot move an org unit under itself"})),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_move_unit(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveUnit>,
) -> Result<Json<OrgUnitRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        move_org_unit(
            &state,
            &Actor::admin(&state, &auth).await?,
            &id,
            &body.parent,
        )
        .await?,
    ))
}

/// List users
///
/// The users the admin administers (all of whose units lie in the admin's
/// area) and the admin, with their role and org units, ordered by username.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    operation_id = "listUsers",
    tag = "admin",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The users of the admin's area.", body = Vec<UserView>,
            example = json!([{"id": "usr_3b9f0c2a7e41d85c6a1f0b2e", "username": "worker1",
                "display_name": "网格员 李娜", "role": "grid_worker", "org_units": ["demo.t1.c1.g1"]}])),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn list_users(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<UserView>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let mut out = Vec::new();
    for user in state.engine.storage.users().await? {
        if !actor.sees_user(&state, &user.id).await? {
            continue;
        }
        out.push(UserView {
            org_units: state.engine.storage.user_units(&user.id).await?,
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            role: user.role,
        });
    }
    Ok(Json(out))
}

/// Create a user
///
/// Creates a user with a role and the org units they are bound to, which
/// must lie in the admin's area. Checks, in order: `username` (`422`),
/// `password` (`422`), `role` (`422`), `org_units` (`422`: every user needs
/// at least one, and each must exist), every unit lies in the admin's area
/// (`403`), the username is free (`409`). Recorded in the audit log
/// (`create_user`; the password is not recorded).
#[utoipa::path(
    post,
    path = "/v1/admin/users",
    operation_id = "createUser",
    tag = "admin",
    security(("bearerAuth" = [])),
    request_body(content = NewUser, example = json!({
        "username": "li.na", "display_name": "李娜", "password": "a long passphrase",
        "role": "grid_worker", "org_units": ["demo.t1.c1.g1"]
    })),
    responses(
        (status = 200, description = "The new user.", body = UserView,
            example = json!({"id": "usr_5d0e8a1c9b2f4e6a7c3d1b0f", "username": "li.na",
                "display_name": "李娜", "role": "grid_worker", "org_units": ["demo.t1.c1.g1"]})),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, description = "The username is taken.", body = crate::http::schemas::ConflictError,
            example = json!({"code": "conflict", "message": "username exists already"})),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, response = crate::http::schemas::UserFieldInvalid),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_user(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<Json<UserView>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        create_user(&state, &Actor::admin(&state, &auth).await?, new).await?,
    ))
}

/// Set a user's role and org units
///
/// Replaces the user's role and org units. The change counts at the user's
/// next request, from every device, without signing in again: the policy
/// judges their next edits by the new role, and each of their devices
/// rescans its scope at its next sync, receiving what entered it and being
/// told to drop what left it. Edits a device made under the old role and
/// sends afterwards are judged by the new one (refused edits wait in
/// quarantine). The user's current units and the new ones must all lie in
/// the admin's area. Checks, in order: the user exists (`404`), `role`
/// (`422`), `org_units` (`422`), the user's current units lie in the admin's
/// area (`403`), the new units do (`403`). Recorded in the audit log
/// (`set_role`, with the old and new role and units).
#[utoipa::path(
    put,
    path = "/v1/admin/users/{id}/role",
    operation_id = "setRole",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "User id (`usr_…`), as returned by `GET /v1/admin/users`.")),
    request_body(content = RoleAssignment, example = json!({
        "role": "grid_worker", "org_units": ["demo.t1.c1.g2"]
    })),
    responses(
        (status = 200, description = "Done.", body = crate::http::schemas::StatusOk,
            example = json!({"status": "ok"})),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 404, response = crate::http::schemas::UserNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "`role` or `org_units` is not acceptable.",
            body = crate::http::schemas::InvalidFieldError,
            examples(
                ("role" = (value = json!({"code": "invalid_field", "message": "role: unknown role \"root\""}))),
                ("noUnit" = (value = json!({"code": "invalid_field",
                    "message": "org_units: a grid_worker needs at least one org unit"}))),
                ("unknownUnit" = (value = json!({"code": "invalid_field",
                    "message": "org_units: no org unit \"demo.t9\""}))),
            )),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn put_role(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleAssignment>,
) -> Result<Json<serde_json::Value>, AppError> {
    auth.require_admin()?;
    set_role(&state, &Actor::admin(&state, &auth).await?, &id, body).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// `PUT /v1/admin/users/{id}/password`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    /// At least 8 characters.
    #[schema(format = Password)]
    password: String,
}

/// Set a user's password
///
/// Replaces the user's password. Devices already signed in stay signed in:
/// revoke them (`POST /v1/devices/{id}/revoke`) to sign them out. The user's
/// units must all lie in the admin's area. Checks, in order: `password`
/// (`422`), the user exists (`404`), the user's units lie in the admin's
/// area (`403`). Recorded in the audit log (`reset_password`; the password
/// is not recorded).
#[utoipa::path(
    put,
    path = "/v1/admin/users/{id}/password",
    operation_id = "resetPassword",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "User id (`usr_…`), as returned by `GET /v1/admin/users`.")),
    request_body(content = NewPassword, example = json!({"password": "another long passphrase"})),
    responses(
        (status = 200, description = "Done.", body = crate::http::schemas::StatusOk,
            example = json!({"status": "ok"})),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 404, response = crate::http::schemas::UserNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "The password is shorter than 8 characters.",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field", "message": "password: must have at least 8 characters"})),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn put_password(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<Json<serde_json::Value>, AppError> {
    auth.require_admin()?;
    reset_password(
        &state,
        &Actor::admin(&state, &auth).await?,
        &id,
        body.password,
    )
    .await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// Read the audit log
///
/// The newest 1000 audit entries that concern the admin's area, newest
/// first, whoever acted: each entry names the org units it concerns
/// (`org_units`), and an admin reads it when one of them lies in their
/// area. Entries that concern no unit (a new signing key) are read only by
/// admins bound to a root unit. Entries record who created or moved org
/// units, created users, changed roles, reset passwords and revoked
/// devices; which changes the policy held back; who decided on them; and
/// every time special-population details were sent whole to a device
/// (`read_sensitive`). Actions taken with `gridsync admin` on the command
/// line have `user_id` `cli` and no device, and are read like any other.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    operation_id = "auditLog",
    tag = "admin",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Audit entries, newest first.", body = Vec<AuditEntry>,
            example = json!([
                {"at": 1732492800000_i64, "user_id": "usr_0a1b2c3d4e5f60718293a4b5",
                 "device_id": "dev_1f0e2d3c4b5a69788796a5b4c3d2e1f0", "action": "revoke_device",
                 "target": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13", "detail": "",
                 "org_units": ["demo.t1.c1.g1"]},
                {"at": 1732492700000_i64, "user_id": "usr_5e6f7a8b9c0d1e2f3a4b5c6d",
                 "device_id": "dev_2a3b4c5d6e7f80918a2b3c4d5e6f7081", "action": "read_sensitive",
                 "target": "hs_de300000000000000000000000000002", "detail": "sent to device",
                 "org_units": ["demo.t1.c1.g2"]}
            ])),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn list_audit(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    Ok(Json(
        state
            .engine
            .storage
            .audit_log(&actor.audit_reader(), 1000)
            .await?,
    ))
}

/// `?status=pending|approved|discarded&limit=…&cursor=…`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    /// Which entries to list. Default `pending`.
    #[param(value_type = Option<crate::domain::QuarantineStatus>)]
    status: Option<String>,
    /// Entries per page, 1–1000 (default 100).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List quarantined changes
///
/// Changes the policy refused, oldest first, to records of the admin's area
/// (for a record the server does not hold yet, the org unit the held change
/// would give it; where that cannot be told, only admins bound to a root
/// unit see it): the entries the admin may decide on. A refused change is
/// held here together with every change of the same push that depends on
/// it, one entry per change; nothing of them reaches any device until an
/// admin approves them. `rule` names the policy rule that refused the push
/// (see `sync-protocol.md` §9.1). A page of `limit` entries; pass
/// `next_cursor` back as `cursor` for the next (absent on the last page).
/// Checks, in order: the query string (`400 bad_query`), the admin role
/// (`403`), `status`, `limit` (1–1000) and `cursor` (`422`).
#[utoipa::path(
    get,
    path = "/v1/admin/quarantine",
    operation_id = "listQuarantine",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(StatusQuery),
    responses(
        (status = 200, description = "Quarantine entries, oldest first.", body = ListPage<super::QuarantineView>,
            example = json!({"items": [{
                "id": "q_4c2a9e1f0b3d5a7c8e6f1d2b", "doc_id": "hh_de300000000000000000000000000001",
                "hash": "5e2b8c0d4f6a1e3b7c9d2f4a6b8c0e1d3f5a7b9c1d3e5f7a9b0c2d4e6f8a1b3c",
                "actor": "9f3e1a7c5b2d4e6f8a0c1b3d5e7f9a2c", "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e",
                "device_id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13", "rule": "out_of_scope",
                "message": "this household is outside the sender's area",
                "received_at": 1732492800000_i64, "status": "pending", "decided_by": null,
                "decided_at": null,
                "changes": [{"path": "org_unit", "before": "demo.t1.c1.g1", "after": "demo.t1.c2.g1"}]
            }], "next_cursor": "eyJhdCI6MTczMjQ5MjgwMDAwMCwiaWQiOiJxXzRjMmE5ZTFmMGIzZDVhN2M4ZTZmMWQyYiJ9"})),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 422, description = "`status` is not one of `pending`, `approved`, `discarded`, \
            `limit` is outside 1–1000, or `cursor` is not one this list issued.",
            body = crate::http::schemas::InvalidFieldError,
            examples(
                ("status" = (value = json!({"code": "invalid_field",
                    "message": "status: must be pending, approved or discarded"}))),
                ("limit" = (value = json!({"code": "invalid_field",
                    "message": "limit: must be between 1 and 1000"}))),
                ("cursor" = (value = json!({"code": "invalid_field",
                    "message": "cursor: is not a cursor this list issued"}))),
            )),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn list_quarantine(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<ListPage<super::QuarantineView>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let status = q.status.as_deref().unwrap_or("pending");
    Ok(Json(
        quarantine_page(&state, &actor, status, q.limit, q.cursor.as_deref()).await?,
    ))
}

/// Approve a quarantined change
///
/// Merges the change into the shared history, in the name of the user and
/// device that sent it, and sends it to every device whose scope holds the
/// document (connected devices are notified). A change is approved only
/// after the changes it depends on: approve a document's entries oldest
/// first. The merged document must still hold a valid record. The policy is
/// not applied again: approving is the admin's decision. The record must
/// belong to an org unit of the admin's area, before and after the change
/// (a record the server does not hold yet: the unit the held change would
/// give it; when that cannot be told, only an admin bound to a root unit
/// may decide). Checks, in order: the entry exists (`404`), it is still
/// pending (`409`), the record belongs to the admin's area (`403`), its dependencies
/// are in the shared history (`422`), the merged record is valid (`422`),
/// the merged record belongs to the admin's area (`403`), no other decision
/// was recorded meanwhile (`409`). Recorded in the audit log
/// (`quarantine_approved`). No request body.
#[utoipa::path(
    post,
    path = "/v1/admin/quarantine/{id}/approve",
    operation_id = "approveQuarantined",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(("id" = String, Path,
        description = "Quarantine entry id (`q_…`), as returned by `GET /v1/admin/quarantine`.")),
    responses(
        (status = 200, description = "The entry, now `approved`.", body = QuarantineRow),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 404, response = crate::http::schemas::QuarantineEntryNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, response = crate::http::schemas::AlreadyDecided),
        (status = 422, description = "The change cannot be merged yet, or would leave an invalid record.",
            body = crate::http::schemas::InvalidFieldError,
            examples(
                ("dependencies" = (value = json!({"code": "invalid_field",
                    "message": "id: approve the changes this one depends on first"}))),
                ("invalid" = (value = json!({"code": "invalid_field",
                    "message": "id: merging it would leave an invalid record: document is not a valid household: org_unit: must not be empty"}))),
            )),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_approve(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<QuarantineRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        decide(
            &state.engine,
            &Actor::admin(&state, &auth).await?,
            &id,
            true,
        )
        .await?,
    ))
}

/// Discard a quarantined change
///
/// Drops the change for good: it never enters the shared history. The entry
/// stays listed with status `discarded`. Changes that depend on it can then
/// never be approved; discard them too. The admin's area is checked as for
/// approving: the record, or for one the server does not hold yet the org
/// unit the held change would give it, must lie in it (when that cannot be
/// told, only an admin bound to a root unit may discard). Checks, in order:
/// the entry exists (`404`), it is still pending (`409`), the record
/// belongs to the admin's area (`403`), no other decision was recorded
/// meanwhile (`409`). Recorded in the audit log (`quarantine_discarded`).
/// No request body.
#[utoipa::path(
    post,
    path = "/v1/admin/quarantine/{id}/discard",
    operation_id = "discardQuarantined",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(("id" = String, Path,
        description = "Quarantine entry id (`q_…`), as returned by `GET /v1/admin/quarantine`.")),
    responses(
        (status = 200, description = "The entry, now `discarded`.", body = QuarantineRow),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOutsideArea),
        (status = 404, response = crate::http::schemas::QuarantineEntryNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, response = crate::http::schemas::AlreadyDecided),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_discard(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<QuarantineRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        decide(
            &state.engine,
            &Actor::admin(&state, &auth).await?,
            &id,
            false,
        )
        .await?,
    ))
}

/// A device as the API shows one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Device)]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// The user who signed in on it.
    pub user_id: String,
    /// The `device_name` given at login.
    pub name: String,
    /// When the device signed in, in milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it was revoked (milliseconds since the Unix epoch); `null`
    /// while it is not.
    #[schema(required = true)]
    pub revoked_at: Option<i64>,
}

impl From<DeviceRow> for DeviceView {
    fn from(d: DeviceRow) -> Self {
        Self {
            id: d.id,
            user_id: d.user_id,
            name: d.name,
            created_at: d.created_at,
            revoked_at: d.revoked_at,
        }
    }
}

/// `?user_id=` (admins only; others see their own devices)
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DevicesQuery {
    /// Only this user's devices. Admins may name anyone (an unknown id gives
    /// an empty list); other users only themselves.
    user_id: Option<String>,
}

/// List devices
///
/// The devices the user has signed in on, revoked ones included, oldest
/// first. An admin sees the devices of the users they administer (and their
/// own), or one such user's with `user_id`; anyone else sees only their own,
/// and may name only themselves in `user_id`. Checks, in order: the query
/// string (`400 bad_query`, e.g. `user_id` given twice), then `user_id`
/// (`403`).
#[utoipa::path(
    get,
    path = "/v1/devices",
    operation_id = "listDevices",
    tag = "account",
    security(("bearerAuth" = [])),
    params(DevicesQuery),
    responses(
        (status = 200, description = "The devices.", body = Vec<DeviceView>,
            example = json!([{"id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e", "name": "Wang Fang's phone",
                "created_at": 1732406400000_i64, "revoked_at": null}])),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, description = "A user who is not an admin named another user in `user_id`.",
            body = crate::http::schemas::ForbiddenError,
            example = json!({"code": "forbidden", "message": "you may list only your own devices"})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn list_devices(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> Result<Json<Vec<DeviceView>>, AppError> {
    let user = match (auth.role, q.user_id) {
        (Role::Admin, wanted) => wanted,
        (_, Some(wanted)) if wanted != auth.user_id => {
            return Err(AppError::Forbidden(
                "you may list only your own devices".into(),
            ));
        }
        _ => Some(auth.user_id.clone()),
    };
    let actor = match auth.role {
        Role::Admin => Some(Actor::admin(&state, &auth).await?),
        _ => None,
    };
    let mut out = Vec::new();
    for device in state.engine.storage.devices(user.as_deref()).await? {
        let visible = match &actor {
            Some(actor) => actor.sees_user(&state, &device.user_id).await?,
            None => true,
        };
        if visible {
            out.push(DeviceView::from(device));
        }
    }
    Ok(Json(out))
}

/// Revoke a device
///
/// Revokes a device: its next request is refused with `401 device_revoked`,
/// whatever its access token, and so is every refresh; its
/// change-notification stream ends. A user may revoke their own devices (the
/// calling device included); an admin may also revoke the devices of users
/// whose org units all lie in the admin's area. Revoking a revoked device
/// changes nothing and answers as the first time (the first `revoked_at` is
/// kept). Recorded in the audit log (`revoke_device`). No request body.
///
/// A user who is not an admin learns nothing of other users' devices: any id
/// that is not one of their own devices, known or not, answers `403`. For an
/// admin the device is looked up first (`404` for an unknown id), then the
/// owner's org units are checked against the admin's area (`403`).
#[utoipa::path(
    post,
    path = "/v1/devices/{id}/revoke",
    operation_id = "revokeDevice",
    tag = "account",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Device id, as returned by login or `GET /v1/devices`.")),
    responses(
        (status = 200, description = "The device, now revoked.", body = DeviceView,
            example = json!({"id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e", "name": "Wang Fang's phone",
                "created_at": 1732406400000_i64, "revoked_at": 1732492800000_i64})),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, description = "The caller is not an admin and the id is not one of their \
            own devices (whether or not it exists), or the caller is an admin and the device's \
            owner has an org unit outside the admin's area.",
            body = crate::http::schemas::ForbiddenError,
            examples(
                ("notYours" = (value = json!({"code": "forbidden", "message": "you may revoke only your own devices"}))),
                ("outsideArea" = (value = json!({"code": "forbidden",
                    "message": "org unit \"demo.t2.c1.g1\" is outside the area you administer"}))),
            )),
        (status = 404, description = "The caller is an admin and no device has this id, or \
            (for anyone) the id is not UTF-8 once percent-decoded.",
            body = crate::http::schemas::NotFoundError,
            example = json!({"code": "not_found", "message": "device not found"})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_revoke(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, AppError> {
    let actor = if auth.role == Role::Admin {
        Actor::admin(&state, &auth).await?
    } else {
        // Anyone may revoke their own devices, and learns nothing of others'.
        let own = state.engine.storage.device(&id).await?;
        if own.is_none_or(|d| d.user_id != auth.user_id) {
            return Err(AppError::Forbidden(
                "you may revoke only your own devices".into(),
            ));
        }
        Actor {
            user_id: auth.user_id.clone(),
            device_id: Some(auth.device_id.clone()),
            area: Some(HashSet::new()),
            whole_tree: false,
        }
    };
    Ok(Json(revoke_device(&state, &actor, &id).await?.into()))
}

/// `POST /v1/admin/import/households`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The grid that rows naming no grid (column 网格) go to; an org unit
    /// of kind `grid` in the admin's area.
    pub org_unit: String,
    /// Only check the ledger and report what the import would do (the
    /// default); `false` imports.
    #[serde(default = "yes")]
    pub dry_run: bool,
}

fn yes() -> bool {
    true
}

/// Import a household ledger
///
/// An office's household ledger (一户一档), one row per person, the rows of
/// a household sharing its number (户编号): XLSX (recognised by its
/// content) or CSV in UTF-8, with the columns of the template
/// (`GET /v1/admin/import/households/template`). A household is imported
/// whole or not at all; every row not imported is listed with its reason.
/// `dry_run=true` (the default) only reports; `dry_run=false` imports.
/// Imported households are records like any other: workers' phones
/// receive them at their next sync. Importing the same ledger again
/// imports nothing twice (`already_imported`). Admins only, into grids of
/// their own area.
#[utoipa::path(
    post,
    path = "/v1/admin/import/households",
    operation_id = "importHouseholds",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(ImportQuery),
    request_body(content = crate::http::schemas::Xlsx,
        description = "The ledger: an XLSX workbook (first sheet) or a UTF-8 CSV file.",
        content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "What the import did, or for a dry run would do.",
            body = crate::http::import::ImportReport,
            example = json!({"dry_run": true, "rows": 5, "households": 2, "members": 3,
                "already_imported": 0, "refused": [{"row": 4, "column": "身份证号",
                "code": "bad_id_number",
                "message": "110101199003074515: its check digit does not match: a digit is wrong"}],
                "imported": ["hh_6f0c2a7e41d85c6a1f0b2e3b9f0c2a7e", "hh_1d85c6a1f0b2e3b9f0c2a7e46f0c2a7e"]})),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 404, description = "`org_unit` is not a grid of the admin's area.",
            body = crate::http::schemas::NotFoundError,
            example = json!({"code": "not_found", "message": "grid not found"})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 422, description = "The file is not a ledger: not a readable workbook or UTF-8 \
            CSV, empty, without a required column, or over 100,000 rows.",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field",
                "message": "file: lacks the column(s) 户编号: the first row must name the columns as the template does"})),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn post_import(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<Json<crate::http::import::ImportReport>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let importer = crate::http::import::Importer {
        auth,
        area: actor.area.clone().unwrap_or_default(),
    };
    let file = (q.org_unit.as_str(), body.as_ref());
    let report = import_households(&state, &actor, &importer, file, q.dry_run, |_, _| {}).await?;
    Ok(Json(report))
}

/// `GET /v1/admin/import/households/template`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// `xlsx` (the default) or `csv`.
    #[serde(default = "xlsx")]
    pub format: crate::export::Format,
}

fn xlsx() -> crate::export::Format {
    crate::export::Format::Xlsx
}

/// Download the ledger template
///
/// The household ledger's columns, with Chinese headers, and an example
/// household of two people: fill it in and import it. Columns: 户编号
/// (required; rows of one household share it), 网格 (a grid id; empty for
/// the grid imported into), 楼栋, 单元, 房号 (at least one), 姓名
/// (required), 身份证号 (18 characters with a valid check digit; keep the
/// column as text), 性别 (男/女; empty: from the ID number), 出生日期
/// (YYYY-MM-DD; empty: from the ID number), 与户主关系 (户主, 配偶, 子女,
/// 父母, 孙子女, 兄弟姐妹, 其他), 联系电话, 户籍类型 (户籍, 流动, 常住), 标签
/// (孤寡老人, 留守儿童, 残障人士, 低保户, 退役军人; several separated by
/// 、 or ;), 备注.
#[utoipa::path(
    get,
    path = "/v1/admin/import/households/template",
    operation_id = "householdLedgerTemplate",
    tag = "admin",
    security(("bearerAuth" = [])),
    params(TemplateQuery),
    responses(
        (status = 200, description = "The template.",
            content(
                (crate::http::schemas::Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                (crate::http::schemas::Csv = "text/csv"),
            )),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, response = crate::http::schemas::AdminOnly),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn get_template(
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    auth.require_admin()?;
    let format = match q.format {
        crate::export::Format::Json => crate::export::Format::Xlsx,
        f => f,
    };
    let disposition = format!(
        "attachment; filename=\"household-ledger.{}\"",
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        crate::http::import::template(format),
    )
        .into_response())
}
