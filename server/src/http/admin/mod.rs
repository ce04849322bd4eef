//! Administration: org units, users and roles, passwords, devices, the
//! quarantine and the audit log. One set of functions serves both the HTTP
//! API (`/v1/admin/…`, `/v1/devices…`, in [`routes`]) and `gridsync admin …`,
//! so both check and record the same things.

mod routes;

pub use routes::{Api, DeviceView, router};

pub use crate::engine::admin::{Actor, decide};

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sync_core::automerge::ActorId;
use sync_core::doc;
use sync_core::policy::Role;

use crate::domain::{OrgUnitKind, QuarantineStatus, UnknownName};
use crate::domain::{now_ms, random_hex};
use crate::engine::admin::Held;
use crate::http::AppState;
use crate::http::auth::{AuthDevice, hash_password};
use crate::http::error::AppError;
use crate::http::query::ListPage;
use crate::storage::{AuditRow, DeviceRow, OrgUnitRow, QuarantineRow, UserRow};

impl Actor {
    /// An admin acting through the API, within their own area.
    pub async fn admin(state: &AppState, auth: &AuthDevice) -> Result<Self, AppError> {
        auth.require_admin()?;
        let mut whole_tree = false;
        for unit in state.engine.storage.user_units(&auth.user_id).await? {
            let root = state.engine.storage.org_unit(&unit).await?;
            whole_tree |= root.is_some_and(|u| u.parent_id.is_none());
        }
        Ok(Self {
            user_id: auth.user_id.clone(),
            device_id: Some(auth.device_id.clone()),
            area: Some(
                state
                    .engine
                    .storage
                    .area(&auth.user_id)
                    .await?
                    .into_iter()
                    .collect(),
            ),
            whole_tree,
        })
    }

    /// Refuses unless the user's units are within the actor's area.
    async fn check_user(&self, state: &AppState, user_id: &str) -> Result<(), AppError> {
        let units = state.engine.storage.user_units(user_id).await?;
        Ok(self.check_area(units.iter().map(String::as_str))?)
    }

