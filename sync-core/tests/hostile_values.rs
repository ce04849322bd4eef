//! Values from another device are data, not promises: the workflow fold and
//! the clock of a new event never overflow or panic on any `i64` a document
//! may carry, and record validation keeps every time in its range, so that
//! no phone commits and no server stores a time the rest of the system
//! cannot add to.

use automerge::ActorId;
use proptest::prelude::*;
use sync_core::doc::{self, AnyRecord, DocError};
use sync_core::policy::{EVENT_KINDS, Role};
use sync_core::records::{
    Case, CaseEvent, HLC_RANGE, Household, Member, Record, TIME_RANGE, Visit,
};
use sync_core::workflow::{self, Deadlines};
use sync_core::{RecordId, RecordKind};

fn event(n: usize, kind: &str, hlc: i64, at: i64) -> CaseEvent {
    let data = match kind {
        "classify" => [("class", "small")].as_slice(),
        "assign" => &[("to", "med")],
        "resolve" => &[("result", "mediated")],
        _ => &[],
    };
    CaseEvent {
        attachments: Vec::new(),
        id: format!("e{n}"),
        kind: kind.into(),
        author: "staff".into(),
        device: "d".into(),
        at,
        role: String::new(),
        hlc,
        data: data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn case(reported_at: i64, events: Vec<CaseEvent>) -> Case {
    Case {
        org_unit: "g1".into(),
        title: "纠纷".into(),
        reporter: "w".into(),
        reported_at,
        events,
        ..Default::default()
    }
}

/// Any `i64`, with the edges more often than chance would pick them.
fn any_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX - 1),
        Just(0),
        Just(-1),
        any::<i64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_fold_never_panics_on_any_clock_or_time(
        reported_at in any_time(),
        events in prop::collection::vec((0..EVENT_KINDS.len(), any_time(), any_time()), 0..12),
        accept_ms in any_time(),
        resolve_ms in any_time(),
        now in any_time(),
    ) {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(n, (kind, hlc, at))| event(n, EVENT_KINDS[kind], hlc, at))
            .collect();
        let mut c = case(reported_at, events);
        let deadlines = Deadlines {
            accept_ms,
            resolve_ms: [("grid".to_owned(), resolve_ms)].into(),
            ..Deadlines::default()
        };
        let state = workflow::fold(&c, &deadlines);
        let _ = state.overdue_at(now);
        let _ = AnyRecord::Case(c.clone()).meta();
        let seen = c.events.iter().map(|e| e.hlc).max();
        let hlc = workflow::next_hlc(&c, now);
        // A new event is valid, and after everything seen unless that is
        // at the end of the range already.
        prop_assert!(HLC_RANGE.contains(&hlc));
        if let Some(seen) = seen.filter(|&s| s < HLC_RANGE.end - 1) {
            prop_assert!(hlc > seen);
        }
        workflow::append(&mut c, "comment", ("staff", "d", Role::Admin), now, Default::default());
        let _ = workflow::fold(&c, &deadlines);
    }

    #[test]
    fn times_outside_the_range_are_refused_and_inside_accepted(t in any_time()) {
        let inside = TIME_RANGE.contains(&t);
        let visit = Visit {
            household: RecordId::new(RecordKind::Household).to_string(),
            org_unit: "g1".into(),
            worker: "w".into(),
            visited_at: t,
            ..Default::default()
        };
        prop_assert_eq!(visit.validate().is_ok(), inside);
        prop_assert_eq!(case(t, vec![]).validate().is_ok(), inside);
        let at = case(0, vec![event(0, "report", 0, t)]);
        prop_assert_eq!(at.validate().is_ok(), inside);
        let hlc = case(0, vec![event(0, "report", t, 0)]);
        prop_assert_eq!(hlc.validate().is_ok(), HLC_RANGE.contains(&t));
    }
}

/// Every time-like field of every record kind, at the edges of its range:
/// the field the error names, for a value just outside.
#[test]
fn every_time_field_is_checked_at_its_edges() {
    let visit = |t| Visit {
        household: RecordId::new(RecordKind::Household).to_string(),
        org_unit: "g1".into(),
        worker: "w".into(),
        visited_at: t,
        ..Default::default()
    };
    type Make = Box<dyn Fn(i64) -> Result<(), sync_core::records::ValidationError>>;
    let fields: Vec<(&str, std::ops::Range<i64>, Make)> = vec![
        (
            "visited_at",
            TIME_RANGE,
            Box::new(move |t| visit(t).validate()),
        ),
        (
            "reported_at",
            TIME_RANGE,
            Box::new(|t| case(t, vec![]).validate()),
        ),
        (
            "events[1].at",
            TIME_RANGE,
            Box::new(|t| {
                case(0, vec![event(0, "report", 1, 0), event(1, "accept", 2, t)]).validate()
            }),
        ),
        (
            "events[1].hlc",
            HLC_RANGE,
            Box::new(|t| {
                case(0, vec![event(0, "report", 1, 0), event(1, "accept", t, 0)]).validate()
            }),
        ),
    ];
    for (field, range, make) in fields {
        for ok in [range.start, range.end - 1] {
            assert!(make(ok).is_ok(), "{field} = {ok}");
        }
        for bad in [range.start - 1, range.end, i64::MAX, i64::MIN] {
            let err = make(bad).expect_err(field);
            assert_eq!(err.field, field, "{bad}");
            assert!(err.problem.contains(&bad.to_string()), "{err}");
        }
    }
    // Household dates are text; a malformed one is refused as before.
    let mut h = Household {
        org_unit: "g1".into(),
        ..Default::default()
    };
    h.members.push(Member {
        birth_date: "99999-01-01".into(),
        ..Member::new("m1", "甲")
    });
    assert_eq!(h.validate().unwrap_err().field, "members[0].birth_date");
}

/// A phone refuses to commit an edit that takes a time out of range.
#[test]
fn a_phone_does_not_commit_a_time_out_of_range() {
    let v = Visit {
        household: RecordId::new(RecordKind::Household).to_string(),
        org_unit: "g1".into(),
        worker: "w".into(),
        visited_at: 1_700_000_000_000,
        ..Default::default()
    };
    let mut d = doc::create(ActorId::random(), &v, 0).unwrap();
    let heads = d.get_heads();
    let err = doc::edit::<Visit>(&mut d, 0, |v| v.visited_at = i64::MAX).unwrap_err();
    assert!(
        matches!(&err, DocError::Invalid { source, .. } if source.field == "visited_at"),
        "{err}"
    );
    assert_eq!(d.get_heads(), heads);
}
