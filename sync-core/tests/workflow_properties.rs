//! Property: up to four replicas record valid and invalid case events
//! concurrently and exchange them in any order; every replica ends with the
//! same status, the same applied and not-applied marks, and every event.

use automerge::{ActorId, Automerge};
use proptest::prelude::*;
use sync_core::doc;
use sync_core::policy::{EVENT_KINDS, Role};
use sync_core::records::Case;
use sync_core::workflow::{self, Deadlines};

/// Every event kind but `report`, which only starts a case.
fn kinds() -> Vec<&'static str> {
    EVENT_KINDS.into_iter().filter(|k| *k != "report").collect()
}

#[derive(Debug, Clone)]
struct Step {
    replica: usize,
    kind: usize,
    role: usize,
    /// Milliseconds on the author's clock (clocks disagree).
    clock: i64,
    /// Merge this replica with another before the event.
    merge_from: Option<usize>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..4,
        0..kinds().len(),
        0..Role::ALL.len(),
        0i64..10_000,
        prop::option::of(0usize..4),
    )
        .prop_map(|(replica, kind, role, clock, merge_from)| Step {
            replica,
            kind,
            role,
            clock,
            merge_from,
        })
}

fn data(kind: &str, n: usize) -> std::collections::BTreeMap<String, String> {
    let pair = match kind {
        "classify" => ("class", ["big", "small", "private"][n % 3]),
        "assign" => ("to", ["med", "dept"][n % 2]),
        "resolve" => ("result", ["mediated", "referred", "withdrawn"][n % 3]),
        "escalate" => ("reason", "复杂"),
        _ => return Default::default(),
    };
    [(pair.0.to_owned(), pair.1.to_owned())].into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn replicas_agree_on_every_case_state(steps in prop::collection::vec(step(), 1..40)) {
        let mut case = Case {
            org_unit: "g1".into(),
            title: "纠纷".into(),
            reporter: "w".into(),
            ..Default::default()
        };
        workflow::append(&mut case, "report", ("w", "p0", Role::GridWorker), 0, Default::default());
        let origin = doc::create(ActorId::random(), &case, 0).unwrap();
        let saved = origin.save();
        let mut replicas: Vec<Automerge> = (0..4)
            .map(|_| doc::load(&saved).unwrap().with_actor(ActorId::random()))
            .collect();
        let mut ids = vec![];
        for (n, s) in steps.iter().enumerate() {
            if let Some(from) = s.merge_from.filter(|&f| f != s.replica) {
                let mut other = replicas[from].clone();
                replicas[s.replica].merge(&mut other).unwrap();
            }
            let kind = kinds()[s.kind];
            let role = Role::ALL[s.role];
            let device = format!("p{}", s.replica);
            let author = if kind == "return" { "med" } else { "someone" };
            doc::edit::<Case>(&mut replicas[s.replica], 0, |c| {
                let id = workflow::append(c, kind, (author, &device, role), s.clock, data(kind, n));
                ids.push(id);
            })
            .unwrap();
        }
        for a in 0..4 {
            for b in 0..4 {
                if a != b {
                    let mut other = replicas[b].clone();
                    replicas[a].merge(&mut other).unwrap();
                }
            }
        }
        let deadlines = Deadlines::default();
        let states: Vec<_> = replicas
            .iter()
            .map(|r| workflow::fold(&doc::read::<Case>(r).unwrap(), &deadlines))
            .collect();
        for state in &states[1..] {
            prop_assert_eq!(state, &states[0]);
        }
        let folded: std::collections::BTreeSet<_> = states[0].events.iter().map(|e| e.id.clone()).collect();
        for id in &ids {
            prop_assert!(folded.contains(id), "event {} lost", id);
        }
        prop_assert_eq!(states[0].events.len(), ids.len() + 1);
        for e in states[0].events.iter().filter(|e| !e.applied) {
            prop_assert!(e.reason.as_deref().is_some_and(|r| !r.is_empty()));
        }
    }
}
