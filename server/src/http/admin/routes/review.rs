//! The audit log and the quarantine: reading them, and deciding on held
//! changes.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use crate::http::admin::{Actor, decide, quarantine_page};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::query::ListPage;
use crate::http::{ApiQuery, AppState};
use crate::storage::{AuditEntry, QuarantineRow};

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
pub(super) async fn list_audit(
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
pub(super) struct StatusQuery {
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
        (status = 200, description = "Quarantine entries, oldest first.", body = ListPage<crate::http::admin::QuarantineView>,
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
pub(super) async fn list_quarantine(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<ListPage<crate::http::admin::QuarantineView>>, AppError> {
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
pub(super) async fn post_approve(
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
pub(super) async fn post_discard(
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
