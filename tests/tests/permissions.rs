//! Who may see and change what, end to end: each attack is refused and
//! stores nothing others can see; each role's phone holds exactly its
//! scope; scope changes drop what may no longer be held; refused edits wait
//! in quarantine until an admin decides.

use reqwest::Method;
use serde_json::json;
use sync_core::records::{Case, CaseEvent, Household, Member, Sensitive};
use sync_core::{MemoryStore, RecordId, RecordKind, SyncReport};
use tests::{Device, TestServer};

/// county c > township t > community cm > grids g1, g2; community cm2 > g3.
async fn county() -> TestServer {
    let server = TestServer::start().await;
    server.small_county().await;
    server
        .users(&[
            ("w1", "grid_worker", "g1"),
            ("w2", "grid_worker", "g2"),
            ("staff", "community_staff", "cm"),
            ("sup", "supervisor", "t"),
            ("med", "mediator", "cm"),
            ("dept", "department", "t"),
            ("admin", "admin", "c"),
        ])
        .await;
    server
}

fn household(grid: &str, name: &str) -> Household {
    let mut h = Household {
        org_unit: grid.into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", name));
    h
}

fn event(id: &str, kind: &str, author: &str) -> CaseEvent {
    CaseEvent {
        attachments: Vec::new(),
        id: id.into(),
        kind: kind.into(),
        author: author.into(),
        device: "d".into(),
        at: 1,
        role: String::new(),
        hlc: 1,
        data: Default::default(),
    }
}

/// Records made by staff (who may make them all) in g1, synced.
struct Fixture {
    server: TestServer,
    staff: Device<MemoryStore>,
    household: RecordId,
    sensitive: RecordId,
    case: RecordId,
}

async fn fixture() -> Fixture {
    let server = county().await;
    let mut staff = server.device("staff").await;
    let household = staff.replica.create(&household("g1", "张伟")).unwrap();
    let mut details = Sensitive {
        household: household.to_string(),
        org_unit: "g1".into(),
        ..Default::default()
    };
    details
        .categories
        .insert("community_correction".into(), true);
    let sensitive = staff.replica.create(&details).unwrap();
    let case = staff
        .replica
        .create(&Case {
            org_unit: "g1".into(),
            title: "邻里纠纷".into(),
            reporter: "usr_staff".into(),
            household: household.to_string(),
            events: vec![event("e1", "report", "usr_staff")],
            ..Default::default()
        })
        .unwrap();
    staff.sync().await;
    Fixture {
        server,
        staff,
        household,
        sensitive,
        case,
    }
}

fn codes(report: &SyncReport) -> Vec<&str> {
    report.errors.iter().map(|e| e.code.as_str()).collect()
}

/// The shared history did not move, and a fresh staff phone sees the
/// records as they were.
async fn assert_unchanged(f: &Fixture, changes_before: i64) {
    assert_eq!(
        f.server.count("changes").await,
        changes_before,
        "something was stored"
    );
    let mut witness = f.server.device("staff").await;
    witness.sync().await;
    assert_eq!(
        witness.replica.read::<Household>(&f.household).unwrap(),
        f.staff.replica.read::<Household>(&f.household).unwrap()
    );
    assert_eq!(
        witness.replica.read::<Case>(&f.case).unwrap(),
        f.staff.replica.read::<Case>(&f.case).unwrap()
    );
}

#[tokio::test]
async fn attacks_from_modified_phones_are_refused_and_nothing_reaches_others() {
    let f = fixture().await;
    let (target_household, target_case) = (f.household.clone(), f.case.clone());

    // Each case: who, what a modified app sends, the code it gets back.
    type Attack = Box<dyn Fn(&mut Device<MemoryStore>, &RecordId, &RecordId)>;
    let cases: Vec<(&str, &str, Attack, &str)> = vec![
        (
            "a grid worker pushes a household of another grid",
            "w2",
            Box::new(|d, _, _| {
                d.replica.create(&household("g1", "冒名")).unwrap();
            }),
            "forbidden",
        ),
        (
            "a grid worker moves a household to another grid",
            "w1",
            Box::new(|d, h, _| {
                d.replica
                    .update::<Household>(h, |h| h.org_unit = "g2".into())
                    .unwrap();
            }),
            "forbidden",
        ),
        (
            "a grid worker records a triage decision reserved to staff",
            "w1",
            Box::new(|d, _, c| {
                d.replica
                    .update::<Case>(c, |c| c.events.push(event("x1", "classify", "usr_w1")))
                    .unwrap();
            }),
            "forbidden",
        ),
        (
            "a grid worker rewrites an earlier event of the case log",
            "w1",
            Box::new(|d, _, c| {
                d.replica
                    .update::<Case>(c, |c| c.events[0].kind = "close".into())
                    .unwrap();
            }),
            "forbidden",
        ),
        (
            "a grid worker records an event in someone else's name",
            "w1",
            Box::new(|d, _, c| {
                d.replica
                    .update::<Case>(c, |c| c.events.push(event("x2", "comment", "usr_staff")))
                    .unwrap();
            }),
            "forbidden",
        ),
        (
            "a grid worker reports a case in another grid",
            "w1",
            Box::new(|d, _, _| {
                d.replica
                    .create(&Case {
                        org_unit: "g3".into(),
                        title: "别处".into(),
                        reporter: "usr_w1".into(),
                        events: vec![event("r1", "report", "usr_w1")],
                        ..Default::default()
                    })
                    .unwrap();
            }),
            "forbidden",
        ),
        (
            "a supervisor changes a household in their area",
            "sup",
            Box::new(|d, h, _| {
                d.replica
                    .update::<Household>(h, |h| h.address.room = "1".into())
                    .unwrap();
            }),
            "forbidden",
        ),
    ];
    for (sentence, user, attack, code) in cases {
        let changes = f.server.count("changes").await;
        let mut phone = f.server.device(user).await;
        phone.sync().await;
        let mut phone = phone.tampered();
        attack(&mut phone, &target_household, &target_case);
        let report = phone.sync().await;
        assert_eq!(codes(&report), vec![code], "{sentence}");
        assert!(
            phone.replica.pending().is_empty(),
            "{sentence}: the session did not settle"
        );
        assert!(
            !phone.replica.rejected().is_empty(),
            "{sentence}: the edit was not kept"
        );
        assert_eq!(
            phone.sync().await.errors,
            vec![],
            "{sentence}: sync did not converge"
        );
        assert_unchanged(&f, changes).await;
    }
    let held = f
        .server
        .state
        .engine
        .storage
        .quarantined(gridsync_server::domain::QuarantineStatus::Pending)
        .await
        .unwrap();
    assert_eq!(held.len(), 7, "every refused change waits for an admin");
}

#[tokio::test]
async fn records_outside_a_phones_scope_cannot_be_reached_any_way() {
    let f = fixture().await;
    let changes = f.server.count("changes").await;

    // Staff's copies, which a thief could have lifted off another phone.
    let staff_case = f.staff.replica.document(&f.case).unwrap().clone();
    let staff_sensitive = f.staff.replica.document(&f.sensitive).unwrap().clone();

    // A grid worker never receives special-population details.
    let mut w1 = f.server.device("w1").await;
    w1.sync().await;
    assert!(w1.replica.document(&f.household).is_some());
    assert!(w1.replica.document(&f.sensitive).is_none());
    assert!(
        w1.replica
            .ids()
            .all(|id| id.kind() != RecordKind::Sensitive)
    );

    // Nor by asking through Automerge's own sync protocol.
    use sync_core::automerge::sync::{State, SyncDoc};
    use sync_core::protocol::{AmSync, PROTOCOL_VERSION, SyncRequest, SyncResponse};
    let probe = sync_core::doc::empty(w1.replica.actor().clone());
    let message = probe.generate_sync_message(&mut State::new()).unwrap();
    let request = SyncRequest {
        v: PROTOCOL_VERSION,
        am_sync: vec![AmSync {
            id: f.sensitive.clone(),
            message: serde_bytes::ByteBuf::from(message.encode()),
        }],
        ..Default::default()
    };
    let (status, body) = w1.post_raw(request.encode()).await;
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    // Answered as for an id the server does not have: nothing of it.
    assert!(response.am_sync.iter().all(|r| r.message.is_empty()));
    assert!(response.docs.iter().all(|d| d.id != f.sensitive));
    let _ = probe.get_heads();

    // A department edits a case not dispatched to it, from a lifted copy.
    let mut dept = f.server.device("dept").await.tampered();
    dept.sync().await;
    assert_eq!(dept.replica.len(), 0);
    let mut lifted = staff_case.fork().with_actor(dept.replica.actor().clone());
    sync_core::doc::edit::<Case>(&mut lifted, 0, |c| c.title = "改了".into()).unwrap();
    let change = lifted.get_last_local_change().unwrap();
    let push = SyncRequest {
        v: PROTOCOL_VERSION,
        actors: vec![serde_bytes::ByteBuf::from(
            dept.replica.actor().to_bytes().to_vec(),
        )],
        docs: vec![sync_core::protocol::DocPush {
            id: f.case.clone(),
            heads: sync_core::protocol::Heads(lifted.get_heads()),
            changes: vec![serde_bytes::ByteBuf::from(change.raw_bytes().to_vec())],
        }],
        ..Default::default()
    };
    let (status, body) = dept.post_raw(push.encode()).await;
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    assert_eq!(response.errors[0].code, "forbidden");
    assert!(
        response.docs.iter().all(|d| d.id != f.case),
        "the case leaked back"
    );
    assert!(response.drop.contains(&f.case));

    // A device sends changes under an actor registered to another device.
    let mut w1_other_phone = f.server.device("w1").await.tampered();
    w1_other_phone.sync().await;
    let mut forged = f
        .staff
        .replica
        .document(&f.household)
        .unwrap()
        .fork()
        .with_actor(w1.replica.actor().clone());
    sync_core::doc::edit::<Household>(&mut forged, 0, |h| h.address.unit = "9".into()).unwrap();
    let change = forged.get_last_local_change().unwrap();
    let push = SyncRequest {
        v: PROTOCOL_VERSION,
        actors: vec![serde_bytes::ByteBuf::from(
            w1.replica.actor().to_bytes().to_vec(),
        )],
        docs: vec![sync_core::protocol::DocPush {
            id: f.household.clone(),
            heads: sync_core::protocol::Heads(forged.get_heads()),
            changes: vec![serde_bytes::ByteBuf::from(change.raw_bytes().to_vec())],
        }],
        ..Default::default()
    };
    let (status, body) = w1_other_phone.post_raw(push.encode()).await;
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    assert_eq!(response.errors[0].code, "unregistered_actor");

    let _ = staff_sensitive;
    assert_unchanged(&f, changes).await;
}

#[tokio::test]
async fn a_revoked_device_is_refused_at_its_next_request() {
    let f = fixture().await;
    let mut phone = f.server.device("w1").await;
    phone.sync().await;
    let mut admin = f.server.device("admin").await;
    admin.sync().await;

    let (status, _) = admin
        .call(
            Method::POST,
            &format!("/v1/devices/{}/revoke", phone.device_id),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // The access token has not expired, but the device is revoked.
    let (status, body) = phone.post_raw(phone.replica.sync_request().encode()).await;
    assert_eq!(status, 401);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "device_revoked");
    let (status, body) = phone
        .call(
            Method::POST,
            "/v1/auth/refresh",
            Some(json!({ "refresh_token": phone.refresh_token })),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("device_revoked"))
    );

    // A worker may not revoke others' devices; the audit log names who did.
    let other = f.server.device("w2").await;
    let (status, _) = other
        .call(
            Method::POST,
            &format!("/v1/devices/{}/revoke", admin.device_id),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, audit) = admin.call(Method::GET, "/v1/admin/audit", None).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "revoke_device"
                && e["target"] == phone.device_id.as_str()
                && e["user_id"] == "usr_admin")
    );
}

