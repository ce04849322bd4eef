//! Projections: the queryable rows a merged document stands for.
//!
//! Supervisors never see Automerge. Every time a document is stored, the
//! rows below are recomputed from the merged record and written in the same
//! transaction (`DocTx::project`), replacing the document's previous rows;
//! `gridsync admin reindex` recomputes them all from the documents. A case's
//! state is folded from its events (`sync_core::workflow`), so its due time
//! follows the deadlines configured when it was last written.
//!
//! Fields two people wrote concurrently are found here too: Automerge keeps
//! every concurrent value and shows one; [`conflicts`] lists each such field
//! with all its values, so a person can review it.

use std::fmt::Debug;

use sync_core::RecordId;
use sync_core::doc;

use serde::{Deserialize, Serialize};
use sync_core::automerge::{
    self, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value, ValueRef,
};
use sync_core::doc::AnyRecord;
use sync_core::shape::MAX_DEPTH;
use sync_core::workflow::{self, Deadlines};

/// Everything one document projects to. Which parts are set depends on the
/// record's kind; the rest stay empty.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Projection {
    /// For a household document.
    pub household: Option<HouseholdRow>,
    /// Its members, in list order.
    pub members: Vec<MemberRow>,
    /// Care tags (household documents) or special-population categories
    /// (sensitive documents).
    pub tags: Vec<TagRow>,
    /// For a visit document.
    pub visit: Option<VisitRow>,
    /// For a case document.
    pub case: Option<CaseRow>,
    /// Its events, in fold order.
    pub events: Vec<EventRow>,
    /// Fields written concurrently and not yet resolved.
    pub conflicts: Vec<ConflictRow>,
}

/// A part of a projection, stored in a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// `proj_households`.
    Household,
    /// `proj_members`.
    Members,
    /// `proj_tags`.
    Tags,
    /// `proj_visits`.
    Visit,
    /// `proj_cases`.
    Case,
    /// `proj_case_events`.
    Events,
    /// `proj_conflicts`.
    Conflicts,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 7] = [
        Part::Household,
        Part::Members,
        Part::Tags,
        Part::Visit,
        Part::Case,
        Part::Events,
        Part::Conflicts,
    ];

    /// The table and the column naming the document.
    pub const fn table(self) -> (&'static str, &'static str) {
        match self {
            Part::Household => ("proj_households", "id"),
            Part::Members => ("proj_members", "household_id"),
            Part::Tags => ("proj_tags", "doc_id"),
            Part::Visit => ("proj_visits", "id"),
            Part::Case => ("proj_cases", "id"),
            Part::Events => ("proj_case_events", "case_id"),
            Part::Conflicts => ("proj_conflicts", "doc_id"),
        }
    }

    /// Whether a document of `kind` may have rows of this part.
    pub fn of_kind(self, kind: &str) -> bool {
        matches!(
            (self, kind),
            (Part::Household | Part::Members | Part::Tags, "household")
                | (Part::Tags, "sensitive")
                | (Part::Visit, "visit")
                | (Part::Case | Part::Events, "case")
                | (Part::Conflicts, _)
        )
    }

    /// Whether `a` and `b` agree on this part.
    pub fn same(self, a: &Projection, b: &Projection) -> bool {
        match self {
            Part::Household => a.household == b.household,
            Part::Members => a.members == b.members,
            Part::Tags => a.tags == b.tags,
            Part::Visit => a.visit == b.visit,
            Part::Case => a.case == b.case,
            Part::Events => a.events == b.events,
            Part::Conflicts => a.conflicts == b.conflicts,
        }
    }

    /// Whether `p` has no rows of this part.
    pub fn is_empty(self, p: &Projection) -> bool {
        self.same(p, &Projection::default())
    }
}

