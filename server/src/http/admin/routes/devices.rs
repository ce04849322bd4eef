//! Devices: listing them and revoking one.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sync_core::policy::Role;

use crate::http::admin::{Actor, revoke_device};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::DeviceRow;

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
pub(super) struct DevicesQuery {
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
pub(super) async fn list_devices(
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
pub(super) async fn post_revoke(
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