#[tokio::test]
async fn each_role_holds_exactly_its_scope_and_drops_what_leaves_it() {
    let f = fixture().await;
    // A case in g1 dispatched to the mediator; another in g3.
    let mut staff = f.staff;
    staff
        .replica
        .update::<Case>(&f.case, |c| {
            c.events.push(CaseEvent {
                hlc: 2,
                ..event("e2", "accept", "usr_staff")
            });
            c.events.push(CaseEvent {
                hlc: 3,
                data: [("class".to_owned(), "small".to_owned())].into(),
                ..event("e3", "classify", "usr_staff")
            });
            c.events.push(CaseEvent {
                hlc: 4,
                data: [("to".to_owned(), "usr_med".to_owned())].into(),
                ..event("e4", "assign", "usr_staff")
            });
        })
        .unwrap();
    staff.sync().await;
    let mut admin = f.server.device("admin").await;
    admin.replica.create(&household("g3", "远方")).unwrap();
    admin.sync().await;

    for user in ["w1", "w2", "staff", "sup", "med", "dept", "admin"] {
        let mut phone = f.server.device(user).await;
        phone.sync().await;
        let held: std::collections::BTreeSet<_> = phone.replica.ids().cloned().collect();
        assert_eq!(
            held,
            f.server.scope_of(&format!("usr_{user}")).await,
            "{user}"
        );
    }

    // The worker is moved from g1 to g2 while a phone holds g1's records.
    let mut w1 = f.server.device("w1").await;
    w1.sync().await;
    assert!(w1.replica.document(&f.household).is_some());
    let (status, _) = admin
        .call(
            Method::PUT,
            "/v1/admin/users/usr_w1/role",
            Some(json!({ "role": "grid_worker", "org_units": ["g2"] })),
        )
        .await;
    assert_eq!(status, 200);
    w1.sync().await;
    let held: std::collections::BTreeSet<_> = w1.replica.ids().cloned().collect();
    assert_eq!(held, f.server.scope_of("usr_w1").await);
    assert!(w1.replica.document(&f.household).is_none());

    // The case is taken from the mediator: their phone drops it.
    let mut med = f.server.device("med").await;
    med.sync().await;
    assert!(med.replica.document(&f.case).is_some());
    staff
        .replica
        .update::<Case>(&f.case, |c| {
            c.events.push(CaseEvent {
                hlc: 5,
                data: [("to".to_owned(), "usr_dept".to_owned())].into(),
                ..event("e5", "assign", "usr_staff")
            })
        })
        .unwrap();
    staff.sync().await;
    med.sync().await;
    assert!(med.replica.document(&f.case).is_none());
    let mut dept = f.server.device("dept").await;
    dept.sync().await;
    assert!(dept.replica.document(&f.case).is_some());
}

