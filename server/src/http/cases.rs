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
use sync_core::doc::{self, AnyRecord};
use sync_core::policy::EVENT_KINDS;
use sync_core::records::Case;
use sync_core::workflow::{self, CaseState};
use sync_core::{RecordId, RecordKind};

use crate::domain::now_ms;
use crate::engine::sync::desk_change;
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::query::figures::CaseStats;
use crate::http::query::records::readable;
use crate::http::query::scope_and_unit;
use crate::http::{ApiJson, ApiQuery, AppState};
use crate::storage::query::{After, CaseFilter, Page, SortKey};

/// The case routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cases/overdue", get(overdue))
        .route("/v1/cases/{id}", get(show))
        .route("/v1/cases/{id}/events", post(add_event))
        .route("/v1/stats/cases", get(stats))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(overdue, show, add_event, stats))]
pub struct Api;

/// A case as the desk sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseView {
    /// The case's record id.
    #[schema(pattern = "^cs_[0-9a-f]{32}$")]
    pub id: String,
    /// One-line summary.
    pub title: String,
    /// Category, as stored.
    #[schema(value_type = sync_core::records::CaseCategory)]
    pub category: String,
    /// The org unit the case belongs to.
    pub org_unit: String,
    /// Derived state.
    pub state: CaseState,
    /// Whether the case is open and past `state.due` now.
    pub overdue: bool,
}

fn view(id: &str, case: &Case, state: &AppState, now: i64) -> CaseView {
    let folded = workflow::fold(case, &state.engine.config.deadlines);
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

/// A case and its workflow state
///
/// The case's summary and its state, folded from its events through the
/// workflow state machine (`workflow.md`): status, level, triage class,
/// assignee, resolution, due time, supervision, and every event in fold
/// order, each marked applied or not (with the reason). Phones fold the same
/// events to the same state; due times and `overdue` follow the server's
/// configured deadlines.
///
/// A case the user may not see answers `404`, as if it did not exist; so
/// does an id that is not a case id.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    operation_id = "showCase",
    tag = "cases",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, pattern = "^cs_[0-9a-f]{32}$",
        description = "Case record id: `cs_` and 32 hexadecimal digits. Any other id answers `404`.")),
    responses(
        (status = 200, description = "The case.", body = CaseView, example = json!({
            "id": "cs_91d04b7e2a6f4c8d9e1f3a5b7c9d0e2f",
            "title": "邻里噪音纠纷",
            "category": "Neighbour",
            "org_unit": "demo.t1.c1.g1",
            "state": {
                "status": "triaged", "level": "grid", "class": "small", "assignee": null,
                "result": null, "resolved_level": null, "reported_at": 1732406400000_i64,
                "resolved_at": null, "due": 1733014800000_i64, "supervised": false,
                "events": [
                    {"id": "ev_1935b77d4000000_dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                     "kind": "report", "applied": true},
                    {"id": "ev_1935baec2800000_dev_2a3b4c5d6e7f80918a2b3c4d5e6f7081",
                     "kind": "accept", "applied": true},
                    {"id": "ev_1935be5b1000000_dev_2a3b4c5d6e7f80918a2b3c4d5e6f7081",
                     "kind": "classify", "applied": true}
                ]
            },
            "overdue": false
        })),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::CaseNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn show(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, AppError> {
    case_id(&id)?;
    let (_, _, record) = readable(&state, &auth, &id, "case").await?;
    let AnyRecord::Case(case) = record else {
        return Err(AppError::Missing("case"));
    };
    Ok(Json(view(&id, &case, &state, now_ms())))
}

/// `POST /v1/cases/{id}/events`: a desk action on a case.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event kind, e.g. `accept`, `assign`, `resolve` (see
    /// [`desk_event_kinds`]).
    #[schema(schema_with = desk_event_kinds)]
    pub kind: String,
    /// The event's details, strings only, e.g. `{"class": "small"}` for
    /// `classify`, `{"to": "usr_…"}` for `assign`, `{"result": "mediated"}`
    /// for `resolve`. Absent: no details.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// The event kinds a desk may record: every kind but `report`.
fn desk_event_kinds() -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EVENT_KINDS.iter().copied().filter(|k| *k != "report")))
        .description(Some(
            "The event kind. `report` is refused (`422`): cases are reported from phones. \
             Who may record which kind: `permissions.md`; when each applies and what `data` \
             it needs: `workflow.md`.",
        ))
}

