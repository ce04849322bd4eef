//! Figures per org unit: case statistics (by category, class, status and
//! level resolved; mediation success, handling rate, median time to
//! resolve, overdue), visit coverage per grid and tagged group, and the
//! ledger of each village or community (一村一台账).
//!
//! The database counts per org unit; the counts are then rolled up the org
//! tree to the level asked for, so a county-wide figure costs one read, not
//! one query per unit. All-time case figures come from counts kept per unit
//! as cases are merged (see [`case_figures`]).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{area_of, scope_and_unit};
use crate::domain::OrgUnitKind;
use crate::domain::now_ms;
use crate::export::{Column, Format, Lang, Tabular, Value, col};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiQuery, AppState};
use crate::storage::query::{CaseCount, CaseFilter};
use crate::storage::{OrgUnitRow, Scope};
use sync_core::records::{SensitiveCategory, Tag};

/// The figure routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/stats/cases/by-unit", get(cases_by_unit))
        .route("/v1/stats/coverage", get(coverage))
        .route("/v1/stats/ledger", get(ledger))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(cases_by_unit, coverage, ledger))]
pub struct Api;

const OPEN: [&str; 5] = ["reported", "accepted", "triaged", "assigned", "handling"];

/// Case figures being added up, from cases counted in groups or from the
/// kept per-unit tally: both go through [`Figures::add`], so both paths
/// give the same figures for the same cases.
#[derive(Debug, Default)]
struct Figures {
    stats: CaseStats,
    handled: usize,
    mediated: usize,
    referred: usize,
}

impl Figures {
    /// Adds `n` cases whose attribute `dim` is `value` (`""`: none). Each
    /// case is added once per attribute; by its category it counts in the
    /// total.
    fn add(&mut self, dim: &str, value: &str, n: usize) {
        let s = &mut self.stats;
        match dim {
            "category" => {
                s.total += n;
                *s.by_category.entry(value.to_owned()).or_default() += n;
            }
            "class" => {
                let class = if value.is_empty() {
                    "unclassified"
                } else {
                    value
                };
                *s.by_class.entry(class.to_owned()).or_default() += n;
            }
            "status" => {
                *s.by_status.entry(value.to_owned()).or_default() += n;
                if !OPEN.contains(&value) {
                    self.handled += n;
                }
            }
            "resolved_level" if !value.is_empty() => {
                *s.resolved_by_level.entry(value.to_owned()).or_default() += n;
            }
            "result" => match value {
                "mediated" => self.mediated += n,
                "referred" => self.referred += n,
                _ => {}
            },
            _ => {}
        }
    }

    /// Adds a group of counted cases.
    fn add_count(&mut self, c: &CaseCount) {
        let n = usize::try_from(c.count).unwrap_or(0);
        self.add("category", &c.category, n);
        self.add("class", c.class.as_deref().unwrap_or(""), n);
        self.add("status", &c.status, n);
        self.add(
            "resolved_level",
            c.resolved_level.as_deref().unwrap_or(""),
            n,
        );
        self.add("result", c.result.as_deref().unwrap_or(""), n);
        if c.overdue {
            self.stats.overdue += n;
        }
    }

    /// The figures, with their rates.
    fn finish(self) -> CaseStats {
        let mut s = self.stats;
        let rate = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        s.handling_rate = rate(self.handled, s.total);
        s.mediation_success_rate = rate(self.mediated, self.mediated + self.referred);
        s
    }
}

/// Case figures of `groups` groups (`group(org_unit)` says which a case of
/// that unit counts towards, if any) over the cases `filter` selects
/// (its subtree and period only).
///
/// Without a period the figures are summed from the per-unit tally kept as
/// cases are merged (`case_tally`), plus what the tally cannot say: the
/// cases the caller sees beyond their area (reported or handled by them)
/// and how many are overdue now. For a county that reads a few dozen rows
/// per grid instead of every case. A period needs each case's report time,
/// so figures for a period are counted case by case.
async fn case_figures(
    state: &AppState,
    scope: &Scope,
    filter: &CaseFilter,
    groups: usize,
    group: impl Fn(&str) -> Option<usize>,
) -> Result<Vec<CaseStats>, AppError> {
    let mut per: Vec<Figures> = (0..groups).map(|_| Figures::default()).collect();
    if filter.from.is_none() && filter.to.is_none() {
        let t = state
            .engine
            .storage
            .case_tallies(scope, &filter.under, filter.now)
            .await?;
        for row in &t.tallies {
            if let Some(g) = group(&row.org_unit) {
                per[g].add(&row.dim, &row.value, usize::try_from(row.n).unwrap_or(0));
            }
        }
        for c in &t.beyond_area {
            if let Some(g) = group(&c.org_unit) {
                per[g].add_count(c);
            }
        }
        for (unit, n) in &t.overdue {
            if let Some(g) = group(unit) {
                per[g].stats.overdue += usize::try_from(*n).unwrap_or(0);
            }
        }
    } else {
        for c in &state.engine.storage.case_counts(scope, filter).await? {
            if let Some(g) = group(&c.org_unit) {
                per[g].add_count(c);
            }
        }
    }
    Ok(per.into_iter().map(Figures::finish).collect())
}

