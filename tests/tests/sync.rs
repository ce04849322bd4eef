//! Offline edits from several phones meet on the server: nothing lost,
//! nothing applied twice, and few requests.

use sync_core::automerge::ReadDoc;
use sync_core::doc;
use sync_core::records::{Household, Member, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind};
use tests::{Device, TestServer};

const GRID: &str = "demo.t1.c1.g1";

async fn server_with_workers(n: usize) -> TestServer {
    let server = TestServer::start().await;
    for i in 0..n {
        server.user(&format!("w{i}"), "grid_worker", GRID).await;
    }
    server
}

fn household() -> Household {
    let mut h = Household {
        org_unit: GRID.into(),
        notes: "门口有台阶".into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", "张伟"));
    h.head = "m1".into();
    h
}

/// The three offline edit sessions of the convergence test, each on its
/// own phone.
fn edit_offline(phone: usize, device: &mut Device<MemoryStore>, id: &RecordId) {
    let r = &mut device.replica;
    match phone {
        0 => {
            // Different field, same field, text at the start.
            r.update::<Household>(id, |h| h.address.room = "301".into())
                .unwrap();
            r.update::<Household>(id, |h| h.address.building = "A栋".into())
                .unwrap();
            r.update::<Household>(id, |h| h.notes.splice(0, 0, "老人独居。"))
                .unwrap();
        }
        1 => {
            r.update::<Household>(id, |h| h.members[0].phone = "13800000001".into())
                .unwrap();
            r.update::<Household>(id, |h| h.address.building = "B栋".into())
                .unwrap();
            r.update::<Household>(id, |h| h.members.push(Member::new("m2", "李娜")))
                .unwrap();
        }
        _ => {
            r.update::<Household>(id, |h| {
                let end = h.notes.as_str().len();
                h.notes.splice(end, 0, "需要扶手。");
            })
            .unwrap();
            r.update::<Household>(id, |h| h.members.push(Member::new("m3", "王芳")))
                .unwrap();
        }
    }
}

#[tokio::test]
async fn three_phones_editing_one_household_offline_converge_in_any_order() {
    let orders: [&[usize]; 4] = [
        &[0, 1, 2, 0, 1, 2],
        &[2, 1, 0, 2, 1, 0],
        &[1, 2, 1, 0, 2, 1, 0],
        &[0, 0, 2, 2, 1, 1, 0, 2],
    ];
    for order in orders {
        let server = server_with_workers(3).await;
        let mut phones = Vec::new();
        for i in 0..3 {
            phones.push(server.device(&format!("w{i}")).await);
        }
        let id = phones[0].replica.create(&household()).unwrap();
        phones[0].sync().await;
        phones[1].sync().await;
        phones[2].sync().await;

        for (i, phone) in phones.iter_mut().enumerate() {
            edit_offline(i, phone, &id);
        }
        for &i in order {
            let report = phones[i].sync().await;
            assert!(report.errors.is_empty(), "{:?}", report.errors);
        }
        // Everyone hears about the last syncs.
        for phone in &mut phones {
            phone.sync().await;
        }

        let on_server = server.document(&id).await.unwrap();
        let merged: Household = doc::read(&on_server).unwrap();
        for phone in &phones {
            assert_eq!(
                phone.replica.document(&id).unwrap().get_heads(),
                on_server.get_heads(),
                "order {order:?}"
            );
            assert_eq!(phone.replica.read::<Household>(&id).unwrap(), merged);
            assert!(phone.replica.pending().is_empty());
        }
        assert_eq!(merged.address.room, "301");
        assert_eq!(merged.members[0].phone, "13800000001");
        let names: Vec<&str> = merged.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(merged.members.len(), 3, "{names:?}");
        assert!(
            names.contains(&"李娜") && names.contains(&"王芳"),
            "{names:?}"
        );
        assert_eq!(merged.notes.as_str(), "老人独居。门口有台阶需要扶手。");
        // The same-field edit: one deterministic winner, and the other
        // value is still in the document.
        assert!(["A栋", "B栋"].contains(&merged.address.building.as_str()));
        let address = on_server
            .get(sync_core::automerge::ROOT, "address")
            .unwrap()
            .unwrap()
            .1;
        assert_eq!(on_server.get_all(&address, "building").unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_retried_request_changes_nothing_twice() {
    let server = server_with_workers(2).await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household()).unwrap();
    phone
        .replica
        .update::<Household>(&id, |h| h.address.room = "502".into())
        .unwrap();

    // The same body sent twice, as after a dropped connection.
    let body = phone.replica.sync_request().encode();
    let (first, _) = phone.post_raw(body.clone()).await;
    let changes = server.count("changes").await;
    let (second, reply) = phone.post_raw(body).await;
    assert_eq!((first, second), (200, 200));
    assert_eq!(server.count("changes").await, changes);
    assert_eq!(changes, 2);

    // The first answer was lost; the phone still holds its changes as
    // pending and sends them again in the next round: nothing doubles.
    assert_eq!(phone.replica.pending()[&id].len(), 2);
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());
    assert_eq!(server.count("changes").await, changes);

    // Applying the stale second answer afterwards is harmless too.
    let stale = sync_core::protocol::SyncResponse::decode(&reply).unwrap();
    phone.replica.apply_response(stale).unwrap();
    let mut other = server.device("w1").await;
    other.sync().await;
    assert_eq!(
        other.replica.read::<Household>(&id).unwrap().address.room,
        "502"
    );
    assert_eq!(server.count("documents").await, 1);
}

#[tokio::test]
async fn a_fresh_phone_gets_500_documents_in_at_most_two_requests() {
    let server = server_with_workers(2).await;
    let mut author = server.device("w0").await;
    for i in 0..500 {
        let mut h = household();
        h.address.room = format!("{i}");
        author.replica.create(&h).unwrap();
    }
    author.sync().await;
    assert_eq!(server.count("documents").await, 500);

    let mut fresh = server.device("w1").await;
    fresh.sync().await;
    assert_eq!(fresh.replica.len(), 500);
    assert!(fresh.requests <= 2, "{} requests", fresh.requests);
    for id in author.replica.ids() {
        assert_eq!(
            fresh.replica.document(id).unwrap().get_heads(),
            author.replica.document(id).unwrap().get_heads()
        );
    }

    // Thirty edits offline, then one request.
    let ids: Vec<RecordId> = fresh.replica.ids().take(30).cloned().collect();
    for (i, id) in ids.iter().enumerate() {
        fresh
            .replica
            .update::<Household>(id, |h| h.address.unit = format!("{i}单元"))
            .unwrap();
    }
    let before = fresh.requests;
    fresh.sync().await;
    assert_eq!(fresh.requests - before, 1);
    assert!(fresh.replica.pending().is_empty());

    // The author hears about all thirty in one request too.
    let before = author.requests;
    let report = author.sync().await;
    assert_eq!(author.requests - before, 1);
    assert_eq!(report.received, 30);
}

#[tokio::test]
async fn a_large_answer_is_paged_and_nothing_is_missed() {
    let server = TestServer::start_with(|c| c.sync_page_docs = 40).await;
    server.user("w0", "grid_worker", GRID).await;
    server.user("w1", "grid_worker", GRID).await;
    let mut author = server.device("w0").await;
    let mut ids = Vec::new();
    for i in 0..100 {
        let mut h = household();
        h.address.room = format!("{i}");
        ids.push(author.replica.create(&h).unwrap());
    }
    author.sync().await;

    let mut reader = server.device("w1").await;
    // Start reading, then let the author edit documents the reader has
    // already been sent, mid-way through the pages.
    let first = reader.replica.sync_request().encode();
    let (status, body) = reader.post_raw(first).await;
    assert_eq!(status, 200);
    let page = sync_core::protocol::SyncResponse::decode(&body).unwrap();
    assert!(page.more);
    assert_eq!(page.docs.len(), 40);
    reader.replica.apply_response(page).unwrap();
    for id in &ids[..5] {
        author
            .replica
            .update::<Household>(id, |h| h.address.unit = "改".into())
            .unwrap();
    }
    author.sync().await;

    reader.sync().await;
    assert_eq!(reader.replica.len(), 100);
    for id in &ids {
        assert_eq!(
            reader.replica.document(id).unwrap().get_heads(),
            author.replica.document(id).unwrap().get_heads()
        );
    }
    assert_eq!(
        reader
            .replica
            .read::<Household>(&ids[0])
            .unwrap()
            .address
            .unit,
        "改"
    );
}

#[tokio::test]
async fn a_phone_restarted_from_its_files_still_sends_what_it_typed() {
    let server = server_with_workers(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sync_core::FileStore::open(dir.path()).unwrap();
    let mut phone = server.device_with_store("w0", store).await;
    let id = phone.replica.create(&household()).unwrap();
    let visit = phone
        .replica
        .create(&Visit {
            attachments: Vec::new(),
            household: id.to_string(),
            org_unit: GRID.into(),
            worker: "usr_w0".into(),
            visited_at: 1_700_000_000_000,
            findings: "独居老人，身体尚可".into(),
            follow_up: true,
            location: String::new(),
        })
        .unwrap();
    let actor = phone.replica.actor().clone();
    drop(phone);

    // The app is killed and started again: same files, same actor, and the
    // edits are still pending.
    let store = sync_core::FileStore::open(dir.path()).unwrap();
    let mut phone = server.device_with_store("w0", store).await;
    assert_eq!(phone.replica.actor(), &actor);
    assert_eq!(phone.replica.pending().len(), 2);
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());

    let mut other = server.device("w1").await;
    other.sync().await;
    assert_eq!(
        other
            .replica
            .read::<Visit>(&visit)
            .unwrap()
            .findings
            .as_str(),
        "独居老人，身体尚可"
    );
    assert_eq!(visit.kind(), RecordKind::Visit);
}

#[tokio::test]
async fn a_phone_speaking_only_automerge_sync_converges() {
    use sync_core::automerge::sync::{Message, State, SyncDoc};
    use sync_core::protocol::{AmSync, PROTOCOL_VERSION, SyncRequest, SyncResponse};

    let server = server_with_workers(2).await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household()).unwrap();
    phone.sync().await;

    // A second client keeps a plain Automerge document and sync state.
    let other = server.device("w1").await;
    let mut doc = doc::empty(sync_core::automerge::ActorId::random());
    let mut state = State::new();
    let mut edited = false;
    for _round in 0..10 {
        if edited && doc.get_heads() == server.document(&id).await.unwrap().get_heads() {
            break;
        }
        if !doc.get_heads().is_empty() && !edited {
            doc::edit::<Household>(&mut doc, 0, |h| h.address.room = "808".into()).unwrap();
            edited = true;
        }
        let Some(message) = doc.generate_sync_message(&mut state) else {
            continue;
        };
        let request = SyncRequest {
            v: PROTOCOL_VERSION,
            actors: vec![serde_bytes::ByteBuf::from(
                doc.get_actor().to_bytes().to_vec(),
            )],
            am_sync: vec![AmSync {
                id: id.clone(),
                message: serde_bytes::ByteBuf::from(message.encode()),
            }],
            ..Default::default()
        };
        let (status, body) = other.post_raw(request.encode()).await;
        assert_eq!(status, 200);
        let response = SyncResponse::decode(&body).unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        // The client never confirms a cursor, so each answer sends the
        // document whole, as stored after the round: also the round that
        // wrote it through the sync message.
        let pulled = response.docs.iter().find(|d| d.id == id);
        let stored = server.document(&id).await.unwrap();
        assert_eq!(pulled.expect("the document").heads.0, stored.get_heads());
        for reply in response.am_sync {
            if !reply.message.is_empty() {
                doc.receive_sync_message(&mut state, Message::decode(&reply.message).unwrap())
                    .unwrap();
            }
        }
    }
    assert!(edited, "the fallback never delivered the document");
    let on_server = server.document(&id).await.unwrap();
    assert_eq!(doc.get_heads(), on_server.get_heads());
    phone.sync().await;
    assert_eq!(
        phone.replica.read::<Household>(&id).unwrap().address.room,
        "808"
    );
}

/// A plain Automerge client of the fallback protocol, speaking through
/// `device`: its own copy of document `id` and its sync state.
struct AmClient {
    id: RecordId,
    doc: sync_core::automerge::Automerge,
    state: sync_core::automerge::sync::State,
}

impl AmClient {
    /// A client starting from the server's copy of `id`, in sync with it
    /// after one exchange.
    async fn new(server: &TestServer, device: &Device<MemoryStore>, id: &RecordId) -> Self {
        let mut doc = server.document(id).await.unwrap();
        doc.set_actor(sync_core::automerge::ActorId::random());
        let mut client = Self {
            id: id.clone(),
            doc,
            state: sync_core::automerge::sync::State::new(),
        };
        let request = client.request(sync_core::protocol::SyncRequest::default());
        client.answer(&device.post_raw(request.encode()).await);
        client
    }

    /// `request` carrying this client's next sync message.
    fn request(
        &mut self,
        mut request: sync_core::protocol::SyncRequest,
    ) -> sync_core::protocol::SyncRequest {
        use sync_core::automerge::sync::SyncDoc;
        let message = self
            .doc
            .generate_sync_message(&mut self.state)
            .expect("something to say");
        request.v = sync_core::protocol::PROTOCOL_VERSION;
        request.actors.push(serde_bytes::ByteBuf::from(
            self.doc.get_actor().to_bytes().to_vec(),
        ));
        request.am_sync.push(sync_core::protocol::AmSync {
            id: self.id.clone(),
            message: serde_bytes::ByteBuf::from(message.encode()),
        });
        request
    }

    /// Takes the server's answer to a request from [`AmClient::request`].
    fn answer(&mut self, (status, body): &(u16, Vec<u8>)) {
        use sync_core::automerge::sync::{Message, SyncDoc};
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        let response = sync_core::protocol::SyncResponse::decode(body).unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        for reply in response.am_sync {
            if !reply.message.is_empty() {
                self.doc
                    .receive_sync_message(&mut self.state, Message::decode(&reply.message).unwrap())
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_push_and_a_sync_message_for_one_document_in_one_round_are_both_kept() {
    let server = server_with_workers(1).await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household()).unwrap();
    phone.sync().await;
    let mut client = AmClient::new(&server, &phone, &id).await;

    // The phone and the Automerge client each add a member, and both go
    // up in one request: merged against the same stored copy, the second
    // written must be merged again onto the first.
    phone
        .replica
        .update::<Household>(&id, |h| h.members.push(Member::new("m2", "李娜")))
        .unwrap();
    doc::edit::<Household>(&mut client.doc, 0, |h| {
        h.members.push(Member::new("m3", "王强"))
    })
    .unwrap();
    let request = client.request(phone.replica.sync_request());
    client.answer(&phone.post_raw(request.encode()).await);

    let stored = server.document(&id).await.unwrap();
    let names: Vec<String> = doc::read::<Household>(&stored)
        .unwrap()
        .members
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"李娜".to_string()) && names.contains(&"王强".to_string()));
    assert_eq!(server.count("proj_members").await, 3);
}

#[tokio::test]
async fn sync_messages_and_pushes_racing_on_one_household_lose_nothing() {
    let server = server_with_workers(2).await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household()).unwrap();
    phone.sync().await;

    // Six Automerge clients and six phones, each adding one member, all
    // at once: merged outside the write lock against the same stored
    // copy, each must be merged again onto whatever was written first.
    let mut clients = Vec::new();
    let mut phones = Vec::new();
    for i in 0..6 {
        let mut device = server.device(&format!("w{}", i % 2)).await;
        device.sync().await;
        clients.push((AmClient::new(&server, &device, &id).await, device));
        let mut other = server.device(&format!("w{}", i % 2)).await;
        other.sync().await;
        phones.push(other);
    }
    let mut requests = Vec::new();
    for (i, (client, device)) in clients.iter_mut().enumerate() {
        doc::edit::<Household>(&mut client.doc, 0, |h| {
            h.members
                .push(Member::new(format!("a{i}"), format!("客户端{i}")))
        })
        .unwrap();
        requests.push((device, client.request(Default::default()).encode()));
    }
    for (i, other) in phones.iter_mut().enumerate() {
        other
            .replica
            .update::<Household>(&id, |h| {
                h.members
                    .push(Member::new(format!("p{i}"), format!("手机{i}")))
            })
            .unwrap();
    }
    let pushes = phones.iter().map(|p| {
        let body = p.replica.sync_request().encode();
        async move { p.post_raw(body).await }
    });
    let messages = requests
        .iter()
        .map(|(device, body)| async move { device.post_raw(body.clone()).await });
    let (pushed, sent) = futures_util::future::join(
        futures_util::future::join_all(pushes),
        futures_util::future::join_all(messages),
    )
    .await;
    for (status, body) in pushed.iter().chain(&sent) {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        let answer = sync_core::protocol::SyncResponse::decode(body).unwrap();
        assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    }

    let stored = server.document(&id).await.unwrap();
    let mut ids: Vec<String> = doc::read::<Household>(&stored)
        .unwrap()
        .members
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..6)
        .flat_map(|i| [format!("a{i}"), format!("p{i}")])
        .chain(["m1".to_string()])
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(server.count("proj_members").await, 13);
}