#[tokio::test]
async fn edits_made_offline_after_a_move_wait_in_quarantine_until_approved() {
    let f = fixture().await;
    let mut w1 = f.server.device("w1").await;
    w1.sync().await;

    // Offline, the worker notes something on a g1 household...
    w1.replica
        .update::<Household>(&f.household, |h| h.notes.splice(0, 0, "老人摔倒，已送医。"))
        .unwrap();
    // ...while an admin moves them to g2.
    let mut admin = f.server.device("admin").await;
    admin.sync().await;
    let (status, _) = admin
        .call(
            Method::PUT,
            "/v1/admin/users/usr_w1/role",
            Some(json!({ "role": "grid_worker", "org_units": ["g2"] })),
        )
        .await;
    assert_eq!(status, 200);

    let report = w1.sync().await;
    assert_eq!(codes(&report), vec!["forbidden"]);
    assert!(
        w1.replica.document(&f.household).is_none(),
        "dropped from the phone"
    );
    let kept = &w1.replica.rejected()[0];
    assert_eq!(kept.id, f.household);
    assert_eq!(w1.sync().await.errors, vec![], "the session converges");

    // Nobody else sees the note yet; an admin sees it waiting.
    let mut staff = f.server.device("staff").await;
    staff.sync().await;
    assert!(
        !staff
            .replica
            .read::<Household>(&f.household)
            .unwrap()
            .notes
            .as_str()
            .contains("摔倒")
    );
    let (_, held) = admin.call(Method::GET, "/v1/admin/quarantine", None).await;
    let held = held["items"].as_array().unwrap().clone();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["doc_id"], f.household.to_string());
    assert_eq!(held[0]["user_id"], "usr_w1");
    // It is shown as what it would change.
    let changes = held[0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["path"], "notes");
    assert!(
        changes[0]["after"]
            .as_str()
            .unwrap()
            .starts_with("老人摔倒，已送医。"),
        "{changes:?}"
    );
    assert!(!changes[0]["before"].as_str().unwrap().contains("摔倒"));

    // A worker cannot approve; an admin can, and the note is merged.
    let entry = held[0]["id"].as_str().unwrap();
    let (status, _) = f
        .server
        .device("w2")
        .await
        .call(
            Method::POST,
            &format!("/v1/admin/quarantine/{entry}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, decided) = admin
        .call(
            Method::POST,
            &format!("/v1/admin/quarantine/{entry}/approve"),
            None,
        )
        .await;
    assert_eq!(
        (status, decided["status"].as_str()),
        (200, Some("approved"))
    );
    staff.sync().await;
    let notes = staff.replica.read::<Household>(&f.household).unwrap().notes;
    assert!(
        notes.as_str().starts_with("老人摔倒，已送医。"),
        "{}",
        notes.as_str()
    );
    let (status, _) = admin
        .call(
            Method::POST,
            &format!("/v1/admin/quarantine/{entry}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 409, "decided twice");
}

#[tokio::test]
async fn an_admin_administers_only_their_own_area() {
    let f = fixture().await;
    f.server.user("cm_admin", "admin", "cm").await;
    let admin = f.server.device("cm_admin").await;
    let new_user = |unit: &str| json!({ "username": format!("new-{unit}"), "password": "long enough", "role": "grid_worker", "org_units": [unit] });
    let (status, _) = admin
        .call(Method::POST, "/v1/admin/users", Some(new_user("g1")))
        .await;
    assert_eq!(status, 200);
    let (status, body) = admin
        .call(Method::POST, "/v1/admin/users", Some(new_user("g3")))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let move_w1 = json!({ "role": "grid_worker", "org_units": ["g3"] });
    let (status, _) = admin
        .call(Method::PUT, "/v1/admin/users/usr_w1/role", Some(move_w1))
        .await;
    assert_eq!(status, 403);
    let (status, _) = admin
        .call(
            Method::POST,
            "/v1/admin/org-units/g3/move",
            Some(json!({ "parent": "cm" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = admin
        .call(Method::GET, "/v1/admin/quarantine?status=bogus", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_field"))
    );
    let (status, body) = admin.call(Method::GET, "/v1/devices?user_id=", None).await;
    assert_eq!(status, 200, "{body}");

    // Lists show only the admin's area.
    let (_, users) = admin.call(Method::GET, "/v1/admin/users", None).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"w1") && names.contains(&"new-g1"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"admin") && !names.contains(&"sup"),
        "{names:?}"
    );
    let (_, units) = admin.call(Method::GET, "/v1/admin/org-units", None).await;
    let ids: Vec<&str> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["cm", "g1", "g2"]);
}
