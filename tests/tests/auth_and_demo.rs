//! Logging in, refreshing, the published keys, and the demo county a
//! newcomer starts with.

use gridsync_server::demo;
use sync_core::RecordKind;
use sync_core::records::Household;
use tests::{Device, TestServer};

#[tokio::test]
async fn login_refresh_and_jwks() {
    let server = TestServer::start().await;
    server.user("w0", "grid_worker", "g1").await;
    let http = reqwest::Client::new();

    let cases = [
        (
            serde_json::json!({"username": "w0", "password": "wrong", "device_name": "p"}),
            401,
            "bad_credentials",
        ),
        (
            serde_json::json!({"username": "nobody", "password": tests::PASSWORD, "device_name": "p"}),
            401,
            "bad_credentials",
        ),
        (
            serde_json::json!({"username": "w0", "password": tests::PASSWORD, "device_name": "  "}),
            422,
            "invalid_field",
        ),
        (serde_json::json!({"username": "w0"}), 400, "bad_json"),
        (
            serde_json::json!({"username": "w0", "password": tests::PASSWORD, "device_name": "p", "admin": true}),
            400,
            "bad_json",
        ),
    ];
    for (body, status, code) in cases {
        let response = http
            .post(server.url("/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["code"], code, "{body}");
    }
    let response = http
        .post(server.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.count("devices").await, 0);

    let session = tests::login(&server.url(""), "w0", tests::PASSWORD).await;
    assert_eq!(server.count("devices").await, 1);
    let refreshed: serde_json::Value = http
        .post(server.url("/v1/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": session.refresh_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["device_id"], session.device_id.as_str());
    let rotated = refreshed["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(rotated, session.refresh_token);
    let sync = http
        .post(server.url("/v1/sync"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .header("content-type", sync_core::protocol::CONTENT_TYPE)
        .body(
            sync_core::protocol::SyncRequest {
                v: 1,
                ..Default::default()
            }
            .encode(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 200);

    let bad = http
        .post(server.url("/v1/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let jwks: serde_json::Value = http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    let header = jsonwebtoken::decode_header(&session.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
}

#[tokio::test]
async fn the_demo_county_syncs_to_a_fresh_phone() {
    let server = TestServer::start().await;
    assert!(demo::seed(&server.state).await.unwrap());
    assert!(!demo::seed(&server.state).await.unwrap(), "seeding twice");

    // Every demo user's phone receives exactly its scope, in at most two
    // requests.
    for (username, _, role, _) in demo::DEMO_USERS {
        let mut phone = Device::login_with(
            &server.url(""),
            username,
            demo::DEMO_PASSWORD,
            sync_core::MemoryStore::default(),
        )
        .await;
        phone.sync().await;
        assert!(
            phone.requests <= 2,
            "{username}: {} requests",
            phone.requests
        );
        let user = server
            .state
            .engine
            .storage
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap();
        let expected = server.scope_of(&user.id).await;
        let held: std::collections::BTreeSet<_> = phone.replica.ids().cloned().collect();
        assert_eq!(held, expected, "{username}");
        assert!(!held.is_empty(), "{username} received nothing");
        let kinds = |kind| held.iter().filter(|id| id.kind() == kind).count();
        match role {
            "grid_worker" => {
                assert_eq!(
                    kinds(RecordKind::Household),
                    demo::HOUSEHOLDS_PER_GRID,
                    "{username}"
                );
                assert_eq!(kinds(RecordKind::Sensitive), 0, "{username}");
            }
            "mediator" => assert_eq!(kinds(RecordKind::Household), 0),
            "community_staff" => {
                assert_eq!(kinds(RecordKind::Household), 2 * demo::HOUSEHOLDS_PER_GRID);
                assert!(kinds(RecordKind::Sensitive) > 0);
            }
            "supervisor" => assert_eq!(kinds(RecordKind::Sensitive), 0),
            "admin" => assert_eq!(held.len() as i64, server.count("documents").await),
            _ => {}
        }
        if let Some(id) = held.iter().find(|id| id.kind() == RecordKind::Household) {
            let h: Household = phone.replica.read(id).unwrap();
            assert!(!h.members.is_empty());
        }
        // Who they are, with the names of their area's units.
        let (_, me) = phone.call(reqwest::Method::GET, "/v1/me", None).await;
        assert_eq!(me["display_name"], user.display_name.as_str());
        let units: Vec<&str> = me["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        let mut area: Vec<&str> = me["area"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        area.sort();
        let mut sorted = units.clone();
        sorted.sort();
        assert_eq!(
            sorted, area,
            "{username}: a name for every unit of the area"
        );
        assert!(
            me["units"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| u["name"] != "")
        );
        // The deadlines a phone folds cases with: the server's.
        let deadlines = &server.state.engine.config.deadlines;
        assert_eq!(me["deadlines"], serde_json::to_value(deadlines).unwrap());
    }
}

#[tokio::test]
async fn a_new_signing_key_logs_nobody_out() {
    let a = TestServer::start().await;
    a.user("w0", "grid_worker", "g1").await;
    let before = tests::login(&a.url(""), "w0", tests::PASSWORD).await;

    // A key is added while A runs; B starts afterwards and signs with it.
    let kid = gridsync_server::http::auth::rotate_key(a.state.engine.storage.as_ref())
        .await
        .unwrap();
    let b = a.another().await;
    let after = tests::login(&b.url(""), "w0", tests::PASSWORD).await;
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));

    // Old tokens work on B, new tokens on A (which loads the new key).
    let http = reqwest::Client::new();
    for (server, token) in [(&b, &before.access_token), (&a, &after.access_token)] {
        let response = http
            .get(server.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let jwks: serde_json::Value = http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}
