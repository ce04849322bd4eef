//! Bad input gets a clear error (status, machine-readable code, message),
//! stores nothing, and leaves the server up for everyone else.

use std::io::Write;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use gridsync_server::storage::DocWrite;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_bytes::ByteBuf;
use sync_core::automerge::transaction::Transactable;
use sync_core::automerge::{ActorId, AutoCommit, Automerge, ChangeHash, ObjType, ROOT};
use sync_core::protocol::{
    CONTENT_TYPE, DocError, DocPush, Heads, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use sync_core::records::{Case, CaseEvent, HLC_RANGE, Household, Visit};
use sync_core::shape::MAX_DEPTH;
use sync_core::{RecordId, RecordKind, doc};
use tests::TestServer;

const GRID: &str = "demo.t1.c1.g1";
const LIMIT: usize = 64 * 1024;

struct Env {
    server: TestServer,
    http: reqwest::Client,
    token: String,
}

async fn env() -> Env {
    let server = TestServer::start_with(|c| c.max_body_bytes = LIMIT).await;
    server.user("w0", "grid_worker", GRID).await;
    let session = tests::login(&server.url(""), "w0", tests::PASSWORD).await;
    Env {
        server,
        http: reqwest::Client::new(),
        token: session.access_token,
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    dev: &'a str,
    role: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims for the real user and device of `token`.
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

impl Env {
    async fn post(&self, token: Option<&str>, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut request = self
            .http
            .post(self.server.url("/v1/sync"))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    }

    /// A token for the same user and device as the real one, with
    /// `edit` applied to its claims and signed with `key` as `alg`.
    fn forge(
        &self,
        alg: Algorithm,
        key: &EncodingKey,
        kid: Option<String>,
        edit: impl FnOnce(&mut Claims),
    ) -> String {
        let real = claims_of(&self.token);
        let (sub, dev) = (real["sub"].as_str().unwrap(), real["dev"].as_str().unwrap());
        let mut claims = Claims {
            sub,
            dev,
            role: "admin",
            iss: "gridsync",
            aud: "gridsync",
            iat: now(),
            exp: now() + 600,
        };
        edit(&mut claims);
        let mut header = Header::new(alg);
        header.kid = kid;
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    async fn server_key(&self) -> (String, EncodingKey, Vec<u8>) {
        let keys = self
            .server
            .state
            .engine
            .storage
            .signing_keys()
            .await
            .unwrap();
        let k = &keys[0];
        (
            k.kid.clone(),
            EncodingKey::from_ed_der(&k.private_der),
            k.public_key.clone(),
        )
    }
}

/// The one actor every hand-made request here writes with.
fn actor() -> ActorId {
    ActorId::from(&b"bad-input-tests!"[..])
}

fn valid_request() -> SyncRequest {
    let h = Household {
        org_unit: GRID.into(),
        ..Default::default()
    };
    let doc = doc::create(actor(), &h, 0).unwrap();
    SyncRequest {
        v: PROTOCOL_VERSION,
        actors: vec![ByteBuf::from(actor().to_bytes().to_vec())],
        docs: vec![DocPush {
            id: RecordId::new(RecordKind::Household),
            heads: Heads(doc.get_heads()),
            changes: doc
                .get_changes(&[])
                .iter()
                .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                .collect(),
        }],
        ..Default::default()
    }
}

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not a JSON error: {}", String::from_utf8_lossy(body)));
    assert!(
        value["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    value["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn bad_credentials_are_refused_and_store_nothing() {
    let env = env().await;
    let (kid, server_key, public_key) = env.server_key().await;
    let other_key = {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
    };
    let alg_none = {
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": kid });
        let mut claims = claims_of(&env.token);
        claims["exp"] = (now() + 600).into();
        format!("{}.{}.", b64(&header), b64(&claims))
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token at all", None),
        ("a token that is not a JWT", Some("not-a-token".into())),
        (
            "a token signed with another key under the server's kid",
            Some(env.forge(Algorithm::EdDSA, &other_key, Some(kid.clone()), |_| {})),
        ),
        (
            "a token without a kid",
            Some(env.forge(Algorithm::EdDSA, &server_key, None, |_| {})),
        ),
        (
            "an expired token",
            Some(
                env.forge(Algorithm::EdDSA, &server_key, Some(kid.clone()), |c| {
                    c.iat = now() - 7200;
                    c.exp = now() - 3600;
                }),
            ),
        ),
        (
            "a token for another audience",
            Some(
                env.forge(Algorithm::EdDSA, &server_key, Some(kid.clone()), |c| {
                    c.aud = "elsewhere"
                }),
            ),
        ),
        (
            "a token from another issuer",
            Some(
                env.forge(Algorithm::EdDSA, &server_key, Some(kid.clone()), |c| {
                    c.iss = "elsewhere"
                }),
            ),
        ),
        ("a token with alg none", Some(alg_none)),
        (
            "an HS256 token keyed with the server's public key",
            Some(env.forge(
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_key),
                Some(kid.clone()),
                |_| {},
            )),
        ),
        (
            "a token for a device that does not exist",
            Some(
                env.forge(Algorithm::EdDSA, &server_key, Some(kid.clone()), |c| {
                    c.dev = "dev_nope"
                }),
            ),
        ),
    ];
    let body = valid_request().encode();
    for (case, token) in cases {
        let (status, reply) = env.post(token.as_deref(), CONTENT_TYPE, body.clone()).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(error_code(&reply), "unauthorized", "{case}");
    }
    assert_eq!(env.server.count("changes").await, 0);

    // The real token still works.
    let (status, _) = env.post(Some(&env.token), CONTENT_TYPE, body).await;
    assert_eq!(status, 200);
    assert_eq!(env.server.count("documents").await, 1);
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_store_nothing() {
    let env = env().await;
    let mut newer = valid_request();
    newer.v = 2;
    let mut gzip_bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip_bomb.write_all(&vec![0u8; 4 * LIMIT]).unwrap();
    let gzip_bomb = gzip_bomb.finish().unwrap();
    assert!(gzip_bomb.len() < LIMIT);

    let token = Some(env.token.as_str());
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "JSON instead of CBOR",
            CONTENT_TYPE,
            br#"{"v":1,"docs":[]}"#.to_vec(),
            400,
            "bad_sync_message",
        ),
        (
            "an empty body",
            CONTENT_TYPE,
            vec![],
            400,
            "bad_sync_message",
        ),
        (
            "CBOR of the wrong shape",
            CONTENT_TYPE,
            vec![0x83, 0x01, 0x02, 0x03],
            400,
            "bad_sync_message",
        ),
        (
            "a protocol version from the future",
            CONTENT_TYPE,
            newer.encode(),
            400,
            "unsupported_version",
        ),
        (
            "the wrong media type",
            "application/json",
            valid_request().encode(),
            415,
            "unsupported_media_type",
        ),
        (
            "a body over the size limit",
            CONTENT_TYPE,
            vec![0u8; LIMIT + 1],
            413,
            "body_too_large",
        ),
    ];
    for (case, content_type, body, want_status, want_code) in cases {
        let (status, reply) = env.post(token, content_type, body).await;
        assert_eq!(status, want_status, "{case}");
        assert_eq!(error_code(&reply), want_code, "{case}");
    }

    // A small gzip body that inflates past the limit.
    let response = env
        .http
        .post(env.server.url("/v1/sync"))
        .bearer_auth(&env.token)
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .body(gzip_bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        error_code(&response.bytes().await.unwrap()),
        "body_too_large"
    );

    // An encoding the server does not decode is refused like any error.
    let response = env
        .http
        .post(env.server.url("/v1/sync"))
        .bearer_auth(&env.token)
        .header("content-type", CONTENT_TYPE)
        .header("content-encoding", "br")
        .body(valid_request().encode())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(response.headers().contains_key("accept-encoding"));
    assert_eq!(
        error_code(&response.bytes().await.unwrap()),
        "unsupported_media_type"
    );

    assert_eq!(env.server.count("changes").await, 0);
    assert_eq!(env.server.count("documents").await, 0);
    let health = env
        .http
        .get(env.server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_bad_document_is_refused_while_the_rest_of_the_batch_merges() {
    let env = env().await;
    let good = valid_request().docs.remove(0);

    let mut corrupt = valid_request().docs.remove(0);
    let mut bytes = corrupt.changes[0].to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    corrupt.changes = vec![ByteBuf::from(bytes)];

    // A real Automerge change that does not make a household.
    let mut not_a_household = valid_request().docs.remove(0);
    let mut doc = sync_core::automerge::AutoCommit::new().with_actor(actor());
    sync_core::automerge::transaction::Transactable::put(
        &mut doc,
        sync_core::automerge::ROOT,
        "hello",
        "world",
    )
    .unwrap();
    not_a_household.heads = Heads(doc.get_heads());
    not_a_household.changes = vec![ByteBuf::from(
        doc.get_last_local_change().unwrap().raw_bytes().to_vec(),
    )];

    // A change whose predecessor the server never saw.
    let mut orphan = valid_request().docs.remove(0);
    {
        let h = Household {
            org_unit: GRID.into(),
            ..Default::default()
        };
        let mut d = doc::create(actor(), &h, 0).unwrap();
        doc::edit::<Household>(&mut d, 0, |h| h.address.room = "1".into()).unwrap();
        let changes = d.get_changes(&[]);
        orphan.heads = Heads(d.get_heads());
        orphan.changes = vec![ByteBuf::from(changes[1].raw_bytes().to_vec())];
    }

    let duplicate = good.clone();
    let request = SyncRequest {
        v: PROTOCOL_VERSION,
        actors: vec![ByteBuf::from(actor().to_bytes().to_vec())],
        docs: vec![
            corrupt.clone(),
            good.clone(),
            not_a_household.clone(),
            orphan.clone(),
            duplicate,
        ],
        ..Default::default()
    };
    let (status, body) = env
        .post(Some(&env.token), CONTENT_TYPE, request.encode())
        .await;
    assert_eq!(status, 200);
    let response = SyncResponse::decode(&body).unwrap();
    let codes: Vec<(RecordId, &str)> = response
        .errors
        .iter()
        .map(|e| (e.id.clone(), e.code.as_str()))
        .collect();
    assert!(
        codes.contains(&(corrupt.id.clone(), "corrupt_change")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(not_a_household.id.clone(), "invalid_record")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(orphan.id.clone(), "missing_dependencies")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(good.id.clone(), "duplicate_document")),
        "{codes:?}"
    );
    assert!(response.errors.iter().all(|e| !e.message.is_empty()));

    // Only the good document was stored, and it was acknowledged.
    assert_eq!(env.server.count("documents").await, 1);
    assert_eq!(env.server.count("changes").await, 1);
    assert!(env.server.document(&good.id).await.is_some());
    let ack = response.docs.iter().find(|d| d.id == good.id).unwrap();
    assert_eq!(ack.heads, good.heads);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let env = env().await;
    let response = env
        .http
        .get(env.server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(&response.bytes().await.unwrap()), "not_found");
    // A path segment that is not UTF-8 names nothing either.
    let response = env
        .http
        .get(env.server.url("/v1/cases/%FF"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(&response.bytes().await.unwrap()), "not_found");
    let response = env
        .http
        .get(env.server.url("/v1/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        error_code(&response.bytes().await.unwrap()),
        "method_not_allowed"
    );
}

/// A signed-in user of the test area, pushing documents built by hand: a
/// modified phone that skips every local check.
struct Raw {
    user_id: String,
    token: String,
    actor: ActorId,
}

impl Env {
    async fn raw(&self, username: &str, role: &str, org_unit: &str) -> Raw {
        let user_id = self.server.user(username, role, org_unit).await;
        let session = tests::login(&self.server.url(""), username, tests::PASSWORD).await;
        let mut actor = [0u8; 16];
        actor[..username.len().min(16)]
            .copy_from_slice(&username.as_bytes()[..username.len().min(16)]);
        Raw {
            user_id,
            token: session.access_token,
            actor: ActorId::from(actor),
        }
    }

    /// Pushes the changes of each document since the given heads, as
    /// `raw`, and decodes the answer.
    async fn push(
        &self,
        raw: &Raw,
        docs: Vec<(&RecordId, &Automerge, Vec<ChangeHash>)>,
    ) -> SyncResponse {
        let request = SyncRequest {
            v: PROTOCOL_VERSION,
            actors: vec![ByteBuf::from(raw.actor.to_bytes().to_vec())],
            docs: docs
                .into_iter()
                .map(|(id, d, since)| DocPush {
                    id: id.clone(),
                    heads: Heads(d.get_heads()),
                    changes: d
                        .get_changes(&since)
                        .iter()
                        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                        .collect(),
                })
                .collect(),
            ..Default::default()
        };
        let (status, body) = self
            .post(Some(&raw.token), CONTENT_TYPE, request.encode())
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        SyncResponse::decode(&body).unwrap()
    }

    /// A JSON request that must get an answer, whatever it is: a panic in
    /// a handler would close the connection instead.
    async fn answer(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, self.server.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} got no answer: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

/// A document holding `record` exactly as given: reconciled straight into
/// Automerge by `actor`, without the record check a real phone makes.
fn crafted<R: sync_core::autosurgeon::Reconcile>(actor: &ActorId, record: &R) -> Automerge {
    let mut d = AutoCommit::new().with_actor(actor.clone());
    sync_core::autosurgeon::reconcile(&mut d, record).unwrap();
    d.commit();
    d.document().clone()
}

/// `d` with `f` applied as one more change by `actor`.
fn amended(d: &Automerge, actor: &ActorId, f: impl FnOnce(&mut AutoCommit)) -> Automerge {
    let mut d = AutoCommit::load(&d.save())
        .unwrap()
        .with_actor(actor.clone());
    f(&mut d);
    d.commit();
    d.document().clone()
}

/// The error for `id` in `response`, if any.
fn error_for<'a>(response: &'a SyncResponse, id: &RecordId) -> Option<&'a DocError> {
    response.errors.iter().find(|e| e.id == *id)
}

fn household_of(org_unit: &str) -> Household {
    Household {
        org_unit: org_unit.into(),
        ..Default::default()
    }
}

const NOW: i64 = 1_764_000_000_000;

#[tokio::test]
async fn a_time_out_of_range_is_refused_and_the_daily_log_stays_up() {
    let env = env().await;
    let w = env.raw("w1", "grid_worker", GRID).await;
    let hh = RecordId::new(RecordKind::Household);
    let hh_doc = doc::create(w.actor.clone(), &household_of(GRID), NOW).unwrap();
    let visit = |visited_at| Visit {
        household: hh.to_string(),
        org_unit: GRID.into(),
        worker: w.user_id.clone(),
        visited_at,
        ..Default::default()
    };
    let good = RecordId::new(RecordKind::Visit);
    let good_doc = crafted(&w.actor, &visit(NOW));
    let response = env
        .push(&w, vec![(&hh, &hh_doc, vec![]), (&good, &good_doc, vec![])])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);

    for bad_time in [i64::MAX, i64::MIN, -1, 32_503_680_000_000] {
        let bad = RecordId::new(RecordKind::Visit);
        let response = env
            .push(
                &w,
                vec![(&bad, &crafted(&w.actor, &visit(bad_time)), vec![])],
            )
            .await;
        let (status, days) = env
            .answer(
                reqwest::Method::GET,
                &w.token,
                &format!("/v1/visits/daily?org_unit={GRID}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "after visited_at = {bad_time}: {days}");
        let error = error_for(&response, &bad).expect("the visit is refused");
        assert_eq!(error.code, "invalid_record", "{error:?}");
        assert!(error.message.contains("visited_at"), "{}", error.message);
        assert!(env.server.document(&bad).await.is_none());
    }
    // A stored visit cannot be moved out of range either.
    let moved = amended(&good_doc, &w.actor, |d| {
        d.put(ROOT, "visited_at", i64::MAX).unwrap()
    });
    let response = env
        .push(&w, vec![(&good, &moved, good_doc.get_heads())])
        .await;
    assert_eq!(error_for(&response, &good).unwrap().code, "invalid_record");

    let (status, days) = env
        .answer(
            reqwest::Method::GET,
            &w.token,
            &format!("/v1/visits/daily?org_unit={GRID}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{days}");
    assert_eq!(days.as_array().unwrap().len(), 1, "{days}");
    assert_eq!(days[0]["visits"], 1, "{days}");
}

/// A case reported by `reporter` with one `report` event.
fn report(reporter: &str, reported_at: i64, hlc: i64) -> Case {
    Case {
        org_unit: GRID.into(),
        title: "纠纷".into(),
        reporter: reporter.into(),
        reported_at,
        events: vec![CaseEvent {
            attachments: Vec::new(),
            id: format!("ev_{}", rand::random::<u64>()),
            kind: "report".into(),
            author: reporter.into(),
            device: "phone".into(),
            at: reported_at.clamp(0, NOW),
            role: "grid_worker".into(),
            hlc,
            data: Default::default(),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn crafted_clocks_and_times_on_a_case_are_refused_and_desk_actions_answer() {
    let env = env().await;
    let w = env.raw("w1", "grid_worker", GRID).await;
    let staff = env.raw("s1", "community_staff", GRID).await;
    let cases = [
        ("events[0].hlc", report(&w.user_id, NOW, i64::MAX)),
        ("events[0].hlc", report(&w.user_id, NOW, -1)),
        ("reported_at", report(&w.user_id, i64::MAX - 1, 0)),
        ("reported_at", report(&w.user_id, i64::MIN, 0)),
        ("events[0].at", {
            let mut c = report(&w.user_id, NOW, NOW << 16);
            c.events[0].at = i64::MAX;
            c
        }),
    ];
    for (field, case) in cases {
        let id = RecordId::new(RecordKind::Case);
        let response = env
            .push(&w, vec![(&id, &crafted(&w.actor, &case), vec![])])
            .await;
        // A desk action on it gets an answer: the case does not exist.
        let (status, body) = env
            .answer(
                reqwest::Method::POST,
                &staff.token,
                &format!("/v1/cases/{id}/events"),
                Some(serde_json::json!({"kind": "accept"})),
            )
            .await;
        let error = error_for(&response, &id)
            .unwrap_or_else(|| panic!("{field}: the case was accepted; desk: {status} {body}"));
        assert_eq!(error.code, "invalid_record", "{field}: {error:?}");
        assert!(error.message.contains(field), "{field}: {}", error.message);
        assert_eq!(status, 404, "{field}: {body}");
    }

    // A case at the top of the range still takes desk events, after its
    // last one.
    let id = RecordId::new(RecordKind::Case);
    let top = report(&w.user_id, NOW, HLC_RANGE.end - 1);
    let response = env
        .push(&w, vec![(&id, &crafted(&w.actor, &top), vec![])])
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let (status, body) = env
        .answer(
            reqwest::Method::POST,
            &staff.token,
            &format!("/v1/cases/{id}/events"),
            Some(serde_json::json!({"kind": "accept"})),
        )
        .await;
    assert!(status < 500, "{status}: {body}");
    let health = env.http.get(env.server.url("/healthz")).send().await;
    assert_eq!(health.unwrap().status(), 200);
}

#[tokio::test]
async fn nobody_hands_a_case_or_a_visit_to_another_name() {
    let env = env().await;
    let w = env.raw("w1", "grid_worker", GRID).await;
    let other = env.raw("w2", "grid_worker", GRID).await;
    let elsewhere = env.raw("w3", "grid_worker", "demo.t1.c1.g9").await;

    // The reporter renames their case's reporter.
    let case = RecordId::new(RecordKind::Case);
    let reported = doc::create(w.actor.clone(), &report(&w.user_id, NOW, NOW << 16), NOW).unwrap();
    let response = env.push(&w, vec![(&case, &reported, vec![])]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let handed = amended(&reported, &w.actor, |d| {
        d.put(ROOT, "reporter", elsewhere.user_id.as_str()).unwrap()
    });
    let response = env
        .push(&w, vec![(&case, &handed, reported.get_heads())])
        .await;
    let error = error_for(&response, &case).expect("the new reporter is refused");
    assert_eq!(error.code, "forbidden", "{error:?}");
    assert!(error.message.contains("case_reporter"), "{}", error.message);
    let stored: Case = doc::read(&env.server.document(&case).await.unwrap()).unwrap();
    assert_eq!(stored.reporter, w.user_id);
    assert!(
        !env.server
            .scope_of(&elsewhere.user_id)
            .await
            .contains(&case)
    );

    // A worker takes another worker's visit into their own log (a visit
    // names a household of the grid, which both may see).
    let hh = RecordId::new(RecordKind::Household);
    let hh_doc = doc::create(other.actor.clone(), &household_of(GRID), NOW).unwrap();
    let response = env.push(&other, vec![(&hh, &hh_doc, vec![])]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let visit = RecordId::new(RecordKind::Visit);
    let theirs = Visit {
        household: hh.to_string(),
        org_unit: GRID.into(),
        worker: other.user_id.clone(),
        visited_at: NOW,
        ..Default::default()
    };
    let theirs = doc::create(other.actor.clone(), &theirs, NOW).unwrap();
    let response = env.push(&other, vec![(&visit, &theirs, vec![])]).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let taken = amended(&theirs, &w.actor, |d| {
        d.put(ROOT, "worker", w.user_id.as_str()).unwrap()
    });
    let response = env
        .push(&w, vec![(&visit, &taken, theirs.get_heads())])
        .await;
    let error = error_for(&response, &visit).expect("taking the visit is refused");
    assert_eq!(error.code, "forbidden", "{error:?}");
    assert!(error.message.contains("visit_worker"), "{}", error.message);
    let stored: Visit = doc::read(&env.server.document(&visit).await.unwrap()).unwrap();
    assert_eq!(stored.worker, other.user_id);
}

/// `base` with a map nested `depth` deep under the key `junk`, added in
/// changes of at most 1,000 operations.
fn nested(base: &Automerge, actor: &ActorId, depth: usize) -> Automerge {
    let mut d = AutoCommit::load(&base.save())
        .unwrap()
        .with_actor(actor.clone());
    let mut obj = ROOT;
    let mut key = "junk";
    for n in 0..depth {
        obj = d.put_object(&obj, key, ObjType::Map).unwrap();
        key = "x";
        if n % 1000 == 999 {
            d.commit();
        }
    }
    d.commit();
    d.document().clone()
}

#[tokio::test]
async fn a_deeply_nested_document_is_refused_and_never_crashes_the_server() {
    let env = env().await;
    let w = env.raw("w1", "grid_worker", GRID).await;
    let base = doc::create(w.actor.clone(), &household_of(GRID), NOW).unwrap();
    let deep = nested(&base, &w.actor, 20_000);

    let id = RecordId::new(RecordKind::Household);
    let response = env.push(&w, vec![(&id, &deep, vec![])]).await;
    let error = error_for(&response, &id).expect("the deep document is refused");
    assert_eq!(error.code, "invalid_record", "{error:?}");
    assert!(
        error.message.contains("junk") && error.message.contains(&MAX_DEPTH.to_string()),
        "{}",
        error.message
    );
    assert!(env.server.document(&id).await.is_none());

    // One stored before the limit existed: reindexing and reading it
    // answer, and the server stays up.
    let stored = RecordId::new(RecordKind::Household);
    let mut tx = env.server.state.engine.storage.begin(true).await.unwrap();
    let heads: Vec<u8> = deep.get_heads().iter().flat_map(|h| h.0).collect();
    tx.save(DocWrite {
        id: &stored.to_string(),
        kind: "household",
        org_unit: GRID,
        reporter: None,
        assignee: None,
        snapshot: &deep.save(),
        heads: &heads,
        changes: &[],
        user_id: &w.user_id,
        device_id: "dev_test",
        now: NOW,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    gridsync_server::engine::reindex::reindex(
        &*env.server.state.engine.storage,
        &env.server.state.engine.config.deadlines,
        |_, _| {},
    )
    .await
    .unwrap();
    for path in ["", "/history", "/conflicts"] {
        let path = format!("/v1/records/{stored}{path}");
        let (status, body) = env
            .answer(reqwest::Method::GET, &w.token, &path, None)
            .await;
        // An answer, whichever: not a crash.
        assert!([200, 404, 500].contains(&status), "{path}: {status} {body}");
    }
    let health = env.http.get(env.server.url("/healthz")).send().await;
    assert_eq!(health.unwrap().status(), 200);
}

#[tokio::test]
async fn an_invalid_record_names_the_field_at_fault() {
    let env = env().await;
    let w = env.raw("w1", "grid_worker", GRID).await;
    let visit = Visit {
        household: RecordId::new(RecordKind::Household).to_string(),
        org_unit: GRID.into(),
        worker: w.user_id.clone(),
        visited_at: NOW,
        ..Default::default()
    };
    let good = doc::create(w.actor.clone(), &visit, NOW).unwrap();
    let as_text = amended(&good, &w.actor, |d| {
        let text = d.put_object(ROOT, "worker", ObjType::Text).unwrap();
        d.splice_text(&text, 0, 0, &w.user_id).unwrap();
    });
    let far_north = amended(&good, &w.actor, |d| {
        d.put(ROOT, "location", "91.5,121.47").unwrap();
    });
    for (bad, expected) in [
        (
            as_text,
            "worker: must be a string (str; not Automerge text)",
        ),
        (far_north, "location: must be `latitude,longitude`"),
    ] {
        let id = RecordId::new(RecordKind::Visit);
        let response = env.push(&w, vec![(&id, &bad, vec![])]).await;
        let error = error_for(&response, &id).expect("the visit is refused");
        assert_eq!(error.code, "invalid_record");
        assert!(error.message.contains(expected), "{}", error.message);
        assert!(env.server.document(&id).await.is_none(), "nothing stored");
    }
}
