//! `GET /v1/households`: the household list, its filters and its export
//! columns.

use sync_core::records::{Residence, SensitiveCategory, Tag};

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::page::{Fetch, ListPage, Listing, Sorts, answer, page};
use super::{one_of, scope_and_unit};
use crate::export::{Column, Format, Lang, Tabular, Value, col, local_time};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::query::{HouseholdFilter, HouseholdItem};

const HOUSEHOLD_SORTS: Sorts = &[
    ("id", "h.id", false),
    (
        "address",
        "(h.building || '/' || h.unit || '/' || h.room)",
        false,
    ),
    ("member_count", "h.member_count", true),
];

/// `GET /v1/households`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HouseholdQuery {
    /// The org unit whose subtree to list (default: the caller's whole area).
    pub org_unit: Option<String>,
    /// A care tag or, for roles with sensitive rights, a special-population
    /// category.
    pub tag: Option<String>,
    /// Households with a member of this residence type.
    pub residence: Option<String>,
    /// A substring of a member's name, ID number or phone, or the address.
    pub q: Option<String>,
    /// Households with no visit at or after this time (ms since the epoch).
    pub not_visited_since: Option<i64>,
    /// `id` (default), `address` or `member_count`; `-` first for descending.
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

fn tag_keys() -> Vec<&'static str> {
    Tag::ALL.iter().map(|t| t.as_str()).collect()
}

fn sensitive_keys() -> Vec<&'static str> {
    SensitiveCategory::ALL.iter().map(|c| c.as_str()).collect()
}

/// List households
///
/// Households of the caller's area, by org unit (its subtree), care tag or
/// special-population category, residence type of a member, free text
/// (a substring of a member's name, ID number or phone, or of the address;
/// Chinese works) and "not visited since". Each row carries the household's
/// care tags, its last visit, and, for roles that receive sensitive details
/// (community staff, centre staff, admins), its special-population
/// categories in `special` (and a column of them in exports).
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
/// an unknown tag, residence or sort, a `limit` outside 1–1000, a `cursor` from another
/// list or sort), a special-population category as `tag` without sensitive rights (`403`), the org unit exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/households",
    operation_id = "listHouseholds",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(HouseholdQuery),
    responses(
        (status = 200, description = "A page of rows, or every row as a file.", content(
            (ListPage<HouseholdItem> = "application/json"),
            (crate::http::schemas::Csv = "text/csv"),
            (crate::http::schemas::Xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 403, description = "`tag` is a special-population category and the caller's \
            role does not receive sensitive details.", body = crate::http::schemas::ForbiddenError,
            example = json!({"code": "forbidden",
                "message": "a supervisor may not filter by special-population category"})),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 422, response = crate::http::schemas::QueryValueInvalid),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
pub(super) async fn households(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<HouseholdQuery>,
) -> Result<Response, AppError> {
    let mut tags = tag_keys();
    tags.extend(sensitive_keys());
    one_of("tag", &q.tag, &tags)?;
    let residences: Vec<String> = [
        Residence::Registered,
        Residence::Floating,
        Residence::Resident,
    ]
    .iter()
    .map(|r| format!("{r:?}"))
    .collect();
    let residences: Vec<&str> = residences.iter().map(String::as_str).collect();
    one_of("residence", &q.residence, &residences)?;
    let sort = q.sort.clone().unwrap_or_else(|| "id".into());
    let page = page(HOUSEHOLD_SORTS, Some(&sort), q.limit, q.cursor.as_deref())?;
    let (scope, under) = scope_and_unit(&state, &auth, q.org_unit.as_deref()).await?;
    if q.tag
        .as_deref()
        .is_some_and(|t| sensitive_keys().contains(&t))
        && !scope.sensitive
    {
        return Err(AppError::Forbidden(format!(
            "a {} may not filter by special-population category",
            auth.role
        )));
    }
    let filter = HouseholdFilter {
        under,
        tag: q.tag,
        residence: q.residence,
        text: q
            .q
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_owned()),
        not_visited_since: q.not_visited_since,
    };
    let sensitive = scope.sensitive;
    let storage = state.engine.storage.clone();
    let fetch: Fetch<HouseholdItem> = Box::new(move |page| {
        let (storage, scope, filter) = (storage.clone(), scope.clone(), filter.clone());
        Box::pin(async move { Ok(storage.households(&scope, &filter, &page).await?) })
    });
    let list = Listing {
        format: q.format,
        lang: q.lang,
        name: "households",
        sort: &sort,
        sensitive,
    };
    answer(&state, list, page, fetch).await
}

impl Tabular for HouseholdItem {
    fn columns(sensitive: bool) -> Vec<Column> {
        let mut columns = vec![
            col("Household", "户编号"),
            col("Grid", "网格"),
            col("Building", "栋"),
            col("Unit", "单元"),
            col("Room", "室"),
            col("Head of household", "户主"),
            col("Members", "人数"),
            col("Tags", "标签"),
            col("Last visit", "最近走访"),
        ];
        if sensitive {
            columns.push(col("Special population", "特殊人群"));
        }
        columns
    }

    fn cells(&self, sensitive: bool, offset: i32) -> Vec<Value> {
        let mut cells = vec![
            Value::from(self.id.as_str()),
            Value::from(self.org_unit.as_str()),
            Value::from(self.building.as_str()),
            Value::from(self.unit.as_str()),
            Value::from(self.room.as_str()),
            Value::from(self.head_name.as_str()),
            Value::from(self.member_count),
            Value::from(self.tags.join(" ")),
            Value::from(self.last_visited_at.map(|t| local_time(t, offset))),
        ];
        if sensitive {
            cells.push(Value::from(self.special.as_ref().map(|s| s.join(" "))));
        }
        cells
    }
}
