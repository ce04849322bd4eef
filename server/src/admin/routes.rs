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
    move_org_unit, reset_password, revoke_device, set_role,
};
use crate::auth::AuthDevice;
use crate::error::AppError;
use crate::storage::{AuditRow, DeviceRow, OrgUnitRow, QuarantineRow};
use crate::{ApiJson, ApiQuery, AppState};

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
        .route("/v1/devices", get(list_devices))
        .route("/v1/devices/{id}/revoke", post(post_revoke))
}

async fn list_units(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<OrgUnitRow>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let mut units = state.storage.org_units().await?;
    units.retain(|u| actor.check_area([u.id.as_str()]).is_ok());
    Ok(Json(units))
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveUnit {
    parent: String,
}

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

async fn list_users(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<UserView>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let mut out = Vec::new();
    for user in state.storage.users().await? {
        if !actor.sees_user(&state, &user.id).await? {
            continue;
        }
        out.push(UserView {
            org_units: state.storage.user_units(&user.id).await?,
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            role: user.role,
        });
    }
    Ok(Json(out))
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

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

async fn list_audit(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<AuditRow>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let mut out = Vec::new();
    for entry in state.storage.audit_log(1000).await? {
        if actor.sees_user(&state, &entry.user_id).await? {
            out.push(entry);
        }
    }
    Ok(Json(out))
}

/// `?status=pending|approved|discarded`
#[derive(Debug, Deserialize)]
struct StatusQuery {
    status: Option<String>,
}

async fn list_quarantine(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Vec<QuarantineRow>>, AppError> {
    let actor = Actor::admin(&state, &auth).await?;
    let status = q.status.as_deref().unwrap_or("pending");
    if !["pending", "approved", "discarded"].contains(&status) {
        return Err(AppError::Invalid {
            field: "status",
            problem: "must be pending, approved or discarded".into(),
        });
    }
    let mut out = Vec::new();
    for entry in state.storage.quarantined(status).await? {
        if actor
            .sees_record(&state, &entry.doc_id, &entry.user_id)
            .await?
        {
            out.push(entry);
        }
    }
    Ok(Json(out))
}

async fn post_approve(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<QuarantineRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        decide(&state, &Actor::admin(&state, &auth).await?, &id, true).await?,
    ))
}

async fn post_discard(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<QuarantineRow>, AppError> {
    auth.require_admin()?;
    Ok(Json(
        decide(&state, &Actor::admin(&state, &auth).await?, &id, false).await?,
    ))
}

/// A device as the API shows one.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name given at login.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When revoked, if it was.
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
#[derive(Debug, Deserialize)]
struct DevicesQuery {
    user_id: Option<String>,
}

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
    for device in state.storage.devices(user.as_deref()).await? {
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

async fn post_revoke(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, AppError> {
    let actor = if auth.role == Role::Admin {
        Actor::admin(&state, &auth).await?
    } else {
        // Anyone may revoke their own devices, and learns nothing of others'.
        let own = state.storage.device(&id).await?;
        if own.is_none_or(|d| d.user_id != auth.user_id) {
            return Err(AppError::Forbidden(
                "you may revoke only your own devices".into(),
            ));
        }
        Actor {
            user_id: auth.user_id.clone(),
            device_id: Some(auth.device_id.clone()),
            area: Some(HashSet::new()),
        }
    };
    Ok(Json(revoke_device(&state, &actor, &id).await?.into()))
}