impl Projection {
    /// This projection with only the given parts.
    pub fn only(&self, parts: &std::collections::HashSet<Part>) -> std::borrow::Cow<'_, Self> {
        if parts.len() == Part::ALL.len() {
            return std::borrow::Cow::Borrowed(self);
        }
        let keep = |part| parts.contains(&part);
        std::borrow::Cow::Owned(Projection {
            household: self.household.clone().filter(|_| keep(Part::Household)),
            members: if keep(Part::Members) {
                self.members.clone()
            } else {
                Vec::new()
            },
            tags: if keep(Part::Tags) {
                self.tags.clone()
            } else {
                Vec::new()
            },
            visit: self.visit.clone().filter(|_| keep(Part::Visit)),
            case: self.case.clone().filter(|_| keep(Part::Case)),
            events: if keep(Part::Events) {
                self.events.clone()
            } else {
                Vec::new()
            },
            conflicts: if keep(Part::Conflicts) {
                self.conflicts.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// A household, as lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdRow {
    /// The grid it belongs to.
    pub org_unit: String,
    /// 栋.
    pub building: String,
    /// 单元.
    pub unit: String,
    /// 室.
    pub room: String,
    /// The head's member id (empty until known).
    pub head_id: String,
    /// The head's name (empty until known).
    pub head_name: String,
    /// How many members it has.
    pub member_count: i64,
    /// Names, ID numbers, phones and address, lowercased, for search.
    pub search: String,
}

/// One member of a household.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    /// Stable id within the household.
    pub member_id: String,
    /// Name.
    pub name: String,
    /// Identity card number.
    pub id_number: String,
    /// `Male`, `Female` or `Unknown`.
    pub sex: String,
    /// `YYYY-MM-DD`, or empty.
    pub birth_date: String,
    /// Relation to the head, e.g. `Spouse`.
    pub relation: String,
    /// Phone number.
    pub phone: String,
    /// `Registered`, `Floating` or `Resident`.
    pub residence: String,
}

/// A tag on a household.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    /// The household.
    pub household_id: String,
    /// The tag or category key, e.g. `elderly_alone`.
    pub tag: String,
    /// Whether it is a special-population category.
    pub sensitive: bool,
}

/// A visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitRow {
    /// The household visited.
    pub household_id: String,
    /// Its grid at the time.
    pub org_unit: String,
    /// The visiting user.
    pub worker: String,
    /// Milliseconds since the Unix epoch.
    pub visited_at: i64,
    /// Whether someone must follow up.
    pub follow_up: bool,
    /// What was found.
    pub findings: String,
}

/// A case and its folded state.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    /// Where it belongs.
    pub org_unit: String,
    /// Category, as stored (e.g. `Neighbour`).
    pub category: String,
    /// One-line summary.
    pub title: String,
    /// The household concerned, or empty.
    pub household_id: String,
    /// Where it happened.
    pub location: String,
    /// The reporting user.
    pub reporter: String,
    /// When it was reported.
    pub reported_at: i64,
    /// Status name, e.g. `accepted`.
    pub status: String,
    /// `big`, `small` or `private`, once triaged.
    pub class: Option<String>,
    /// The level handling it.
    pub level: String,
    /// Who handles it.
    pub assignee: Option<String>,
    /// When the current step is due, while open.
    pub due_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// The level it was resolved at.
    pub resolved_level: Option<String>,
    /// `mediated`, `referred` or `withdrawn`.
    pub result: Option<String>,
    /// Whether supervision was raised.
    pub supervised: bool,
    /// How many events were kept but not applied.
    pub not_applied: i64,
}

/// One event of a case, in fold order.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Event id.
    pub event_id: String,
    /// Kind, e.g. `assign`.
    pub kind: String,
    /// The user who recorded it.
    pub author: String,
    /// From which device.
    pub device: String,
    /// When, by the recording device's clock.
    pub at: i64,
    /// The author's role then.
    pub role: String,
    /// Whether it changed the case.
    pub applied: bool,
    /// Why not, when it did not.
    pub reason: Option<String>,
}

/// A field written concurrently: every value, and the one shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRow {
    /// Where: map keys and list item ids (or positions) joined by `/`,
    /// e.g. `members/m2/phone`.
    pub path: String,
    /// The value readers see.
    pub shown: serde_json::Value,
    /// Every value, each with the actor that wrote it.
    pub values: Vec<ConflictValue>,
}