/// Act on a case at the desk
///
/// Records one workflow event on the case (accept, classify, assign,
/// escalate, resolve, supervise, …) for staff working without a phone. The
/// event is written as a phone's would be: appended to the case document in
/// the caller's name, with their device and role, a hybrid logical clock
/// later than every event already in the case, and `data` as given, then
/// merged through the same policy and storage path as a sync round. Phones
/// holding the case receive it at their next sync; connected devices are
/// notified.
///
/// Online, an event that would not apply is refused at once rather than kept
/// and marked: `409 not_applicable` when the event does not apply to the
/// case as it stands (wrong status, `data` missing or not acceptable, such
/// as `classify` without `data.class`, `return` by someone other than the
/// assignee, `supervise` on a case that is not overdue, `escalate` at the
/// county). Which statuses each event applies in, and what data it needs, is
/// in `workflow.md`.
///
/// Which role may record which event kind is in `permissions.md`:
/// `supervise`, for example, is recorded by community staff, centre staff
/// and admins. Handing a case on (`assign` to someone else, `return`,
/// `escalate`) may take it out of the caller's sight; the response still
/// shows it, but later requests for it answer `404`.
///
/// Checks, in order: the body (`400 bad_json`, `413`), `kind` is a known
/// event kind other than `report` (`422`), the caller's role may record it
/// (`403`), the case exists and the caller may see it (`404`), the event
/// applies (`409`).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/events",
    operation_id = "addCaseEvent",
    tag = "cases",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, pattern = "^cs_[0-9a-f]{32}$",
        description = "Case record id: `cs_` and 32 hexadecimal digits. Any other id answers `404`.")),
    request_body(content = NewEvent, examples(
        ("assign" = (value = json!({"kind": "assign", "data": {"to": "usr_5d0e8a1c9b2f4e6a7c3d1b0f"}}))),
        ("resolve" = (value = json!({"kind": "resolve", "data": {"result": "mediated"}}))),
        ("supervise" = (value = json!({"kind": "supervise", "data": {"note": "请加快办理"}}))),
    )),
    responses(
        (status = 200, description = "The event was recorded and applied. The case as it stands \
            now, the new event last in `state.events`.", body = CaseView),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, description = "The caller's role may not record events of this kind.",
            body = crate::http::schemas::ForbiddenError,
            example = json!({"code": "forbidden", "message": "a grid_worker may not record \"assign\" events"})),
        (status = 404, response = crate::http::schemas::CaseNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, description = "The event does not apply to the case as it stands; nothing \
            was recorded. The message is the reason the workflow gives.",
            body = crate::http::schemas::NotApplicableError,
            examples(
                ("status" = (value = json!({"code": "not_applicable",
                    "message": "\"close\" does not apply to a triaged case"}))),
                ("data" = (value = json!({"code": "not_applicable", "message": "classify needs data.class"}))),
                ("notOverdue" = (value = json!({"code": "not_applicable",
                    "message": "supervision is raised on overdue cases only"}))),
                ("notAssignee" = (value = json!({"code": "not_applicable",
                    "message": "only the assignee returns a case"}))),
            )),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "`kind` is not a known event kind, or is `report` (cases are \
            reported from phones).",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field", "message": "kind: must be one of report, accept, classify, assign, escalate, return, mediate, resolve, reopen, follow_up, close, comment, supervise, except report"})),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
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
    let case = desk_change(&state.engine, &auth, &id, "case", |document, _| {
        let mut appended = String::new();
        doc::edit::<Case>(document, now, |case| {
            let who = (auth.user_id.as_str(), auth.device_id.as_str(), auth.role);
            appended = workflow::append(case, &event.kind, who, now, event.data.clone());
        })
        .map_err(AppError::internal)?;
        // Online, an event that would not apply is refused at once; so is
        // supervision of a case that is not overdue.
        let case: Case = doc::read(document).map_err(AppError::internal)?;
        let folded = workflow::fold(&case, &state.engine.config.deadlines);
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The org unit whose subtree to look at (the unit itself included).
    /// Required (`400 bad_query` when missing); unknown units, and units
    /// outside the caller's area, answer `404`.
    pub org_unit: String,
    /// Only cases reported at or after this time (milliseconds since the
    /// Unix epoch).
    pub from: Option<i64>,
    /// Only cases reported before this time (milliseconds since the Unix
    /// epoch).
    pub to: Option<i64>,
}

/// Overdue cases (for supervision)
///
/// `GET /v1/cases/overdue?org_unit=…`: the open cases under an org unit
/// (its whole subtree) that are past their due time now, most overdue first
/// (by `state.due`, then id): what supervision (督办) chases. A case is due
/// `accept_ms` after it was reported or escalated until it is accepted, then
/// within the resolution limit of its level or category (`workflow.md`,
/// "Deadlines"); resolving it takes it off the list.
///
/// Any signed-in user may ask, about an org unit of their area; the list
/// holds only the cases the user may see (`permissions.md`). Cases the user
/// reported or handles outside their area are listed by `GET /v1/cases`
/// without `org_unit`.
///
/// Checks, in order: the query string (`400 bad_query`: `org_unit` missing,
/// `from` or `to` not an integer, or any other parameter), the org unit
/// exists and lies in the caller's area (`404`). `from` and `to` narrow the list to cases reported in that
/// period. `GET /v1/cases?overdue=true` pages through the same cases as list
/// rows.
#[utoipa::path(
    get,
    path = "/v1/cases/overdue",
    operation_id = "overdueCases",
    tag = "cases",
    security(("bearerAuth" = [])),
    params(Scope),
    responses(
        (status = 200, description = "Overdue cases, most overdue first.", body = Vec<CaseView>),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
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
        let rows = state.engine.storage.cases(&scope, &filter, &page).await?;
        let more = rows.len() as i64 > page.limit;
        for row in rows.iter().take(page.limit as usize) {
            // The projection picks the cases; the state comes from the
            // document itself.
            let Some(snapshot) = state.engine.storage.snapshot(&row.id).await? else {
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

/// Case figures for an org unit and period
///
/// `GET /v1/stats/cases?org_unit=…&from=…&to=…`: figures over the cases
/// under an org unit (its whole subtree) reported in a period, folded from
/// their events: how many, by category, triage class, status and resolution
/// level, the handling and mediation success rates, the median time to
/// resolution, and how many are overdue now. A case counts in the period by
/// the clock of its `report` event: at or after `from`, before `to`; either
/// bound may be left out.
///
/// Any signed-in user may ask; the figures cover only the cases the user
/// may see (`permissions.md`).
///
/// Checks, in order: the query string (`400 bad_query`: `org_unit` missing,
/// `from` or `to` not an integer, or any other parameter), the org unit
/// exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/stats/cases",
    operation_id = "caseStats",
    tag = "cases",
    security(("bearerAuth" = [])),
    params(Scope),
    responses(
        (status = 200, description = "The figures.", body = CaseStats, example = json!({
            "total": 40,
            "by_category": {"Neighbour": 22, "Family": 9, "Hazard": 5, "Other": 4},
            "by_class": {"small": 25, "big": 6, "private": 3, "unclassified": 6},
            "by_status": {"reported": 4, "accepted": 2, "triaged": 3, "assigned": 5,
                "resolved": 10, "followed_up": 6, "closed": 10},
            "resolved_by_level": {"grid": 18, "community": 6, "township": 2},
            "handling_rate": 0.65,
            "mediation_success_rate": 0.8,
            "median_time_to_resolve_ms": 259200000,
            "overdue": 3
        })),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn stats(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<Scope>,
) -> Result<Json<CaseStats>, AppError> {
    let stats =
        crate::http::query::figures::case_stats(&state, &auth, Some(&q.org_unit), q.from, q.to)
            .await?;
    Ok(Json(stats))
}
