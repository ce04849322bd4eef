//! Bad input gets a clear error (status, machine-readable code, message),
//! stores nothing, and leaves the server up for everyone else.

use std::io::Write;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_bytes::ByteBuf;
use sync_core::automerge::ActorId;
use sync_core::protocol::{
    CONTENT_TYPE, DocPush, Heads, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use sync_core::records::Household;
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
        let keys = self.server.state.storage.signing_keys().await.unwrap();
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
