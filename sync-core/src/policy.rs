//! Who may see and change what: one policy, run by the server before it
//! stores a change and by the phone before it commits one, so that an honest
//! phone never produces a change the server refuses.
//!
//! Reading is decided per document from its [`DocMeta`]. Writing is decided
//! from the record before and after a set of changes: what they touched, by
//! which role, inside or outside the writer's area.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use automerge::Automerge;

use crate::doc::{self, AnyRecord, DocMeta};
use crate::id::RecordKind;
use crate::records::{Case, CaseEvent, Household, Visit};

/// A user's role. Every role but mediator and department works over an
/// area: the subtrees of the org units the user is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// 网格员: visits households, keeps records, reports cases.
    GridWorker,
    /// 调解员: handles the cases assigned to them.
    Mediator,
    /// 社区/村干部: triage and management at community level.
    CommunityStaff,
    /// 综治中心: township or county governance centre.
    CentreStaff,
    /// 职能部门: handles the cases dispatched to it.
    Department,
    /// 领导/督导: reads, never writes.
    Supervisor,
    /// 管理员: org units, users, devices; and every record.
    Admin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 7] = [
        Role::GridWorker,
        Role::Mediator,
        Role::CommunityStaff,
        Role::CentreStaff,
        Role::Department,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The name used in tokens, the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::Mediator => "mediator",
            Role::CommunityStaff => "community_staff",
            Role::CentreStaff => "centre_staff",
            Role::Department => "department",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether the role sees everything in its area (rather than only the
    /// cases it reported or handles).
    pub const fn has_area(self) -> bool {
        !matches!(self, Role::Mediator | Role::Department)
    }

    /// Whether the role receives special-population details.
    pub const fn sees_sensitive(self) -> bool {
        matches!(self, Role::CommunityStaff | Role::CentreStaff | Role::Admin)
    }

    /// Staff who manage records of others: move households, edit any case.
    pub const fn is_staff(self) -> bool {
        matches!(self, Role::CommunityStaff | Role::CentreStaff | Role::Admin)
    }

    /// Whether the role may append an event of this kind to a case it can
    /// see. The case workflow refines when an event applies; this decides
    /// who may record it at all.
    pub fn may_record(self, event_kind: &str) -> bool {
        match self {
            Role::GridWorker => matches!(
                event_kind,
                "report" | "comment" | "follow_up" | "mediate" | "resolve"
            ),
            Role::Mediator => matches!(event_kind, "comment" | "mediate" | "resolve" | "return"),
            Role::Department => matches!(event_kind, "comment" | "mediate" | "resolve" | "return"),
            Role::CommunityStaff | Role::CentreStaff | Role::Admin => {
                EVENT_KINDS.contains(&event_kind)
            }
            Role::Supervisor => false,
        }
    }
}

/// The kinds of case event.
pub const EVENT_KINDS: [&str; 13] = [
    "report",
    "accept",
    "classify",
    "assign",
    "escalate",
    "return",
    "mediate",
    "resolve",
    "reopen",
    "follow_up",
    "close",
    "comment",
    "supervise",
];

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The user behind a change or a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Role.
    pub role: Role,
    /// Every org unit in the subtrees of the user's units.
    pub area: BTreeSet<String>,
}

impl Principal {
    /// Whether the user may receive a document of `kind` described by `meta`.
    pub fn can_read(&self, kind: RecordKind, meta: &DocMeta) -> bool {
        let me = Some(self.user_id.as_str());
        let involved = kind == RecordKind::Case
            && (meta.reporter.as_deref() == me || meta.assignee.as_deref() == me);
        let in_area = self.role.has_area()
            && self.area.contains(&meta.org_unit)
            && (kind != RecordKind::Sensitive || self.role.sees_sensitive());
        involved || in_area
    }
}

/// Why a write is refused: a stable rule name and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (rule {rule})")]
pub struct Denial {
    /// Stable rule name, e.g. `move_household`.
    pub rule: &'static str,
    /// What was refused, for people.
    pub message: String,
}

fn deny(rule: &'static str, message: impl Into<String>) -> Result<(), Denial> {
    Err(Denial {
        rule,
        message: message.into(),
    })
}

