//! Cases at the desk: department and centre staff act on cases without a
//! phone, and supervision reads what is overdue and how cases went.
//!
//! A desk action is written exactly as a phone's would be: an event
//! appended to the case document by an Automerge actor bound to the
//! caller's session, merged through the same policy and storage path as a
//! sync round. States and figures are folded from the events
//! (`sync_core::workflow`), so they can be recomputed and audited.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sync_core::automerge::Automerge;
use sync_core::doc;
use sync_core::policy::EVENT_KINDS;
use sync_core::records::Case;
use sync_core::workflow::{self, CaseState};
use sync_core::{RecordId, RecordKind};

use crate::auth::AuthDevice;
use crate::error::AppError;
use crate::query::records::desk_change;
use crate::query::scope_and_unit;
use crate::storage::query::{After, CaseFilter, Page, SortKey};
use crate::sync::Writer;
use crate::{ApiJson, ApiQuery, AppState, now_ms};

/// The case routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cases/overdue", get(overdue))
        .route("/v1/cases/{id}", get(show))
        .route("/v1/cases/{id}/events", post(add_event))
        .route("/v1/stats/cases", get(stats))
}

/// A case as the desk sees it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CaseView {
    /// Record id.
    pub id: String,
    /// One-line summary.
    pub title: String,
    /// Category, as stored.
    pub category: String,
    /// The org unit it belongs to.
    pub org_unit: String,
    /// Derived state.
    pub state: CaseState,
    /// Whether it is overdue now.
    pub overdue: bool,
}

fn view(id: &str, case: &Case, state: &AppState, now: i64) -> CaseView {
    let folded = workflow::fold(case, &state.config.deadlines);
    CaseView {
        id: id.to_owned(),
        title: case.title.clone(),
        category: format!("{:?}", case.category),
        org_unit: case.org_unit.clone(),
        overdue: folded.overdue_at(now),
        state: folded,
    }
}

/// A case id, or `404` as for any id that names no case.
fn case_id(id: &str) -> Result<RecordId, AppError> {
    match id.parse::<RecordId>() {
        Ok(record) if record.kind() == RecordKind::Case => Ok(record),
        _ => Err(AppError::Missing("case")),
    }
}

/// The case a stored document holds, if the writer may see it; a case
/// they may not see answers as if it did not exist.
fn visible_case(writer: &Writer, document: &Automerge) -> Result<Case, AppError> {
    let case: Case = doc::read(document).map_err(AppError::internal)?;
    let meta = doc::AnyRecord::Case(case.clone()).meta();
    if !writer.can_read(RecordKind::Case, &meta) {
        return Err(AppError::Missing("case"));
    }
    Ok(case)
}

async fn readable_case(state: &AppState, writer: &Writer, id: &str) -> Result<Case, AppError> {
    case_id(id)?;
    let snapshot = state
        .storage
        .snapshot(id)
        .await?
        .ok_or(AppError::Missing("case"))?;
    visible_case(writer, &doc::load(&snapshot).map_err(AppError::internal)?)
}