/// Case figures for the subtree of `org_unit` (all the caller may see when
/// `None`), for cases reported in `[from, to)`.
pub(crate) async fn case_stats(
    state: &AppState,
    auth: &AuthDevice,
    org_unit: Option<&str>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<CaseStats, AppError> {
    let (scope, under) = scope_and_unit(state, auth, org_unit).await?;
    let filter = CaseFilter {
        under,
        from,
        to,
        now: now_ms(),
        ..CaseFilter::default()
    };
    let mut stats = case_figures(state, &scope, &filter, 1, |_| Some(0))
        .await?
        .pop()
        .unwrap_or_default();
    stats.median_time_to_resolve_ms = state
        .engine
        .storage
        .median_time_to_resolve(&scope, &filter)
        .await?;
    Ok(stats)
}

/// How to group figures: the children of the unit asked about, or every
/// unit of one kind below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The unit's direct children.
    #[default]
    Children,
    /// Every grid below.
    Grid,
    /// Every community (village) below.
    Community,
    /// Every township below.
    Township,
}

/// The org units figures are grouped into, and which group each unit of
/// the subtree counts towards. Only units of the caller's area are named,
/// as in every other query.
struct Groups {
    /// The path of the unit asked about, whose subtree is counted.
    path: String,
    units: Vec<OrgUnitRow>,
    of: HashMap<String, usize>,
}

impl Groups {
    /// The groups below `root`; `404` unless it is a unit of the caller's
    /// area (what [`scope_and_unit`] checks).
    async fn load(
        state: &AppState,
        auth: &AuthDevice,
        root: &str,
        by: GroupBy,
    ) -> Result<Self, AppError> {
        let area = area_of(state, auth).await?;
        let mut all = state.engine.storage.org_units().await?;
        all.retain(|u| area.contains(&u.id));
        let root = all
            .iter()
            .find(|u| u.id == root)
            .ok_or(AppError::Missing("org unit"))?
            .clone();
        let kind = match by {
            GroupBy::Children => None,
            GroupBy::Grid => Some(OrgUnitKind::Grid),
            GroupBy::Community => Some(OrgUnitKind::Community),
            GroupBy::Township => Some(OrgUnitKind::Township),
        };
        let units: Vec<OrgUnitRow> = all
            .iter()
            .filter(|u| u.path.starts_with(&root.path) && u.id != root.id)
            .filter(|u| match kind {
                Some(kind) => u.kind == kind,
                None => u.parent_id.as_deref() == Some(root.id.as_str()),
            })
            .cloned()
            .collect();
        let index: HashMap<&str, usize> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.as_str(), i))
            .collect();
        let of = all
            .iter()
            .filter_map(|u| {
                let group = u
                    .path
                    .split('/')
                    .find_map(|ancestor| index.get(ancestor).copied())?;
                Some((u.id.clone(), group))
            })
            .collect();
        Ok(Self {
            path: root.path,
            units,
            of,
        })
    }

    fn group(&self, unit: &str) -> Option<usize> {
        self.of.get(unit).copied()
    }
}

/// Figures for one org unit.
#[derive(Debug, Serialize, Deserialize)]
pub struct UnitFigures<T> {
    /// The org unit.
    pub org_unit: String,
    /// Its name.
    pub name: String,
    /// Its level.
    pub kind: OrgUnitKind,
    /// The figures.
    #[serde(flatten)]
    pub figures: T,
}