/// Decides whether `p` may turn `before` (`None`: the record is new) into
/// `after`, two records of the same kind.
pub fn check_write(
    p: &Principal,
    before: Option<&AnyRecord>,
    after: &AnyRecord,
) -> Result<(), Denial> {
    let kind = after.kind();
    if p.role == Role::Supervisor {
        return deny(
            "read_only",
            "supervisors read records; they do not change them",
        );
    }
    if let Some(before) = before
        && !p.can_read(kind, &before.meta())
    {
        return deny("out_of_scope", format!("this {kind} is outside your area"));
    }
    match (before, after) {
        (before, AnyRecord::Household(after)) => {
            let before = match before {
                Some(AnyRecord::Household(h)) => Some(h),
                _ => None,
            };
            check_household(p, before, after)?;
        }
        (_, AnyRecord::Sensitive(_)) => {
            if !p.role.sees_sensitive() {
                return deny(
                    "sensitive",
                    "only community and centre staff keep special-population details",
                );
            }
        }
        (_, AnyRecord::Visit(visit)) => check_visit(p, visit)?,
        (before, AnyRecord::Case(after)) => {
            let before = match before {
                Some(AnyRecord::Case(c)) => Some(c),
                _ => None,
            };
            check_case(p, before, after)?;
        }
    }
    let after_meta = after.meta();
    // Handing a case on (returning it, assigning it to someone else) may
    // take it out of the actor's sight; moving any record elsewhere may not.
    let handed_on = kind == RecordKind::Case
        && before.is_some_and(|b| b.meta().org_unit == after_meta.org_unit);
    if !handed_on && !p.can_read(kind, &after_meta) {
        return deny(
            "out_of_scope",
            format!(
                "the {kind} would belong to {}, outside your area",
                after_meta.org_unit
            ),
        );
    }
    Ok(())
}

/// [`check_write`] on documents of `kind`; `after` must hold a valid record.
pub fn check_write_docs(
    p: &Principal,
    kind: RecordKind,
    before: Option<&Automerge>,
    after: &Automerge,
) -> Result<(), Denial> {
    let read = |d| AnyRecord::read(kind, d).map_err(invalid);
    let before = before.map(read).transpose()?;
    check_write(p, before.as_ref(), &read(after)?)
}

fn invalid(e: doc::DocError) -> Denial {
    Denial {
        rule: "invalid_record",
        message: e.to_string(),
    }
}

fn check_household(
    p: &Principal,
    before: Option<&Household>,
    after: &Household,
) -> Result<(), Denial> {
    if !(p.role == Role::GridWorker || p.role.is_staff()) {
        return deny(
            "households",
            format!("a {} does not keep household records", p.role),
        );
    }
    if let Some(before) = before
        && before.org_unit != after.org_unit
        && !p.role.is_staff()
    {
        return deny(
            "move_household",
            "only community or centre staff move a household to another grid",
        );
    }
    Ok(())
}

fn check_visit(p: &Principal, visit: &Visit) -> Result<(), Denial> {
    if !(p.role == Role::GridWorker || p.role.is_staff()) {
        return deny("visits", format!("a {} does not record visits", p.role));
    }
    if p.role == Role::GridWorker && visit.worker != p.user_id {
        return deny("visit_author", "a grid worker records their own visits");
    }
    Ok(())
}

fn check_case(p: &Principal, before: Option<&Case>, after: &Case) -> Result<(), Denial> {
    let Some(before) = before else {
        if !(p.role == Role::GridWorker || p.role.is_staff()) {
            return deny("report_case", format!("a {} does not report cases", p.role));
        }
        if after.reporter != p.user_id && !p.role.is_staff() {
            return deny(
                "case_reporter",
                "a case is reported in the reporter's own name",
            );
        }
        if !p.area.contains(&after.org_unit) {
            return deny(
                "out_of_scope",
                format!(
                    "a case is reported in your own area, not in {}",
                    after.org_unit
                ),
            );
        }
        return check_new_events(p, &[], &after.events);
    };
    // The event log only grows: every earlier event stays as it was.
    for event in &before.events {
        if after.events.iter().find(|e| e.id == event.id) != Some(event) {
            return deny(
                "events_append_only",
                format!(
                    "event {} was changed or removed; events are only ever added",
                    event.id
                ),
            );
        }
    }
    if before.org_unit != after.org_unit && !p.role.is_staff() {
        return deny(
            "move_case",
            "only community or centre staff move a case to another org unit",
        );
    }
    let details_changed = before.category != after.category
        || before.title != after.title
        || before.description != after.description
        || before.parties != after.parties
        || before.household != after.household
        || before.location != after.location
        || before.reporter != after.reporter
        || before.reported_at != after.reported_at;
    let own_report = p.role == Role::GridWorker && before.reporter == p.user_id;
    if details_changed && !(p.role.is_staff() || own_report) {
        return deny(
            "case_details",
            "only the reporter or staff change a case's details; others add events",
        );
    }
    check_new_events(p, &before.events, &after.events)
}

