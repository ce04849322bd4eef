//! Admins act only within their area, on the command line's entries too:
//! a held change to a record the server does not hold yet is decided by the
//! admins of the unit it would belong to, the audit log shows each admin
//! the entries that concern their area, and the quarantine list is paged.

use std::collections::BTreeSet;

use gridsync_server::http::admin::{self, Actor, NewOrgUnit, NewUser};
use reqwest::Method;
use serde_json::{Value, json};
use sync_core::records::{Case, CaseEvent};
use sync_core::{MemoryStore, RecordId};
use tests::{Device, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_gridsync-under-test");

/// county c > township t > communities cm (grids g1, g2) and cm2 (g3);
/// an admin for each community and one for the county.
async fn county() -> TestServer {
    let server = TestServer::start().await;
    server.small_county().await;
    server
        .users(&[
            ("w1", "grid_worker", "g1"),
            ("w3", "grid_worker", "g3"),
            ("adm_cm", "admin", "cm"),
            ("adm_cm2", "admin", "cm2"),
            ("root", "admin", "c"),
        ])
        .await;
    server
}

/// A case reported by `reporter` in `grid`.
fn case(grid: &str, reporter: &str, title: &str) -> Case {
    Case {
        org_unit: grid.into(),
        title: title.into(),
        reporter: reporter.into(),
        events: vec![CaseEvent {
            attachments: Vec::new(),
            id: "r1".into(),
            kind: "report".into(),
            author: reporter.into(),
            device: "d".into(),
            at: 1,
            role: String::new(),
            hlc: 1,
            data: Default::default(),
        }],
        ..Default::default()
    }
}

/// `phone`, skipping its own policy check, reports `n` cases in `grid`,
/// one push each; the server holds them all back.
async fn held_reports(phone: &mut Device<MemoryStore>, grid: &str, n: usize) -> Vec<RecordId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = phone
            .replica
            .create(&case(grid, &phone.user_id.clone(), &format!("别处 {i}")))
            .unwrap();
        let report = phone.sync().await;
        let codes: Vec<&str> = report.errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, vec!["forbidden"]);
        ids.push(id);
    }
    ids
}

async fn listed(admin: &Device<MemoryStore>) -> Vec<Value> {
    let (status, page) = admin
        .call(Method::GET, "/v1/admin/quarantine?limit=1000", None)
        .await;
    assert_eq!(status, 200, "{page}");
    // (Paging itself is checked below.)
    page["items"]
        .as_array()
        .or(page.as_array())
        .unwrap_or_else(|| panic!("{page}"))
        .clone()
}

#[tokio::test]
async fn a_held_new_record_is_decided_only_by_admins_of_the_unit_it_would_belong_to() {
    let server = county().await;
    // w1 (in cm) reports a case in g3 (in cm2): the record is not stored.
    let mut w1 = server.device("w1").await.tampered();
    let ids = held_reports(&mut w1, "g3", 1).await;
    let case_id = ids[0].to_string();
    assert!(server.document(&ids[0]).await.is_none());

    let held = server
        .state
        .engine
        .storage
        .quarantined(gridsync_server::domain::QuarantineStatus::Pending)
        .await
        .unwrap();
    let entry = held[0].id.clone();

    let adm_cm = server.device("adm_cm").await;
    let adm_cm2 = server.device("adm_cm2").await;
    // The sender's admin may neither approve nor discard it: the record
    // would be cm2's.
    for action in ["approve", "discard"] {
        let (status, body) = adm_cm
            .call(
                Method::POST,
                &format!("/v1/admin/quarantine/{entry}/{action}"),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{action} by the admin of another area: {body}"
        );
    }
    // Nor see it; cm2's admin sees it and may decide.
    assert!(
        listed(&adm_cm)
            .await
            .iter()
            .all(|e| e["doc_id"] != case_id.as_str()),
        "listed to the admin of the sender's area"
    );
    assert!(
        listed(&adm_cm2)
            .await
            .iter()
            .any(|e| e["id"] == entry.as_str()),
        "not listed to the admin of cm2"
    );
    let (status, body) = adm_cm2
        .call(
            Method::POST,
            &format!("/v1/admin/quarantine/{entry}/discard"),
            None,
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("discarded")));
}

