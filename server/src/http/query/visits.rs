//! `GET /v1/visits` and `GET /v1/visits/daily`: the visit list and the
//! workers' daily logs, with their export columns.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::page::{Fetch, ListPage, Listing, Sorts, answer, page, whole};
use super::scope_and_unit;
use crate::export::{self as export, Column, Format, Lang, Tabular, Value, col, local_time};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::query::{VisitFilter, VisitItem};

const VISIT_SORTS: Sorts = &[("visited_at", "v.visited_at", true), ("id", "v.id", false)];
/// `GET /v1/visits` and `GET /v1/visits/daily`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VisitQuery {
    /// The org unit whose subtree to list.
    pub org_unit: Option<String>,
    /// By this worker (user id).
    pub worker: Option<String>,
    /// To this household.
    pub household: Option<String>,
    /// At or after (ms since the epoch).
    pub from: Option<i64>,
    /// Before (ms since the epoch).
    pub to: Option<i64>,
    /// `visited_at` (default) or `id`; `-` first for descending.
    pub sort: Option<String>,
    /// Rows per page, 1–1000 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default), `csv` or `xlsx`.
    #[serde(default)]
    pub format: Format,
    /// Header language of exports: `zh` (default) or `en`.
    #[serde(default)]
    pub lang: Lang,
}

impl VisitQuery {
    fn filter(&self, under: Option<String>) -> VisitFilter {
        VisitFilter {
            under,
            worker: self.worker.clone(),
            household: self.household.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

/// List visits
///
/// Visits to households of the caller's area, by org unit, worker,
/// household and period.
///
/// A page of rows as JSON (`limit` at a time, `next_cursor` for the next
/// page), or with `format=csv` or `format=xlsx` every row from `cursor` on
/// as a file streamed while it is read (`limit` is then ignored), with
/// column headers in `lang`. Rows are those the caller may see
/// (`permissions.md`): an `org_unit` outside the caller's area is answered
/// as an unknown one (`404`); other filters naming something outside it
/// find nothing there.
///
/// Checks, in order: the query string (`400 bad_query`: an unknown
/// parameter, a value of the wrong type), the values (`422 invalid_field`:
/// an unknown sort, a `limit` outside 1–1000, a `cursor` from another
/// list or sort), the org unit exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/visits",
    operation_id = "listVisits",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(VisitQuery),
    responses(
        (status = 200, description = "A page of rows, or every row as a file.", content(
            (ListPage<VisitItem> = "application/json"),
            (crate::http::schemas::Csv = "text/csv"),
            (crate::http::schemas::Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 422, response = crate::http::schemas::QueryValueInvalid),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
pub(super) async fn visits(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<VisitQuery>,
) -> Result<Response, AppError> {
    let sort = q.sort.clone().unwrap_or_else(|| "visited_at".into());
    let page = page(VISIT_SORTS, Some(&sort), q.limit, q.cursor.as_deref())?;
    let (scope, under) = scope_and_unit(&state, &auth, q.org_unit.as_deref()).await?;
    let filter = q.filter(under);
    let storage = state.engine.storage.clone();
    let fetch: Fetch<VisitItem> = Box::new(move |page| {
        let (storage, scope, filter) = (storage.clone(), scope.clone(), filter.clone());
        Box::pin(async move { Ok(storage.visits(&scope, &filter, &page).await?) })
    });
    let list = Listing {
        format: q.format,
        lang: q.lang,
        name: "visits",
        sort: &sort,
        sensitive: false,
    };
    answer(&state, list, page, fetch).await
}

impl Tabular for VisitItem {
    fn columns(_: bool) -> Vec<Column> {
        vec![
            col("Visit", "走访编号"),
            col("Household", "户编号"),
            col("Grid", "网格"),
            col("Worker", "网格员"),
            col("Visited at", "走访时间"),
            col("Follow-up", "需跟进"),
            col("Findings", "走访情况"),
            col("Attachments", "附件数"),
            col("Files", "附件"),
        ]
    }

    fn cells(&self, _: bool, offset: i32) -> Vec<Value> {
        vec![
            Value::from(self.id.as_str()),
            Value::from(self.household_id.as_str()),
            Value::from(self.org_unit.as_str()),
            Value::from(self.worker.as_str()),
            Value::from(local_time(self.visited_at, offset)),
            Value::from(if self.follow_up { "yes" } else { "no" }),
            Value::from(self.findings.as_str()),
            Value::from(self.attachments),
            Value::from(self.files.join(" ")),
        ]
    }
}

/// One worker's day in the log (一人一日志).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogDay {
    /// The worker (user id).
    pub worker: String,
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// Visits made.
    pub visits: i64,
    /// Distinct households visited.
    pub households: i64,
    /// Visits that need a follow-up.
    pub follow_ups: i64,
}

/// Workers' daily logs
///
/// `GET /v1/visits/daily`: visits per worker and local day (一人一日志),
/// oldest day first, with the filters of the visit list. Days begin at
/// midnight in the server's configured time zone (`utc_offset_minutes`).
///
/// `format=csv` or `xlsx` answers every day as a file, headed in `lang`.
///
/// Checks, in order: the query string (`400 bad_query`, also for `sort`,
/// `limit` or `cursor`, which the log does not take), the org unit exists
/// and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/visits/daily",
    operation_id = "dailyLogs",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(VisitQuery),
    responses(
        (status = 200, description = "Each worker's days, or every day as a file.", content(
            (Vec<LogDay> = "application/json", example = json!([{"worker": "usr_w1",
                "date": "2026-11-24", "visits": 12, "households": 11, "follow_ups": 2}])),
            (crate::http::schemas::Csv = "text/csv"),
            (crate::http::schemas::Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
pub(super) async fn daily(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<VisitQuery>,
) -> Result<Response, AppError> {
    if q.sort.is_some() || q.limit.is_some() || q.cursor.is_some() {
        return Err(AppError::BadQuery(
            "the daily log takes no sort, limit or cursor".into(),
        ));
    }
    let (scope, under) = scope_and_unit(&state, &auth, q.org_unit.as_deref()).await?;
    let offset_ms = i64::from(state.engine.config.utc_offset_minutes) * 60_000;
    let days = state
        .engine
        .storage
        .visit_days(&scope, &q.filter(under), offset_ms)
        .await?;
    let log: Vec<LogDay> = days
        .into_iter()
        .map(|d| LogDay {
            worker: d.worker,
            date: export::date(d.day),
            visits: d.visits,
            households: d.households,
            follow_ups: d.follow_ups,
        })
        .collect();
    let file = (q.format, q.lang, "daily-logs");
    Ok(whole(
        log,
        file,
        false,
        state.engine.config.utc_offset_minutes,
    ))
}

impl Tabular for LogDay {
    fn columns(_sensitive: bool) -> Vec<Column> {
        vec![
            col("Worker", "网格员"),
            col("Date", "日期"),
            col("Visits", "走访次数"),
            col("Households visited", "走访户数"),
            col("Follow-ups", "需跟进"),
        ]
    }

    fn cells(&self, _sensitive: bool, _utc_offset_minutes: i32) -> Vec<Value> {
        vec![
            Value::from(self.worker.as_str()),
            Value::from(self.date.as_str()),
            Value::from(self.visits),
            Value::from(self.households),
            Value::from(self.follow_ups),
        ]
    }
}