#[tokio::test]
async fn a_backlog_larger_than_one_request_goes_up_in_several() {
    let server = server_with_workers(2).await;
    let mut phone = server.device("w0").await;
    phone.replica.set_max_request_bytes(2_000);
    for i in 0..40 {
        let mut h = household();
        h.notes = format!("第{i}户：{}", "情况说明。".repeat(20)).into();
        phone.replica.create(&h).unwrap();
    }
    phone.sync().await;
    assert!(phone.requests > 2, "{} requests", phone.requests);
    assert!(phone.replica.pending().is_empty());
    assert_eq!(server.count("documents").await, 40);
}

#[tokio::test]
async fn a_server_restored_from_an_older_backup_gets_the_lost_changes_back_from_the_phones() {
    let server = server_with_workers(2).await;
    if server.db.is_postgres() {
        eprintln!("restoring a backup is exercised on SQLite");
        return;
    }
    let mut phone = server.device("w0").await;
    let early = phone.replica.create(&household()).unwrap();
    phone.sync().await;

    // A consistent backup, taken while the server runs.
    let backup = server.db.dir.path().join("backup.db");
    let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
    sqlx::query(&format!("VACUUM INTO '{}'", backup.display()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // Work acknowledged after the backup...
    let late = phone.replica.create(&household()).unwrap();
    phone
        .replica
        .update::<Household>(&early, |h| h.address.room = "after backup".into())
        .unwrap();
    phone.sync().await;
    assert!(phone.replica.pending().is_empty());
    let _keep_backup = server.db.clone();
    server.stop().await;

    // ...is lost when the backup is restored.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_file = restored_dir.path().join("gridsync.db");
    std::fs::copy(&backup, &restored_file).unwrap();
    let restored = TestServer::start_with(|c| {
        c.database_url = Some(format!("sqlite://{}", restored_file.display()));
    })
    .await;
    assert!(restored.document(&late).await.is_none());

    // The phone edits once more and syncs: the server answers with its older
    // heads, and the phone offers again everything they lack.
    phone.reconnect(restored.url(""));
    phone
        .replica
        .update::<Household>(&early, |h| h.address.unit = "3".into())
        .unwrap();
    let report = phone.sync().await;
    assert!(phone.replica.pending().is_empty(), "{report:?}");
    let merged: Household = doc::read(&restored.document(&early).await.unwrap()).unwrap();
    assert_eq!(merged.address.room, "after backup");
    assert_eq!(merged.address.unit, "3");
    assert!(restored.document(&late).await.is_some());
}

#[tokio::test]
async fn two_phones_adding_a_member_with_the_same_id_both_keep_their_edit() {
    let server = server_with_workers(2).await;
    let mut a = server.device("w0").await;
    let mut b = server.device("w1").await;
    let id = a.replica.create(&household()).unwrap();
    a.sync().await;
    b.sync().await;
    a.replica
        .update::<Household>(&id, |h| h.members.push(Member::new("m2", "李娜")))
        .unwrap();
    b.replica
        .update::<Household>(&id, |h| h.members.push(Member::new("m2", "王芳")))
        .unwrap();
    assert!(a.sync().await.errors.is_empty());
    assert!(
        b.sync().await.errors.is_empty(),
        "the second edit was refused"
    );
    a.sync().await;
    let merged = a.replica.read::<Household>(&id).unwrap();
    let names: Vec<&str> = merged.members.iter().map(|m| m.name.as_str()).collect();
    assert!(
        names.contains(&"李娜") && names.contains(&"王芳"),
        "{names:?}"
    );
    // The record stays editable.
    a.replica
        .update::<Household>(&id, |h| h.address.room = "9".into())
        .unwrap();
    assert!(a.sync().await.errors.is_empty());
    // Both items are listed for review, each with what it holds.
    let (status, conflicts) = a
        .call(
            reqwest::Method::GET,
            &format!("/v1/records/{id}/conflicts"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let duplicate = &conflicts[0];
    assert_eq!(duplicate["path"], "members/m2", "{conflicts}");
    let names: Vec<&str> = duplicate["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"李娜") && names.contains(&"王芳"),
        "{names:?}"
    );
    // Not a field to overwrite: someone edits the record to keep one.
    let body = serde_json::json!({ "path": "members/m2", "value": "x" });
    let path = format!("/v1/records/{id}/conflicts/resolve");
    let (status, answer) = a.call(reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("not_applicable"))
    );
}

/// A retry racing the round it repeats (the phone gave up waiting, the
/// first is still merging): every copy is answered, and each change is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_round_sent_several_times_at_once_stores_each_change_once() {
    let server = server_with_workers(1).await;
    let mut phone = server.device("w0").await;
    let id = phone.replica.create(&household()).unwrap();
    phone.sync().await;
    for i in 0..10 {
        phone
            .replica
            .update::<Household>(&id, |h| {
                h.members
                    .push(Member::new(format!("m{}", i + 2), format!("成员{i}")))
            })
            .unwrap();
        phone
            .replica
            .create(&Visit {
                attachments: Vec::new(),
                household: id.to_string(),
                org_unit: GRID.into(),
                worker: phone.user_id.clone(),
                visited_at: 1_700_000_000_000 + i,
                findings: format!("第{i}次走访").into(),
                follow_up: false,
                location: String::new(),
            })
            .unwrap();
    }
    let changes_before = server.count("changes").await;
    let body = phone.replica.sync_request().encode();
    let copies = (0..8).map(|_| {
        let (phone, body) = (&phone, body.clone());
        async move { phone.post_raw(body).await }
    });
    let answers = futures_util::future::join_all(copies).await;
    let heads = phone.replica.document(&id).unwrap().get_heads();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        let answer = sync_core::protocol::SyncResponse::decode(body).unwrap();
        assert!(answer.errors.is_empty(), "{:?}", answer.errors);
        let pushed = answer
            .docs
            .iter()
            .find(|d| d.id == id)
            .expect("acknowledged");
        assert_eq!(
            pushed.heads.0, heads,
            "every copy acknowledges the same heads"
        );
    }
    // Ten members and ten visits: one change each.
    assert_eq!(server.count("changes").await - changes_before, 20);
    assert_eq!(server.count("proj_visits").await, 10);
    let stored = server.document(&id).await.unwrap();
    assert_eq!(stored.get_heads(), heads);

    // The phone takes any one answer; its next round finds nothing to do.
    let (_, body) = &answers[3];
    phone
        .replica
        .apply_response(sync_core::protocol::SyncResponse::decode(body).unwrap())
        .unwrap();
    assert!(phone.replica.pending().is_empty());
    let report = phone.sync().await;
    assert!(report.errors.is_empty());
    assert_eq!(server.count("changes").await - changes_before, 20);
}

/// The household, member and conflict rows, each as one line of text.
async fn household_rows(server: &TestServer) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT id || '|' || building || '|' || room || '|' || head_name || '|' \
            || CAST(member_count AS TEXT) || '|' || search FROM proj_households ORDER BY 1",
        "SELECT household_id || '|' || CAST(position AS TEXT) || '|' || member_id || '|' \
            || name || '|' || phone FROM proj_members ORDER BY 1",
        "SELECT doc_id || '|' || path || '|' || shown || '|' || vals FROM proj_conflicts \
            ORDER BY 1",
    ] {
        rows.extend(server.texts(sql).await);
    }
    rows
}