/// One of a conflicted field's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value; a map or list with what it holds.
    pub value: serde_json::Value,
    /// Hex Automerge actor id of the change that wrote it.
    pub actor: String,
}

/// Computes the rows `record` (read from `doc`, stored as `id`) projects to.
pub fn project(id: &str, record: &AnyRecord, doc: &Automerge, deadlines: &Deadlines) -> Projection {
    let mut p = Projection {
        conflicts: conflicts(doc),
        ..Projection::default()
    };
    match record {
        AnyRecord::Household(h) => {
            let head_name = h
                .member(&h.head)
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let mut search = format!(
                "{} {} {}",
                h.address.building, h.address.unit, h.address.room
            );
            for m in &h.members {
                search.push_str(&format!(" {} {} {}", m.name, m.id_number, m.phone));
            }
            p.household = Some(HouseholdRow {
                org_unit: h.org_unit.clone(),
                building: h.address.building.clone(),
                unit: h.address.unit.clone(),
                room: h.address.room.clone(),
                head_id: h.head.clone(),
                head_name,
                member_count: h.members.len() as i64,
                search: search.to_lowercase(),
            });
            p.members = h
                .members
                .iter()
                .map(|m| MemberRow {
                    member_id: m.id.clone(),
                    name: m.name.clone(),
                    id_number: m.id_number.clone(),
                    sex: stored(m.sex),
                    birth_date: m.birth_date.clone(),
                    relation: stored(m.relation),
                    phone: m.phone.clone(),
                    residence: stored(m.residence),
                })
                .collect();
            p.tags = set_members(&h.tags, id, false);
        }
        AnyRecord::Sensitive(s) => p.tags = set_members(&s.categories, &s.household, true),
        AnyRecord::Visit(v) => {
            p.visit = Some(VisitRow {
                household_id: v.household.clone(),
                org_unit: v.org_unit.clone(),
                worker: v.worker.clone(),
                visited_at: v.visited_at,
                follow_up: v.follow_up,
                findings: v.findings.as_str().to_owned(),
            });
        }
        AnyRecord::Case(c) => {
            let state = workflow::fold(c, deadlines);
            p.case = Some(CaseRow {
                org_unit: c.org_unit.clone(),
                category: stored(c.category),
                title: c.title.clone(),
                household_id: c.household.clone(),
                location: c.location.clone(),
                reporter: c.reporter.clone(),
                reported_at: state.reported_at,
                status: state.status.as_str().to_owned(),
                class: state.class.clone(),
                level: state.level.as_str().to_owned(),
                assignee: state.assignee.clone(),
                due_at: state.due,
                resolved_at: state.resolved_at,
                resolved_level: state.resolved_level.map(|l| l.as_str().to_owned()),
                result: state.result.clone(),
                supervised: state.supervised,
                not_applied: state.not_applied().count() as i64,
            });
            p.events = state
                .events
                .iter()
                .map(|outcome| {
                    let event = c.events.iter().find(|e| e.id == outcome.id);
                    let field = |f: fn(&sync_core::records::CaseEvent) -> String| {
                        event.map(f).unwrap_or_default()
                    };
                    EventRow {
                        event_id: outcome.id.clone(),
                        kind: outcome.kind.clone(),
                        author: field(|e| e.author.clone()),
                        device: field(|e| e.device.clone()),
                        at: event.map_or(0, |e| e.at),
                        role: field(|e| e.role.clone()),
                        applied: outcome.applied,
                        reason: outcome.reason.clone(),
                    }
                })
                .collect();
        }
    }
    p
}

/// Bumped whenever what documents project to changes: a database whose
/// projections were built by another version (or under other deadlines)
/// is reindexed at start-up.
pub const PROJECTION_VERSION: &str = "1";

/// Documents reindexed per transaction.
const REINDEX_BATCH: i64 = 200;

