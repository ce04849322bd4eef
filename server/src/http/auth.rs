//! Login, tokens, and the extractor that admits a request.
//!
//! A user logs in on a device and gets a refresh token (stored only as a
//! SHA-256 hash, revocable with the device) and a short-lived access token:
//! an EdDSA-signed JWT with `kid`, `iss`, `aud`, `exp`. Every request's token
//! is verified, and its device looked up, so revoking a device takes effect
//! at its next request rather than when its token expires.
//!
//! Sign-in attempts pass the limits of [`crate::http::login_guard`] before a
//! password is hashed. Refresh tokens expire (`refresh_token_ttl_secs`)
//! and rotate: each refresh returns a new one and retires the one it was
//! given, and a retired one presented again (after a short grace for a
//! retry whose answer was lost) revokes the device, as the OAuth 2.0
//! Security Best Current Practice recommends for public clients: one of
//! two parties holding copies of the device's tokens is not the device.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::domain::AuthDevice;
use crate::domain::{now_ms, random_hex};
use crate::http::error::AppError;
use crate::http::login_guard::ClientAddr;
use crate::http::{ApiJson, AppState};
use crate::storage::{AuditRow, DeviceRow, RefreshState, SigningKeyRow, Storage, UserRow};
use sync_core::policy::Role;

/// The keys an instance holds, reloaded from the database when a token
/// names a key it does not know yet (one added by `gridsync admin
/// rotate-key` while it ran), at most once every few seconds.
pub struct KeyRing {
    current: std::sync::RwLock<Arc<Keys>>,
    last_reload: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl KeyRing {
    /// Holds `keys`.
    pub fn new(keys: Keys) -> Self {
        Self {
            current: std::sync::RwLock::new(Arc::new(keys)),
            last_reload: tokio::sync::Mutex::new(None),
        }
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Keys> {
        self.current.read().expect("key lock").clone()
    }

    /// Reloads the keys unless that was done in the last five seconds.
    pub async fn reload(&self, storage: &dyn Storage) -> Result<Arc<Keys>, AppError> {
        let mut last = self.last_reload.lock().await;
        if last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(5)) {
            let keys = Arc::new(Keys::load_or_create(storage).await?);
            *self.current.write().expect("key lock") = keys;
            *last = Some(std::time::Instant::now());
        }
        Ok(self.current())
    }
}

/// The token-signing keys: the newest signs, every unretired one verifies,
/// so a new key can be introduced without logging anyone out.
pub struct Keys {
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
}

impl Keys {
    /// Loads the keys from storage, creating the first one if there is none.
    pub async fn load_or_create(storage: &dyn Storage) -> Result<Self, AppError> {
        let mut rows = storage.signing_keys().await?;
        if rows.is_empty() {
            storage.insert_signing_key(&new_signing_key()?).await?;
            rows = storage.signing_keys().await?;
        }
        let newest = rows
            .first()
            .ok_or_else(|| AppError::internal("no signing key"))?;
        let jwks_keys: Vec<serde_json::Value> = rows
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(&k.public_key),
                })
            })
            .collect();
        Ok(Self {
            kid: newest.kid.clone(),
            signing: EncodingKey::from_ed_der(&newest.private_der),
            verifying: rows
                .iter()
                .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public_key)))
                .collect(),
            jwks: serde_json::json!({ "keys": jwks_keys }),
        })
    }
}

/// Adds a new signing key, which signs from the next start of each
/// instance on; tokens signed with the older keys stay valid. Returns its
/// `kid`.
pub async fn rotate_key(storage: &dyn Storage) -> Result<String, AppError> {
    let key = new_signing_key()?;
    storage.insert_signing_key(&key).await?;
    Ok(key.kid)
}

fn new_signing_key() -> Result<SigningKeyRow, AppError> {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let der = key.to_pkcs8_der().map_err(AppError::internal)?;
    Ok(SigningKeyRow {
        kid: random_hex(8),
        private_der: der.as_bytes().to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
        created_at: now_ms(),
    })
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Device id.
    pub dev: String,
    /// Role at issue time.
    pub role: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

impl AuthDevice {
    /// Refuses anyone but an admin.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role != Role::Admin {
            return Err(AppError::Forbidden("this needs the admin role".into()));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(AppError::Unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized(
                "authorization must be a bearer token",
            ))?;
        let claims = verify(state, token.trim()).await?;
        let device = state
            .engine
            .storage
            .device(&claims.dev)
            .await?
            .filter(|d| d.user_id == claims.sub)
            .ok_or(AppError::Unauthorized("unknown device"))?;
        if device.revoked_at.is_some() {
            return Err(AppError::DeviceRevoked);
        }
        let user = state
            .engine
            .storage
            .user(&claims.sub)
            .await?
            .ok_or(AppError::Unauthorized("unknown user"))?;
        let role = user.role.parse().map_err(AppError::internal)?;
        Ok(AuthDevice {
            user_id: claims.sub,
            device_id: claims.dev,
            role,
            scope_version: user.scope_version,
        })
    }
}