fn audit_targets(entries: &Value) -> BTreeSet<String> {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("{entries}"))
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn each_admin_reads_only_the_audit_entries_of_their_area() {
    let server = county().await;
    let state = &server.state;
    let cli = Actor::cli();
    // The command line adds a grid and a user to cm2, one user to cm, and
    // a signing key, which concerns everyone.
    admin::create_org_unit(
        state,
        &cli,
        NewOrgUnit {
            id: "g4".into(),
            parent: Some("cm2".into()),
            kind: "grid".into(),
            name: "第4网格".into(),
        },
    )
    .await
    .unwrap();
    let new_user = |name: &str, unit: &str| NewUser {
        username: name.into(),
        display_name: None,
        password: "long enough".into(),
        role: "grid_worker".into(),
        org_units: vec![unit.into()],
    };
    let in_cm2 = admin::create_user(state, &cli, new_user("w4", "g4"))
        .await
        .unwrap();
    let in_cm = admin::create_user(state, &cli, new_user("w2", "g2"))
        .await
        .unwrap();
    let kid = gridsync_server::http::auth::rotate_key(state.engine.storage.as_ref())
        .await
        .unwrap();
    state
        .engine
        .storage
        .audit(&gridsync_server::storage::AuditRow {
            at: gridsync_server::now_ms(),
            user_id: "cli".into(),
            device_id: None,
            action: "rotate_key".into(),
            target: kid.clone(),
            detail: String::new(),
        })
        .await
        .unwrap();
    // The county's admin resets a password in cm.
    let root = server.device("root").await;
    let (status, _) = root
        .call(
            Method::PUT,
            "/v1/admin/users/usr_w1/password",
            Some(json!({ "password": "another long one" })),
        )
        .await;
    assert_eq!(status, 200);

    let seen = |entries: &Value| audit_targets(entries);
    let adm_cm = server.device("adm_cm").await;
    let (status, entries) = adm_cm.call(Method::GET, "/v1/admin/audit", None).await;
    assert_eq!(status, 200, "{entries}");
    let cm = seen(&entries);
    for other in [
        "create_org_unit:g4".to_owned(),
        format!("create_user:{}", in_cm2.id),
        format!("rotate_key:{kid}"),
    ] {
        assert!(!cm.contains(&other), "cm's admin reads {other}: {cm:?}");
    }
    for own in [
        format!("create_user:{}", in_cm.id),
        "reset_password:usr_w1".to_owned(),
    ] {
        assert!(cm.contains(&own), "cm's admin misses {own}: {cm:?}");
    }

    let adm_cm2 = server.device("adm_cm2").await;
    let (_, entries) = adm_cm2.call(Method::GET, "/v1/admin/audit", None).await;
    let cm2 = seen(&entries);
    assert!(cm2.contains("create_org_unit:g4"), "{cm2:?}");
    assert!(
        cm2.contains(&format!("create_user:{}", in_cm2.id)),
        "{cm2:?}"
    );
    assert!(!cm2.contains("reset_password:usr_w1"), "{cm2:?}");
    assert!(!cm2.contains(&format!("rotate_key:{kid}")), "{cm2:?}");

    // The county's admin reads everything, the signing key included, and
    // each entry says which org units it concerns.
    let (_, entries) = root.call(Method::GET, "/v1/admin/audit", None).await;
    let all = seen(&entries);
    assert!(all.is_superset(&cm) && all.is_superset(&cm2), "{all:?}");
    assert!(all.contains(&format!("rotate_key:{kid}")), "{all:?}");
    let g4 = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "create_org_unit" && e["target"] == "g4")
        .unwrap();
    assert_eq!(g4["org_units"], json!(["g4"]));
}

#[tokio::test]
async fn the_quarantine_list_is_paged_through_the_api_and_the_command_line() {
    let server = county().await;
    let mut w3 = server.device("w3").await.tampered();
    let held = held_reports(&mut w3, "g1", 5).await;
    let root = server.device("root").await;

    let mut seen = Vec::new();
    let mut path = "/v1/admin/quarantine?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = root.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|e| e["doc_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/admin/quarantine?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = held.iter().map(ToString::to_string).collect();
    assert_eq!(seen, expected, "every entry once, oldest first");

    for bad in ["limit=0", "limit=1001", "cursor=bogus"] {
        let (status, body) = root
            .call(Method::GET, &format!("/v1/admin/quarantine?{bad}"), None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_field")),
            "{bad}: {body}"
        );
    }

    // The command line pages the same way.
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(["admin", "--database-url", &server.db.url, "list-quarantine"])
            .args(args)
            .output()
            .expect("run gridsync admin");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON page")
    };
    let first = run(&["--limit", "3"]);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = run(&["--limit", "3", "--cursor", &cursor]);
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest.get("next_cursor").is_none(), "{rest}");
    let all = run(&[]);
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
}
