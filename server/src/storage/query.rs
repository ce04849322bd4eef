//! Queries over the projections, shared by both backends.
//!
//! Every query is narrowed by the caller's [`Scope`] exactly as the sync
//! feed is: households, visits and sensitive rows by the org units of the
//! caller's area (none for roles without an area), cases also by who
//! reported or handles them. Special-population categories count only for
//! roles that receive sensitive details. Lists are paged by keyset: a page
//! ends with the sort key and id of its last row, and the next page starts
//! after them, so rows written meanwhile never shift a page.
//!
//! The scoped queries are not kept as prepared statements
//! (`persistent(false)`): one query text serves a grid and a whole county,
//! and PostgreSQL, after five runs of a prepared statement, may settle on a
//! generic plan made without the subtree's size, one that is right for a
//! grid and a hundred times too slow for a county or the other way round.
//! Planned for each run's values, each gets its own plan (about a
//! millisecond of planning).

use serde::{Deserialize, Serialize};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::sql::{Backend, Column, SqlStorage, area_head, area_tail, fetch_small};
use super::statement::Statement;
use super::{Result, Scope};

/// Where a page starts: after this sort key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// The last row's sort key.
    pub key: SortKey,
    /// The last row's id.
    pub id: String,
}

/// A sort key value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortKey {
    /// A number (times, counts).
    Int(i64),
    /// Text.
    Text(String),
}

/// Order and page of a list query.
#[derive(Debug, Clone)]
pub struct Page {
    /// The sort expression over the list's table alias, one of the list's
    /// allowed sorts (never caller text).
    pub sort: &'static str,
    /// Whether the sort expression is a number.
    pub numeric: bool,
    /// Largest first.
    pub desc: bool,
    /// Rows per page.
    pub limit: i64,
    /// Where to start.
    pub after: Option<After>,
}

/// Filters for the household list.
#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    /// The path of the org unit whose subtree to list.
    pub under: Option<String>,
    /// Households with this tag (or, for roles that may see it, this
    /// special-population category).
    pub tag: Option<String>,
    /// Households with a member of this residence type.
    pub residence: Option<String>,
    /// A substring of a name, ID number, phone or the address (any case).
    pub text: Option<String>,
    /// Households with no visit at or after this time.
    pub not_visited_since: Option<i64>,
}

/// A household as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HouseholdItem {
    /// Record id.
    pub id: String,
    /// Its grid.
    pub org_unit: String,
    /// 栋.
    pub building: String,
    /// 单元.
    pub unit: String,
    /// 室.
    pub room: String,
    /// The head of household's name.
    pub head_name: String,
    /// How many members.
    pub member_count: i64,
    /// The last visit, if any.
    pub last_visited_at: Option<i64>,
    /// Care tags.
    #[sqlx(skip)]
    pub tags: Vec<String>,
    /// Special-population categories: present only for roles that receive
    /// sensitive details.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub special: Option<Vec<String>>,
    #[serde(skip)]
    #[schema(ignore)]
    #[doc(hidden)]
    #[sqlx(skip)]
    pub sort_key: SortKeyColumn,
}

/// The sort key a list row was read with (not shown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SortKeyColumn(pub Option<SortKey>);

/// Filters for the case list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// The path of the org unit whose subtree to list.
    pub under: Option<String>,
    /// Category, as stored (e.g. `Neighbour`).
    pub category: Option<String>,
    /// `big`, `small`, `private` or `unclassified`.
    pub class: Option<String>,
    /// Status name.
    pub status: Option<String>,
    /// Level name.
    pub level: Option<String>,
    /// Handled by this user.
    pub assignee: Option<String>,
    /// Reported by this user.
    pub reporter: Option<String>,
    /// The household concerned.
    pub household: Option<String>,
    /// Only overdue (`true`) or only not overdue (`false`) at `now`.
    pub overdue: Option<bool>,
    /// Reported at or after.
    pub from: Option<i64>,
    /// Reported before.
    pub to: Option<i64>,
    /// The time `overdue` is judged at.
    pub now: i64,
}

