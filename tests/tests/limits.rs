//! Limits that keep one client from holding the server: slow headers and
//! bodies are cut off, requests past the concurrency limit are refused at
//! once with `503` and `Retry-After`, a device holds only a few event
//! streams and each ends when its token expires; and `/metrics`, off
//! unless configured, shows what the server did.

use std::time::{Duration, Instant};

use gridsync_server::config::Config;
use sync_core::records::{Household, Member};
use tests::{PASSWORD, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GRID: &str = "demo.t1.c1.g1";

/// Tight limits, so that a test sees them in seconds.
fn tight(config: &mut Config) {
    config.header_read_timeout_secs = 2;
    config.body_read_timeout_secs = 2;
}

/// Starts a login request whose body announces 1000 bytes and sends the
/// first few; the rest is up to the caller.
async fn slow_login(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: gridsync\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    stream
}

async fn healthz(server: &TestServer) -> reqwest::StatusCode {
    reqwest::get(server.url("/healthz")).await.unwrap().status()
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_and_the_server_keeps_serving() {
    let server = TestServer::start_with(tight).await;
    let mut stream = slow_login(&server).await;
    let started = Instant::now();
    // A byte every 200 ms: never a long pause, never the whole body.
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let answer = tokio::select! {
        answer = async {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                    break;
                }
            }
            String::from_utf8_lossy(&got).into_owned()
        } => Some(answer),
        () = trickle => None,
        () = tokio::time::sleep(Duration::from_secs(8)) => None,
    };
    let elapsed = started.elapsed();
    let answer = answer.expect("the server still reads a body trickled for 8 s");
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    assert_eq!(healthz(&server).await, 200);
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off() {
    let server = TestServer::start_with(tight).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gridsync\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer
                .write_all(format!("X-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let closed = tokio::select! {
        _ = async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        } => true,
        () = trickle => false,
        () = tokio::time::sleep(Duration::from_secs(8)) => false,
    };
    assert!(closed, "the server still reads headers trickled for 8 s");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(healthz(&server).await, 200);
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_get_503_and_retry_after() {
    let server = TestServer::start_with(|c| c.max_concurrent_requests = 2).await;
    // Two requests in flight, held open by bodies that do not come.
    let held = [slow_login(&server).await, slow_login(&server).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "overloaded", "{body}");
    // Once they end, the server serves again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while healthz(&server).await != 200 {
        assert!(Instant::now() < deadline, "still refused after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `/v1/events` with `token`.
async fn open_events(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url("/v1/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_device_holds_at_most_four_event_streams() {
    let server = TestServer::start().await;
    server.user("w1", "grid_worker", GRID).await;
    let phone = server.device("w1").await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let stream = open_events(&server, &phone.token).await;
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }
    let refused = open_events(&server, &phone.token).await;
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_streams", "{body}");
    assert!(body["message"].as_str().unwrap().contains('4'), "{body}");
    // Another device of the same user is counted on its own.
    let other = server.device("w1").await;
    assert_eq!(open_events(&server, &other.token).await.status(), 200);
}

#[tokio::test]
async fn an_event_stream_ends_when_its_token_expires() {
    let server = TestServer::start_with(|c| c.access_token_ttl_secs = 2).await;
    server.user("w1", "grid_worker", GRID).await;
    let phone = server.device("w1").await;
    let mut stream = open_events(&server, &phone.token).await;
    assert_eq!(stream.status(), 200);
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream is still open 8 s after it opened"
    );
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

const METRICS_TOKEN: &str = "metrics-token-for-the-test";

async fn scrape(server: &TestServer, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_off_unless_configured() {
    let server = TestServer::start().await;
    let (status, body) = scrape(&server, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"code\":\"not_found\""), "{body}");
}

#[tokio::test]
async fn metrics_need_the_token_and_show_what_the_server_did() {
    let server = TestServer::start_with(|c| c.metrics_token = Some(METRICS_TOKEN.into())).await;
    assert_eq!(scrape(&server, None).await.0, 401);
    assert_eq!(scrape(&server, Some("not-the-metrics-token")).await.0, 401);

    server.user("w1", "grid_worker", GRID).await;
    let mut phone = server.device("w1").await;
    let mut household = Household {
        org_unit: GRID.into(),
        ..Default::default()
    };
    household.members.push(Member::new("m1", "张伟"));
    household.head = "m1".into();
    phone.replica.create(&household).unwrap();
    phone.sync().await;
    let refused = reqwest::Client::new()
        .post(server.url("/v1/auth/login"))
        .json(&serde_json::json!({
            "username": "w1",
            "password": format!("{PASSWORD} but wrong"),
            "device_name": "test phone",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let (status, body) = scrape(&server, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let value = |prefix: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // The recorder is the process's: other tests in this binary add to it.
    assert!(value("gridsync_login_failures_total") >= 1.0, "{body}");
    assert!(value("gridsync_documents_merged_total") >= 1.0, "{body}");
    assert!(value("gridsync_changes_merged_total") >= 1.0, "{body}");
    assert!(
        value("gridsync_sync_round_duration_seconds_count") >= 1.0,
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("gridsync_http_requests_total{")
                && l.contains("route=\"/v1/sync\"")
                && l.contains("status=\"200\"")),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("gridsync_http_requests_total{")
                && l.contains("route=\"/v1/auth/login\"")
                && l.contains("status=\"401\"")),
        "{body}"
    );
    assert!(value("gridsync_db_pool_max_connections") >= 1.0, "{body}");
    assert!(body.contains("gridsync_db_pool_idle_connections"), "{body}");
}