async fn verify(state: &AppState, token: &str) -> Result<Claims, AppError> {
    const INVALID: AppError = AppError::Unauthorized("invalid or expired token");
    let header = jsonwebtoken::decode_header(token).map_err(|_| INVALID)?;
    if header.alg != Algorithm::EdDSA {
        return Err(INVALID);
    }
    let kid = header.kid.ok_or(INVALID)?;
    let mut keys = state.keys.current();
    if !keys.verifying.contains_key(&kid) {
        // Perhaps a key added since this instance loaded its keys.
        keys = state.keys.reload(state.engine.storage.as_ref()).await?;
    }
    let key = keys.verifying.get(&kid).ok_or(INVALID)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[&state.engine.config.audience]);
    validation.set_issuer(&[&state.engine.config.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 30;
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|_| AppError::Unauthorized("invalid or expired token"))
}

fn issue(state: &AppState, user: &UserRow, device_id: &str) -> Result<(String, u64), AppError> {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(AppError::internal)?
        .as_secs();
    let ttl = state.engine.config.access_token_ttl_secs;
    let claims = Claims {
        sub: user.id.clone(),
        dev: device_id.to_owned(),
        role: user.role.clone(),
        iss: state.engine.config.issuer.clone(),
        aud: state.engine.config.audience.clone(),
        iat,
        exp: iat + ttl,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    let keys = state.keys.current();
    header.kid = Some(keys.kid.clone());
    let token =
        jsonwebtoken::encode(&header, &claims, &keys.signing).map_err(AppError::internal)?;
    Ok((token, ttl))
}

/// Hashes a password with Argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(e.to_string()))
    })
    .await
    .map_err(AppError::internal)?
}

/// Verifies a password on a blocking thread, holding `slot` (one of the
/// bounded hashing slots) until the hash is done, even if the request is
/// dropped meanwhile.
async fn verify_password(
    password: String,
    hash: Arc<str>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let parsed = PasswordHash::new(&hash).map_err(|e| AppError::internal(e.to_string()))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(AppError::internal)?
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `POST /v1/auth/login`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    #[schema(format = Password)]
    pub password: String,
    /// A name for this device, shown in the device list. Leading and
    /// trailing whitespace is removed; what remains must be 1 to 100
    /// characters (`422 invalid_field` otherwise).
    pub device_name: String,
}

/// What login and refresh return.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The user's id.
    pub user_id: String,
    /// The device's id; a new one at every login.
    #[schema(pattern = "^dev_[0-9a-f]{32}$")]
    pub device_id: String,
    /// Present on login and on every refresh: the device's new refresh
    /// token, which replaces the one it had (that one stops working; keep
    /// only the newest). Stands for the device until it expires
    /// (`refresh_token_ttl_secs` after it was issued) or the device is
    /// revoked: store it securely. 43 characters of unpadded base64url (32
    /// random bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub refresh_token: Option<String>,
    /// EdDSA-signed JWT; send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = crate::http::schemas::bearer)]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(minimum = 1)]
    pub expires_in: u64,
}

