//! What supervisors ask of the merged data: lists of households, cases and
//! visits with filters, sorts and stable cursors, exported as CSV or XLSX;
//! workers' daily logs; one record as merged JSON, its history and its
//! conflicts ([`records`]); figures per org unit ([`figures`]).
//!
//! Everything here reads the projections (`crate::projection`), narrowed
//! by the caller's scope as the sync feed is: a township supervisor never
//! sees another township's rows, and special-population categories reach
//! only roles that receive sensitive details.

mod case_list;
pub mod figures;
mod households;
mod page;
pub mod records;
mod visits;

use axum::Router;
use axum::routing::get;

use crate::http::AppState;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::storage::Scope;

pub use case_list::CaseQuery;
pub use households::HouseholdQuery;
pub use page::ListPage;
pub use visits::{LogDay, VisitQuery};

/// The query routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/households", get(households::households))
        .route("/v1/cases", get(case_list::cases))
        .route("/v1/visits", get(visits::visits))
        .route("/v1/visits/daily", get(visits::daily))
        .merge(records::router())
        .merge(figures::router())
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    households::households,
    case_list::cases,
    visits::visits,
    visits::daily
))]
pub struct Api;

/// The caller's scope, and the org-unit path `org_unit` names. A unit
/// outside the caller's area is answered as one that does not exist
/// (`404`), so that a query learns nothing of units the caller may not see;
/// the area is the subtrees of the caller's units, whatever their role.
/// The scope needs no lookup: the queries resolve the area.
pub(crate) async fn scope_and_unit(
    state: &AppState,
    auth: &AuthDevice,
    org_unit: Option<&str>,
) -> Result<(Scope, Option<String>), AppError> {
    let path = match org_unit {
        Some(id) => {
            let unit = state
                .engine
                .storage
                .org_unit(id)
                .await?
                .ok_or(AppError::Missing("org unit"))?;
            if !area_of(state, auth).await?.contains(&unit.id) {
                return Err(AppError::Missing("org unit"));
            }
            Some(unit.path)
        }
        None => None,
    };
    Ok((Scope::of(&auth.user_id, auth.role), path))
}

/// The org units of the caller's area: the subtrees of their units.
pub(crate) async fn area_of(
    state: &AppState,
    auth: &AuthDevice,
) -> Result<std::collections::HashSet<String>, AppError> {
    Ok(state
        .engine
        .storage
        .area(&auth.user_id)
        .await?
        .into_iter()
        .collect())
}

/// Checks that `value` is one of `allowed`.
pub(crate) fn one_of(
    field: &'static str,
    value: &Option<String>,
    allowed: &[&str],
) -> Result<(), AppError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(AppError::Invalid {
            field,
            problem: format!("must be one of {}", allowed.join(", ")),
        }),
        _ => Ok(()),
    }
}