/// Recomputes every document's projection from the document, in batches;
/// `progress(done, total)` after each batch. Each document is read and its
/// rows written in one transaction, so a concurrent merge is never
/// overwritten with older rows.
pub async fn reindex(
    state: &crate::AppState,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, crate::error::AppError> {
    use crate::error::AppError;
    let total = state.storage.document_count().await?.max(0) as u64;
    let (mut after, mut done) = (String::new(), 0u64);
    loop {
        let ids = state
            .storage
            .document_ids_after(&after, REINDEX_BATCH)
            .await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let mut tx = state.storage.begin(true).await?;
        for id in &ids {
            let (Ok(record_id), Some(stored)) = (id.parse::<RecordId>(), tx.load(id).await?) else {
                continue;
            };
            let kind = record_id.kind();
            let document = doc::load(&stored.snapshot).map_err(AppError::internal)?;
            let projection = match AnyRecord::read(kind, &document) {
                Ok(record) => project(id, &record, &document, &state.config.deadlines),
                Err(e) => {
                    tracing::warn!(doc = %id, error = %e, "stored document is not a valid record");
                    Projection::default()
                }
            };
            tx.project(id, kind.as_str(), None, &projection).await?;
        }
        tx.commit().await?;
        done += ids.len() as u64;
        progress(done, total.max(done));
        after = last;
    }
    state
        .storage
        .set_meta("projection_version", &built_by(state))
        .await?;
    Ok(done)
}

/// What the projections depend on besides the documents: this version's
/// projection code and the configured deadlines (which set due times).
fn built_by(state: &crate::AppState) -> String {
    use sha2::Digest;
    let deadlines = serde_json::to_vec(&state.config.deadlines).unwrap_or_default();
    let digest = sha2::Sha256::digest(&deadlines);
    format!("{PROJECTION_VERSION}:{}", hex::encode(&digest[..8]))
}

/// Reindexes at start-up when the projections were built by another
/// version or under other deadlines (or never, in a database that
/// predates them).
pub async fn reindex_if_stale(state: &crate::AppState) -> Result<(), crate::error::AppError> {
    let version = state.storage.meta("projection_version").await?;
    if version.as_deref() == Some(built_by(state).as_str()) {
        return Ok(());
    }
    if state.storage.document_count().await? > 0 {
        tracing::info!(from = ?version, to = %built_by(state), "rebuilding projections");
        let n = reindex(state, |_, _| {}).await?;
        tracing::info!(documents = n, "projections rebuilt");
    } else {
        state
            .storage
            .set_meta("projection_version", &built_by(state))
            .await?;
    }
    Ok(())
}

/// A unit-variant enum as autosurgeon stores it: its variant name.
fn stored(value: impl Debug) -> String {
    format!("{value:?}")
}

fn set_members(
    set: &std::collections::BTreeMap<String, bool>,
    household: &str,
    sensitive: bool,
) -> Vec<TagRow> {
    set.iter()
        .filter(|(_, on)| **on)
        .map(|(tag, _)| TagRow {
            household_id: household.to_owned(),
            tag: tag.clone(),
            sensitive,
        })
        .collect()
}

/// Every field of `doc` that holds more than one value, in document order.
///
/// One pass over the document: each map and list is read once with its
/// values and conflict flags, and only a field that holds several values
/// is looked up again (for all of them).
///
/// Objects nested deeper than [`MAX_DEPTH`] are not walked into: reading
/// refuses such a document, and this must not exhaust the stack on one that
/// got stored all the same.
pub fn conflicts(doc: &Automerge) -> Vec<ConflictRow> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk(doc, &automerge::ROOT, 0, &mut path, &mut out);
    out
}