/// Sign in on a new device
///
/// Checks the username and password and registers a new device for the
/// user. Returns the device id, a refresh token that stands for the device
/// (store it securely), and a short-lived access token.
///
/// `device_name` is checked first. Then every attempt, right or wrong,
/// counts against two limits before the password is looked at: attempts
/// per username and attempts per client address (the TCP peer) per minute
/// (`login_attempts_per_username_per_minute`, 10, and
/// `login_attempts_per_address_per_minute`, 60); over either, `429
/// rate_limited` with `Retry-After`. Passwords are hashed a few at a time
/// (`password_hash_concurrency`); a sign-in that finds no free slot within
/// `password_hash_wait_ms` is answered `503 overloaded` with `Retry-After`.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body(content = LoginRequest, example = json!({
        "username": "wang.fang",
        "password": "correct horse battery staple",
        "device_name": "Wang Fang's phone"
    })),
    responses(
        (status = 200, description = "Signed in. `refresh_token` is present.", body = TokenResponse,
            example = json!({
                "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e",
                "device_id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                "refresh_token": "q3Z0mJ5cR1uYt8vXwA2bC4dE6fG8hI0jK2lM4nO6pQs",
                "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6IjFhMmIzYzRkNWU2ZjcwODEifQ.eyJzdWIiOiJ1c3JfM2I5ZjBjMmE3ZTQxZDg1YzZhMWYwYjJlIn0.c2lnbmF0dXJl",
                "token_type": "Bearer",
                "expires_in": 900
            })),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, description = "Wrong username or password.",
            body = crate::http::schemas::BadCredentialsError,
            example = json!({"code": "bad_credentials", "message": "wrong username or password"})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, description = "The new device could not be registered because its id or \
            refresh-token hash is already taken (practically never happens; retry).",
            body = crate::http::schemas::ConflictError,
            example = json!({"code": "conflict", "message": "device exists already"})),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "A field value is not acceptable.",
            body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field", "message": "device_name: must be 1 to 100 characters"})),
        (status = 429, description = "Too many sign-in attempts for this username or from this \
            address. `Retry-After` gives the seconds to wait.",
            body = crate::http::schemas::RateLimitedError,
            headers(("Retry-After" = u64, description = "Seconds until an attempt is admitted again.")),
            example = json!({"code": "rate_limited", "message": "too many sign-in attempts: try again in 6 s"})),
        (status = 500, response = crate::http::schemas::Internal),
        (status = 503, description = "Every password-hashing slot stayed busy. `Retry-After` \
            gives the seconds to wait.",
            body = crate::http::schemas::OverloadedError,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again.")),
            example = json!({"code": "overloaded", "message": "the server is busy: try again in 1 s"})),
    ),
)]

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    let device_name = req.device_name.trim();
    if device_name.is_empty() || device_name.chars().count() > 100 {
        return Err(AppError::Invalid {
            field: "device_name",
            problem: "must be 1 to 100 characters".into(),
        });
    }
    if let Err(refused) = state.login.admit(&req.username, client) {
        tracing::warn!(username = %req.username, client = ?client, "sign-in rate limited");
        return Err(refused);
    }
    let slot = state.login.hash_slot().await?;
    let user = state.engine.storage.user_by_username(&req.username).await?;
    // Verify against a fixed hash when the user is unknown, so that the
    // answer takes as long either way.
    let hash: Arc<str> = match &user {
        Some(u) => u.password_hash.as_str().into(),
        None => state.dummy_hash.clone(),
    };
    let matches = verify_password(req.password, hash, slot).await?;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(AppError::BadCredentials),
    };
    let refresh_token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let device = DeviceRow {
        id: format!("dev_{}", random_hex(16)),
        user_id: user.id.clone(),
        name: device_name.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
    };
    state
        .engine
        .storage
        .insert_device(&device, &token_hash(&refresh_token))
        .await?;
    let (access_token, expires_in) = issue(&state, &user, &device.id)?;
    tracing::info!(user = %user.id, device = %device.id, "login");
    Ok(Json(TokenResponse {
        user_id: user.id,
        device_id: device.id,
        refresh_token: Some(refresh_token),
        access_token,
        token_type: "Bearer".into(),
        expires_in,
    }))
}

/// `POST /v1/auth/refresh`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token returned by login.
    pub refresh_token: String,
}

