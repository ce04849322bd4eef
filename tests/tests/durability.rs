//! The server process is killed, not asked to stop, while phones sync:
//! every change it acknowledged is there when it starts again.

use std::time::Duration;

use sync_core::automerge::ReadDoc;
use sync_core::records::{Household, Member};
use sync_core::{MemoryStore, RecordId};
use tests::{Device, ServerProcess, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_gridsync-under-test");
const GRID: &str = "demo.t1.c1.g2";

fn household(i: usize) -> Household {
    let mut h = Household {
        org_unit: GRID.into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", format!("住户{i}")));
    h
}

/// Every change the phone holds that is not pending was acknowledged: it
/// must be on the server.
async fn assert_acknowledged_on_server(phone: &Device<MemoryStore>, base: &str) {
    let mut reader = Device::login(base, "reader", MemoryStore::default()).await;
    reader.sync().await;
    let pending = phone.replica.pending();
    let mut checked = 0;
    for id in phone.replica.ids() {
        let doc = phone.replica.document(id).unwrap();
        let unacked = pending.get(id).cloned().unwrap_or_default();
        for change in doc.get_changes(&[]) {
            if unacked.contains(&change.hash()) {
                continue;
            }
            let on_server = reader.replica.document(id);
            assert!(
                on_server.is_some_and(|d| d.get_change_by_hash(&change.hash()).is_some()),
                "acknowledged change {} of {id} is missing after the crash",
                change.hash()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[tokio::test]
async fn a_killed_server_keeps_every_acknowledged_change() {
    let db = TestDb::new().await;
    ServerProcess::create_user(BIN, &db, "w0", GRID);
    ServerProcess::create_user(BIN, &db, "reader", GRID);
    let mut server = ServerProcess::start(BIN, &db);
    let base = server.base.clone();

    let mut phone = Device::login(&base, "w0", MemoryStore::default()).await;
    let mut ids: Vec<RecordId> = Vec::new();
    for i in 0..20 {
        ids.push(phone.replica.create(&household(i)).unwrap());
    }
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());

    // Keep editing and syncing; kill the server in the middle of it.
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
    });
    let mut failed = false;
    for round in 0..2_000 {
        let id = &ids[round % ids.len()];
        phone
            .replica
            .update::<Household>(id, |h| h.address.room = format!("{round}"))
            .unwrap();
        if phone.try_sync().await.is_err() {
            failed = true;
            break;
        }
    }
    killer.await.unwrap();
    assert!(failed, "the server was never seen to die");

    let server = ServerProcess::start(BIN, &db);
    let base = server.base.clone();
    assert_acknowledged_on_server(&phone, &base).await;

    // The phone finishes its sync against the restarted server.
    phone.reconnect(base.clone());
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());
    let mut reader = Device::login(&base, "reader", MemoryStore::default()).await;
    reader.sync().await;
    for id in &ids {
        assert_eq!(
            reader.replica.read::<Household>(id).unwrap(),
            phone.replica.read::<Household>(id).unwrap()
        );
    }
    drop(server);
}
