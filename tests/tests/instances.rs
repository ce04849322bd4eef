//! Several server instances on one database: phones reach whichever answers
//! and see one state; concurrent syncs of one document through different
//! instances lose nothing; a device is told at once of changes made through
//! another instance; an instance killed mid-sync loses nothing acknowledged.

use std::time::Duration;

use sync_core::MemoryStore;
use sync_core::records::{Household, Member};
use tests::{Device, ServerProcess, TestDb, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_gridsync-under-test");
const GRID: &str = "demo.t1.c2.g1";

fn household() -> Household {
    let mut h = Household {
        org_unit: GRID.into(),
        ..Default::default()
    };
    h.members.push(Member::new("m0", "户主"));
    h
}

#[tokio::test]
async fn phones_on_two_instances_see_one_state() {
    let a = TestServer::start().await;
    let b = a.another().await;
    a.user("w0", "grid_worker", GRID).await;
    a.user("w1", "grid_worker", GRID).await;
    let mut on_a = a.device("w0").await;
    let mut on_b = b.device("w1").await;

    let id = on_a.replica.create(&household()).unwrap();
    on_a.sync().await;
    on_b.sync().await;
    on_b.replica
        .update::<Household>(&id, |h| h.address.room = "9".into())
        .unwrap();
    on_a.replica
        .update::<Household>(&id, |h| h.address.unit = "2".into())
        .unwrap();
    on_b.sync().await;
    on_a.sync().await;
    on_b.sync().await;

    // The phone on A moves to B, keeping its cursor.
    on_a.reconnect(b.url(""));
    assert_eq!(on_a.sync().await.received, 0);
    let merged = on_a.replica.read::<Household>(&id).unwrap();
    assert_eq!(
        (merged.address.room.as_str(), merged.address.unit.as_str()),
        ("9", "2")
    );
    assert_eq!(on_b.replica.read::<Household>(&id).unwrap(), merged);
}

/// Edits made by turns through two instances reach a phone asking one of
/// them whole, whether the changes it lacks were written through that
/// instance alone or through both.
#[tokio::test]
async fn a_phone_gets_every_change_written_by_turns_through_two_instances() {
    let a = TestServer::start().await;
    let b = a.another().await;
    for user in ["w0", "w1", "w2"] {
        a.user(user, "grid_worker", GRID).await;
    }
    let mut on_a = a.device("w0").await;
    let mut on_b = b.device("w1").await;
    let mut reader = a.device("w2").await;
    let id = on_a.replica.create(&household()).unwrap();
    on_a.sync().await;
    reader.sync().await;

    for i in 0..9 {
        // Two writes through A, then one through B, and again.
        let writer = if i % 3 == 2 { &mut on_b } else { &mut on_a };
        writer.sync().await;
        writer
            .replica
            .update::<Household>(&id, |h| {
                h.members
                    .push(Member::new(format!("m{}", i + 1), format!("成员{i}")));
                h.notes.splice(0, 0, format!("[{i}]"));
            })
            .unwrap();
        writer.sync().await;
        // The reader asks A after one write, two or three: its missing
        // changes were written through A alone, or through both.
        if [0, 2, 3, 6, 8].contains(&i) {
            reader.sync().await;
            let stored = a.document(&id).await.unwrap();
            let held = reader.replica.document(&id).unwrap();
            assert_eq!(held.get_heads(), stored.get_heads(), "after write {i}");
        }
    }
    let h = reader.replica.read::<Household>(&id).unwrap();
    assert_eq!(h.members.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_syncs_of_one_household_through_two_instances_lose_nothing() {
    let a = TestServer::start().await;
    let b = a.another().await;
    a.user("w", "grid_worker", GRID).await;
    let mut author = a.device("w").await;
    let id = author.replica.create(&household()).unwrap();
    author.sync().await;

    let mut phones = Vec::new();
    for i in 0..50 {
        let server = if i % 2 == 0 { &a } else { &b };
        let mut phone = server.device("w").await;
        phone.sync().await;
        phone
            .replica
            .update::<Household>(&id, |h| {
                h.members
                    .push(Member::new(format!("p{i}"), format!("成员{i}")));
                h.notes.splice(0, 0, format!("[{i}]"));
            })
            .unwrap();
        phones.push(phone);
    }
    let syncs = phones.into_iter().map(|mut phone| {
        tokio::spawn(async move {
            let report = phone.sync().await;
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            assert!(phone.replica.pending().is_empty());
            phone
        })
    });
    let mut phones = Vec::new();
    for sync in syncs.collect::<Vec<_>>() {
        phones.push(sync.await.unwrap());
    }

    let on_server = a.document(&id).await.unwrap();
    let merged: Household = sync_core::doc::read(&on_server).unwrap();
    assert_eq!(merged.members.len(), 51);
    for i in 0..50 {
        assert!(merged.member(&format!("p{i}")).is_some(), "member {i} lost");
        assert!(
            merged.notes.as_str().contains(&format!("[{i}]")),
            "note {i} lost"
        );
    }
    for phone in &mut phones {
        phone.sync().await;
        assert_eq!(
            phone.replica.document(&id).unwrap().get_heads(),
            on_server.get_heads()
        );
    }
}

/// Reads the event stream until an event named `name` arrives.
async fn wait_for_event(stream: &mut reqwest::Response, name: &str) -> String {
    let mut seen = String::new();
    let wait = async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the event stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(at) = seen.find(&format!("event: {name}\n")) {
                return seen[at..].to_owned();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no {name} event"))
}

#[tokio::test]
async fn a_device_on_one_instance_is_told_of_a_change_made_through_another() {
    let a = TestServer::start().await;
    // Notifications cross instances through PostgreSQL; on SQLite there is
    // one instance, which tells its own devices.
    let b = if a.db.is_postgres() {
        Some(a.another().await)
    } else {
        None
    };
    let listener_side = b.as_ref().unwrap_or(&a);
    a.user("w0", "grid_worker", GRID).await;
    a.user("w1", "grid_worker", GRID).await;
    let mut writer = a.device("w0").await;
    let mut reader = listener_side.device("w1").await;

    let mut events = reqwest::Client::new()
        .get(listener_side.url("/v1/events"))
        .bearer_auth(&reader.token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    wait_for_event(&mut events, "ready").await;

    let id = writer.replica.create(&household()).unwrap();
    writer.sync().await;
    let event = wait_for_event(&mut events, "changed").await;
    assert!(event.contains("\"seq\":"), "{event}");

    let report = reader.sync().await;
    assert_eq!(report.received, 1);
    assert!(reader.replica.document(&id).is_some());
}

#[tokio::test]
async fn an_instance_killed_mid_sync_loses_nothing_and_its_phones_finish_through_the_other() {
    let db = TestDb::new().await;
    ServerProcess::create_user(BIN, &db, "w0", GRID);
    ServerProcess::create_user(BIN, &db, "reader", GRID);
    let mut a = ServerProcess::start(BIN, &db);
    let b = ServerProcess::start(BIN, &db);

    let mut phone = Device::login(&a.base, "w0", MemoryStore::default()).await;
    let ids: Vec<_> = (0..10)
        .map(|_| phone.replica.create(&household()).unwrap())
        .collect();
    phone.sync().await;

    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.kill();
    });
    let mut died = false;
    for round in 0..2_000 {
        phone
            .replica
            .update::<Household>(&ids[round % ids.len()], |h| {
                h.address.room = format!("{round}")
            })
            .unwrap();
        if phone.try_sync().await.is_err() {
            died = true;
            break;
        }
    }
    killer.await.unwrap();
    assert!(died, "instance A was never seen to die");

    phone.reconnect(b.base.clone());
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());
    let mut reader = Device::login(&b.base, "reader", MemoryStore::default()).await;
    reader.sync().await;
    for id in &ids {
        assert_eq!(
            reader.replica.document(id).unwrap().get_heads(),
            phone.replica.document(id).unwrap().get_heads()
        );
    }
}