/// A case as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CaseItem {
    /// Record id.
    pub id: String,
    /// Where it belongs.
    pub org_unit: String,
    /// Category, as stored.
    #[schema(value_type = sync_core::records::CaseCategory)]
    pub category: String,
    /// One-line summary.
    pub title: String,
    /// The household concerned, or empty.
    pub household_id: String,
    /// Where it happened.
    pub location: String,
    /// Reporting user.
    pub reporter: String,
    /// When reported.
    pub reported_at: i64,
    /// Status.
    #[schema(value_type = sync_core::workflow::Status)]
    pub status: String,
    /// Triage class: `big`, `small` or `private`, once triaged.
    pub class: Option<String>,
    /// Level handling it.
    #[schema(value_type = sync_core::workflow::Level)]
    pub level: String,
    /// Who handles it.
    pub assignee: Option<String>,
    /// When the current step is due, while open.
    pub due_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// The level it was resolved at.
    #[schema(value_type = Option<sync_core::workflow::Level>)]
    pub resolved_level: Option<String>,
    /// `mediated`, `referred` or `withdrawn`.
    pub result: Option<String>,
    /// Whether supervision was raised.
    pub supervised: bool,
    /// Events kept but not applied.
    pub not_applied: i64,
    /// Files attached to the case and its events.
    #[sqlx(default)]
    pub attachments: i64,
    /// Where to fetch them: `/v1/attachments/{sha256}`, in the record's
    /// order (the case's own, then its events').
    #[sqlx(skip)]
    pub files: Vec<String>,
    /// Whether it is overdue now.
    #[sqlx(skip)]
    pub overdue: bool,
    #[serde(skip)]
    #[schema(ignore)]
    #[doc(hidden)]
    #[sqlx(skip)]
    pub sort_key: SortKeyColumn,
}

/// Filters for the visit list.
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    /// The path of the org unit whose subtree to list.
    pub under: Option<String>,
    /// By this worker.
    pub worker: Option<String>,
    /// To this household.
    pub household: Option<String>,
    /// At or after.
    pub from: Option<i64>,
    /// Before.
    pub to: Option<i64>,
}

/// A visit as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VisitItem {
    /// Record id.
    pub id: String,
    /// The household.
    pub household_id: String,
    /// Its grid.
    pub org_unit: String,
    /// The visiting user.
    pub worker: String,
    /// When.
    pub visited_at: i64,
    /// Whether someone must follow up.
    pub follow_up: bool,
    /// What was found.
    pub findings: String,
    /// Files attached to the visit.
    #[sqlx(default)]
    pub attachments: i64,
    /// Where to fetch them: `/v1/attachments/{sha256}`.
    #[sqlx(skip)]
    pub files: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    #[doc(hidden)]
    #[sqlx(skip)]
    pub sort_key: SortKeyColumn,
}

/// Case counts for one combination of attributes, in one org unit.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CaseCount {
    /// The case's org unit.
    pub org_unit: String,
    /// Category.
    pub category: String,
    /// Triage class.
    pub class: Option<String>,
    /// Status.
    pub status: String,
    /// Level resolved at.
    pub resolved_level: Option<String>,
    /// Result.
    pub result: Option<String>,
    /// Whether these are overdue.
    pub overdue: bool,
    /// How many.
    pub count: i64,
}

/// How many of one org unit's cases have one value of one attribute, as
/// kept in `case_tally` (all time, whatever the clock says).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Deserialize)]
pub struct CaseTally {
    /// The cases' org unit.
    pub org_unit: String,
    /// `category`, `class`, `status`, `resolved_level` or `result`.
    pub dim: String,
    /// The value; `''` for a missing class, level or result.
    pub value: String,
    /// How many.
    pub n: i64,
}

/// All-time case counts of the cases a caller may see under one org unit,
/// read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseTallies {
    /// The kept counts of the units of the caller's area.
    pub tallies: Vec<CaseTally>,
    /// The cases outside the caller's area that the caller reported or
    /// handles, counted as [`CaseCount`]s (`overdue` always false).
    pub beyond_area: Vec<CaseCount>,
    /// Overdue cases per org unit, of every case the caller may see.
    pub overdue: Vec<(String, i64)>,
}