/// Walks the object `obj` at `path`, `depth` objects below the root;
/// `path` is restored before returning.
fn walk(doc: &Automerge, obj: &ObjId, depth: usize, path: &mut String, out: &mut Vec<ConflictRow>) {
    match doc.object_type(obj) {
        Ok(ObjType::Map | ObjType::Table) => {
            for item in doc.map_range(obj, ..) {
                let object = matches!(item.value, ValueRef::Object(_)).then(|| item.id());
                let len = push_segment(path, &item.key);
                visit(
                    doc,
                    obj,
                    item.key.as_ref().into(),
                    item.conflict,
                    object,
                    depth,
                    path,
                    out,
                );
                path.truncate(len);
            }
        }
        Ok(ObjType::List) => {
            let mut segments: Vec<String> = Vec::new();
            for item in doc.list_range(obj, ..) {
                let object = matches!(item.value, ValueRef::Object(_)).then(|| item.id());
                let segment = match (&item.value, &object) {
                    (ValueRef::Object(ObjType::Map), Some(child)) => map_item_id(doc, child),
                    _ => None,
                }
                .unwrap_or_else(|| item.index.to_string());
                let len = push_segment(path, &segment);
                visit(
                    doc,
                    obj,
                    item.index.into(),
                    item.conflict,
                    object,
                    depth,
                    path,
                    out,
                );
                path.truncate(len);
                segments.push(segment);
            }
            duplicates(doc, obj, &segments, path, out);
        }
        Ok(ObjType::Text) | Err(_) => {}
    }
}

/// Appends `segment` to `path`; returns the length to truncate back to.
fn push_segment(path: &mut String, segment: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(segment);
    len
}

