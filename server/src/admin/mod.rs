//! Administration: org units, users and roles, passwords, devices, the
//! quarantine and the audit log. One set of functions serves both the HTTP
//! API (`/v1/admin/…`, `/v1/devices…`, in [`routes`]) and `gridsync admin …`,
//! so both check and record the same things.

mod routes;

pub use routes::{Api, DeviceView, router};

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sync_core::RecordId;
use sync_core::automerge::{Change, ChangeHash, ReadDoc};
use sync_core::doc::{self, AnyRecord};
use sync_core::policy::Role;

use crate::auth::{AuthDevice, hash_password};
use crate::error::AppError;
use crate::storage::{AuditRow, DeviceRow, OrgUnitRow, QuarantineRow, UserRow};
use crate::{AppState, now_ms, random_hex};

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id, or `cli` for the command line.
    pub user_id: String,
    /// Device id, when acting through the API.
    pub device_id: Option<String>,
    /// The org units the actor may administer; `None` for the command
    /// line, which may administer everything.
    pub area: Option<HashSet<String>>,
}

impl Actor {
    /// The command line, run by whoever can reach the database.
    pub fn cli() -> Self {
        Self {
            user_id: "cli".into(),
            device_id: None,
            area: None,
        }
    }

    /// An admin acting through the API, within their own area.
    pub async fn admin(state: &AppState, auth: &AuthDevice) -> Result<Self, AppError> {
        auth.require_admin()?;
        Ok(Self {
            user_id: auth.user_id.clone(),
            device_id: Some(auth.device_id.clone()),
            area: Some(
                state
                    .storage
                    .area(&auth.user_id)
                    .await?
                    .into_iter()
                    .collect(),
            ),
        })
    }

    /// Refuses unless every unit is within the actor's area.
    fn check_area<'a>(&self, units: impl IntoIterator<Item = &'a str>) -> Result<(), AppError> {
        let Some(area) = &self.area else {
            return Ok(());
        };
        for unit in units {
            if !area.contains(unit) {
                return Err(AppError::Forbidden(format!(
                    "org unit {unit:?} is outside the area you administer"
                )));
            }
        }
        Ok(())
    }

    /// Refuses unless the user's units are within the actor's area.
    async fn check_user(&self, state: &AppState, user_id: &str) -> Result<(), AppError> {
        let units = state.storage.user_units(user_id).await?;
        self.check_area(units.iter().map(String::as_str))
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

    /// Whether a record of `kind` in `doc_id` (or, for one the server does
    /// not hold, the user who sent it) lies in the actor's area.
    async fn sees_record(
        &self,
        state: &AppState,
        doc_id: &str,
        sender: &str,
    ) -> Result<bool, AppError> {
        let Some(snapshot) = state.storage.snapshot(doc_id).await? else {
            return self.sees_user(state, sender).await;
        };
        let id: RecordId = doc_id.parse().map_err(AppError::internal)?;
        let document = doc::load(&snapshot).map_err(AppError::internal)?;
        let meta = doc::meta(id.kind(), &document).map_err(AppError::internal)?;
        Ok(self.check_area([meta.org_unit.as_str()]).is_ok())
    }
}

async fn audit(
    state: &AppState,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: String,
) -> Result<(), AppError> {
    state
        .storage
        .audit(&AuditRow {
            at: now_ms(),
            user_id: actor.user_id.clone(),
            device_id: actor.device_id.clone(),
            action: action.into(),
            target: target.into(),
            detail,
        })
        .await?;
    Ok(())
}

const UNIT_KINDS: [&str; 4] = ["county", "township", "community", "grid"];

/// The level of an org unit, for the API's schema: one of [`UNIT_KINDS`].
/// The server does not enforce an order of levels in the tree.
pub struct OrgUnitKind;