/// Household counts for one org unit and (optionally) one tag.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HouseholdCount {
    /// The households' grid.
    pub org_unit: String,
    /// The tag, or `None` for all households.
    pub tag: Option<String>,
    /// Households.
    pub households: i64,
    /// Of those, visited since the time asked.
    pub visited: i64,
    /// Members of those households.
    pub members: i64,
}

/// One worker's visits on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DayCount {
    /// The worker.
    pub worker: String,
    /// Days since the Unix epoch, in the configured time zone.
    pub day: i64,
    /// Visits.
    pub visits: i64,
    /// Distinct households.
    pub households: i64,
    /// Visits that need a follow-up.
    pub follow_ups: i64,
}

/// One stored change of a document, for its history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    /// Feed position.
    pub seq: i64,
    /// The raw change.
    pub bytes: Vec<u8>,
    /// Hex actor id.
    pub actor: String,
    /// The user whose device sent it.
    pub user_id: String,
    /// The device that sent it.
    pub device_id: String,
    /// When the server stored it.
    pub received_at: i64,
}

/// Read access to the projections.
#[async_trait::async_trait]
pub trait Queries {
    /// A page of households.
    async fn households(
        &self,
        scope: &Scope,
        filter: &HouseholdFilter,
        page: &Page,
    ) -> Result<Vec<HouseholdItem>>;
    /// A page of cases.
    async fn cases(&self, scope: &Scope, filter: &CaseFilter, page: &Page)
    -> Result<Vec<CaseItem>>;
    /// A page of visits.
    async fn visits(
        &self,
        scope: &Scope,
        filter: &VisitFilter,
        page: &Page,
    ) -> Result<Vec<VisitItem>>;
    /// Visits per worker and day (`offset_ms` shifts UTC to local time).
    async fn visit_days(
        &self,
        scope: &Scope,
        filter: &VisitFilter,
        offset_ms: i64,
    ) -> Result<Vec<DayCount>>;
    /// Case counts by org unit and attributes, for cases matching `filter`.
    async fn case_counts(&self, scope: &Scope, filter: &CaseFilter) -> Result<Vec<CaseCount>>;
    /// All-time case counts under the subtree at `under` (everything the
    /// caller may see when `None`), overdue judged at `now`: the same
    /// cases as [`Queries::case_counts`] with no other filter, counted from
    /// the kept tally instead of case by case.
    async fn case_tallies(
        &self,
        scope: &Scope,
        under: &Option<String>,
        now: i64,
    ) -> Result<CaseTallies>;
    /// The median of `resolved_at - reported_at` over resolved cases
    /// matching `filter`.
    async fn median_time_to_resolve(
        &self,
        scope: &Scope,
        filter: &CaseFilter,
    ) -> Result<Option<i64>>;
    /// Households (and their members) per grid, in all and per tag, with
    /// how many were visited at or after `since`.
    async fn household_counts(
        &self,
        scope: &Scope,
        under: &str,
        since: i64,
    ) -> Result<Vec<HouseholdCount>>;
    /// Members per grid and residence type, as `(org_unit, residence, n)`.
    async fn residence_counts(
        &self,
        scope: &Scope,
        under: &str,
    ) -> Result<Vec<(String, String, i64)>>;
    /// Visits per grid at or after `from` and before `to`.
    async fn visit_counts(
        &self,
        scope: &Scope,
        under: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>>;
    /// A document's unresolved conflicts, as `(path, shown, values)` JSON.
    async fn conflicts(&self, doc_id: &str) -> Result<Vec<(String, String, String)>>;
    /// Every change of a document, in feed order.
    async fn doc_changes(&self, doc_id: &str) -> Result<Vec<ChangeRow>>;
    /// The devices and users that registered these actors, as
    /// `(actor, device_id, user_id)`.
    async fn actor_owners(&self, actors: &[String]) -> Result<Vec<(String, String, String)>>;
    /// Document ids after `after`, in order, at most `limit`.
    async fn document_ids_after(&self, after: &str, limit: i64) -> Result<Vec<String>>;
    /// A value from the database's own settings.
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a value in the database's own settings.
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;
}

/// A listed record that names files: its id, how many, and where its
/// download paths go.
pub(super) trait WithFiles {
    /// The record id and how many files it names.
    fn counted(&self) -> (&str, i64);
    /// Sets the download paths of its files.
    fn set_files(&mut self, files: Vec<String>);
}

impl WithFiles for CaseItem {
    fn counted(&self) -> (&str, i64) {
        (&self.id, self.attachments)
    }
    fn set_files(&mut self, files: Vec<String>) {
        self.files = files;
    }
}

impl WithFiles for VisitItem {
    fn counted(&self) -> (&str, i64) {
        (&self.id, self.attachments)
    }
    fn set_files(&mut self, files: Vec<String>) {
        self.files = files;
    }
}

/// Fills in the download paths of the files `items` name, in one query
/// for the page.
pub(super) async fn add_file_links(
    files: &(impl super::files::FileTables + Sync),
    items: &mut [impl WithFiles],
) -> Result<()> {
    let ids: Vec<String> = items
        .iter()
        .map(WithFiles::counted)
        .filter(|(_, n)| *n > 0)
        .map(|(id, _)| id.to_owned())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut links: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (doc, sha256) in files.attachment_files(&ids).await? {
        links
            .entry(doc)
            .or_default()
            .push(format!("/v1/attachments/{sha256}"));
    }
    for item in items {
        let id = item.counted().0.to_owned();
        item.set_files(links.remove(&id).unwrap_or_default());
    }
    Ok(())
}

/// How many files the record of the row aliased `$t` (with an `id`)
/// names, its events' included.
macro_rules! attachment_count {
    ($t:literal) => {
        concat!(
            "(SELECT COUNT(*) FROM proj_attachments pa WHERE pa.doc_id = ",
            $t,
            ".id)"
        )
    };
}

/// The org units of the caller's area, as a subquery.
fn area_units(q: &mut Statement<'_>, scope: &Scope) {
    q.push(concat!("(", area_head!()))
        .bind(scope.user_id.clone())
        .push(concat!(area_tail!(), ")"));
}

/// `col` is in the caller's area.
fn area(q: &mut Statement<'_>, col: &str, scope: &Scope) {
    q.push("(")
        .bind(scope.area)
        .push(" AND ")
        .push(col)
        .push(" IN ");
    area_units(q, scope);
    q.push(")");
}

/// `col` is in the caller's area, checked row by row against
/// the area's units (hashed once) instead of joined with them.
///
/// For the household list: the planner cannot tell how many
/// units an area holds (each is matched against another row's
/// path) and, joining, guessed a handful; it then found the
/// households with a tag in a township or the whole county by
/// probing the tags of every household there (0.1 to 1 s at
/// 400,000 households), where walking the tag's index takes
/// milliseconds. Other lists keep the join, which serves them
/// better (the visits of a community: 2.5 ms joined, 40 ms
/// checked row by row).
fn area_filter(q: &mut Statement<'_>, col: &str, scope: &Scope) {
    q.push("(CASE WHEN ")
        .bind(scope.area)
        .push(" THEN ")
        .push(col)
        .push(" IN ");
    area_units(q, scope);
    q.push(" ELSE FALSE END)");
}

/// `col` is in the subtree at `path`.
fn under(q: &mut Statement<'_>, col: &str, path: &Option<String>) {
    if let Some(path) = path {
        q.push(" AND ")
            .push(col)
            .push(" IN (SELECT id FROM org_units WHERE path LIKE ")
            .bind(path.clone())
            .push(" || '%')");
    }
}

fn eq(q: &mut Statement<'_>, col: &str, value: &Option<String>) {
    if let Some(v) = value {
        q.push(" AND ").push(col).push(" = ").bind(v.clone());
    }
}

fn range(q: &mut Statement<'_>, col: &str, from: Option<i64>, to: Option<i64>) {
    if let Some(from) = from {
        q.push(" AND ").push(col).push(" >= ").bind(from);
    }
    if let Some(to) = to {
        q.push(" AND ").push(col).push(" < ").bind(to);
    }
}

/// Keyset paging: rows after `page.after`, in order, one more
/// than the limit (so the caller knows whether more follow).
fn paged(q: &mut Statement<'_>, page: &Page, id: &str) {
    let (cmp, dir) = if page.desc {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &page.after {
        q.push(" AND (")
            .push(page.sort)
            .push(" ")
            .push(cmp)
            .push(" ");
        push_key(q, &after.key);
        q.push(" OR (").push(page.sort).push(" = ");
        push_key(q, &after.key);
        q.push(" AND ")
            .push(id)
            .push(" ")
            .push(cmp)
            .push(" ")
            .bind(after.id.clone())
            .push("))");
    }
    q.push(&format!(" ORDER BY {} {dir}, {id} {dir} LIMIT ", page.sort))
        .bind(page.limit + 1);
}

fn push_key(q: &mut Statement<'_>, key: &SortKey) {
    match key {
        SortKey::Int(i) => q.bind(*i),
        SortKey::Text(s) => q.bind(s.clone()),
    };
}

fn sort_column(q: &mut Statement<'_>, page: &Page) {
    q.push(&format!(", {} AS sort_key", page.sort));
}

fn read_key<'r, R>(row: &'r R, numeric: bool) -> Option<SortKey>
where
    R: sqlx::Row,
    Option<i64>: for<'x> Decode<'x, R::Database> + Type<R::Database>,
    Option<String>: for<'x> Decode<'x, R::Database> + Type<R::Database>,
    &'r str: sqlx::ColumnIndex<R>,
{
    if numeric {
        row.try_get::<Option<i64>, _>("sort_key")
            .ok()
            .flatten()
            .map(SortKey::Int)
    } else {
        row.try_get::<Option<String>, _>("sort_key")
            .ok()
            .flatten()
            .map(SortKey::Text)
    }
}

fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn case_scope(q: &mut Statement<'_>, scope: &Scope) {
    q.push(" WHERE (");
    area(q, "c.org_unit", scope);
    q.push(" OR c.reporter = ")
        .bind(scope.user_id.clone())
        .push(" OR COALESCE(c.assignee, '') = ")
        .bind(scope.user_id.clone())
        .push(")");
}

fn case_filter(q: &mut Statement<'_>, scope: &Scope, f: &CaseFilter) {
    case_scope(q, scope);
    under(q, "c.org_unit", &f.under);
    eq(q, "c.category", &f.category);
    match f.class.as_deref() {
        Some("unclassified") => {
            q.push(" AND c.class IS NULL");
        }
        _ => eq(q, "c.class", &f.class),
    }
    eq(q, "c.status", &f.status);
    eq(q, "c.level", &f.level);
    eq(q, "c.assignee", &f.assignee);
    eq(q, "c.reporter", &f.reporter);
    eq(q, "c.household_id", &f.household);
    match f.overdue {
        Some(true) => {
            q.push(" AND c.due_at < ").bind(f.now);
        }
        Some(false) => {
            q.push(" AND (c.due_at IS NULL OR c.due_at >= ")
                .bind(f.now)
                .push(")");
        }
        None => {}
    }
    range(q, "c.reported_at", f.from, f.to);
}

fn visit_filter(q: &mut Statement<'_>, scope: &Scope, f: &VisitFilter) {
    q.push(" WHERE ");
    area(q, "v.org_unit", scope);
    under(q, "v.org_unit", &f.under);
    eq(q, "v.worker", &f.worker);
    eq(q, "v.household_id", &f.household);
    range(q, "v.visited_at", f.from, f.to);
}

#[async_trait::async_trait]
impl<DB: Backend> Queries for SqlStorage<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    String: Column<DB>,
    Option<String>: Column<DB>,
    i64: Column<DB>,
    Option<i64>: Column<DB>,
    bool: Column<DB>,
    Vec<u8>: Column<DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn households(
        &self,
        scope: &Scope,
        f: &HouseholdFilter,
        page: &Page,
    ) -> Result<Vec<HouseholdItem>> {
        let mut q = Statement::new(
            "SELECT h.id, h.org_unit, h.building, h.unit, h.room, h.head_name,
                    h.member_count,
                    (SELECT MAX(v.visited_at) FROM proj_visits v
                     WHERE v.household_id = h.id) AS last_visited_at",
        );
        sort_column(&mut q, page);
        q.push(" FROM proj_households h WHERE ");
        area_filter(&mut q, "h.org_unit", scope);
        under(&mut q, "h.org_unit", &f.under);
        if let Some(tag) = &f.tag {
            q.push(
                " AND EXISTS (SELECT 1 FROM proj_tags t
                   WHERE t.household_id = h.id AND t.tag = ",
            )
            .bind(tag.clone())
            .push(" AND (NOT t.sensitive OR ")
            .bind(scope.sensitive)
            .push("))");
        }
        if let Some(residence) = &f.residence {
            q.push(
                " AND EXISTS (SELECT 1 FROM proj_members m
                   WHERE m.household_id = h.id AND m.residence = ",
            )
            .bind(residence.clone())
            .push(")");
        }
        if let Some(text) = &f.text {
            q.push(" AND h.search LIKE ")
                .bind(like_pattern(text))
                .push(" ESCAPE '\\'");
        }
        if let Some(since) = f.not_visited_since {
            q.push(
                " AND NOT EXISTS (SELECT 1 FROM proj_visits v
                   WHERE v.household_id = h.id AND v.visited_at >= ",
            )
            .bind(since)
            .push(")");
        }
        paged(&mut q, page, "h.id");
        let rows = q.query()?.persistent(false).fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut item: HouseholdItem = sqlx::FromRow::from_row(row)?;
            item.sort_key = SortKeyColumn(read_key(row, page.numeric));
            items.push(item);
        }
        if items.is_empty() {
            return Ok(items);
        }
        let mut q = Statement::new(
            "SELECT household_id, tag, sensitive FROM proj_tags
             WHERE household_id IN (",
        );
        q.list(items.iter().map(|item| item.id.as_str()))
            .push(") ORDER BY tag");
        let tags: Vec<(String, String, bool)> = q.query_as()?.fetch_all(&self.pool).await?;
        for item in &mut items {
            if scope.sensitive {
                item.special = Some(Vec::new());
            }
            for (household, tag, sensitive) in &tags {
                if *household != item.id {
                    continue;
                }
                match (sensitive, item.special.as_mut()) {
                    (false, _) => item.tags.push(tag.clone()),
                    (true, Some(special)) => special.push(tag.clone()),
                    (true, None) => {}
                }
            }
        }
        Ok(items)
    }

