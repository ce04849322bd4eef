//! What supervisors ask of the merged data: lists of households, cases and
//! visits with filters, sorts and stable cursors, exported as CSV or XLSX;
//! workers' daily logs; one record as merged JSON, its history and its
//! conflicts ([`records`]); figures per org unit ([`figures`]).
//!
//! Everything here reads the projections (`crate::projection`), narrowed
//! by the caller's scope as the sync feed is: a township supervisor never
//! sees another township's rows, and special-population categories reach
//! only roles that receive sensitive details.

pub mod figures;
pub mod records;

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sync_core::records::{Residence, SensitiveCategory, Tag};

use crate::domain::now_ms;
use crate::export::{self, Column, Encoder, Format, Lang, Tabular, Value, col, local_time};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::Scope;
use crate::storage::query::{
    After, CaseFilter, CaseItem, HouseholdFilter, HouseholdItem, Page, SortKey, SortKeyColumn,
    VisitFilter, VisitItem,
};

/// The query routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/households", get(households))
        .route("/v1/cases", get(cases))
        .route("/v1/visits", get(visits))
        .route("/v1/visits/daily", get(daily))
        .merge(records::router())
        .merge(figures::router())
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(households, cases, visits, daily))]
pub struct Api;

/// Rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 100;
/// Most rows per page.
const MAX_LIMIT: i64 = 1000;
/// Rows fetched per database round trip while an export streams.
const EXPORT_PAGE: i64 = 500;
/// Data rows a worksheet holds besides its header row and a closing note.
const XLSX_MAX_ROWS: usize = 1_048_576 - 2;

/// A page of a list.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListPage<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The sorts a list allows: name, SQL expression, whether numeric.
type Sorts = &'static [(&'static str, &'static str, bool)];

const HOUSEHOLD_SORTS: Sorts = &[
    ("id", "h.id", false),
    (
        "address",
        "(h.building || '/' || h.unit || '/' || h.room)",
        false,
    ),
    ("member_count", "h.member_count", true),
];
const CASE_SORTS: Sorts = &[
    ("reported_at", "c.reported_at", true),
    ("due_at", "COALESCE(c.due_at, 9007199254740991)", true),
    ("id", "c.id", false),
];
const VISIT_SORTS: Sorts = &[("visited_at", "v.visited_at", true), ("id", "v.id", false)];

/// Reads `sort` (a name, `-` first for descending), `limit` and `cursor`.
fn page(
    sorts: Sorts,
    sort: Option<&str>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page, AppError> {
    let requested = sort.unwrap_or(sorts[0].0);
    let (desc, name) = match requested.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, requested),
    };
    let Some(&(_, expr, numeric)) = sorts.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = sorts.iter().map(|(n, _, _)| *n).collect();
        return Err(AppError::Invalid {
            field: "sort",
            problem: format!("must be one of {}, optionally after -", names.join(", ")),
        });
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::Invalid {
            field: "limit",
            problem: format!("must be between 1 and {MAX_LIMIT}"),
        });
    }
    let after = cursor
        .map(|c| decode_cursor(c, requested, numeric))
        .transpose()?;
    Ok(Page {
        sort: expr,
        numeric,
        desc,
        limit,
        after,
    })
}

/// A cursor names the sort it was made for, so that it cannot be replayed
/// against another.
#[derive(Serialize, Deserialize)]
struct CursorBody {
    sort: String,
    key: SortKey,
    id: String,
}

fn encode_cursor(sort: &str, key: SortKey, id: &str) -> String {
    let body = CursorBody {
        sort: sort.to_owned(),
        key,
        id: id.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

fn decode_cursor(cursor: &str, sort: &str, numeric: bool) -> Result<After, AppError> {
    let bad = || AppError::Invalid {
        field: "cursor",
        problem: "is not a cursor this list issued for this sort".into(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let key_fits = matches!(
        (&body.key, numeric),
        (SortKey::Int(_), true) | (SortKey::Text(_), false)
    );
    if body.sort != sort || !key_fits {
        return Err(bad());
    }
    Ok(After {
        key: body.key,
        id: body.id,
    })
}

/// A row of a keyset-paged list.
trait Listed {
    fn id(&self) -> &str;
    fn sort_key(&self) -> &SortKeyColumn;
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn sort_key(&self) -> &SortKeyColumn {
                &self.sort_key
            }
        }
    )*};
}
listed!(HouseholdItem, CaseItem, VisitItem);

/// Trims the extra row a query fetched and makes the cursor after the page.
fn finish_page<T: Listed>(mut items: Vec<T>, page: &Page, sort: &str) -> ListPage<T> {
    let more = items.len() as i64 > page.limit;
    items.truncate(page.limit as usize);
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .and_then(|last| Some(encode_cursor(sort, last.sort_key().0.clone()?, last.id())));
    ListPage { items, next_cursor }
}

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

/// What a list query asked for, beyond its filters.
struct Listing<'a> {
    format: Format,
    lang: Lang,
    /// The list's name, for the file and sheet.
    name: &'static str,
    /// The sort asked for, as named in the query.
    sort: &'a str,
    /// Whether the caller sees sensitive columns.
    sensitive: bool,
}

