//! A signed-in phone running a modified app, trying to hurt the county
//! through the sync path: each attempt is refused with a clear answer, and
//! the server stays whole and answers everyone else.

use std::collections::BTreeSet;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use reqwest::Method;
use serde_bytes::ByteBuf;
use serde_json::json;
use sync_core::protocol::{DocPush, Heads, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use sync_core::records::{Case, CaseEvent, Household, Member, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind};
use tests::{Device, TestServer};

/// county c > township t > community cm > grids g1, g2; community cm2 > g3.
async fn county(tweak: impl FnOnce(&mut gridsync_server::config::Config)) -> TestServer {
    let server = TestServer::start_with(tweak).await;
    server.small_county().await;
    server
        .users(&[
            ("w1", "grid_worker", "g1"),
            ("w2", "grid_worker", "g2"),
            ("staff", "community_staff", "cm"),
            ("staff2", "community_staff", "cm2"),
            ("admin", "admin", "c"),
        ])
        .await;
    server
}

fn household(grid: &str) -> Household {
    let mut h = Household {
        org_unit: grid.into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", "张三"));
    h
}

fn request(device: &Device<MemoryStore>, docs: Vec<DocPush>) -> SyncRequest {
    SyncRequest {
        v: PROTOCOL_VERSION,
        actors: vec![ByteBuf::from(device.replica.actor().to_bytes().to_vec())],
        docs,
        ..Default::default()
    }
}

fn push(id: &RecordId, changes: Vec<Vec<u8>>) -> DocPush {
    DocPush {
        id: id.clone(),
        heads: Heads::default(),
        changes: changes.into_iter().map(ByteBuf::from).collect(),
    }
}

fn json_code(body: &[u8]) -> (String, String) {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON error body");
    (
        value["code"].as_str().unwrap_or_default().to_owned(),
        value["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn round(device: &Device<MemoryStore>, request: SyncRequest) -> SyncResponse {
    let (status, body) = device.post_raw(request.encode()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    SyncResponse::decode(&body).unwrap()
}

/// One change putting `text_len` characters of text, by `actor`.
fn text_change(actor: &automerge::ActorId, text_len: usize) -> automerge::Change {
    let mut doc = AutoCommit::new().with_actor(actor.clone());
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, &"a".repeat(text_len)).unwrap();
    doc.get_last_local_change().unwrap().clone()
}

#[tokio::test]
async fn a_compressed_change_that_inflates_hugely_is_refused() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await.tampered();
    w1.sync().await;
    // 64 MiB in one string, compressed by Automerge itself to a few
    // kilobytes.
    let mut doc = AutoCommit::new().with_actor(w1.replica.actor().clone());
    doc.put(ROOT, "notes", "a".repeat(64 * 1024 * 1024))
        .unwrap();
    let mut change = doc.get_last_local_change().unwrap().clone();
    let bomb = change.bytes().into_owned();
    assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
    let id = RecordId::new(RecordKind::Household);
    let response = round(&w1, request(&w1, vec![push(&id, vec![bomb])])).await;
    assert_eq!(response.errors.len(), 1);
    assert_eq!(response.errors[0].code, "compressed_change");
    assert!(server.document(&id).await.is_none());
    assert_eq!(server.count("changes").await, 0);

    // The server is fine, and an honest round goes through.
    let h = w1.replica.create(&household("g1")).unwrap();
    let report = w1.sync().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(server.document(&h).await.is_some());
}

#[tokio::test]
async fn changes_with_too_many_operations_are_refused_before_decoding() {
    let server = county(|c| {
        c.sync_max_change_ops = 1000;
        c.sync_max_request_ops = 2000;
    })
    .await;
    let mut w1 = server.device("w1").await.tampered();
    w1.sync().await;
    let actor = w1.replica.actor().clone();

    // One change over the limit: that document is refused.
    let big = RecordId::new(RecordKind::Household);
    let small = RecordId::new(RecordKind::Household);
    let response = round(
        &w1,
        request(
            &w1,
            vec![
                push(&big, vec![text_change(&actor, 5000).raw_bytes().to_vec()]),
                push(&small, vec![text_change(&actor, 10).raw_bytes().to_vec()]),
            ],
        ),
    )
    .await;
    let codes: Vec<(&RecordId, &str)> = response
        .errors
        .iter()
        .map(|e| (&e.id, e.code.as_str()))
        .collect();
    assert!(codes.contains(&(&big, "change_too_large")), "{codes:?}");

    // Changes each within the limit, together over the request's limit:
    // the whole request is refused, nothing is stored.
    let docs = (0..3)
        .map(|_| {
            push(
                &RecordId::new(RecordKind::Household),
                vec![text_change(&actor, 900).raw_bytes().to_vec()],
            )
        })
        .collect();
    let (status, body) = w1.post_raw(request(&w1, docs).encode()).await;
    assert_eq!(status, 413);
    assert_eq!(json_code(&body).0, "too_many_operations");
    assert_eq!(server.count("documents").await, 0);
}

#[tokio::test]
async fn a_request_with_too_many_documents_is_refused_whole() {
    let server = county(|c| c.sync_max_docs = 10).await;
    let mut w1 = server.device("w1").await;
    for _ in 0..11 {
        w1.replica.create(&household("g1")).unwrap();
    }
    let mut sent = w1.replica.sync_request();
    sent.actors = vec![ByteBuf::from(vec![7; 16])];
    assert_eq!(sent.docs.len(), 11);
    let (status, body) = w1.post_raw(sent.encode()).await;
    assert_eq!(status, 413);
    let (code, message) = json_code(&body);
    assert_eq!(code, "too_many_documents");
    assert!(message.contains("10"), "{message}");
    assert_eq!(server.count("documents").await, 0);
    assert_eq!(server.count("device_actors").await, 0, "not even the actor");

    // A phone told the server's limit sends the rest in the next round.
    w1.replica.set_max_request_docs(10);
    let report = w1.sync().await;
    assert!(report.errors.is_empty());
    assert_eq!(server.count("documents").await, 11);
}

#[tokio::test]
async fn pushes_of_no_changes_do_not_wait_for_writers() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    for _ in 0..3 {
        w1.replica.create(&household("g1")).unwrap();
    }
    w1.sync().await;
    w1.sync().await;
    // Heads only, as a phone states what it has: nothing to write.
    let mut stated = w1.replica.sync_request();
    stated.docs = w1
        .replica
        .ids()
        .map(|id| DocPush {
            id: id.clone(),
            heads: Heads(w1.replica.document(id).unwrap().get_heads()),
            changes: vec![],
        })
        .collect();
    // Another writer holds the write lock meanwhile.
    let writer = server.state.engine.storage.begin(true).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), w1.post_raw(stated.encode())).await;
    drop(writer);
    let (status, body) = answer.expect("a round of no changes waited for the writer");
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(response.docs.len(), 3);
    assert!(response.docs.iter().all(|d| d.chunks.is_empty()));
}