    async fn cases(&self, scope: &Scope, f: &CaseFilter, page: &Page) -> Result<Vec<CaseItem>> {
        let mut q = Statement::new(concat!(
            "SELECT c.*, ",
            attachment_count!("c"),
            " AS attachments"
        ));
        sort_column(&mut q, page);
        q.push(" FROM proj_cases c");
        case_filter(&mut q, scope, f);
        paged(&mut q, page, "c.id");
        let rows = q.query()?.persistent(false).fetch_all(&self.pool).await?;
        let mut items = rows
            .iter()
            .map(|row| {
                let mut item: CaseItem = sqlx::FromRow::from_row(row)?;
                item.overdue = item.due_at.is_some_and(|due| due < f.now);
                item.sort_key = SortKeyColumn(read_key(row, page.numeric));
                Ok(item)
            })
            .collect::<Result<Vec<_>>>()?;
        add_file_links(self, &mut items).await?;
        Ok(items)
    }

    async fn visits(&self, scope: &Scope, f: &VisitFilter, page: &Page) -> Result<Vec<VisitItem>> {
        let mut q = Statement::new(concat!(
            "SELECT v.*, ",
            attachment_count!("v"),
            " AS attachments"
        ));
        sort_column(&mut q, page);
        q.push(" FROM proj_visits v");
        visit_filter(&mut q, scope, f);
        paged(&mut q, page, "v.id");
        let rows = q.query()?.persistent(false).fetch_all(&self.pool).await?;
        let mut items = rows
            .iter()
            .map(|row| {
                let mut item: VisitItem = sqlx::FromRow::from_row(row)?;
                item.sort_key = SortKeyColumn(read_key(row, page.numeric));
                Ok(item)
            })
            .collect::<Result<Vec<_>>>()?;
        add_file_links(self, &mut items).await?;
        Ok(items)
    }

