//! What the write policy costs on top of merging: the server's per-document
//! work with and without the check, on small household documents.
//!
//! `cargo run --release -p sync-core --example policy_cost`

use std::time::{Duration, Instant};

use automerge::{ActorId, Automerge, Change};
use sync_core::RecordKind;
use sync_core::doc::{self, AnyRecord};
use sync_core::policy::{self, Principal, Role};
use sync_core::records::{Household, Member};

const DOCS: usize = 300;
const RUNS: usize = 7;

/// A stored document and one incoming change to it.
type Case = (Vec<u8>, Change);

fn main() {
    let principal = Principal {
        user_id: "u1".into(),
        role: Role::GridWorker,
        area: ["g1".to_owned()].into(),
    };
    // Stored documents and one edit each, as a phone would send it.
    let cases: Vec<Case> = (0..DOCS)
        .map(|i| {
            let mut h = Household {
                org_unit: "g1".into(),
                notes: "门口有台阶，老人行动不便。".into(),
                ..Default::default()
            };
            for m in 0..3 {
                h.members
                    .push(Member::new(format!("m{m}"), format!("成员{i}-{m}")));
            }
            let stored = doc::create(ActorId::random(), &h, 0).unwrap();
            let mut phone = stored.fork().with_actor(ActorId::random());
            doc::edit::<Household>(&mut phone, 0, |h| {
                h.address.room = format!("{i}");
                h.notes.splice(0, 0, "复查：");
            })
            .unwrap();
            (stored.save(), phone.get_last_local_change().unwrap())
        })
        .collect();

    let plain = |(saved, change): &Case| {
        let mut d = doc::load(saved).unwrap();
        d.apply_changes([change.clone()]).unwrap();
        std::hint::black_box(d.save());
    };
    // What the server does: read the record before, apply, read it after
    // (which validates it), run the policy.
    let checked = |(saved, change): &Case| {
        let mut d = doc::load(saved).unwrap();
        let before = AnyRecord::read(RecordKind::Household, &d).unwrap();
        d.apply_changes([change.clone()]).unwrap();
        let after = AnyRecord::read(RecordKind::Household, &d).unwrap();
        policy::check_write(&principal, Some(&before), &after).unwrap();
        std::hint::black_box(d.save());
    };
    let apply_only = |(saved, change): &Case| {
        let mut d: Automerge = doc::load(saved).unwrap();
        d.apply_changes([change.clone()]).unwrap();
        std::hint::black_box(d.get_heads());
    };

    let median = |f: &dyn Fn(&Case)| {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                cases.iter().for_each(f);
                start.elapsed()
            })
            .collect();
        times.sort();
        times[RUNS / 2]
    };
    let a = median(&apply_only);
    let p = median(&plain);
    let c = median(&checked);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / DOCS as f64;
    println!("documents: {DOCS}, runs: {RUNS} (median)");
    println!(
        "load + apply:                    {:8.1} µs/doc  (1.00)",
        per(a)
    );
    println!(
        "load + apply + save:             {:8.1} µs/doc  ({:.2})",
        per(p),
        per(p) / per(a)
    );
    println!(
        "load + apply + check + save:     {:8.1} µs/doc  ({:.2})",
        per(c),
        per(c) / per(a)
    );
    println!(
        "policy and validation over plain merge-and-save: {:.2}x",
        per(c) / per(p)
    );
}
