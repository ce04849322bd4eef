//! Household ledgers that offices already keep (一户一档, in Excel or CSV)
//! imported into the grids of an admin's area.
//!
//! One row per person; the rows of one household share its number (户编号)
//! in the ledger. The column layout, with Chinese headers (English ones are
//! accepted too), is [`COLUMNS`]; [`template`] writes it as a file to fill
//! in. An import first plans every household ([`plan`]): a household is
//! taken whole or not at all, and every row of a household that is not
//! taken is reported with the reason. A dry run stops there.
//!
//! Each household imported becomes a document like any other: written by
//! a replica in the importing admin's name and stored through a sync round
//! ([`crate::engine::sync::round`]), so the policy checks it, the projections list
//! it and the workers' phones receive it. Its record id is derived from its
//! grid and address, so importing the same ledger twice stores nothing
//! twice: the second run reports the households as already imported.

mod ledger;
mod plan;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sync_core::{MemoryStore, Replica};

use crate::domain::OrgUnitKind;
use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::storage::query::{After, HouseholdFilter, Page, SortKey};
use crate::storage::{DeviceRow, Scope};
use sync_core::policy::Role;

pub use ledger::{COLUMNS, Column, MAX_ROWS, tag_zh, template};
pub use plan::{Plan, Planned, check_id_number, household_id, id_check_digit, plan};

/// What an import did, or, for a dry run, would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Whether this was a dry run (nothing stored).
    pub dry_run: bool,
    /// Data rows read (the header not counted).
    pub rows: usize,
    /// Households imported (or that would be).
    pub households: usize,
    /// Their members.
    pub members: usize,
    /// Households found already imported by an earlier run: not stored
    /// again.
    pub already_imported: usize,
    /// Every row not taken, with why.
    pub refused: Vec<RowProblem>,
    /// The record ids of the households imported (or that would be).
    pub imported: Vec<String>,
}

/// A row not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowProblem {
    /// The row's number in the spreadsheet, counting the header as row 1.
    pub row: usize,
    /// The column at fault, by its Chinese header; `null` for the row as a
    /// whole.
    pub column: Option<String>,
    /// `missing_field`, `bad_value`, `bad_id_number`, `unknown_org_unit`,
    /// `duplicate_household`, or `household_refused` (the row is fine, but
    /// another row of its household was refused, and a household is taken
    /// whole or not at all).
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Who imports: an admin, with the device the records are written from
/// and the org units they administer.
#[derive(Debug, Clone)]
pub struct Importer {
    /// The admin and their device.
    pub auth: AuthDevice,
    /// The org units the admin administers.
    pub area: HashSet<String>,
}

impl Importer {
    /// The admin `username` importing from the command line, through a
    /// device of their own made for it, revoked at once (it never signs
    /// in; it only names where the records came from).
    pub async fn command_line(state: &AppState, username: &str) -> Result<Self, AppError> {
        let user = state
            .engine
            .storage
            .user_by_username(username)
            .await?
            .ok_or(AppError::Missing("user"))?;
        let role: Role = user.role.parse().map_err(AppError::internal)?;
        if role != Role::Admin {
            return Err(AppError::Forbidden(format!(
                "{username} is a {role}: ledgers are imported in an admin's name"
            )));
        }
        let now = crate::domain::now_ms();
        let device = DeviceRow {
            id: format!("dev_{}", crate::domain::random_hex(16)),
            user_id: user.id.clone(),
            name: "ledger import (command line)".into(),
            created_at: now,
            revoked_at: Some(now),
        };
        state
            .engine
            .storage
            .insert_device(&device, &crate::domain::random_hex(32))
            .await?;
        Ok(Self {
            auth: AuthDevice {
                user_id: user.id.clone(),
                device_id: device.id,
                role,
                scope_version: user.scope_version,
            },
            area: state
                .engine
                .storage
                .area(&user.id)
                .await?
                .into_iter()
                .collect(),
        })
    }
}