async fn show(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, AppError> {
    let writer = Writer::load(&state, &auth, &[]).await?;
    let case = readable_case(&state, &writer, &id).await?;
    Ok(Json(view(&id, &case, &state, now_ms())))
}

/// `POST /v1/cases/{id}/events`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event kind, e.g. `accept`, `assign`, `resolve`.
    pub kind: String,
    /// Its details, e.g. `{"to": "usr_…"}` for `assign`.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

async fn add_event(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
    ApiJson(event): ApiJson<NewEvent>,
) -> Result<Json<CaseView>, AppError> {
    if !EVENT_KINDS.contains(&event.kind.as_str()) || event.kind == "report" {
        return Err(AppError::Invalid {
            field: "kind",
            problem: format!("must be one of {}, except report", EVENT_KINDS.join(", ")),
        });
    }
    if !auth.role.may_record(&event.kind) {
        return Err(AppError::Forbidden(format!(
            "a {} may not record {:?} events",
            auth.role, event.kind
        )));
    }
    case_id(&id)?;
    let now = now_ms();
    let case = desk_change(&state, &auth, &id, "case", |document, _| {
        let mut appended = String::new();
        doc::edit::<Case>(document, now, |case| {
            let who = (auth.user_id.as_str(), auth.device_id.as_str(), auth.role);
            appended = workflow::append(case, &event.kind, who, now, event.data.clone());
        })
        .map_err(AppError::internal)?;
        // Online, an event that would not apply is refused at once; so is
        // supervision of a case that is not overdue.
        let case: Case = doc::read(document).map_err(AppError::internal)?;
        let folded = workflow::fold(&case, &state.config.deadlines);
        if event.kind == "supervise" && !folded.overdue_at(now) {
            return Err(AppError::Refused(
                "supervision is raised on overdue cases only".into(),
            ));
        }
        if let Some(outcome) = folded
            .events
            .iter()
            .find(|e| e.id == appended && !e.applied)
        {
            return Err(AppError::Refused(
                outcome.reason.clone().unwrap_or_default(),
            ));
        }
        Ok(case)
    })
    .await?;
    tracing::info!(case = %id, kind = %event.kind, user = %auth.user_id, "desk event");
    Ok(Json(view(&id, &case, &state, now)))
}

/// `?org_unit=…` (default: all the caller may see, from their first unit)
/// and, for figures, `from` / `to` in milliseconds since the Unix epoch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The org unit whose subtree to look at.
    pub org_unit: String,
    /// Cases reported at or after this time.
    pub from: Option<i64>,
    /// Cases reported before this time.
    pub to: Option<i64>,
}

/// `GET /v1/cases/overdue?org_unit=…`: open cases past their due time, most
/// overdue first: what supervision (督办) chases.
async fn overdue(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<Scope>,
) -> Result<Json<Vec<CaseView>>, AppError> {
    let now = now_ms();
    let (scope, under) = scope_and_unit(&state, &auth, Some(&q.org_unit)).await?;
    let filter = CaseFilter {
        under,
        overdue: Some(true),
        from: q.from,
        to: q.to,
        now,
        ..CaseFilter::default()
    };
    let mut page = Page {
        sort: "c.due_at",
        numeric: true,
        desc: false,
        limit: 500,
        after: None,
    };
    let mut out = Vec::new();
    loop {
        let rows = state.storage.cases(&scope, &filter, &page).await?;
        let more = rows.len() as i64 > page.limit;
        for row in rows.iter().take(page.limit as usize) {
            // The projection picks the cases; the state comes from the
            // document itself.
            let Some(snapshot) = state.storage.snapshot(&row.id).await? else {
                continue;
            };
            let document = doc::load(&snapshot).map_err(AppError::internal)?;
            let case: Case = doc::read(&document).map_err(AppError::internal)?;
            out.push(view(&row.id, &case, &state, now));
        }
        match rows.get(page.limit as usize - 1).filter(|_| more) {
            Some(last) => {
                page.after = last.due_at.map(|due| After {
                    key: SortKey::Int(due),
                    id: last.id.clone(),
                })
            }
            None => break,
        }
    }
    Ok(Json(out))
}

/// Case figures for an org unit's subtree and period.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CaseStats {
    /// Cases reported in the period.
    pub total: usize,
    /// By category.
    pub by_category: BTreeMap<String, usize>,
    /// By triage class (`big`, `small`, `private`, `unclassified`).
    pub by_class: BTreeMap<String, usize>,
    /// By status.
    pub by_status: BTreeMap<String, usize>,
    /// Resolved cases by the level they were resolved at.
    pub resolved_by_level: BTreeMap<String, usize>,
    /// Resolved, followed up or closed, over all.
    pub handling_rate: Option<f64>,
    /// Mediated over mediated-or-referred resolutions.
    pub mediation_success_rate: Option<f64>,
    /// Median time from report to resolution, in milliseconds.
    pub median_time_to_resolve_ms: Option<i64>,
    /// Open cases past their due time now.
    pub overdue: usize,
}

/// `GET /v1/stats/cases?org_unit=…&from=…&to=…`
async fn stats(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<Scope>,
) -> Result<Json<CaseStats>, AppError> {
    let stats =
        crate::query::figures::case_stats(&state, &auth, Some(&q.org_unit), q.from, q.to).await?;
    Ok(Json(stats))
}