/// The `id` field of a map that is a list item, when it is a string.
fn map_item_id(doc: &Automerge, item: &ObjId) -> Option<String> {
    match doc.get(item, "id") {
        Ok(Some((Value::Scalar(id), _))) => match id.as_ref() {
            ScalarValue::Str(id) => Some(id.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Items of one list that carry the same id (two phones added an item
/// with the same id at once): each is kept, and listed for review.
/// `segments` names each item by position; `path` is the list's.
fn duplicates(
    doc: &Automerge,
    list: &ObjId,
    segments: &[String],
    path: &mut String,
    out: &mut Vec<ConflictRow>,
) {
    let mut seen = std::collections::BTreeMap::<&str, Vec<usize>>::new();
    for (index, segment) in segments.iter().enumerate() {
        if *segment != index.to_string() {
            seen.entry(segment).or_default().push(index);
        }
    }
    for (segment, indexes) in seen.into_iter().filter(|(_, i)| i.len() > 1) {
        let values: Vec<ConflictValue> = indexes
            .iter()
            .filter_map(|&i| {
                let (value, id) = doc.get(list, i).ok()??;
                Some(ConflictValue {
                    value: value_json(doc, &value, &id),
                    actor: actor_of(&id),
                })
            })
            .collect();
        let len = push_segment(path, segment);
        out.push(ConflictRow {
            path: path.clone(),
            shown: values.first().map(|v| v.value.clone()).unwrap_or_default(),
            values,
        });
        path.truncate(len);
    }
}

fn actor_of(id: &ObjId) -> String {
    match id {
        ObjId::Id(_, actor, _) => actor.to_hex_string(),
        ObjId::Root => String::new(),
    }
}

/// One field at `path` of an object `depth` below the root: listed when it
/// holds several values (`conflict`), then walked into when the value shown
/// is an object (`object`) within [`MAX_DEPTH`].
#[allow(clippy::too_many_arguments)]
fn visit(
    doc: &Automerge,
    obj: &ObjId,
    prop: automerge::Prop,
    conflict: bool,
    object: Option<ObjId>,
    depth: usize,
    path: &mut String,
    out: &mut Vec<ConflictRow>,
) {
    if conflict && let Ok(values) = doc.get_all(obj, prop.clone()) {
        let shown = doc
            .get(obj, prop)
            .ok()
            .flatten()
            .map(|(v, id)| value_json(doc, &v, &id))
            .unwrap_or(serde_json::Value::Null);
        out.push(ConflictRow {
            path: path.clone(),
            shown,
            values: values
                .iter()
                .map(|(value, id)| ConflictValue {
                    value: value_json(doc, value, id),
                    actor: actor_of(id),
                })
                .collect(),
        });
    }
    if let Some(child) = object
        && depth < MAX_DEPTH
    {
        walk(doc, &child, depth + 1, path, out);
    }
}

/// How a list item is named in a path: its `id` field when it is a map
/// that has one (members, parties, events), else its position.
pub fn item_segment(doc: &Automerge, list: &ObjId, index: usize) -> String {
    match doc.get(list, index) {
        Ok(Some((Value::Object(ObjType::Map), item))) => map_item_id(doc, &item),
        _ => None,
    }
    .unwrap_or_else(|| index.to_string())
}

/// A value as JSON: scalars as themselves, maps and lists with what they
/// hold (`id` names the object), text as a string. Objects nested more
/// than [`MAX_DEPTH`] below `value` read as `null`: a record never nests
/// that deep, and this must not exhaust the stack on a document that does.
pub fn value_json(doc: &Automerge, value: &Value<'_>, id: &ObjId) -> serde_json::Value {
    json_within(doc, value, id, MAX_DEPTH)
}

/// [`value_json`], walking at most `depth` objects further down.
fn json_within(doc: &Automerge, value: &Value<'_>, id: &ObjId, depth: usize) -> serde_json::Value {
    use serde_json::json;
    let below = depth.saturating_sub(1);
    match value {
        Value::Object(ObjType::Map | ObjType::Table | ObjType::List) if depth == 0 => {
            serde_json::Value::Null
        }
        Value::Object(ObjType::Map | ObjType::Table) => doc
            .keys(id)
            .filter_map(|key| {
                let (v, child) = doc.get(id, key.as_str()).ok()??;
                Some((key, json_within(doc, &v, &child, below)))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Object(ObjType::List) => (0..doc.length(id))
            .filter_map(|i| doc.get(id, i).ok().flatten())
            .map(|(v, child)| json_within(doc, &v, &child, below))
            .collect::<Vec<_>>()
            .into(),
        Value::Object(ObjType::Text) => json!(doc.text(id).unwrap_or_default()),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => json!(s.as_str()),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => json!(i),
            ScalarValue::Uint(u) => json!(u),
            ScalarValue::F64(f) => json!(f),
            ScalarValue::Counter(c) => json!(i64::from(c)),
            ScalarValue::Boolean(b) => json!(b),
            ScalarValue::Null => serde_json::Value::Null,
            ScalarValue::Bytes(b) => json!(hex::encode(b)),
            ScalarValue::Unknown { bytes, .. } => json!(hex::encode(bytes)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::automerge::transaction::Transactable;
    use sync_core::automerge::{ActorId, ROOT};

    #[test]
    fn concurrent_writes_to_one_field_are_listed_with_every_value() {
        let mut a = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        let mut tx = a.transaction();
        let members = tx.put_object(ROOT, "members", ObjType::List).unwrap();
        let m = tx.insert_object(&members, 0, ObjType::Map).unwrap();
        tx.put(&m, "id", "m1").unwrap();
        tx.put(&m, "phone", "111").unwrap();
        tx.put(ROOT, "head", "m1").unwrap();
        tx.commit();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        for (doc, phone) in [(&mut a, "222"), (&mut b, "333")] {
            let mut tx = doc.transaction();
            tx.put(&m, "phone", phone).unwrap();
            tx.commit();
        }
        a.merge(&mut b).unwrap();

        let found = conflicts(&a);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "members/m1/phone");
        let mut values: Vec<_> = found[0].values.iter().map(|v| v.value.clone()).collect();
        values.sort_by_key(|v| v.to_string());
        assert_eq!(values, [serde_json::json!("222"), serde_json::json!("333")]);
        assert!(values.contains(&found[0].shown));
        let actors: Vec<_> = found[0].values.iter().map(|v| v.actor.clone()).collect();
        assert!(actors.contains(&ActorId::from([1u8; 16]).to_hex_string()));
        assert!(actors.contains(&ActorId::from([2u8; 16]).to_hex_string()));

        // Writing the field again resolves it.
        let mut tx = a.transaction();
        tx.put(&m, "phone", "444").unwrap();
        tx.commit();
        assert!(conflicts(&a).is_empty());
    }
}