type Fetch<T> =
    Box<dyn Fn(Page) -> Pin<Box<dyn Future<Output = Result<Vec<T>, AppError>> + Send>> + Send>;

/// The headers of a file answer: its type, and a file name for saving it.
fn file_headers(format: Format, name: &str) -> [(header::HeaderName, String); 2] {
    let disposition = format!("attachment; filename=\"{name}.{}\"", format.extension());
    [
        (header::CONTENT_TYPE, format.media_type().to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
    ]
}

/// A short list answered whole: as JSON, or as a file of every row, with
/// the columns only roles with sensitive rights see when `sensitive`.
fn whole<T: Tabular + Serialize>(
    rows: Vec<T>,
    (format, lang, name): (Format, Lang, &str),
    sensitive: bool,
    utc_offset_minutes: i32,
) -> Response {
    if format == Format::Json {
        return axum::Json(rows).into_response();
    }
    let headers: Vec<&str> = T::columns(sensitive)
        .into_iter()
        .map(|c| c.header(lang))
        .collect();
    let (mut encoder, mut out) = Encoder::start(format, name, &headers);
    for row in &rows {
        out.extend(encoder.row(&row.cells(sensitive, utc_offset_minutes)));
    }
    out.extend(encoder.finish());
    (file_headers(format, name), out).into_response()
}

/// Answers a list query: one JSON page, or every row from the cursor on
/// as a streamed file.
async fn answer<T>(
    state: &AppState,
    list: Listing<'_>,
    page: Page,
    fetch: Fetch<T>,
) -> Result<Response, AppError>
where
    T: Listed + Tabular + Serialize + Send + 'static,
{
    let Listing {
        format,
        lang,
        name,
        sort,
        sensitive,
    } = list;
    if format == Format::Json {
        let items = fetch(page.clone()).await?;
        return Ok(axum::Json(finish_page(items, &page, sort)).into_response());
    }
    let offset = state.engine.config.utc_offset_minutes;
    let headers: Vec<&str> = T::columns(sensitive)
        .into_iter()
        .map(|c| c.header(lang))
        .collect();
    // The first page is read before answering, so that a failing query is
    // still answered with an error status.
    let first_page = Page {
        limit: EXPORT_PAGE,
        ..page
    };
    let first = fetch(first_page.clone()).await?;
    let (encoder, head) = Encoder::start(format, name, &headers);
    struct Export<T> {
        fetch: Fetch<T>,
        page: Page,
        rows: Option<Vec<T>>,
        encoder: Option<Encoder>,
        /// Rows this file may still take.
        room: usize,
    }
    let start = Export {
        fetch,
        page: first_page,
        rows: Some(first),
        encoder: Some(encoder),
        room: match format {
            Format::Xlsx => XLSX_MAX_ROWS,
            _ => usize::MAX,
        },
    };
    let rest = futures_util::stream::unfold(start, move |mut ex| async move {
        let mut encoder = ex.encoder.take()?;
        let rows = match ex.rows.take() {
            Some(rows) => rows,
            None => match (ex.fetch)(ex.page.clone()).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    return Some((Err(std::io::Error::other(e.to_string())), ex));
                }
            },
        };
        let mut more = rows.len() as i64 > ex.page.limit;
        let mut out = Vec::new();
        for row in rows.iter().take(ex.page.limit as usize) {
            if ex.room == 0 {
                let note = "… more rows than a worksheet holds: narrow the filters or export CSV";
                out.extend(encoder.row(&[Value::from(note)]));
                more = false;
                break;
            }
            out.extend(encoder.row(&row.cells(sensitive, offset)));
            ex.room -= 1;
        }
        match rows.get(ex.page.limit as usize - 1).filter(|_| more) {
            Some(last) => {
                ex.page.after = last.sort_key().0.clone().map(|key| After {
                    key,
                    id: last.id().to_owned(),
                });
                ex.encoder = Some(encoder);
            }
            None => out.extend(encoder.finish()),
        }
        Some((Ok::<_, std::io::Error>(out), ex))
    });
    // Fused: a body may be polled again after it ended (compression does),
    // and an ended `unfold` must not be.
    let body = futures_util::StreamExt::fuse(futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(head) }),
        rest,
    ));
    Ok((file_headers(format, name), Body::from_stream(body)).into_response())
}

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
async fn households(
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
pub(crate) fn check_case_values(
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
async fn cases(
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
async fn visits(
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
async fn daily(
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
