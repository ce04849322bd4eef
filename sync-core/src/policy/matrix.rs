//! The permission matrix, computed by running the policy on sample
//! records, so that the table published in `api-spec/permissions.md`
//! cannot drift from the code.

use automerge::Automerge;

use super::{EVENT_KINDS, Principal, Role, check_write_docs};
use crate::doc::DocMeta;
use crate::id::RecordKind;
use crate::records::{Case, CaseEvent, Household, Visit};

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
    let own_visit = create(ActorId::random(), &visit(me), 0).expect("sample visit");
    rows.push((
        "change the worker of their own visit".into(),
        Box::new(write(RecordKind::Visit, Some(own_visit.clone()), {
            let mut d = own_visit;
            edit::<Visit>(&mut d, 0, |v| v.worker = "other".into()).expect("sample visit edit");
            d
        })),
    ));
    let report = Case {
        reporter: me.into(),
        events: vec![event("r0", "report", me)],
        ..case.clone()
    };
    let report_doc = create(ActorId::random(), &report, 0).expect("sample report");
    rows.push((
        "report a case in their area".into(),
        Box::new(write(RecordKind::Case, None, report_doc.clone())),
    ));
    rows.push((
        "change the reporter of a case they reported".into(),
        Box::new(write(RecordKind::Case, Some(report_doc.clone()), {
            let mut d = report_doc;
            edit::<Case>(&mut d, 0, |c| c.reporter = "someone else".into())
                .expect("sample report edit");
            d
        })),
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
    let photo = |author: &str| crate::records::Attachment {
        sha256: "ab".repeat(32),
        media_type: "image/jpeg".into(),
        size: 1,
        author: author.into(),
        device: "d".into(),
        ..Default::default()
    };
    rows.push((
        "attach a photo to a case they see".into(),
        Box::new(write(
            RecordKind::Case,
            Some(case_doc.clone()),
            case_edit(&|c| c.attachments.push(photo(me))),
        )),
    ));
    let attached_doc = case_edit(&|c| c.attachments.push(photo("someone else")));
    rows.push((
        "remove a photo someone else attached".into(),
        Box::new(write(RecordKind::Case, Some(attached_doc.clone()), {
            let mut d = attached_doc;
            edit::<Case>(&mut d, 0, |c| c.attachments.clear()).expect("sample case edit");
            d
        })),
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
        attachments: Vec::new(),
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