/// Rounds of three phones editing one household, with a desk edit between
/// them, leave the rows that a reindex computes from the stored snapshot:
/// each round updates only the rows its merge changed, from the rows the
/// record had before.
#[tokio::test]
async fn rows_written_round_by_round_are_those_a_reindex_computes() {
    let server = server_with_workers(3).await;
    let mut phones = Vec::new();
    for i in 0..3 {
        phones.push(server.device(&format!("w{i}")).await);
    }
    let id = phones[0].replica.create(&household()).unwrap();
    for phone in &mut phones {
        phone.sync().await;
    }
    for (i, phone) in phones.iter_mut().enumerate() {
        edit_offline(i, phone, &id);
    }
    for phone in &mut phones {
        let report = phone.sync().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    // The desk settles the conflicting building; a phone edits after it.
    let desk = server.device("w0").await;
    let (status, body) = desk
        .call(
            reqwest::Method::POST,
            &format!("/v1/records/{id}/conflicts/resolve"),
            Some(serde_json::json!({"path": "address/building", "value": "C栋"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    phones[1]
        .replica
        .update::<Household>(&id, |h| h.members.push(Member::new("m4", "赵强")))
        .unwrap();
    for phone in &mut phones {
        phone.sync().await;
    }
    let merged: Household = doc::read(&server.document(&id).await.unwrap()).unwrap();
    assert_eq!(merged.address.building, "C栋");
    assert_eq!(merged.members.len(), 4);

    let rows = household_rows(&server).await;
    assert!(rows.iter().any(|r| r.contains("赵强")), "{rows:?}");
    gridsync_server::engine::reindex::reindex(
        &*server.state.engine.storage,
        &server.state.engine.config.deadlines,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(household_rows(&server).await, rows);
}
