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
//! with all its values, so a person can review it
//! (`sync_core::conflicts`, which phones use too).

use std::fmt::Debug;

use sync_core::RecordKind;
use sync_core::automerge::Automerge;
pub use sync_core::conflicts::{
    ConflictRow, ConflictValue, conflicts, conflicts_in, item_segment, value_json,
};
use sync_core::doc::{AnyRecord, DocError};
use sync_core::view::View;
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
    /// The files the record references, its own then its events'.
    pub attachments: Vec<AttachmentRow>,
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
    /// `proj_attachments`.
    Attachments,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 8] = [
        Part::Household,
        Part::Members,
        Part::Tags,
        Part::Visit,
        Part::Case,
        Part::Events,
        Part::Conflicts,
        Part::Attachments,
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
            Part::Attachments => ("proj_attachments", "doc_id"),
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
                | (Part::Conflicts | Part::Attachments, _)
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
            Part::Attachments => a.attachments == b.attachments,
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
            attachments: if keep(Part::Attachments) {
                self.attachments.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// A file a record references (`proj_attachments`): what lists count and
/// what decides who may fetch the file.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    /// The case event that attached it; empty for the record's own list.
    pub event_id: String,
    /// The reference itself.
    pub attachment: sync_core::records::Attachment,
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

/// A document's record and the fields written concurrently in it, from
/// one read of the document ([`View`]): what its rows are computed from.
pub struct Read {
    /// The record.
    pub record: AnyRecord,
    /// Its document's fields written concurrently.
    pub conflicts: Vec<ConflictRow>,
}

impl Read {
    /// Reads `doc`, which holds a record of `kind`, checking it as
    /// [`AnyRecord::read`] does.
    pub fn new(kind: RecordKind, doc: &Automerge) -> Result<Self, DocError> {
        let view = View::new(doc);
        let record = AnyRecord::read_in(kind, &view)?;
        Ok(Self::of(record, &view))
    }

    /// `record`, read through `view`, with the conflicts of its document.
    pub fn of(record: AnyRecord, view: &View<'_>) -> Self {
        Self {
            conflicts: conflicts_in(view),
            record,
        }
    }
}

/// Computes the rows `record`, stored as `id`, projects to; `conflicts`
/// are its document's fields written concurrently ([`conflicts`], or
/// `sync_core::conflicts::conflicts_in` from the read of the record).
pub fn project(
    id: &str,
    record: &AnyRecord,
    conflicts: Vec<ConflictRow>,
    deadlines: &Deadlines,
) -> Projection {
    let mut p = Projection {
        conflicts,
        attachments: record
            .attachments()
            .into_iter()
            .map(|(event, a)| AttachmentRow {
                event_id: event.unwrap_or_default().to_owned(),
                attachment: a.clone(),
            })
            .collect(),
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
