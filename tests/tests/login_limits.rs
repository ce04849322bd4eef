//! Signing in under attack: password guessing is slowed per username and
//! per client address, password hashing is bounded, and refresh tokens
//! expire and rotate, a stolen one giving itself away when it is used
//! twice. Each test starts a server of its own, so the limits of one never
//! touch another.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{PASSWORD, TestServer};

async fn server(tweak: impl FnOnce(&mut gridsync_server::config::Config)) -> TestServer {
    let server = TestServer::start_with(tweak).await;
    for (user, unit) in [("w1", "g1"), ("w2", "g1")] {
        server.user(user, "grid_worker", unit).await;
    }
    server
}

/// Tries to sign in; returns the status, the `Retry-After` seconds and the
/// body.
async fn login(server: &TestServer, username: &str, password: &str) -> (u16, Option<u64>, Value) {
    login_at(server.url("/v1/auth/login"), username, password).await
}

async fn login_at(url: String, username: &str, password: &str) -> (u16, Option<u64>, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "username": username, "password": password, "device_name": "p" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    (status, retry, response.json().await.unwrap_or(Value::Null))
}

async fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/v1/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn guessing_one_users_password_is_slowed_down() {
    let server = server(|c| {
        c.login_attempts_per_username_per_minute = 3;
        c.login_attempts_per_address_per_minute = 0;
    })
    .await;
    for _ in 0..3 {
        let (status, _, body) = login(&server, "w1", "wrong guess").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("bad_credentials"))
        );
    }
    // The next attempt is refused before the password is looked at, even
    // the right one.
    let (status, retry, body) = login(&server, "w1", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert!(
        retry.is_some_and(|s| (1..=60).contains(&s)),
        "Retry-After {retry:?}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    assert_eq!(server.count("devices").await, 0);
    // Another user is not affected.
    let (status, _, _) = login(&server, "w2", PASSWORD).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn guessing_from_one_address_is_slowed_down() {
    let server = server(|c| {
        c.login_attempts_per_username_per_minute = 0;
        c.login_attempts_per_address_per_minute = 4;
    })
    .await;
    for name in ["a", "b", "c", "d"] {
        let (status, _, _) = login(&server, name, "wrong guess").await;
        assert_eq!(status, 401);
    }
    let (status, retry, body) = login(&server, "w1", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");
}

#[tokio::test]
async fn password_hashes_run_a_bounded_number_at_a_time() {
    let server = server(|c| {
        c.password_hash_concurrency = 1;
        c.password_hash_wait_ms = 0;
    })
    .await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..16 {
        let password = if i % 2 == 0 { PASSWORD } else { "wrong guess" };
        attempts.spawn(login_at(server.url("/v1/auth/login"), "w1", password));
    }
    let answers = attempts.join_all().await;
    let mut overloaded = 0;
    for (status, retry, body) in &answers {
        match status {
            200 | 401 => {}
            503 => {
                assert_eq!(body["code"], "overloaded", "{body}");
                assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        overloaded > 0,
        "16 logins at once, one hash at a time: {answers:?}"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_device() {
    let server = server(|c| c.refresh_reuse_grace_secs = 0).await;
    let session = tests::login(&server.url(""), "w1", PASSWORD).await;
    let (status, first) = refresh(&server, &session.refresh_token).await;
    assert_eq!(status, 200, "{first}");
    let next = first["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(next, session.refresh_token);
    let (status, second) = refresh(&server, next).await;
    assert_eq!(status, 200, "{second}");
    let newest = second["refresh_token"].as_str().unwrap().to_owned();

    // The first token again: someone holds a copy. The device is revoked,
    // every token of it with it.
    let (status, body) = refresh(&server, &session.refresh_token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("device_revoked")),
        "{body}"
    );
    let (status, body) = refresh(&server, &newest).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("device_revoked")),
        "{body}"
    );
    let mut phone = server.device("w2").await;
    phone.token = second["access_token"].as_str().unwrap().to_owned();
    let (status, body) = phone.call(Method::GET, "/v1/me", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("device_revoked"))
    );

    let admin_session = {
        server.user("adm", "admin", "g1").await;
        server.device("adm").await
    };
    let (_, audit) = admin_session
        .call(Method::GET, "/v1/admin/audit", None)
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "revoke_device"
                && e["target"] == session.device_id.as_str()
                && e["detail"].as_str().unwrap().contains("reused")),
        "{audit}"
    );
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_is_not_taken_for_theft() {
    let server = server(|c| c.refresh_reuse_grace_secs = 60).await;
    let session = tests::login(&server.url(""), "w1", PASSWORD).await;
    // The answer to this refresh is lost on the way to the phone...
    let (status, lost) = refresh(&server, &session.refresh_token).await;
    assert_eq!(status, 200);
    // ...so the phone retries with the token it holds.
    let (status, retried) = refresh(&server, &session.refresh_token).await;
    assert_eq!(status, 200, "{retried}");
    let held = retried["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&server, held).await;
    assert_eq!(status, 200);
    // The token that never reached the phone is dead: whoever presents it
    // has it from elsewhere.
    let (status, body) = refresh(&server, lost["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("device_revoked"))
    );
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let server = server(|c| c.refresh_token_ttl_secs = 1).await;
    let session = tests::login(&server.url(""), "w1", PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = refresh(&server, &session.refresh_token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}