/// Imports the ledger `bytes` into `grid` (rows naming no grid), or for a
/// dry run only reports what it would do. `progress(done, total)` after
/// each stored batch of households.
pub async fn import(
    state: &AppState,
    importer: &Importer,
    grid: &str,
    bytes: &[u8],
    dry_run: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport, AppError> {
    let grid_kinds: HashSet<String> = state
        .engine
        .storage
        .org_units()
        .await?
        .into_iter()
        .filter(|u| u.kind == OrgUnitKind::Grid && importer.area.contains(&u.id))
        .map(|u| u.id)
        .collect();
    if !grid_kinds.contains(grid) {
        return Err(AppError::Missing("grid"));
    }
    let plan = plan(bytes, grid, |g| grid_kinds.contains(g))?;
    let mut report = ImportReport {
        dry_run,
        rows: plan.rows,
        refused: plan.refused,
        ..ImportReport::default()
    };

    // Households already in the grid: the same id (imported before) or the
    // same address under another id (entered by a worker, or by another
    // ledger).
    let mut existing: BTreeMap<String, BTreeMap<(String, String, String), String>> =
        BTreeMap::new();
    let mut take = Vec::new();
    for planned in plan.households {
        let grid = planned.household.org_unit.clone();
        if !existing.contains_key(&grid) {
            let listed = households_in(state, &importer.auth, &grid).await?;
            existing.insert(grid.clone(), listed);
        }
        let a = &planned.household.address;
        let key = (a.building.clone(), a.unit.clone(), a.room.clone());
        match existing[&grid].get(&key) {
            Some(id) if *id == planned.id.to_string() => report.already_imported += 1,
            Some(id) => {
                let message = format!(
                    "{} {} {}: the grid has this address already, as household {id}",
                    a.building, a.unit, a.room
                );
                report
                    .refused
                    .extend(planned.rows.iter().map(|&row| RowProblem {
                        row,
                        column: None,
                        code: "duplicate_household".into(),
                        message: message.clone(),
                    }));
            }
            None => take.push(planned),
        }
    }
    report.refused.sort_by_key(|p| p.row);
    report.households = take.len();
    report.members = take.iter().map(|p| p.household.members.len()).sum();
    report.imported = take.iter().map(|p| p.id.to_string()).collect();
    if dry_run || take.is_empty() {
        return Ok(report);
    }

    let mut replica = Replica::open(MemoryStore::default()).map_err(AppError::internal)?;
    for planned in &take {
        replica
            .create_with_id(planned.id.clone(), &planned.household)
            .map_err(AppError::internal)?;
    }
    let total = take.len();
    while !replica.pending().is_empty() {
        let response =
            crate::engine::sync::round(&state.engine, &importer.auth, replica.sync_request())
                .await?;
        if let Some(e) = response.errors.first() {
            return Err(AppError::internal(format!(
                "import refused: {} {} {}",
                e.id, e.code, e.message
            )));
        }
        replica
            .apply_response(response)
            .map_err(AppError::internal)?;
        progress(total - replica.pending().len(), total);
    }
    Ok(report)
}

/// The households of `grid` by address, as the admin sees them.
async fn households_in(
    state: &AppState,
    auth: &AuthDevice,
    grid: &str,
) -> Result<BTreeMap<(String, String, String), String>, AppError> {
    let unit = state
        .engine
        .storage
        .org_unit(grid)
        .await?
        .ok_or(AppError::Missing("grid"))?;
    let scope = Scope::of(&auth.user_id, auth.role);
    let filter = HouseholdFilter {
        under: Some(unit.path),
        tag: None,
        residence: None,
        text: None,
        not_visited_since: None,
    };
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = Page {
            sort: "h.id",
            numeric: false,
            desc: false,
            limit: 1000,
            after: after.take(),
        };
        let rows = state
            .engine
            .storage
            .households(&scope, &filter, &page)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(out);
        };
        after = Some(After {
            key: SortKey::Text(last.id.clone()),
            id: last.id.clone(),
        });
        let full = rows.len() as i64 == page.limit;
        for h in rows {
            if h.org_unit == grid {
                out.insert((h.building, h.unit, h.room), h.id);
            }
        }
        if !full {
            return Ok(out);
        }
    }
}