    async fn visit_days(
        &self,
        scope: &Scope,
        f: &VisitFilter,
        offset_ms: i64,
    ) -> Result<Vec<DayCount>> {
        let mut q = Statement::new("SELECT v.worker, (v.visited_at + ");
        q.bind(offset_ms).push(
            ") / 86400000 AS day, COUNT(*) AS visits,
               COUNT(DISTINCT v.household_id) AS households,
               SUM(CASE WHEN v.follow_up THEN 1 ELSE 0 END) AS follow_ups
             FROM proj_visits v",
        );
        visit_filter(&mut q, scope, f);
        q.push(" GROUP BY v.worker, day ORDER BY day, v.worker");
        Ok(q.query_as()?
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn case_counts(&self, scope: &Scope, f: &CaseFilter) -> Result<Vec<CaseCount>> {
        let mut q = Statement::new(
            "SELECT c.org_unit, c.category, c.class, c.status, c.resolved_level,
                    c.result, COALESCE(c.due_at < ",
        );
        q.bind(f.now)
            .push(", FALSE) AS overdue, COUNT(*) AS count FROM proj_cases c");
        case_filter(&mut q, scope, f);
        q.push(
            " GROUP BY c.org_unit, c.category, c.class, c.status, c.resolved_level,
                       c.result, overdue",
        );
        Ok(q.query_as()?
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn case_tallies(
        &self,
        scope: &Scope,
        under_path: &Option<String>,
        now: i64,
    ) -> Result<CaseTallies> {
        // One snapshot for the three reads, so that a merge
        // committed between them cannot be counted by half.
        let mut tx = DB::begin_tx(&self.pool, false).await?;
        // A county's tally is some twenty rows for each of a thousand
        // grids.
        let mut q =
            Statement::new("SELECT t.org_unit, t.dim, t.value, t.n FROM case_tally t WHERE ");
        area(&mut q, "t.org_unit", scope);
        under(&mut q, "t.org_unit", under_path);
        q.push(" AND t.n > 0");
        let tallies =
            fetch_small(&mut tx, &mut q, "r.org_unit, r.dim, r.value, r.n", false).await?;
        // The rest of `case_scope`: outside the area, reported
        // or handled by the caller.
        let mut q = Statement::new(
            "SELECT c.org_unit, c.category, c.class, c.status, c.resolved_level,
                    c.result, FALSE AS overdue, COUNT(*) AS count
             FROM proj_cases c WHERE NOT ",
        );
        area(&mut q, "c.org_unit", scope);
        q.push(" AND (c.reporter = ")
            .bind(scope.user_id.clone())
            .push(" OR c.assignee = ")
            .bind(scope.user_id.clone())
            .push(" OR (c.assignee IS NULL AND ")
            .bind(scope.user_id.clone())
            .push(" = ''))");
        under(&mut q, "c.org_unit", under_path);
        q.push(
            " GROUP BY c.org_unit, c.category, c.class, c.status, c.resolved_level,
                       c.result",
        );
        let beyond_area = q.query_as()?.persistent(false).fetch_all(&mut *tx).await?;
        let f = CaseFilter {
            under: under_path.clone(),
            overdue: Some(true),
            now,
            ..CaseFilter::default()
        };
        let mut q = Statement::new("SELECT c.org_unit, COUNT(*) AS n FROM proj_cases c");
        case_filter(&mut q, scope, &f);
        q.push(" GROUP BY c.org_unit");
        let overdue = fetch_small(&mut tx, &mut q, "r.org_unit, r.n", false).await?;
        tx.commit().await?;
        Ok(CaseTallies {
            tallies,
            beyond_area,
            overdue,
        })
    }

    async fn median_time_to_resolve(&self, scope: &Scope, f: &CaseFilter) -> Result<Option<i64>> {
        let mut q = Statement::new("SELECT COUNT(*) FROM proj_cases c");
        case_filter(&mut q, scope, f);
        q.push(" AND c.resolved_at IS NOT NULL");
        let (n,): (i64,) = q
            .query_as()?
            .persistent(false)
            .fetch_one(&self.pool)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let mut q = Statement::new("SELECT c.resolved_at - c.reported_at AS d FROM proj_cases c");
        case_filter(&mut q, scope, f);
        q.push(" AND c.resolved_at IS NOT NULL ORDER BY d LIMIT 1 OFFSET ")
            .bind(n / 2);
        let row: Option<(i64,)> = q
            .query_as()?
            .persistent(false)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(d,)| d))
    }

    async fn household_counts(
        &self,
        scope: &Scope,
        under_path: &str,
        since: i64,
    ) -> Result<Vec<HouseholdCount>> {
        let visited = "SUM(CASE WHEN EXISTS (SELECT 1 FROM proj_visits v
                        WHERE v.household_id = h.id AND v.visited_at >= ";
        let mut q = Statement::new("SELECT h.org_unit, NULL AS tag, COUNT(*) AS households, ");
        q.push(visited).bind(since).push(
            ") THEN 1 ELSE 0 END) AS visited,
             CAST(SUM(h.member_count) AS BIGINT) AS members
             FROM proj_households h WHERE ",
        );
        area(&mut q, "h.org_unit", scope);
        under(&mut q, "h.org_unit", &Some(under_path.to_owned()));
        q.push(" GROUP BY h.org_unit");
        let mut rows: Vec<HouseholdCount> = q
            .query_as()?
            .persistent(false)
            .fetch_all(&self.pool)
            .await?;
        let mut q = Statement::new("SELECT h.org_unit, t.tag, COUNT(*) AS households, ");
        q.push(visited).bind(since).push(
            ") THEN 1 ELSE 0 END) AS visited,
             CAST(SUM(h.member_count) AS BIGINT) AS members
             FROM proj_households h JOIN proj_tags t ON t.household_id = h.id
             AND (NOT t.sensitive OR ",
        );
        q.bind(scope.sensitive).push(") WHERE ");
        area(&mut q, "h.org_unit", scope);
        under(&mut q, "h.org_unit", &Some(under_path.to_owned()));
        q.push(" GROUP BY h.org_unit, t.tag");
        rows.extend(
            q.query_as::<DB, HouseholdCount>()?
                .persistent(false)
                .fetch_all(&self.pool)
                .await?,
        );
        Ok(rows)
    }

    async fn residence_counts(
        &self,
        scope: &Scope,
        under_path: &str,
    ) -> Result<Vec<(String, String, i64)>> {
        let mut q = Statement::new(
            "SELECT h.org_unit, m.residence, COUNT(*) FROM proj_households h
             JOIN proj_members m ON m.household_id = h.id WHERE ",
        );
        area(&mut q, "h.org_unit", scope);
        under(&mut q, "h.org_unit", &Some(under_path.to_owned()));
        q.push(" GROUP BY h.org_unit, m.residence");
        Ok(q.query_as()?
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn visit_counts(
        &self,
        scope: &Scope,
        under_path: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>> {
        let mut q = Statement::new("SELECT v.org_unit, COUNT(*) FROM proj_visits v");
        let f = VisitFilter {
            under: Some(under_path.to_owned()),
            from: Some(from),
            to: Some(to),
            ..VisitFilter::default()
        };
        visit_filter(&mut q, scope, &f);
        q.push(" GROUP BY v.org_unit");
        Ok(q.query_as()?
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn conflicts(&self, doc_id: &str) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT path, shown, vals FROM proj_conflicts WHERE doc_id = $1
             ORDER BY path",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn doc_changes(&self, doc_id: &str) -> Result<Vec<ChangeRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, bytes, actor, user_id, device_id, received_at
             FROM changes WHERE doc_id = $1 ORDER BY seq",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn actor_owners(&self, actors: &[String]) -> Result<Vec<(String, String, String)>> {
        if actors.is_empty() {
            return Ok(Vec::new());
        }
        let mut q =
            Statement::new("SELECT actor, device_id, user_id FROM device_actors WHERE actor IN (");
        q.list(actors).push(")");
        Ok(q.query_as()?.fetch_all(&self.pool).await?)
    }

    async fn document_ids_after(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM documents WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