#[tokio::test]
async fn a_push_is_stored_exactly_as_far_as_its_answer_says() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await.tampered();
    w1.sync().await;
    // Each step on its own passes the policy (a reporter may edit their
    // own case), the two together do not: a case is not reported in
    // someone else's name.
    let case = w1
        .replica
        .create(&Case {
            org_unit: "g1".into(),
            title: "噪音".into(),
            reporter: "usr_w1".into(),
            events: vec![CaseEvent {
                attachments: Vec::new(),
                id: "r1".into(),
                kind: "report".into(),
                author: "usr_w1".into(),
                device: "d".into(),
                at: 1,
                role: String::new(),
                hlc: 1,
                data: Default::default(),
            }],
            ..Default::default()
        })
        .unwrap();
    w1.replica
        .update::<Case>(&case, |c| c.reporter = "usr_w2".into())
        .unwrap();
    let pushed: BTreeSet<_> = w1
        .replica
        .document(&case)
        .unwrap()
        .get_changes(&[])
        .iter()
        .map(|c| c.hash())
        .collect();
    let report = w1.sync().await;
    let error = report
        .errors
        .iter()
        .find(|e| e.id == case)
        .expect("the push is refused");
    assert_eq!(error.code, "forbidden");
    let held: usize = error
        .message
        .split("; ")
        .find_map(|part| part.split(" change(s) held").next()?.parse().ok())
        .expect("the answer says how many changes were held");
    let stored = server.document(&case).await;
    let stored_hashes: BTreeSet<_> = stored
        .as_ref()
        .map(|d| d.get_changes(&[]).iter().map(|c| c.hash()).collect())
        .unwrap_or_default();
    assert_eq!(
        pushed.difference(&stored_hashes).count(),
        held,
        "held per the answer: {}",
        error.message
    );
    if let Some(stored) = stored {
        let principal = sync_core::policy::Principal {
            user_id: "usr_w1".into(),
            role: sync_core::policy::Role::GridWorker,
            area: ["g1".to_owned()].into_iter().collect(),
        };
        sync_core::policy::check_write_docs(&principal, RecordKind::Case, None, &stored)
            .expect("what is stored passes the policy as a whole");
    }
}