    /// Whether the actor administers this user (the actor always sees
    /// themselves).
    async fn sees_user(&self, state: &AppState, user_id: &str) -> Result<bool, AppError> {
        if user_id == self.user_id {
            return Ok(true);
        }
        match self.check_user(state, user_id).await {
            Ok(()) => Ok(true),
            Err(AppError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Held {
    /// What approving `entry` would change in the record as stored.
    fn changes(&self, entry: &QuarantineRow) -> Vec<crate::http::query::records::FieldChange> {
        let before = self
            .stored
            .clone()
            .unwrap_or_else(|| doc::empty(ActorId::random()));
        match self.with(entry, before.clone()) {
            Some(after) => crate::http::query::records::field_changes(&before, &after),
            None => Vec::new(),
        }
    }
}

/// A quarantine entry, with what it would change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuarantineView {
    /// The entry.
    #[serde(flatten)]
    pub entry: QuarantineRow,
    /// What approving it would change in the record as the server holds it
    /// now (with the held changes it builds on): each field with its value
    /// before and after. Empty when the server holds all of it already, or
    /// when it no longer applies.
    pub changes: Vec<crate::http::query::records::FieldChange>,
}

/// Records what `actor` did, as concerning `org_units`.
async fn audit(
    state: &AppState,
    actor: &Actor,
    (action, target): (&str, &str),
    detail: String,
    org_units: &[String],
) -> Result<(), AppError> {
    let entry = AuditRow {
        at: now_ms(),
        user_id: actor.user_id.clone(),
        device_id: actor.device_id.clone(),
        action: action.into(),
        target: target.into(),
        detail,
    };
    state.engine.storage.audit_in(&entry, org_units).await?;
    Ok(())
}

/// Imports a household ledger into `grid` ([`crate::http::import::import`];
/// `progress(done, total)` as households are stored) and, unless it was a
/// dry run or imported nothing, records it in the audit log.
pub async fn import_households(
    state: &AppState,
    actor: &Actor,
    importer: &crate::http::import::Importer,
    (grid, bytes): (&str, &[u8]),
    dry_run: bool,
    progress: impl FnMut(usize, usize),
) -> Result<crate::http::import::ImportReport, AppError> {
    actor
        .check_area([grid])
        .map_err(|_| AppError::Missing("grid"))?;
    let report =
        crate::http::import::import(state, importer, grid, bytes, dry_run, progress).await?;
    if !dry_run && report.households > 0 {
        let detail = format!(
            "{} households, {} members; {} rows refused",
            report.households,
            report.members,
            report.refused.len()
        );
        let units = [grid.to_owned()];
        audit(state, actor, ("import_households", grid), detail, &units).await?;
    }
    Ok(report)
}

/// A new org unit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgUnit {
    /// Id: 1 to 64 of `a-z 0-9 . -` (`422` otherwise). Records name their
    /// org unit by this id; it never changes.
    #[schema(pattern = "^[a-z0-9.-]{1,64}$")]
    pub id: String,
    /// The parent's id; absent or `null` for a root (which only the command
    /// line creates).
    pub parent: Option<String>,
    /// `county`, `township`, `community` or `grid`.
    #[schema(value_type = OrgUnitKind)]
    pub kind: String,
    /// Name shown to people.
    pub name: String,
}

fn check_unit_id(id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !ok {
        return Err(AppError::Invalid {
            field: "id",
            problem: "must be 1 to 64 of a-z, 0-9, '.', '-'".into(),
        });
    }
    Ok(())
}

/// Creates an org unit.
pub async fn create_org_unit(
    state: &AppState,
    actor: &Actor,
    new: NewOrgUnit,
) -> Result<OrgUnitRow, AppError> {
    check_unit_id(&new.id)?;
    let kind: OrgUnitKind = new
        .kind
        .parse()
        .map_err(|e: UnknownName| AppError::Invalid {
            field: "kind",
            problem: e.to_string(),
        })?;
    let parent_path = match &new.parent {
        Some(parent) => {
            actor.check_area([parent.as_str()])?;
            state
                .engine
                .storage
                .org_unit(parent)
                .await?
                .ok_or(AppError::Missing("parent org unit"))?
                .path
        }
        None if actor.area.is_some() => {
            return Err(AppError::Forbidden(
                "root org units are created on the command line".into(),
            ));
        }
        None => "/".into(),
    };
    let unit = OrgUnitRow {
        path: format!("{parent_path}{}/", new.id),
        id: new.id,
        parent_id: new.parent,
        kind,
        name: new.name,
        created_at: now_ms(),
    };
    state.engine.storage.insert_org_unit(&unit).await?;
    let units = [unit.id.clone()];
    audit(
        state,
        actor,
        ("create_org_unit", &unit.id),
        unit.path.clone(),
        &units,
    )
    .await?;
    Ok(unit)
}

/// Moves an org unit, with its subtree, under another parent.
pub async fn move_org_unit(
    state: &AppState,
    actor: &Actor,
    id: &str,
    parent: &str,
) -> Result<OrgUnitRow, AppError> {
    let unit = state
        .engine
        .storage
        .org_unit(id)
        .await?
        .ok_or(AppError::Missing("org unit"))?;
    let target = state
        .engine
        .storage
        .org_unit(parent)
        .await?
        .ok_or(AppError::Missing("parent org unit"))?;
    actor.check_area([id, parent])?;
    if target.path.starts_with(&unit.path) {
        return Err(AppError::Invalid {
            field: "parent",
            problem: "cannot move an org unit under itself".into(),
        });
    }
    state.engine.storage.move_org_unit(&unit, &target).await?;
    // The unit's old and new surroundings both learn of it.
    let units: Vec<String> = [Some(id), unit.parent_id.as_deref(), Some(parent)]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    audit(
        state,
        actor,
        ("move_org_unit", id),
        format!("{} -> {}{id}/", unit.path, target.path),
        &units,
    )
    .await?;
    state
        .engine
        .storage
        .org_unit(id)
        .await?
        .ok_or(AppError::Missing("org unit"))
}

/// A new user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name, unique. Leading and trailing whitespace is removed; what
    /// remains must be 1 to 64 characters.
    pub username: String,
    /// Name shown to people; the username when absent or `null`.
    pub display_name: Option<String>,
    /// At least 8 characters.
    #[schema(format = Password)]
    pub password: String,
    /// Role name.
    #[schema(value_type = sync_core::policy::Role)]
    pub role: String,
    /// The org units the user is bound to; each must exist. At least one,
    /// except for `mediator` and `department`.
    pub org_units: Vec<String>,
}

/// A user as the API shows one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    /// User id, `usr_` and 24 hexadecimal digits.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Role.
    #[schema(value_type = sync_core::policy::Role)]
    pub role: String,
    /// The org units the user is bound to.
    pub org_units: Vec<String>,
}