/// Declares the schema of `UnitFigures<$figures>` under a name of its own.
macro_rules! unit_schema {
    ($(#[doc = $doc:literal])+ $name:ident: $figures:ty) => {
        $(#[doc = $doc])+
        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            /// The org unit.
            org_unit: String,
            /// Its name.
            name: String,
            /// Its level.
            kind: OrgUnitKind,
            #[serde(flatten)]
            figures: $figures,
        }
    };
}

unit_schema! {
    /// Case figures of one org unit's subtree.
    UnitCaseStats: CaseStats
}
unit_schema! {
    /// Visit coverage of one org unit's subtree.
    UnitCoverage: CoverageFigures
}
unit_schema! {
    /// The ledger of one org unit's subtree.
    UnitLedger: Ledger
}

/// `?org_unit=…&by=…&from=…&to=…`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByUnitQuery {
    /// The unit whose subtree to count.
    pub org_unit: String,
    /// How to group.
    #[serde(default)]
    pub by: GroupBy,
    /// Cases reported at or after (ms since the epoch).
    pub from: Option<i64>,
    /// Cases reported before.
    pub to: Option<i64>,
}

/// Case figures per org unit
///
/// The figures of `GET /v1/stats/cases` for each unit below `org_unit`:
/// its children (`by=children`, the default) or every grid, community or
/// township below it. Each unit counts the cases of its subtree the caller
/// may see, reported in the period. The median time to resolve is given for
/// the whole subtree only (`GET /v1/stats/cases`), here always `null`.
///
/// Checks, in order: the query string (`400 bad_query`: `org_unit`
/// missing, an unknown `by`, `from` or `to` not an integer, any other
/// parameter), the org unit exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/stats/cases/by-unit",
    operation_id = "caseStatsByUnit",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(ByUnitQuery),
    responses(
        (status = 200, description = "Figures per unit.", body = Vec<UnitCaseStats>),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn cases_by_unit(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<ByUnitQuery>,
) -> Result<Json<Vec<UnitFigures<CaseStats>>>, AppError> {
    let groups = Groups::load(&state, &auth, &q.org_unit, q.by).await?;
    let scope = Scope::of(&auth.user_id, auth.role);
    let filter = CaseFilter {
        under: Some(groups.path.clone()),
        from: q.from,
        to: q.to,
        now: now_ms(),
        ..CaseFilter::default()
    };
    let figures = case_figures(&state, &scope, &filter, groups.units.len(), |unit| {
        groups.group(unit)
    })
    .await?;
    Ok(Json(with_units(&groups, figures)))
}

/// How many households, and how many of them were visited.
#[derive(Debug, Default, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Coverage {
    /// Households.
    pub households: i64,
    /// Of those, visited in the period.
    pub visited: i64,
    /// `visited / households`, absent when there are none.
    pub share: Option<f64>,
}

impl Coverage {
    fn add(&mut self, households: i64, visited: i64) {
        self.households += households;
        self.visited += visited;
        self.share = (self.households > 0).then(|| self.visited as f64 / self.households as f64);
    }
}

/// Visit coverage of one unit.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoverageFigures {
    /// All households.
    #[serde(flatten)]
    pub all: Coverage,
    /// Households of each tag (special-population categories only for
    /// roles with sensitive rights).
    pub by_tag: BTreeMap<String, Coverage>,
}

/// `GET /v1/stats/coverage` answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoverageReport {
    /// Visits at or after this time count (ms since the epoch).
    pub since: i64,
    /// The whole subtree.
    pub total: CoverageFigures,
    /// Per unit.
    #[schema(value_type = Vec<UnitCoverage>)]
    pub units: Vec<UnitFigures<CoverageFigures>>,
}

/// `?org_unit=…&days=…&by=…`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    /// The unit whose subtree to count.
    pub org_unit: String,
    /// Visits in the last this many days count (default 30, 1–3660).
    pub days: Option<i64>,
    /// How to group (default: every grid).
    pub by: Option<GroupBy>,
}

/// Visit coverage
///
/// How many households, and of each tagged group, were visited in the last
/// `days` days, per grid (or per unit of `by`) and for the whole subtree of
/// `org_unit`. Special-population categories count as groups only for roles
/// that receive sensitive details.
///
/// Checks, in order: the query string (`400 bad_query`), `days` in 1–3660
/// (`422`), the org unit exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/stats/coverage",
    operation_id = "visitCoverage",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(CoverageQuery),
    responses(
        (status = 200, description = "Coverage in all and per unit.", body = CoverageReport),
        (status = 400, response = crate::http::schemas::BadQuery),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::OrgUnitNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 422, response = crate::http::schemas::QueryValueInvalid),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn coverage(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> Result<Json<CoverageReport>, AppError> {
    let days = q.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(AppError::Invalid {
            field: "days",
            problem: "must be between 1 and 3660".into(),
        });
    }
    let since = now_ms() - days * 86_400_000;
    let groups = Groups::load(&state, &auth, &q.org_unit, q.by.unwrap_or(GroupBy::Grid)).await?;
    let scope = Scope::of(&auth.user_id, auth.role);
    let counts = state
        .engine
        .storage
        .household_counts(&scope, &groups.path, since)
        .await?;
    let mut total = CoverageFigures::default();
    let mut per: Vec<CoverageFigures> = groups
        .units
        .iter()
        .map(|_| CoverageFigures::default())
        .collect();
    for c in &counts {
        let targets = [
            Some(&mut total),
            groups.group(&c.org_unit).map(|g| &mut per[g]),
        ];
        for figures in targets.into_iter().flatten() {
            match &c.tag {
                None => figures.all.add(c.households, c.visited),
                Some(tag) => figures
                    .by_tag
                    .entry(tag.clone())
                    .or_default()
                    .add(c.households, c.visited),
            }
        }
    }
    Ok(Json(CoverageReport {
        since,
        total,
        units: with_units(&groups, per),
    }))
}