fn visit(household: &RecordId) -> Visit {
    Visit {
        household: household.to_string(),
        org_unit: "g1".into(),
        worker: "usr_w1".into(),
        visited_at: 1_700_000_000_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_visit_names_a_household_the_worker_may_see() {
    let server = county(|_| {}).await;
    let mut staff = server.device("staff").await;
    let mine = staff.replica.create(&household("g1")).unwrap();
    let theirs = staff.replica.create(&household("g2")).unwrap();
    staff.sync().await;

    // The honest phone refuses at once, under the server's rule name.
    let mut honest = server.device("w1").await;
    honest.sync().await;
    match honest.replica.create(&visit(&theirs)) {
        Err(sync_core::ReplicaError::Denied(d)) => assert_eq!(d.rule, "visit_household"),
        other => panic!("expected a denial, got {other:?}"),
    }
    honest.replica.create(&visit(&mine)).unwrap();
    assert!(honest.sync().await.errors.is_empty());

    // A modified phone is stopped by the server, alike for a household of
    // another grid and for one that does not exist.
    let mut w1 = server.device("w1").await.tampered();
    w1.sync().await;
    let nowhere = RecordId::new(RecordKind::Household);
    let mut answers = Vec::new();
    for target in [&theirs, &nowhere] {
        let id = w1.replica.create(&visit(target)).unwrap();
        let report = w1.sync().await;
        let error = report.errors.iter().find(|e| e.id == id).expect("refused");
        assert_eq!(error.code, "forbidden");
        assert!(
            error.message.contains("rule visit_household"),
            "{}",
            error.message
        );
        assert!(server.document(&id).await.is_none());
        answers.push(error.message.replace(&target.to_string(), "?"));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn a_desk_actor_cannot_be_claimed_by_another_device() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let case = w1
        .replica
        .create(&Case {
            org_unit: "g1".into(),
            title: "漏水".into(),
            reporter: "usr_w1".into(),
            events: vec![CaseEvent {
                attachments: Vec::new(),
                id: "r1".into(),
                kind: "report".into(),
                author: "usr_w1".into(),
                device: "d".into(),
                at: 1,
                role: "grid_worker".into(),
                hlc: 1,
                data: Default::default(),
            }],
            ..Default::default()
        })
        .unwrap();
    w1.sync().await;
    let desk = server.device("staff").await;

    // Another device announces every actor id it can work out for the
    // desk from what it may see (the desk device's id), before the desk
    // acts.
    use sha2::Digest;
    let derived = sha2::Sha256::digest(format!("gridsync desk actor {}", desk.device_id));
    let mut claim = request(&w1, vec![]);
    claim.actors = vec![ByteBuf::from(derived[..16].to_vec())];
    round(&w1, claim).await;

    let (status, body) = desk
        .call(
            Method::POST,
            &format!("/v1/cases/{case}/events"),
            Some(json!({ "kind": "accept", "data": {} })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn out_of_scope_ids_are_answered_like_missing_ones() {
    let server = county(|_| {}).await;
    let mut staff2 = server.device("staff2").await;
    let elsewhere = staff2.replica.create(&household("g3")).unwrap();
    staff2.sync().await;
    let mut w1 = server.device("w1").await.tampered();
    w1.sync().await;
    let missing = RecordId::new(RecordKind::Household);

    // A change to a household the prober makes up from nothing.
    let mut made_up = AutoCommit::new().with_actor(w1.replica.actor().clone());
    made_up.put(ROOT, "junk", 1).unwrap();
    let junk = made_up
        .get_last_local_change()
        .unwrap()
        .raw_bytes()
        .to_vec();
    made_up.put(ROOT, "junk", 2).unwrap();
    let orphan = made_up
        .get_last_local_change()
        .unwrap()
        .raw_bytes()
        .to_vec();

    for (what, changes) in [
        ("no changes", vec![]),
        ("not a record", vec![junk]),
        ("missing dependencies", vec![orphan]),
    ] {
        let mut answers = Vec::new();
        for id in [&elsewhere, &missing] {
            let response = round(&w1, request(&w1, vec![push(id, changes.clone())])).await;
            let errors: Vec<(String, String)> = response
                .errors
                .iter()
                .map(|e| (e.code.clone(), e.message.replace(&id.to_string(), "?")))
                .collect();
            answers.push((errors, response.drop.contains(id)));
        }
        assert_eq!(answers[0], answers[1], "{what}");
    }
    assert_eq!(server.count("quarantine").await, 0);
}

#[tokio::test]
async fn one_push_holds_few_changes_in_quarantine() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await.tampered();
    let h = w1.replica.create(&household("g1")).unwrap();
    w1.sync().await;
    // A move the worker may not make, then 40 edits on top of it.
    w1.replica
        .update::<Household>(&h, |h| h.org_unit = "g2".into())
        .unwrap();
    for i in 0..40 {
        w1.replica
            .update::<Household>(&h, |h| h.address.unit = i.to_string())
            .unwrap();
    }
    // And 100 new households in another grid, one change each.
    let mut w1b = server.device("w1").await.tampered();
    for _ in 0..100 {
        w1b.replica.create(&household("g3")).unwrap();
    }
    let report = w1.sync().await;
    assert_eq!(report.errors.len(), 1);
    let report_b = w1b.sync().await;
    assert_eq!(report_b.errors.len(), 100);
    let held = server.count("quarantine").await;
    assert!(held <= 16 + 64, "{held} changes held from two pushes");
    assert!(held > 0);
    // The phones keep every refused edit.
    assert_eq!(
        w1.replica
            .rejected()
            .iter()
            .map(|r| r.changes.len())
            .sum::<usize>(),
        41
    );
}

#[tokio::test]
async fn bad_sync_messages_are_explained_without_parser_internals() {
    let server = county(|_| {}).await;
    let w1 = server.device("w1").await;
    // {"docs": []}, written out by hand.
    let missing_v = vec![0xa1, 0x64, b'd', b'o', b'c', b's', 0x80];
    let whole = request(&w1, vec![]).encode();
    for body in [
        Vec::new(),
        missing_v,
        whole[..whole.len() - 1].to_vec(),
        vec![0xff, 0x00],
    ] {
        let (status, answer) = w1.post_raw(body).await;
        assert_eq!(status, 400);
        let (code, message) = json_code(&answer);
        assert_eq!(code, "bad_sync_message");
        for internal in ["Semantic", "Syntax(", "Io(", "Error {", "kind:", "None"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
}

#[tokio::test]
async fn a_snapshot_that_does_not_load_fails_only_its_document() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let broken = w1.replica.create(&household("g1")).unwrap();
    let fine = w1.replica.create(&household("g1")).unwrap();
    w1.sync().await;
    let sql = "UPDATE documents SET snapshot = $1 WHERE id = $2";
    let garbage = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3];
    if server.db.is_postgres() {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql)
            .bind(&garbage)
            .bind(broken.to_string())
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql)
            .bind(&garbage)
            .bind(broken.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }

    // Pushing to both: the broken one is refused, the other merges.
    for id in [&broken, &fine] {
        w1.replica
            .update::<Household>(id, |h| h.address.unit = "3".into())
            .unwrap();
    }
    let report = w1.try_sync().await.expect("the round is answered");
    let codes: Vec<(&RecordId, &str)> = report
        .errors
        .iter()
        .map(|e| (&e.id, e.code.as_str()))
        .collect();
    assert_eq!(codes, vec![(&broken, "unreadable_document")]);
    let stored: Household = sync_core::doc::read(&server.document(&fine).await.unwrap()).unwrap();
    assert_eq!(stored.address.unit, "3");

    // A new phone receives everything else.
    let mut phone = server.device("w1").await;
    let report = phone.try_sync().await.expect("the feed is answered");
    assert!(phone.replica.document(&fine).is_some());
    assert!(phone.replica.document(&broken).is_none());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.id == broken && e.code == "unreadable_document"),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn a_change_stamped_with_an_extreme_time_is_refused() {
    let server = county(|_| {}).await;
    let w1 = server.device("w1").await.tampered();
    // Two first changes of one new household, by two actors of the
    // device: one made now, one stamped with the largest time there is.
    // Automerge's history keeps times as deltas, which that overflows.
    let second = automerge::ActorId::random();
    let now = sync_core::doc::create(w1.replica.actor().clone(), &household("g1"), 1_764_000_000)
        .unwrap()
        .get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect::<Vec<_>>();
    let mut late = AutoCommit::new().with_actor(second.clone());
    late.put(ROOT, "notes", "x").unwrap();
    late.commit_with(automerge::transaction::CommitOptions::default().with_time(i64::MAX));
    let late = late.get_last_local_change().unwrap().raw_bytes().to_vec();
    let id = RecordId::new(RecordKind::Household);
    let mut req = request(&w1, vec![push(&id, [now, vec![late]].concat())]);
    req.actors.push(ByteBuf::from(second.to_bytes().to_vec()));
    let response = round(&w1, req).await;
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    assert_eq!(
        response.errors[0].code, "invalid_change",
        "{:?}",
        response.errors
    );
    assert!(
        response.errors[0].message.contains("time"),
        "{}",
        response.errors[0].message
    );
    assert!(server.document(&id).await.is_none());
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}
