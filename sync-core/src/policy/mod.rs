//! Who may see and change what: one policy, run by the server before it
//! stores a change and by the phone before it commits one, so that an honest
//! phone never produces a change the server refuses.
//!
//! Reading is decided per document from its [`DocMeta`]. Writing is decided
//! from the record before and after a set of changes: what they touched, by
//! which role, inside or outside the writer's area.

use std::collections::BTreeSet;

use automerge::Automerge;

use crate::doc::{self, AnyRecord, DocMeta};

mod matrix;

use crate::id::RecordKind;
use crate::records::{Attachment, Case, CaseEvent, Household, Visit};
pub use crate::role::{EVENT_KINDS, Role, UnknownRole};
pub use matrix::{MatrixRow, matrix, matrix_markdown};

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
        (before, AnyRecord::Sensitive(after)) => {
            if !p.role.sees_sensitive() {
                return deny(
                    "sensitive",
                    "only community and centre staff keep special-population details",
                );
            }
            let before = match before {
                Some(AnyRecord::Sensitive(s)) => &s.attachments[..],
                _ => &[],
            };
            check_attachments(p, before, &after.attachments)?;
        }
        (before, AnyRecord::Visit(after)) => {
            let before = match before {
                Some(AnyRecord::Visit(v)) => Some(v),
                _ => None,
            };
            check_visit(p, before, after)?;
        }
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
    check_attachments(
        p,
        before.map_or(&[], |b| &b.attachments),
        &after.attachments,
    )
}