fn check_new_events(
    p: &Principal,
    before: &[CaseEvent],
    after: &[CaseEvent],
) -> Result<(), Denial> {
    for event in after
        .iter()
        .filter(|e| !before.iter().any(|b| b.id == e.id))
    {
        // Admins may import events recorded elsewhere; everyone else
        // records in their own name.
        if event.author != p.user_id && p.role != Role::Admin {
            return deny(
                "event_author",
                format!("event {} must be recorded in your own name", event.id),
            );
        }
        // A role recorded is the role the author has.
        if !event.role.is_empty() && event.role != p.role.as_str() && p.role != Role::Admin {
            return deny(
                "event_role",
                format!("event {} must record your role, {}", event.id, p.role),
            );
        }
        if !p.role.may_record(&event.kind) {
            return deny(
                "event_kind",
                format!("a {} may not record a {:?} event", p.role, event.kind),
            );
        }
    }
    Ok(())
}

/// One row of the permission matrix: an action and, per role in
/// [`Role::ALL`] order, whether it is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    /// The action, in words.
    pub action: String,
    /// Allowed, per role.
    pub allowed: Vec<bool>,
}

/// The permission matrix, computed by running this policy on sample
/// records, so that the published table cannot drift from the code. The
/// sample user's area is grids `g1` and `g2`; the sample records are in
/// `g1`, and the sample case is assigned to the user.
pub fn matrix() -> Vec<MatrixRow> {
    use crate::doc::{create, edit};
    use crate::records::{Member, Sensitive};
    use automerge::ActorId;

    let me = "u1";
    let principal = |role| Principal {
        user_id: me.into(),
        role,
        area: ["g1".to_owned(), "g2".to_owned()].into(),
    };
    let household = {
        let mut h = Household {
            org_unit: "g1".into(),
            ..Default::default()
        };
        h.members.push(Member::new("m1", "甲"));
        h
    };
    let household_doc = create(ActorId::random(), &household, 0).expect("sample household");
    let edited = |f: &dyn Fn(&mut Household)| {
        let mut d = household_doc.clone();
        edit::<Household>(&mut d, 0, f).expect("sample edit");
        d
    };
    let case = Case {
        org_unit: "g1".into(),
        title: "纠纷".into(),
        reporter: "someone else".into(),
        events: vec![
            event("e0", "report", "someone else"),
            event("e1", "accept", "staff"),
            CaseEvent {
                data: [("class".to_owned(), "small".to_owned())].into(),
                ..event("e2", "classify", "staff")
            },
            CaseEvent {
                data: [("to".to_owned(), me.to_owned())].into(),
                ..event("e3", "assign", "staff")
            },
        ],
        ..Default::default()
    };
    let case_doc = create(ActorId::random(), &case, 0).expect("sample case");
    let case_edit = |f: &dyn Fn(&mut Case)| {
        let mut d = case_doc.clone();
        edit::<Case>(&mut d, 0, f).expect("sample case edit");
        d
    };

    let mut rows: Vec<(String, Check)> = Vec::new();
    let area_meta = DocMeta {
        org_unit: "g1".into(),
        ..DocMeta::default()
    };
    rows.push((
        "receive households, visits and cases of their area".into(),
        Box::new({
            let m = area_meta.clone();
            move |p| p.can_read(RecordKind::Household, &m)
        }),
    ));
    rows.push((
        "receive special-population details of their area".into(),
        Box::new({
            let m = area_meta.clone();
            move |p| p.can_read(RecordKind::Sensitive, &m)
        }),
    ));
    rows.push((
        "receive a case assigned to them, outside their area".into(),
        Box::new(move |p| {
            let m = DocMeta {
                org_unit: "elsewhere".into(),
                reporter: Some("someone else".into()),
                assignee: Some(me.into()),
            };
            p.can_read(RecordKind::Case, &m)
        }),
    ));
    let write = |kind, before: Option<Automerge>, after: Automerge| {
        move |p: &Principal| check_write_docs(p, kind, before.as_ref(), &after).is_ok()
    };
    rows.push((
        "create a household in their area".into(),
        Box::new(write(RecordKind::Household, None, household_doc.clone())),
    ));
    rows.push((
        "edit a household of their area".into(),
        Box::new(write(
            RecordKind::Household,
            Some(household_doc.clone()),
            edited(&|h| h.address.room = "101".into()),
        )),
    ));
    rows.push((
        "move a household to another grid of their area".into(),
        Box::new(write(
            RecordKind::Household,
            Some(household_doc.clone()),
            edited(&|h| h.org_unit = "g2".into()),
        )),
    ));
    let sensitive = Sensitive {
        household: crate::RecordId::new(RecordKind::Household).to_string(),
        org_unit: "g1".into(),
        ..Default::default()
    };
    rows.push((
        "write special-population details in their area".into(),
        Box::new(write(
            RecordKind::Sensitive,
            None,
            create(ActorId::random(), &sensitive, 0).expect("sample sensitive"),
        )),
    ));
    let visit = |worker: &str| Visit {
        household: crate::RecordId::new(RecordKind::Household).to_string(),
        org_unit: "g1".into(),
        worker: worker.into(),
        ..Default::default()
    };
    rows.push((
        "record their own visit".into(),
        Box::new(write(
            RecordKind::Visit,
            None,
            create(ActorId::random(), &visit(me), 0).expect("sample visit"),
        )),
    ));
    rows.push((
        "record a visit in another worker's name".into(),
        Box::new(write(
            RecordKind::Visit,
            None,
            create(ActorId::random(), &visit("other"), 0).expect("sample visit"),
        )),
    ));
    let report = Case {
        reporter: me.into(),
        events: vec![event("r0", "report", me)],
        ..case.clone()
    };
    rows.push((
        "report a case in their area".into(),
        Box::new(write(
            RecordKind::Case,
            None,
            create(ActorId::random(), &report, 0).expect("sample report"),
        )),
    ));
    rows.push((
        "change the details of someone else's case".into(),
        Box::new(write(
            RecordKind::Case,
            Some(case_doc.clone()),
            case_edit(&|c| c.title = "改".into()),
        )),
    ));
    rows.push((
        "change or remove an earlier event".into(),
        Box::new(write(
            RecordKind::Case,
            Some(case_doc.clone()),
            case_edit(&|c| c.events[0].kind = "close".into()),
        )),
    ));
    for kind in EVENT_KINDS {
        rows.push((
            format!("add an event `{kind}` to a case they see"),
            Box::new(write(
                RecordKind::Case,
                Some(case_doc.clone()),
                case_edit(&|c| c.events.push(event("n1", kind, me))),
            )),
        ));
    }
    rows.into_iter()
        .map(|(action, allowed)| MatrixRow {
            allowed: Role::ALL.iter().map(|&r| allowed(&principal(r))).collect(),
            action,
        })
        .collect()
}