fn check_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < 8 {
        return Err(AppError::Invalid {
            field: "password",
            problem: "must have at least 8 characters".into(),
        });
    }
    Ok(())
}

async fn check_role_and_units(
    state: &AppState,
    role: &str,
    units: &[String],
) -> Result<Role, AppError> {
    let role: Role =
        role.parse()
            .map_err(|e: sync_core::policy::UnknownRole| AppError::Invalid {
                field: "role",
                problem: e.to_string(),
            })?;
    if units.is_empty() {
        return Err(AppError::Invalid {
            field: "org_units",
            problem: format!("a {role} needs at least one org unit"),
        });
    }
    for unit in units {
        if state.engine.storage.org_unit(unit).await?.is_none() {
            return Err(AppError::Invalid {
                field: "org_units",
                problem: format!("no org unit {unit:?}"),
            });
        }
    }
    Ok(role)
}

/// Creates a user.
pub async fn create_user(
    state: &AppState,
    actor: &Actor,
    new: NewUser,
) -> Result<UserView, AppError> {
    let username = new.username.trim().to_owned();
    if username.is_empty() || username.chars().count() > 64 {
        return Err(AppError::Invalid {
            field: "username",
            problem: "must be 1 to 64 characters".into(),
        });
    }
    check_password(&new.password)?;
    let role = check_role_and_units(state, &new.role, &new.org_units).await?;
    actor.check_area(new.org_units.iter().map(String::as_str))?;
    let user = UserRow {
        id: format!("usr_{}", random_hex(12)),
        display_name: new.display_name.unwrap_or_else(|| username.clone()),
        username,
        password_hash: hash_password(new.password).await?,
        role: role.as_str().into(),
        scope_version: 0,
        created_at: now_ms(),
    };
    state
        .engine
        .storage
        .insert_user(&user, &new.org_units)
        .await?;
    audit(
        state,
        actor,
        ("create_user", &user.id),
        format!("{} as {role} in {:?}", user.username, new.org_units),
        &new.org_units,
    )
    .await?;
    Ok(UserView {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        role: user.role,
        org_units: new.org_units,
    })
}

/// A role assignment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// Role name.
    #[schema(value_type = sync_core::policy::Role)]
    pub role: String,
    /// The user's new org units, replacing the old ones; each must exist. At
    /// least one, except for `mediator` and `department`.
    pub org_units: Vec<String>,
}

/// Replaces a user's role and units. Their devices rescan their scope at
/// their next sync, dropping what they may no longer hold.
pub async fn set_role(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    assignment: RoleAssignment,
) -> Result<(), AppError> {
    let user = state
        .engine
        .storage
        .user(user_id)
        .await?
        .ok_or(AppError::Missing("user"))?;
    let role = check_role_and_units(state, &assignment.role, &assignment.org_units).await?;
    actor.check_user(state, user_id).await?;
    actor.check_area(assignment.org_units.iter().map(String::as_str))?;
    let before = state.engine.storage.user_units(user_id).await?;
    state
        .engine
        .storage
        .set_role(user_id, role.as_str(), &assignment.org_units)
        .await?;
    let detail = format!(
        "{} in {before:?} -> {role} in {:?}",
        user.role, assignment.org_units
    );
    let units: Vec<String> = before.into_iter().chain(assignment.org_units).collect();
    audit(state, actor, ("set_role", user_id), detail, &units).await
}

/// Replaces a user's password.
pub async fn reset_password(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    password: String,
) -> Result<(), AppError> {
    check_password(&password)?;
    state
        .engine
        .storage
        .user(user_id)
        .await?
        .ok_or(AppError::Missing("user"))?;
    actor.check_user(state, user_id).await?;
    state
        .engine
        .storage
        .set_password(user_id, &hash_password(password).await?)
        .await?;
    let units = state.engine.storage.user_units(user_id).await?;
    audit(
        state,
        actor,
        ("reset_password", user_id),
        String::new(),
        &units,
    )
    .await
}