fn check_visit(p: &Principal, before: Option<&Visit>, after: &Visit) -> Result<(), Denial> {
    if !(p.role == Role::GridWorker || p.role.is_staff()) {
        return deny("visits", format!("a {} does not record visits", p.role));
    }
    // Who visited is a fact, not an attribute: nobody rewrites it, or a
    // visit could be taken from one worker's log and put in another's.
    if let Some(before) = before
        && before.worker != after.worker
    {
        return deny(
            "visit_worker",
            "the worker of a recorded visit does not change",
        );
    }
    // The record before as well as after: a worker edits only their own
    // visits.
    let own = |v: &Visit| v.worker == p.user_id;
    if p.role == Role::GridWorker && !(own(after) && before.is_none_or(own)) {
        return deny("visit_author", "a grid worker records their own visits");
    }
    check_attachments(
        p,
        before.map_or(&[], |b| &b.attachments),
        &after.attachments,
    )
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
        check_attachments(p, &[], &after.attachments)?;
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
    // The reporter decides who may see a case, and stays who reported it:
    // nobody hands a case to another name, staff included.
    if before.reporter != after.reporter {
        return deny("case_reporter", "the reporter of a case does not change");
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
        || before.reported_at != after.reported_at;
    let own_report = p.role == Role::GridWorker && before.reporter == p.user_id;
    if details_changed && !(p.role.is_staff() || own_report) {
        return deny(
            "case_details",
            "only the reporter or staff change a case's details; others add events",
        );
    }
    check_attachments(p, &before.attachments, &after.attachments)?;
    check_new_events(p, &before.events, &after.events)
}

/// Attached files are evidence. Whoever may write a record may attach
/// files to it, in their own name; a reference, once attached, does not
/// change; it is removed only by who attached it or by staff (a photo of
/// the wrong door, a face that should not have been taken).
fn check_attachments(
    p: &Principal,
    before: &[Attachment],
    after: &[Attachment],
) -> Result<(), Denial> {
    for old in before {
        match after.iter().find(|a| a.sha256 == old.sha256) {
            Some(new) if new == old => {}
            Some(_) => {
                return deny(
                    "attachment_changed",
                    format!("attached file {} does not change once attached", old.sha256),
                );
            }
            None if old.author == p.user_id || p.role.is_staff() => {}
            None => {
                return deny(
                    "attachment_removed",
                    format!(
                        "attached file {} is removed only by who attached it or by staff",
                        old.sha256
                    ),
                );
            }
        }
    }
    for new in after
        .iter()
        .filter(|a| !before.iter().any(|b| b.sha256 == a.sha256))
    {
        // Admins may import files attached elsewhere.
        if new.author != p.user_id && p.role != Role::Admin {
            return deny(
                "attachment_author",
                format!("file {} must be attached in your own name", new.sha256),
            );
        }
    }
    Ok(())
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
        check_attachments(p, &[], &event.attachments)?;
    }
    Ok(())
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

    fn principal(user: &str, role: Role) -> Principal {
        Principal {
            user_id: user.into(),
            role,
            area: ["g1".to_owned()].into(),
        }
    }

    #[test]
    fn nobody_hands_a_case_to_another_reporter() {
        let before = Case {
            org_unit: "g1".into(),
            title: "纠纷".into(),
            reporter: "w1".into(),
            ..Default::default()
        };
        let after = Case {
            reporter: "w2".into(),
            ..before.clone()
        };
        let (before, after) = (AnyRecord::Case(before), AnyRecord::Case(after));
        for p in [
            principal("w1", Role::GridWorker),
            principal("s1", Role::CommunityStaff),
            principal("a1", Role::Admin),
        ] {
            let denial = check_write(&p, Some(&before), &after).unwrap_err();
            assert_eq!(denial.rule, "case_reporter", "{}", p.role);
        }
        // The reporter still edits the details of their own report.
        let retitled = match &before {
            AnyRecord::Case(c) => AnyRecord::Case(Case {
                title: "邻里纠纷".into(),
                ..c.clone()
            }),
            _ => unreachable!(),
        };
        let w1 = principal("w1", Role::GridWorker);
        assert!(check_write(&w1, Some(&before), &retitled).is_ok());
    }

    #[test]
    fn attached_files_are_evidence() {
        let photo = |sha: char, author: &str| Attachment {
            sha256: sha.to_string().repeat(64),
            media_type: "image/jpeg".into(),
            size: 10,
            author: author.into(),
            device: "d".into(),
            ..Default::default()
        };
        let household = |attachments: Vec<Attachment>| {
            AnyRecord::Household(Household {
                org_unit: "g1".into(),
                attachments,
                ..Default::default()
            })
        };
        let w1 = principal("w1", Role::GridWorker);
        let staff = principal("s1", Role::CommunityStaff);
        let before = household(vec![photo('a', "w2")]);
        // Attaching in one's own name, beside what is there.
        let added = household(vec![photo('a', "w2"), photo('b', "w1")]);
        assert!(check_write(&w1, Some(&before), &added).is_ok());
        // In someone else's name.
        let forged = household(vec![photo('a', "w2"), photo('b', "w3")]);
        let denial = check_write(&w1, Some(&before), &forged).unwrap_err();
        assert_eq!(denial.rule, "attachment_author");
        // Rewriting a reference.
        let mut renamed = photo('a', "w2");
        renamed.caption = "another photo".into();
        let denial = check_write(&w1, Some(&before), &household(vec![renamed])).unwrap_err();
        assert_eq!(denial.rule, "attachment_changed");
        // Removing another's photo: staff only; one's own: the author too.
        let emptied = household(Vec::new());
        let denial = check_write(&w1, Some(&before), &emptied).unwrap_err();
        assert_eq!(denial.rule, "attachment_removed");
        assert!(check_write(&staff, Some(&before), &emptied).is_ok());
        assert!(check_write(&w1, Some(&added), &before).is_ok());
        // A new event's files are attached in its author's name too.
        let case = Case {
            org_unit: "g1".into(),
            title: "隐患".into(),
            reporter: "w1".into(),
            ..Default::default()
        };
        let mut reported = case.clone();
        crate::workflow::append(
            &mut reported,
            "report",
            ("w1", "d", Role::GridWorker),
            1,
            Default::default(),
        );
        reported.events[0].attachments.push(photo('c', "w9"));
        let denial = check_write(&w1, None, &AnyRecord::Case(reported)).unwrap_err();
        assert_eq!(denial.rule, "attachment_author");
    }

    #[test]
    fn nobody_rewrites_who_made_a_visit() {
        let visit = |worker: &str| {
            AnyRecord::Visit(Visit {
                household: crate::RecordId::new(RecordKind::Household).to_string(),
                org_unit: "g1".into(),
                worker: worker.into(),
                ..Default::default()
            })
        };
        let w1 = principal("w1", Role::GridWorker);
        // Taking another worker's visit into one's own log: the record
        // after names the writer, the record before does not.
        let denial = check_write(&w1, Some(&visit("w2")), &visit("w1")).unwrap_err();
        assert_eq!(denial.rule, "visit_worker");
        // Giving one's own visit away.
        let denial = check_write(&w1, Some(&visit("w1")), &visit("w2")).unwrap_err();
        assert_eq!(denial.rule, "visit_worker");
        // Staff record visits in a worker's name, but do not move them.
        let staff = principal("s1", Role::CommunityStaff);
        assert!(check_write(&staff, None, &visit("w2")).is_ok());
        let denial = check_write(&staff, Some(&visit("w2")), &visit("w3")).unwrap_err();
        assert_eq!(denial.rule, "visit_worker");
        // Editing someone else's visit otherwise is still refused.
        let mut edited = visit("w2");
        if let AnyRecord::Visit(v) = &mut edited {
            v.follow_up = true;
        }
        let denial = check_write(&w1, Some(&visit("w2")), &edited).unwrap_err();
        assert_eq!(denial.rule, "visit_author");
        assert!(check_write(&w1, Some(&visit("w1")), &visit("w1")).is_ok());
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