/// Whether a sample principal may do one matrix action.
type Check = Box<dyn Fn(&Principal) -> bool>;

fn event(id: &str, kind: &str, author: &str) -> CaseEvent {
    CaseEvent {
        id: id.into(),
        kind: kind.into(),
        author: author.into(),
        device: "d".into(),
        at: 0,
        role: String::new(),
        hlc: id
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0),
        data: Default::default(),
    }
}

/// The permission matrix as a Markdown table.
pub fn matrix_markdown() -> String {
    let mut out = String::from("| action |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n| --- |");
    out.push_str(&" :-: |".repeat(Role::ALL.len()));
    out.push('\n');
    for row in matrix() {
        out.push_str(&format!("| {} |", row.action));
        for allowed in row.allowed {
            out.push_str(if allowed { " ✓ |" } else { " — |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn matrix_says_what_the_reports_say() {
        let rows = matrix();
        let row = |action: &str| {
            rows.iter()
                .find(|r| r.action.starts_with(action))
                .unwrap_or_else(|| panic!("no row {action}"))
                .allowed
                .clone()
        };
        let index = |role: Role| Role::ALL.iter().position(|&r| r == role).unwrap();
        // Supervisors never write.
        for r in &rows[3..] {
            assert!(!r.allowed[index(Role::Supervisor)], "{}", r.action);
        }
        // Sensitive details reach staff only.
        let sensitive = row("receive special-population");
        assert!(!sensitive[index(Role::GridWorker)]);
        assert!(sensitive[index(Role::CommunityStaff)]);
        // Workers edit households but do not move them.
        assert!(row("edit a household")[index(Role::GridWorker)]);
        assert!(!row("move a household")[index(Role::GridWorker)]);
        assert!(row("move a household")[index(Role::CommunityStaff)]);
        // Nobody rewrites the event log.
        assert!(row("change or remove").iter().all(|a| !a));
        // Departments see cases dispatched to them, not households.
        assert!(row("receive a case assigned")[index(Role::Department)]);
        assert!(!row("receive households")[index(Role::Department)]);
    }
}