fn with_units<T>(groups: &Groups, per: Vec<T>) -> Vec<UnitFigures<T>> {
    groups
        .units
        .iter()
        .zip(per)
        .map(|(unit, figures)| UnitFigures {
            org_unit: unit.id.clone(),
            name: unit.name.clone(),
            kind: unit.kind,
            figures,
        })
        .collect()
}

/// One village's or community's ledger (台账) for a period.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ledger {
    /// Households.
    pub households: i64,
    /// People in them.
    pub members: i64,
    /// People by residence type (`Registered`, `Floating`, `Resident`).
    pub by_residence: BTreeMap<String, i64>,
    /// Households per tag (special-population categories only for roles
    /// with sensitive rights).
    pub by_tag: BTreeMap<String, i64>,
    /// Visits made in the period.
    pub visits: i64,
    /// Cases reported in the period.
    pub cases: CaseStats,
}

/// `?org_unit=…&from=…&to=…&by=…`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// The unit whose subtree to count.
    pub org_unit: String,
    /// Start of the period (ms since the epoch; default: 0).
    pub from: Option<i64>,
    /// End of the period, exclusive (default: now).
    pub to: Option<i64>,
    /// How to group (default: every community).
    pub by: Option<GroupBy>,
    /// `json` (default), `csv` or `xlsx`.
    #[serde(default)]
    pub format: Format,
    /// Header language of exports: `zh` (default) or `en`.
    #[serde(default)]
    pub lang: Lang,
}

impl Tabular for UnitFigures<Ledger> {
    fn columns(sensitive: bool) -> Vec<Column> {
        let mut columns = vec![
            col("Org unit", "单位"),
            col("Name", "名称"),
            col("Households", "户数"),
            col("People", "人数"),
            col("Registered", "户籍人口"),
            col("Floating", "流动人口"),
            col("Resident", "常住人口"),
        ];
        columns.extend(Tag::ALL.map(|t| col(t.as_str(), crate::http::import::tag_zh(t))));
        if sensitive {
            columns.extend(SensitiveCategory::ALL.map(|c| col(c.as_str(), sensitive_zh(c))));
        }
        columns.extend([
            col("Visits", "走访次数"),
            col("Cases", "事件数"),
            col("Overdue", "超期"),
            col("Handling rate", "办结率"),
            col("Mediation success", "调解成功率"),
        ]);
        columns
    }

    fn cells(&self, sensitive: bool, _utc_offset_minutes: i32) -> Vec<Value> {
        let l = &self.figures;
        let count = |map: &BTreeMap<String, i64>, key: &str| {
            Value::from(map.get(key).copied().unwrap_or(0))
        };
        let rate = |r: Option<f64>| r.map_or(Value::Empty, Value::Number);
        let mut cells = vec![
            Value::from(self.org_unit.as_str()),
            Value::from(self.name.as_str()),
            Value::from(l.households),
            Value::from(l.members),
        ];
        cells.extend(["Registered", "Floating", "Resident"].map(|r| count(&l.by_residence, r)));
        cells.extend(Tag::ALL.map(|t| count(&l.by_tag, t.as_str())));
        if sensitive {
            cells.extend(SensitiveCategory::ALL.map(|c| count(&l.by_tag, c.as_str())));
        }
        cells.extend([
            Value::from(l.visits),
            Value::from(l.cases.total as i64),
            Value::from(l.cases.overdue as i64),
            rate(l.cases.handling_rate),
            rate(l.cases.mediation_success_rate),
        ]);
        cells
    }
}

