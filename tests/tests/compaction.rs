//! Change-log compaction: rows older than the retention window go, and
//! nothing a device or a supervisor relies on goes with them. A phone
//! offline across a compaction still converges, a record's history still
//! lists every change, an old change pushed again is neither stored twice
//! nor refused, and compacting again deletes nothing more.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use sync_core::protocol::{DocPush, Heads, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use sync_core::records::{Household, Member};
use sync_core::{MemoryStore, RecordId};
use tests::{Device, TestServer};

const GRID: &str = "cmp.g1";
const BIN: &str = env!("CARGO_BIN_EXE_gridsync-under-test");

async fn server() -> TestServer {
    let server = TestServer::start().await;
    server.org_unit("cmp", None).await;
    server.org_unit(GRID, Some("cmp")).await;
    server.user("w0", "grid_worker", GRID).await;
    server.user("w1", "grid_worker", GRID).await;
    server
}

fn household(name: &str) -> Household {
    let mut h = Household {
        org_unit: GRID.into(),
        notes: "门口有台阶".into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", name));
    h.head = "m1".into();
    h
}

fn edit(phone: &mut Device<MemoryStore>, id: &RecordId, n: usize) {
    phone
        .replica
        .update::<Household>(id, |h| match n % 3 {
            0 => h.address.room = format!("{n}01"),
            1 => h.members[0].phone = format!("1380000{n:04}"),
            _ => h.notes.splice(0, 0, "已走访。"),
        })
        .unwrap();
}

/// Compacts every change received until now, `batch` to a transaction.
async fn compact_all(
    server: &TestServer,
    batch: i64,
) -> gridsync_server::engine::compaction::Report {
    let cutoff = gridsync_server::now_ms() + 1;
    gridsync_server::engine::compaction::compact(
        server.state.engine.storage.as_ref(),
        cutoff,
        batch,
    )
    .await
    .unwrap()
}

async fn history(phone: &Device<MemoryStore>, id: &RecordId) -> Vec<Value> {
    let (status, body) = phone
        .call(Method::GET, &format!("/v1/records/{id}/history"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// History entries by change hash, without the server's side of them
/// (`seq`, `received_at`): hash, times made, actor, user, device, fields.
fn by_hash(entries: &[Value]) -> std::collections::BTreeMap<String, Value> {
    entries
        .iter()
        .map(|entry| {
            let mut entry = entry.clone();
            let map = entry.as_object_mut().unwrap();
            map.remove("seq");
            map.remove("received_at");
            (map["hash"].as_str().unwrap().to_owned(), entry)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_offline_across_compaction_converges_with_one_that_stayed_current() {
    let server = server().await;
    let mut writer = server.device("w0").await;
    let mut current = server.device("w1").await;
    let mut offline = server.device("w1").await;
    let held = writer.replica.create(&household("张伟")).unwrap();
    let other = writer.replica.create(&household("李娜")).unwrap();
    writer.sync().await;
    current.sync().await;
    offline.sync().await;

    // The offline phone stops syncing; the others go on.
    for n in 0..4 {
        edit(&mut writer, &held, n);
        edit(&mut writer, &other, n + 1);
        writer.sync().await;
        current.sync().await;
    }
    let fresh = writer.replica.create(&household("王芳")).unwrap();
    writer.sync().await;
    offline
        .replica
        .update::<Household>(&held, |h| h.members.push(Member::new("m9", "赵敏")))
        .unwrap();

    let report = compact_all(&server, 1000).await;
    assert!(report.removed > 0);
    assert_eq!(server.count("changes").await, 0);

    // One more change after the compaction: above the horizon, a row.
    edit(&mut writer, &other, 9);
    writer.sync().await;
    current.sync().await;
    assert_eq!(server.count("changes").await, 1);

    // The offline phone's cursor predates the horizon: what it holds and
    // what changed comes whole, and merges with its own pending edit.
    let request = offline.replica.sync_request();
    let (status, body) = offline.post_raw(request.encode()).await;
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    for id in [&other, &fresh] {
        let pull = response.docs.iter().find(|d| &d.id == id).unwrap();
        assert_eq!(pull.chunks.len(), 1, "{id}: one snapshot");
        // Chunk type, after the magic bytes and the checksum: 0, a document.
        assert_eq!(pull.chunks[0][8], 0, "{id}: a snapshot chunk");
    }
    offline.replica.apply_response(response).unwrap();
    offline.sync().await;
    writer.sync().await;
    current.sync().await;

    for id in [&held, &other, &fresh] {
        let on_server = server.document(id).await.unwrap();
        for phone in [&writer, &current, &offline] {
            assert_eq!(
                phone.replica.document(id).unwrap().get_heads(),
                on_server.get_heads(),
                "{id}"
            );
            assert_eq!(
                phone.replica.read::<Household>(id).unwrap(),
                current.replica.read::<Household>(id).unwrap()
            );
        }
    }
    assert!(offline.replica.pending().is_empty());
    let merged = current.replica.read::<Household>(&held).unwrap();
    assert_eq!(merged.members.len(), 2);
    assert_eq!(merged.address.room, "301");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_the_same_changes_before_and_after_compaction() {
    let server = server().await;
    let mut w0 = server.device("w0").await;
    let mut w1 = server.device("w1").await;
    let id = w0.replica.create(&household("张伟")).unwrap();
    w0.sync().await;
    w1.sync().await;
    for n in 0..3 {
        edit(&mut w0, &id, n);
        edit(&mut w1, &id, n + 1);
        w0.sync().await;
        w1.sync().await;
    }
    // A cutoff between two syncs: only the older changes are compacted.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = gridsync_server::now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    edit(&mut w0, &id, 4);
    w0.sync().await;
    w1.sync().await;

    let before = history(&w1, &id).await;
    assert!(before.iter().all(|e| e["seq"].is_i64()));
    let older = before
        .iter()
        .filter(|e| e["received_at"].as_i64().unwrap() < cutoff)
        .count();
    assert!(older > 0 && older < before.len());

    let storage = server.state.engine.storage.as_ref();
    let report = gridsync_server::engine::compaction::compact(storage, cutoff, 2)
        .await
        .unwrap();
    assert_eq!(report.removed as usize, older);
    let after = history(&w1, &id).await;
    assert_eq!(by_hash(&after), by_hash(&before));
    // Compacted ones first (in the document's causal order), without the
    // server's side; then the rows, as before, in feed order.
    for (i, entry) in after.iter().enumerate() {
        if i < older {
            assert!(
                entry["seq"].is_null() && entry["received_at"].is_null(),
                "{entry}"
            );
        } else {
            assert_eq!(entry, &before[i]);
        }
    }
    let users: std::collections::BTreeSet<&str> = after[..older]
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["usr_w0", "usr_w1"].into());

    // Everything compacted: the same once more, and a new change after.
    compact_all(&server, 1000).await;
    edit(&mut w0, &id, 5);
    w0.sync().await;
    let last = history(&w1, &id).await;
    assert_eq!(last.len(), before.len() + 1);
    assert_eq!(by_hash(&last[..before.len()]), by_hash(&before));
    assert!(
        last[..before.len()]
            .iter()
            .all(|e| e["received_at"].is_null())
    );
    assert!(last[before.len()]["seq"].is_i64());
    assert!(
        last[before.len()]["fields"]
            .as_array()
            .unwrap()
            .contains(&Value::from("notes"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_pushing_compacted_changes_again_stores_nothing_and_gets_no_error() {
    let server = server().await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household("张伟")).unwrap();
    for n in 0..3 {
        edit(&mut phone, &id, n);
    }
    phone.sync().await;
    let stored = server.count("changes").await;
    assert_eq!(stored, 4);
    compact_all(&server, 1000).await;
    assert_eq!(server.count("changes").await, 0);
    let heads = server.document(&id).await.unwrap().get_heads();

    // As after a reset: every change again, and heads the server knows.
    let document = phone.replica.document(&id).unwrap();
    let request = SyncRequest {
        v: PROTOCOL_VERSION,
        docs: vec![DocPush {
            id: id.clone(),
            heads: Heads(document.get_heads()),
            changes: document
                .get_changes(&[])
                .iter()
                .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
                .collect(),
        }],
        ..Default::default()
    };
    for _ in 0..2 {
        let (status, body) = phone.post_raw(request.encode()).await;
        assert_eq!(status, 200);
        let response = SyncResponse::decode(&body).unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let pull = response.docs.iter().find(|d| d.id == id).unwrap();
        assert_eq!(pull.heads.0, heads);
        assert!(pull.chunks.is_empty());
    }
    assert_eq!(server.count("changes").await, 0);
    assert_eq!(server.count("quarantine").await, 0);
    assert_eq!(server.document(&id).await.unwrap().get_heads(), heads);
    // The phone's own syncs go on as before.
    edit(&mut phone, &id, 4);
    let report = phone.sync().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(server.count("changes").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_in_small_batches_covers_everything_and_is_idempotent() {
    let server = server().await;
    let mut phone = server.device("w0").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = phone
            .replica
            .create(&household(&format!("户主{i}")))
            .unwrap();
        for n in 0..i + 2 {
            edit(&mut phone, &id, n);
        }
        phone.sync().await;
        ids.push(id);
    }
    let total = server.count("changes").await;
    assert_eq!(total, 3 + 2 + 3 + 4);
    let mut tx = server.state.engine.storage.begin(false).await.unwrap();
    let feed_end = tx.max_seq().await.unwrap();
    drop(tx);

    let report = compact_all(&server, 5).await;
    assert_eq!(report.removed, total as u64);
    assert_eq!(report.horizon, feed_end);
    // Three full batches of 5 would take 15 rows; 12 take three batches.
    assert_eq!(report.batches, 3);
    assert_eq!(server.count("changes").await, 0);

    let again = compact_all(&server, 5).await;
    assert_eq!((again.removed, again.horizon), (0, feed_end));
    assert_eq!(again.batches, 1);

    // The command line compacts with the configured retention (30 days:
    // nothing here is that old), or another one.
    let edited = &ids[0];
    edit(&mut phone, edited, 9);
    phone.sync().await;
    let run = |days: &str| {
        let out = std::process::Command::new(BIN)
            .args(["admin", "--database-url", &server.db.url, "compact"])
            .args(
                (!days.is_empty())
                    .then_some(["--retention-days", days])
                    .into_iter()
                    .flatten(),
            )
            .output()
            .expect("run gridsync admin compact");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let kept = run("");
    assert_eq!(kept["removed"], 0, "{kept}");
    assert_eq!(server.count("changes").await, 1);
    let all = run("0");
    assert_eq!(all["removed"], 1, "{all}");
    assert_eq!(server.count("changes").await, 0);

    // A fresh phone gets everything whole, as always.
    let mut fresh = server.device("w1").await;
    fresh.sync().await;
    for id in &ids {
        assert_eq!(
            fresh.replica.document(id).unwrap().get_heads(),
            server.document(id).await.unwrap().get_heads()
        );
    }
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Step {
    /// Phone `p` edits the household offline.
    Edit(usize, usize),
    /// Phone `p` syncs.
    Sync(usize),
    /// The change log is compacted up to now.
    Compact,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..3usize, 0..9usize).prop_map(|(p, n)| Step::Edit(p, n)),
        3 => (0..3usize).prop_map(Step::Sync),
        1 => Just(Step::Compact),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        ..Default::default()
    })]

    /// Whenever compactions fall among three phones' offline edits and
    /// syncs, every phone ends with the server's document, and the history
    /// lists each of its changes once, with a server time exactly for
    /// those still in the change log.
    #[test]
    fn phones_converge_whenever_compaction_runs(
        steps in proptest::collection::vec(step(), 1..24)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = server().await;
            let mut phones = vec![
                server.device("w0").await,
                server.device("w1").await,
                server.device("w1").await,
            ];
            let id = phones[0].replica.create(&household("张伟")).unwrap();
            for phone in &mut phones {
                phone.sync().await;
            }
            for step in &steps {
                match *step {
                    Step::Edit(p, n) => edit(&mut phones[p], &id, n),
                    Step::Sync(p) => {
                        let report = phones[p].sync().await;
                        assert!(report.errors.is_empty(), "{:?}", report.errors);
                    }
                    Step::Compact => {
                        compact_all(&server, 3).await;
                    }
                }
            }
            for _ in 0..2 {
                for phone in &mut phones {
                    phone.sync().await;
                }
            }
            let on_server = server.document(&id).await.unwrap();
            for phone in &phones {
                assert_eq!(
                    phone.replica.document(&id).unwrap().get_heads(),
                    on_server.get_heads()
                );
                assert!(phone.replica.pending().is_empty());
            }
            let entries = history(&phones[0], &id).await;
            let listed: std::collections::BTreeSet<String> = entries
                .iter()
                .map(|e| e["hash"].as_str().unwrap().to_owned())
                .collect();
            let all: std::collections::BTreeSet<String> = on_server
                .get_changes(&[])
                .iter()
                .map(|c| c.hash().to_string())
                .collect();
            assert_eq!(listed.len(), entries.len());
            assert_eq!(listed, all);
            let timed = entries.iter().filter(|e| e["received_at"].is_i64()).count();
            assert_eq!(timed as i64, server.count("changes").await);
            // Compacted ones first.
            assert!(entries.is_sorted_by_key(|e| e["received_at"].is_i64()));
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_loaded_changes_keep_their_device_after_compaction() {
    let server = server().await;
    let w0 = server.device("w0").await;
    // Typed on a replica whose actor no device ever announced.
    let mut typist = sync_core::Replica::open(MemoryStore::default()).unwrap();
    let id = typist.create(&household("张伟")).unwrap();
    typist
        .update::<Household>(&id, |h| h.address.room = "101".into())
        .unwrap();
    let doc = gridsync_server::engine::bulk::BulkDoc {
        id: id.clone(),
        doc: typist.document(&id).unwrap().clone(),
        user_id: w0.user_id.clone(),
        device_id: w0.device_id.clone(),
    };
    gridsync_server::engine::bulk::store_documents(&server.state.engine, [doc], 10)
        .await
        .unwrap();
    let before = history(&w0, &id).await;
    assert_eq!(before.len(), 2);
    compact_all(&server, 1000).await;
    let after = history(&w0, &id).await;
    assert_eq!(by_hash(&after), by_hash(&before));
    for entry in &after {
        assert_eq!(entry["device_id"].as_str(), Some(w0.device_id.as_str()));
        assert_eq!(entry["user_id"].as_str(), Some("usr_w0"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_held_in_quarantine_is_approved_after_its_base_was_compacted() {
    let server = server().await;
    server.org_unit("cmp.g2", Some("cmp")).await;
    let mut phone = server.device("w0").await.tampered();
    let id = phone.replica.create(&household("张伟")).unwrap();
    edit(&mut phone, &id, 0);
    phone.sync().await;
    // Moving the household to another grid is not a grid worker's to do.
    phone
        .replica
        .update::<Household>(&id, |h| h.org_unit = "cmp.g2".into())
        .unwrap();
    let report = phone.try_sync().await.unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(server.count("quarantine").await, 1);
    compact_all(&server, 1000).await;
    assert_eq!(server.count("changes").await, 0);

    let held = server
        .state
        .engine
        .storage
        .quarantined(gridsync_server::domain::QuarantineStatus::Pending)
        .await
        .unwrap();
    let actor = gridsync_server::engine::admin::Actor::cli();
    gridsync_server::engine::admin::decide(&server.state.engine, &actor, &held[0].id, true)
        .await
        .unwrap();
    assert_eq!(server.count("changes").await, 1);
    let merged: Household = sync_core::doc::read(&server.document(&id).await.unwrap()).unwrap();
    assert_eq!(merged.org_unit, "cmp.g2");
    let admin = {
        server.user("boss", "admin", "cmp").await;
        server.device("boss").await
    };
    let entries = history(&admin, &id).await;
    assert_eq!(entries.len(), 3);
    assert!(entries[..2].iter().all(|e| e["seq"].is_null()));
    assert_eq!(entries[2]["user_id"], "usr_w0");
    assert!(
        entries[2]["fields"]
            .as_array()
            .unwrap()
            .contains(&Value::from("org_unit"))
    );
}
