//! Org units and users: listing, creating, moving, roles and passwords.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use crate::http::admin::{
    Actor, NewOrgUnit, NewUser, RoleAssignment, UserView, create_org_unit, create_user,
    move_org_unit, reset_password, set_role,
};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiJson, AppState};
use crate::storage::OrgUnitRow;

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
pub(super) async fn list_units(
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
pub(super) async fn post_unit(
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
pub(super) struct MoveUnit {
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
pub(super) async fn post_move_unit(
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
pub(super) async fn list_users(
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
pub(super) async fn post_user(
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
pub(super) async fn put_role(
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
pub(super) struct NewPassword {
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
pub(super) async fn put_password(
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