/// Revokes a device: its next request, and every refresh, is refused.
pub async fn revoke_device(
    state: &AppState,
    actor: &Actor,
    device_id: &str,
) -> Result<DeviceRow, AppError> {
    let device = state
        .engine
        .storage
        .device(device_id)
        .await?
        .ok_or(AppError::Missing("device"))?;
    if actor.user_id != device.user_id {
        actor.check_user(state, &device.user_id).await?;
    }
    state
        .engine
        .storage
        .revoke_device(device_id, now_ms())
        .await?;
    let units = state.engine.storage.user_units(&device.user_id).await?;
    audit(
        state,
        actor,
        ("revoke_device", device_id),
        String::new(),
        &units,
    )
    .await?;
    state
        .engine
        .storage
        .device(device_id)
        .await?
        .ok_or(AppError::Missing("device"))
}

/// Rows per page of the quarantine list unless `limit` says otherwise.
const QUARANTINE_PAGE: i64 = 100;
/// Most rows per page of the quarantine list.
const QUARANTINE_MAX_PAGE: i64 = 1000;

/// Where a page of the quarantine list ends: the last entry's receipt
/// time and id.
#[derive(Serialize, Deserialize)]
struct QuarantineCursor {
    at: i64,
    id: String,
}

/// One page of the quarantined changes with `status` that `actor` may
/// decide on (records of their area, or, for a record the server does not
/// hold, the area the held change would give it), oldest first, `limit`
/// (1–1000, default 100) at a time, after `cursor` (a previous page's
/// `next_cursor`).
pub async fn quarantine_page(
    state: &AppState,
    actor: &Actor,
    status: &str,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<ListPage<QuarantineView>, AppError> {
    let status: QuarantineStatus = status.parse().map_err(|e: UnknownName| AppError::Invalid {
        field: "status",
        problem: e.to_string(),
    })?;
    let limit = limit.unwrap_or(QUARANTINE_PAGE);
    if !(1..=QUARANTINE_MAX_PAGE).contains(&limit) {
        return Err(AppError::Invalid {
            field: "limit",
            problem: format!("must be between 1 and {QUARANTINE_MAX_PAGE}"),
        });
    }
    let mut after = match cursor {
        Some(cursor) => {
            let bad = || AppError::Invalid {
                field: "cursor",
                problem: "is not a cursor this list issued".into(),
            };
            let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
            let c: QuarantineCursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
            Some((c.at, c.id))
        }
        None => None,
    };
    // The admin's entries are read in batches of the whole list and kept
    // when visible, until a page and one more are found.
    let wanted = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let batch = limit.saturating_add(1).max(QUARANTINE_PAGE);
    // Each record is read once for the whole page: its unit decides what
    // the admin sees, and its held changes what each entry would change.
    let mut records: HashMap<String, Held> = HashMap::new();
    let mut items = Vec::new();
    'scan: loop {
        let position = after.as_ref().map(|(at, id)| (*at, id.as_str()));
        let rows = state
            .engine
            .storage
            .quarantine_page(status, position, batch)
            .await?;
        let exhausted = (rows.len() as i64) < batch;
        for row in rows {
            after = Some((row.received_at, row.id.clone()));
            if !records.contains_key(&row.doc_id) {
                let held = Held::read(&state.engine, &row.doc_id).await?;
                records.insert(row.doc_id.clone(), held);
            }
            let unit = records[&row.doc_id].unit(&row)?;
            if actor.check_unit(unit.as_deref()).is_ok() {
                items.push(row);
                if items.len() == wanted {
                    break 'scan;
                }
            }
        }
        if exhausted {
            break;
        }
    }
    let more = items.len() == wanted;
    items.truncate(wanted - 1);
    let next_cursor = more.then(|| items.last()).flatten().map(|last| {
        let c = QuarantineCursor {
            at: last.received_at,
            id: last.id.clone(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
    });
    let items = items
        .into_iter()
        .map(|entry| QuarantineView {
            changes: records[&entry.doc_id].changes(&entry),
            entry,
        })
        .collect();
    Ok(ListPage { items, next_cursor })
}