/// Get a new access token
///
/// Exchanges the device's refresh token for a new access token and a new
/// refresh token, which replaces the one given: keep only the newest. A
/// refresh token expires `refresh_token_ttl_secs` (30 days) after it was
/// issued; a device that refreshes within that time stays signed in.
///
/// A replaced token presented again means that someone else holds a copy
/// of the device's tokens: the device is revoked (`401 device_revoked`,
/// recorded in the audit log as `revoke_device`), and its user signs in
/// again. One exception keeps a phone on a bad network signed in: the token
/// replaced last, presented again within `refresh_reuse_grace_secs` (30 s)
/// of being replaced, is taken for a retry whose answer was lost, and is
/// answered like a refresh with the current token (which it then replaces).
/// Send one refresh at a time.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    request_body(content = RefreshRequest, example = json!({
        "refresh_token": "q3Z0mJ5cR1uYt8vXwA2bC4dE6fG8hI0jK2lM4nO6pQs"
    })),
    responses(
        (status = 200, description = "A new access token and a new refresh token.",
            body = TokenResponse,
            example = json!({
                "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e",
                "device_id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                "refresh_token": "Zx8yW6vU4tS2rQ0pO8nM6lK4jI2hG0fE8dC6bA4zY2x",
                "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6IjFhMmIzYzRkNWU2ZjcwODEifQ.eyJzdWIiOiJ1c3JfM2I5ZjBjMmE3ZTQxZDg1YzZhMWYwYjJlIn0.c2lnbmF0dXJl",
                "token_type": "Bearer",
                "expires_in": 900
            })),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 401, description = "- `unauthorized`: the refresh token is unknown, or its user \
            no longer exists (message `unknown refresh token`), or it expired (message \
            `refresh token expired: sign in again`). Sign in again.\n\
            - `device_revoked`: the device was revoked, now or before (a replaced refresh token \
            was presented again). Do not retry.",
            body = crate::http::schemas::UnauthorizedError,
            examples(
                ("unknown" = (value = json!({"code": "unauthorized", "message": "unknown refresh token"}))),
                ("expired" = (value = json!({"code": "unauthorized", "message": "refresh token expired: sign in again"}))),
                ("revoked" = (value = json!({"code": "device_revoked", "message": "this device has been revoked"}))),
            )),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 500, response = crate::http::schemas::Internal),
        (status = 503, description = "Other refreshes of the same device kept replacing its token \
            meanwhile. `Retry-After` gives the seconds to wait.",
            body = crate::http::schemas::OverloadedError,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again.")),
            example = json!({"code": "overloaded", "message": "the server is busy: try again in 1 s"})),
    ),
)]

async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    const UNKNOWN: AppError = AppError::Unauthorized("unknown refresh token");
    let presented = token_hash(&req.refresh_token);
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let (ttl, grace) = (
        ms(state.engine.config.refresh_token_ttl_secs),
        ms(state.engine.config.refresh_reuse_grace_secs),
    );
    // A second look when another refresh replaced the token meanwhile.
    for _ in 0..2 {
        let found = state
            .engine
            .storage
            .refresh_token(&presented)
            .await?
            .ok_or(UNKNOWN)?;
        let device = found.device;
        if device.revoked_at.is_some() {
            return Err(AppError::DeviceRevoked);
        }
        let now = now_ms();
        match found.state {
            RefreshState::Current { issued_at } if now.saturating_sub(issued_at) > ttl => {
                return Err(AppError::Unauthorized(
                    "refresh token expired: sign in again",
                ));
            }
            RefreshState::Current { .. } => {}
            RefreshState::Retired { retired_at, latest }
                if latest && now.saturating_sub(retired_at) <= grace => {}
            RefreshState::Retired { .. } => {
                revoke_for_reuse(&state, &device, now).await?;
                return Err(AppError::DeviceRevoked);
            }
        }
        let user = state
            .engine
            .storage
            .user(&device.user_id)
            .await?
            .ok_or(UNKNOWN)?;
        let refresh_token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let rotated = state
            .engine
            .storage
            .rotate_refresh_token(
                &device.id,
                &found.current_hash,
                &token_hash(&refresh_token),
                now,
                now.saturating_sub(ttl),
            )
            .await?;
        if !rotated {
            continue;
        }
        let (access_token, expires_in) = issue(&state, &user, &device.id)?;
        return Ok(Json(TokenResponse {
            user_id: user.id,
            device_id: device.id,
            refresh_token: Some(refresh_token),
            access_token,
            token_type: "Bearer".into(),
            expires_in,
        }));
    }
    Err(AppError::Overloaded { retry_after: 1 })
}

/// Revokes a device whose replaced refresh token came back, and says so in
/// the audit log (in the name of the device's user, concerning their units).
async fn revoke_for_reuse(state: &AppState, device: &DeviceRow, now: i64) -> Result<(), AppError> {
    tracing::warn!(device = %device.id, user = %device.user_id, "refresh token reused: device revoked");
    state.engine.storage.revoke_device(&device.id, now).await?;
    state
        .engine
        .storage
        .audit(&AuditRow {
            at: now,
            user_id: device.user_id.clone(),
            device_id: Some(device.id.clone()),
            action: "revoke_device".into(),
            target: device.id.clone(),
            detail: "refresh token reused: a replaced refresh token was presented again".into(),
        })
        .await?;
    Ok(())
}

/// `GET /v1/me`: who the token stands for, as the policy sees them.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// User id.
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// Role.
    #[schema(value_type = Role)]
    pub role: String,
    /// The org units the user is bound to, sorted.
    pub org_units: Vec<String>,
    /// Every org unit in the subtrees of `org_units`, those units included,
    /// sorted.
    pub area: Vec<String>,
    /// The user's name as people see it.
    pub display_name: String,
    /// The units of `area` with their names and levels, ordered by path
    /// (each unit before the units below it): what a client shows instead
    /// of ids.
    pub units: Vec<crate::storage::OrgUnitRow>,
    /// The case time limits this server applies (its `[deadlines]`), so
    /// that a phone shows the same due times as the server.
    pub deadlines: sync_core::workflow::Deadlines,
}