/// The Chinese name of a special-population category.
const fn sensitive_zh(category: SensitiveCategory) -> &'static str {
    match category {
        SensitiveCategory::ReleasedFromPrison => "刑满释放",
        SensitiveCategory::CommunityCorrection => "社区矫正",
        SensitiveCategory::DrugRehabilitation => "社区戒毒",
        SensitiveCategory::SevereMentalDisorder => "严重精神障碍",
    }
}

/// Ledgers per village or community
///
/// One ledger (台账) per community below `org_unit` (or per unit of `by`):
/// the households and people on record now, people by residence type,
/// households per tag (special-population categories only for roles that
/// receive sensitive details), and the visits made and case figures of
/// the cases reported in the period (`from` to `to`, default: everything
/// up to now). `format=csv` or `xlsx` answers them as a file, one row a
/// unit, headed in `lang`.
///
/// Checks, in order: the query string (`400 bad_query`), the org unit
/// exists and lies in the caller's area (`404`).
#[utoipa::path(
    get,
    path = "/v1/stats/ledger",
    operation_id = "ledgers",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(LedgerQuery),
    responses(
        (status = 200, description = "One ledger per unit, or them all as a file.", content(
            (Vec<UnitLedger> = "application/json"),
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
async fn ledger(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<axum::response::Response, AppError> {
    let groups = Groups::load(
        &state,
        &auth,
        &q.org_unit,
        q.by.unwrap_or(GroupBy::Community),
    )
    .await?;
    let scope = Scope::of(&auth.user_id, auth.role);
    let path = groups.path.clone();
    let (from, to) = (q.from.unwrap_or(0), q.to.unwrap_or_else(now_ms));
    let mut per: Vec<Ledger> = groups.units.iter().map(|_| Ledger::default()).collect();
    let at = |unit: &str| groups.group(unit);
    let households = state
        .engine
        .storage
        .household_counts(&scope, &path, 0)
        .await?;
    for c in &households {
        let Some(g) = at(&c.org_unit) else { continue };
        match &c.tag {
            None => {
                per[g].households += c.households;
                per[g].members += c.members;
            }
            Some(tag) => *per[g].by_tag.entry(tag.clone()).or_default() += c.households,
        }
    }
    for (unit, residence, n) in state.engine.storage.residence_counts(&scope, &path).await? {
        if let Some(g) = at(&unit) {
            *per[g].by_residence.entry(residence).or_default() += n;
        }
    }
    for (unit, n) in state
        .engine
        .storage
        .visit_counts(&scope, &path, from, to)
        .await?
    {
        if let Some(g) = at(&unit) {
            per[g].visits += n;
        }
    }
    let filter = CaseFilter {
        under: Some(path.clone()),
        from: Some(from),
        to: Some(to),
        now: now_ms(),
        ..CaseFilter::default()
    };
    let cases = case_figures(&state, &scope, &filter, groups.units.len(), at).await?;
    for (ledger, cases) in per.iter_mut().zip(cases) {
        ledger.cases = cases;
    }
    let file = (q.format, q.lang, "ledgers");
    let offset = state.engine.config.utc_offset_minutes;
    Ok(super::page::whole(
        with_units(&groups, per),
        file,
        scope.sensitive,
        offset,
    ))
}
/// Case figures for an org unit's subtree and period: figures over the
/// cases the user may see under an org unit, reported in the period. Maps
/// list only the keys that occur.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseStats {
    /// Cases reported in the period.
    pub total: usize,
    /// Cases per category (`CaseCategory` names).
    pub by_category: BTreeMap<String, usize>,
    /// Cases per triage class (`big`, `small`, `private`, and
    /// `unclassified` for cases with no class).
    pub by_class: BTreeMap<String, usize>,
    /// Cases per status (`CaseStatus` names).
    pub by_status: BTreeMap<String, usize>,
    /// Cases resolved, followed up or closed, per level they were resolved
    /// at (`CaseLevel` names).
    pub resolved_by_level: BTreeMap<String, usize>,
    /// Cases resolved, followed up or closed, over `total`; `null` when
    /// `total` is 0.
    #[schema(minimum = 0, maximum = 1)]
    pub handling_rate: Option<f64>,
    /// Resolutions `mediated` over resolutions `mediated` or `referred`
    /// (`withdrawn` not counted); `null` when there are none.
    #[schema(minimum = 0, maximum = 1)]
    pub mediation_success_rate: Option<f64>,
    /// The median time from report to resolution of the cases resolved,
    /// followed up or closed, in milliseconds (for an even count, the
    /// greater of the two middle values); `null` when there are none.
    pub median_time_to_resolve_ms: Option<i64>,
    /// Of these cases, the open ones past their due time now.
    pub overdue: usize,
}
