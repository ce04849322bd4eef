//! `GET /v1/cases`: the case list, its filters and its export columns.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::page::{Fetch, ListPage, Listing, Sorts, answer, page};
use super::{one_of, scope_and_unit};
use crate::domain::now_ms;
use crate::export::{Column, Format, Lang, Tabular, Value, col, local_time};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::query::{CaseFilter, CaseItem};

const CASE_SORTS: Sorts = &[
    ("reported_at", "c.reported_at", true),
    ("due_at", "COALESCE(c.due_at, 9007199254740991)", true),
    ("id", "c.id", false),
];

/// `GET /v1/cases`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// The org unit whose subtree to list.
    pub org_unit: Option<String>,
    /// Category as stored, e.g. `Neighbour`.
    pub category: Option<String>,
    /// `big`, `small`, `private` or `unclassified`.
    pub class: Option<String>,
    /// Status name.
    pub status: Option<String>,
    /// Level name: `grid`, `community`, `township`, `county`.
    pub level: Option<String>,
    /// Handled by this user.
    pub assignee: Option<String>,
    /// Reported by this user.
    pub reporter: Option<String>,
    /// Concerning this household.
    pub household: Option<String>,
    /// Only overdue (`true`) or only not overdue (`false`) cases.
    pub overdue: Option<bool>,
    /// Reported at or after (ms since the epoch).
    pub from: Option<i64>,
    /// Reported before (ms since the epoch).
    pub to: Option<i64>,
    /// `reported_at` (default), `due_at` or `id`; `-` first for descending.
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

/// The values a case filter may take, checked before querying.
fn check_case_values(
    category: &Option<String>,
    class: &Option<String>,
    status: &Option<String>,
    level: &Option<String>,
) -> Result<(), AppError> {
    use sync_core::records::CaseCategory as C;
    let categories: Vec<String> = [
        C::Labour,
        C::Traffic,
        C::Medical,
        C::School,
        C::LandRights,
        C::Environment,
        C::Property,
        C::Finance,
        C::Consumer,
        C::Family,
        C::Neighbour,
        C::Demolition,
        C::Hazard,
        C::Request,
        C::Other,
    ]
    .iter()
    .map(|c| format!("{c:?}"))
    .collect();
    let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
    one_of("category", category, &categories)?;
    one_of("class", class, &["big", "small", "private", "unclassified"])?;
    one_of(
        "status",
        status,
        &[
            "reported",
            "accepted",
            "triaged",
            "assigned",
            "handling",
            "resolved",
            "followed_up",
            "closed",
        ],
    )?;
    one_of("level", level, &["grid", "community", "township", "county"])
}

/// List cases
///
/// Cases with the state folded from their events, by org unit, category,
/// triage class, status, level, assignee, reporter, household, overdue now,
/// and the period they were reported in. Mediators and departments see the
/// cases they reported or handle.
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
/// an unknown category, class, status, level or sort, a `limit` outside 1–1000, a `cursor` from another
/// list or sort), the org unit exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/cases",
    operation_id = "listCases",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(CaseQuery),
    responses(
        (status = 200, description = "A page of rows, or every row as a file.", content(
            (ListPage<CaseItem> = "application/json"),
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
pub(super) async fn cases(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> Result<Response, AppError> {
    check_case_values(&q.category, &q.class, &q.status, &q.level)?;
    let sort = q.sort.clone().unwrap_or_else(|| "reported_at".into());
    let page = page(CASE_SORTS, Some(&sort), q.limit, q.cursor.as_deref())?;
    let (scope, under) = scope_and_unit(&state, &auth, q.org_unit.as_deref()).await?;
    let filter = CaseFilter {
        under,
        category: q.category,
        class: q.class,
        status: q.status,
        level: q.level,
        assignee: q.assignee,
        reporter: q.reporter,
        household: q.household,
        overdue: q.overdue,
        from: q.from,
        to: q.to,
        now: now_ms(),
    };
    let storage = state.engine.storage.clone();
    let fetch: Fetch<CaseItem> = Box::new(move |page| {
        let (storage, scope, filter) = (storage.clone(), scope.clone(), filter.clone());
        Box::pin(async move { Ok(storage.cases(&scope, &filter, &page).await?) })
    });
    let list = Listing {
        format: q.format,
        lang: q.lang,
        name: "cases",
        sort: &sort,
        sensitive: false,
    };
    answer(&state, list, page, fetch).await
}

impl Tabular for CaseItem {
    fn columns(_: bool) -> Vec<Column> {
        vec![
            col("Case", "事件编号"),
            col("Org unit", "所属单位"),
            col("Category", "类别"),
            col("Title", "标题"),
            col("Location", "地点"),
            col("Reported at", "上报时间"),
            col("Status", "状态"),
            col("Class", "分流"),
            col("Level", "层级"),
            col("Assignee", "承办人"),
            col("Due", "期限"),
            col("Overdue", "超期"),
            col("Resolved at", "办结时间"),
            col("Resolved level", "化解层级"),
            col("Result", "结果"),
            col("Attachments", "附件数"),
            col("Files", "附件"),
        ]
    }

    fn cells(&self, _: bool, offset: i32) -> Vec<Value> {
        let time = |t: Option<i64>| Value::from(t.map(|t| local_time(t, offset)));
        vec![
            Value::from(self.id.as_str()),
            Value::from(self.org_unit.as_str()),
            Value::from(self.category.as_str()),
            Value::from(self.title.as_str()),
            Value::from(self.location.as_str()),
            time(Some(self.reported_at)),
            Value::from(self.status.as_str()),
            Value::from(self.class.clone()),
            Value::from(self.level.as_str()),
            Value::from(self.assignee.clone()),
            time(self.due_at),
            Value::from(if self.overdue { "yes" } else { "no" }),
            time(self.resolved_at),
            Value::from(self.resolved_level.clone()),
            Value::from(self.result.clone()),
            Value::from(self.attachments),
            Value::from(self.files.join(" ")),
        ]
    }
}