/// Who the token stands for
///
/// The user and device behind the access token, with the user's role and
/// org units as the server applies them now (a change since the token was
/// issued counts at once). `area` lists every org unit in the subtrees of
/// `org_units`, the units themselves included, sorted; it decides what the
/// user sees only for roles that work over an area (every role but
/// `mediator` and `department`).
///
/// A phone runs the same policy as the server before it commits a local
/// edit, so that it never makes an edit the server refuses: build a
/// `sync_core::policy::Principal` from `user_id`, `role` and `area` and pass
/// it to `Replica::set_principal`. Role changes are not pushed to the phone;
/// fetch this again at each app start and after a sync that dropped
/// documents or answered `forbidden`.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "me",
    tag = "account",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The user as the policy sees them.", body = Me,
            example = json!({
                "user_id": "usr_3b9f0c2a7e41d85c6a1f0b2e",
                "device_id": "dev_8c41f2a09d3e4b7fa61c0e5d2b9a7f13",
                "role": "community_staff",
                "org_units": ["demo.t1.c1"],
                "area": ["demo.t1.c1", "demo.t1.c1.g1", "demo.t1.c1.g2"],
                "display_name": "社区干部 赵敏",
                "units": [
                    {"id": "demo.t1.c1", "parent_id": "demo.t1", "kind": "community",
                     "name": "第1社区", "path": "/demo/demo.t1/demo.t1.c1/", "created_at": 1732406400000_i64},
                    {"id": "demo.t1.c1.g1", "parent_id": "demo.t1.c1", "kind": "grid",
                     "name": "第1社区 第1网格", "path": "/demo/demo.t1/demo.t1.c1/demo.t1.c1.g1/", "created_at": 1732406400000_i64},
                    {"id": "demo.t1.c1.g2", "parent_id": "demo.t1.c1", "kind": "grid",
                     "name": "第1社区 第2网格", "path": "/demo/demo.t1/demo.t1.c1/demo.t1.c1.g2/", "created_at": 1732406400000_i64}
                ],
                "deadlines": {"accept_ms": 86400000_i64,
                    "resolve_ms": {"community": 1296000000_i64, "county": 5184000000_i64,
                        "grid": 604800000_i64, "township": 2592000000_i64},
                    "resolve_by_category_ms": {"Hazard": 259200000_i64}}
            })),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]

async fn me(State(state): State<AppState>, auth: AuthDevice) -> Result<Json<Me>, AppError> {
    let mut area = state.engine.storage.area(&auth.user_id).await?;
    area.sort();
    let mut units: Vec<_> = state
        .engine
        .storage
        .org_units()
        .await?
        .into_iter()
        .filter(|u| area.binary_search(&u.id).is_ok())
        .collect();
    units.sort_by(|a, b| a.path.cmp(&b.path));
    let user = state
        .engine
        .storage
        .user(&auth.user_id)
        .await?
        .ok_or(AppError::Unauthorized("unknown user"))?;
    Ok(Json(Me {
        org_units: state.engine.storage.user_units(&auth.user_id).await?,
        area,
        display_name: user.display_name,
        units,
        deadlines: state.engine.config.deadlines.clone(),
        role: auth.role.as_str().into(),
        user_id: auth.user_id,
        device_id: auth.device_id,
    }))
}

/// Token-verification keys
///
/// The Ed25519 public keys (JWK Set, RFC 7517 / RFC 8037) that verify access
/// tokens. Every key not yet retired is listed, newest first; the newest one
/// signs. Select the key by the token header's `kid`. A key added with
/// `gridsync admin rotate-key` is listed, and signs, at an instance once that
/// instance has loaded it: at its next start, or as soon as it is handed a
/// token signed with a key it does not know yet, when it reloads the keys
/// from the database (at most once every five seconds). Tokens signed with an
/// older key stay valid.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "auth",
    responses(
        (status = 200, description = "The key set.", body = crate::http::schemas::Jwks,
            example = json!({"keys": [{
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": "1a2b3c4d5e6f7081",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
            }]})),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
    ),
)]
async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.keys.current().jwks.clone())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes
}

/// The auth routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/me", get(me))
        .route("/.well-known/jwks.json", get(jwks))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(login, refresh, me, jwks))]
pub struct Api;