impl utoipa::PartialSchema for OrgUnitKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(UNIT_KINDS))
            .description(Some(
                "The level of an org unit. The server does not enforce an order of levels \
                 in the tree.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for OrgUnitKind {}

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
    if !UNIT_KINDS.contains(&new.kind.as_str()) {
        return Err(AppError::Invalid {
            field: "kind",
            problem: format!("must be one of {}", UNIT_KINDS.join(", ")),
        });
    }
    let parent_path = match &new.parent {
        Some(parent) => {
            actor.check_area([parent.as_str()])?;
            state
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
        kind: new.kind,
        name: new.name,
        created_at: now_ms(),
    };
    state.storage.insert_org_unit(&unit).await?;
    audit(state, actor, "create_org_unit", &unit.id, unit.path.clone()).await?;
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
        .storage
        .org_unit(id)
        .await?
        .ok_or(AppError::Missing("org unit"))?;
    let target = state
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
    state.storage.move_org_unit(&unit, &target).await?;
    audit(
        state,
        actor,
        "move_org_unit",
        id,
        format!("{} -> {}{id}/", unit.path, target.path),
    )
    .await?;
    state
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
        if state.storage.org_unit(unit).await?.is_none() {
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
    state.storage.insert_user(&user, &new.org_units).await?;
    audit(
        state,
        actor,
        "create_user",
        &user.id,
        format!("{} as {role} in {:?}", user.username, new.org_units),
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
        .storage
        .user(user_id)
        .await?
        .ok_or(AppError::Missing("user"))?;
    let role = check_role_and_units(state, &assignment.role, &assignment.org_units).await?;
    actor.check_user(state, user_id).await?;
    actor.check_area(assignment.org_units.iter().map(String::as_str))?;
    let before = state.storage.user_units(user_id).await?;
    state
        .storage
        .set_role(user_id, role.as_str(), &assignment.org_units)
        .await?;
    let detail = format!(
        "{} in {before:?} -> {role} in {:?}",
        user.role, assignment.org_units
    );
    audit(state, actor, "set_role", user_id, detail).await
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
        .storage
        .user(user_id)
        .await?
        .ok_or(AppError::Missing("user"))?;
    actor.check_user(state, user_id).await?;
    state
        .storage
        .set_password(user_id, &hash_password(password).await?)
        .await?;
    audit(state, actor, "reset_password", user_id, String::new()).await
}

/// Revokes a device: its next request, and every refresh, is refused.
pub async fn revoke_device(
    state: &AppState,
    actor: &Actor,
    device_id: &str,
) -> Result<DeviceRow, AppError> {
    let device = state
        .storage
        .device(device_id)
        .await?
        .ok_or(AppError::Missing("device"))?;
    if actor.user_id != device.user_id {
        actor.check_user(state, &device.user_id).await?;
    }
    state.storage.revoke_device(device_id, now_ms()).await?;
    audit(state, actor, "revoke_device", device_id, String::new()).await?;
    state
        .storage
        .device(device_id)
        .await?
        .ok_or(AppError::Missing("device"))
}

/// Approves (merges, in the name of its author) or discards a quarantined
/// change. A change is approved only after the changes it depends on.
pub async fn decide(
    state: &AppState,
    actor: &Actor,
    entry_id: &str,
    approve: bool,
) -> Result<QuarantineRow, AppError> {
    let entry = state
        .storage
        .quarantine_entry(entry_id)
        .await?
        .ok_or(AppError::Missing("quarantine entry"))?;
    if entry.status != "pending" {
        return Err(AppError::Conflict("a decision on this change"));
    }
    let id: RecordId = entry.doc_id.parse().map_err(AppError::internal)?;
    let mut tx = state.storage.begin(true).await?;
    let stored = match tx.load(&entry.doc_id).await? {
        Some(row) => Some(doc::load(&row.snapshot).map_err(AppError::internal)?),
        None => None,
    };
    if let Some(stored) = &stored {
        let meta = doc::meta(id.kind(), stored).map_err(AppError::internal)?;
        actor.check_area([meta.org_unit.as_str()])?;
    }
    if approve {
        let existed = stored.is_some();
        let mut document =
            stored.unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
        let missing = entry
            .deps
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
            .any(|dep| document.get_change_by_hash(&dep).is_none());
        if missing {
            return Err(AppError::Invalid {
                field: "id",
                problem: "approve the changes this one depends on first".into(),
            });
        }
        let base = document.get_heads();
        let change = Change::from_bytes(entry.bytes.clone()).map_err(AppError::internal)?;
        document
            .apply_changes([change])
            .map_err(AppError::internal)?;
        let record = AnyRecord::read(id.kind(), &document).map_err(|e| AppError::Invalid {
            field: "id",
            problem: format!("merging it would leave an invalid record: {e}"),
        })?;
        actor.check_area([record.meta().org_unit.as_str()])?;
        let author = (entry.user_id.as_str(), entry.device_id.as_str());
        let deadlines = &state.config.deadlines;
        let previous = match existed {
            true => crate::sync::Previous::Unknown,
            false => crate::sync::Previous::New,
        };
        crate::sync::store_as(
            &mut *tx, author, &id, &document, &base, &record, previous, deadlines,
        )
        .await?;
    }
    let status = if approve { "approved" } else { "discarded" };
    if !tx
        .decide_quarantine(entry_id, status, &actor.user_id, now_ms())
        .await?
    {
        return Err(AppError::Conflict("a decision on this change"));
    }
    tx.audit(&AuditRow {
        at: now_ms(),
        user_id: actor.user_id.clone(),
        device_id: actor.device_id.clone(),
        action: format!("quarantine_{status}"),
        target: entry.doc_id.clone(),
        detail: format!("change {} by {}", hex::encode(&entry.hash), entry.user_id),
    })
    .await?;
    let feed_end = tx.max_seq().await?;
    tx.commit().await?;
    if approve {
        state.notifier.publish(feed_end);
    }
    state
        .storage
        .quarantine_entry(entry_id)
        .await?
        .ok_or(AppError::Missing("quarantine entry"))
}
