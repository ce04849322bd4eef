//! Helpers for gridsync's end-to-end tests: a real server on a random
//! loopback port over a fresh SQLite file, users, and devices that hold a
//! real [`Replica`] and sync over real HTTP.

#![forbid(unsafe_code)]

pub mod county;
pub mod fleet;
pub mod fuzz;

use std::net::SocketAddr;
use std::sync::Arc;

use gridsync_server::AppState;
use gridsync_server::config::Config;
use gridsync_server::http::auth;
use gridsync_server::storage::UserRow;
use sync_core::automerge::Automerge;
use sync_core::protocol::CONTENT_TYPE;
use sync_core::{MemoryStore, RecordId, Replica, ReplicaStore, SyncReport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The password of users made by [`TestServer::user`].
pub const PASSWORD: &str = "correct horse battery";

/// Set to a PostgreSQL URL (e.g. `postgres://postgres@127.0.0.1:5432/test`)
/// to run the suite against PostgreSQL; unset, it runs on SQLite.
pub const DATABASE_ENV: &str = "TEST_DATABASE_URL";

/// A fresh database for one test: an SQLite file in a temporary directory,
/// or, when [`DATABASE_ENV`] names a PostgreSQL server, a new database there
/// that is dropped when this is.
pub struct TestDb {
    /// The URL to give the server.
    pub url: String,
    /// A scratch directory (holds the SQLite file).
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
    keep: std::sync::atomic::AtomicBool,
}

impl TestDb {
    /// Creates the database.
    pub async fn new() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(admin) = std::env::var(DATABASE_ENV).ok().filter(|u| !u.is_empty()) else {
            let url = format!("sqlite://{}", dir.path().join("gridsync.db").display());
            return Arc::new(Self {
                url,
                dir,
                postgres: None,
                keep: Default::default(),
            });
        };
        let name = format!("gridsync_test_{}", gridsync_server::random_hex(8));
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin.as_str(), String::new()),
        };
        let prefix = base.rsplit_once('/').expect("database URL with a path").0;
        let url = format!("{prefix}/{name}{query}");
        Arc::new(Self {
            url,
            dir,
            postgres: Some((admin, name)),
            keep: Default::default(),
        })
    }

    /// Leaves the database (and its directory) in place when this is
    /// dropped, to be looked at afterwards.
    pub fn keep(&self) {
        self.keep.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep.load(std::sync::atomic::Ordering::SeqCst) {
            self.dir.disable_cleanup(true);
            return;
        }
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(&drop).execute(&pool).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A running server with its own database.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state, for looking behind the API.
    pub state: AppState,
    /// Its database.
    pub db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with default settings on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server on a fresh database, with settings adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(TestDb::new().await, tweak).await
    }

    /// Another server instance on the same database as this one.
    pub async fn another(&self) -> Self {
        Self::start_on(self.db.clone(), |_| {}).await
    }

    /// A server on `db`, with settings adjusted by `tweak`. Sign-in is
    /// not rate limited unless `tweak` says so: tests sign in as one user
    /// from one address many times over.
    pub async fn start_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            data_dir: db.dir.path().to_owned(),
            database_url: Some(db.url.clone()),
            login_attempts_per_username_per_minute: 0,
            login_attempts_per_address_per_minute: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let state = AppState::open(config).await.expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(gridsync_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Self {
            addr,
            state,
            db,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a user `usr_<username>` with [`PASSWORD`], bound to
    /// `org_unit` (created as a root grid if it does not exist).
    pub async fn user(&self, username: &str, role: &str, org_unit: &str) -> String {
        self.org_unit(org_unit, None).await;
        let id = format!("usr_{username}");
        self.state
            .engine
            .storage
            .insert_user(
                &UserRow {
                    id: id.clone(),
                    username: username.into(),
                    display_name: username.into(),
                    password_hash: auth::hash_password(PASSWORD.into()).await.unwrap(),
                    role: role.into(),
                    scope_version: 0,
                    created_at: 0,
                },
                &[org_unit.to_owned()],
            )
            .await
            .expect("insert user");
        id
    }

    /// The small county most suites use: county `c` > township `t` >
    /// community `cm` (grids `g1`, `g2`) and community `cm2` (grid `g3`).
    pub async fn small_county(&self) {
        self.org_unit("c", None).await;
        self.org_unit("t", Some("c")).await;
        self.org_unit("cm", Some("t")).await;
        self.org_unit("cm2", Some("t")).await;
        for (grid, community) in [("g1", "cm"), ("g2", "cm"), ("g3", "cm2")] {
            self.org_unit(grid, Some(community)).await;
        }
    }

    /// Creates users, each `(username, role, org unit)`.
    pub async fn users(&self, users: &[(&str, &str, &str)]) {
        for (username, role, org_unit) in users {
            self.user(username, role, org_unit).await;
        }
    }

    /// Creates an org unit under `parent` unless it exists.
    pub async fn org_unit(&self, id: &str, parent: Option<&str>) {
        let storage = &self.state.engine.storage;
        if storage.org_unit(id).await.unwrap().is_some() {
            return;
        }
        let parent_path = match parent {
            Some(p) => {
                storage
                    .org_unit(p)
                    .await
                    .unwrap()
                    .expect("parent unit")
                    .path
            }
            None => "/".to_owned(),
        };
        storage
            .insert_org_unit(&gridsync_server::storage::OrgUnitRow {
                id: id.into(),
                parent_id: parent.map(str::to_owned),
                kind: match parent {
                    Some(_) => gridsync_server::domain::OrgUnitKind::Grid,
                    None => gridsync_server::domain::OrgUnitKind::County,
                },
                name: id.into(),
                path: format!("{parent_path}{id}/"),
                created_at: 0,
            })
            .await
            .expect("insert org unit");
    }

    /// Logs in as `username` on a new device with an empty replica.
    pub async fn device(&self, username: &str) -> Device<MemoryStore> {
        self.device_with_store(username, MemoryStore::default())
            .await
    }

    /// Logs in as `username` on a new device whose replica lives in `store`.
    pub async fn device_with_store<S: ReplicaStore>(&self, username: &str, store: S) -> Device<S> {
        Device::login(&self.url(""), username, store).await
    }

    /// The server's merged copy of a document.
    pub async fn document(&self, id: &RecordId) -> Option<Automerge> {
        let mut tx = self.state.engine.storage.begin(false).await.unwrap();
        let row = tx.load(&id.to_string()).await.unwrap()?;
        Some(Automerge::load(&row.snapshot).unwrap())
    }

    /// Every stored document.
    pub async fn documents(&self) -> Vec<(RecordId, Automerge)> {
        let sql = "SELECT id, snapshot FROM documents";
        let rows: Vec<(String, Vec<u8>)> = if self.db.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
        } else {
            let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
        };
        rows.into_iter()
            .map(|(id, bytes)| (id.parse().unwrap(), sync_core::doc::load(&bytes).unwrap()))
            .collect()
    }

    /// The documents `user_id` may receive, decided by the sync-core
    /// policy on the stored documents (not by the server's queries).
    pub async fn scope_of(&self, user_id: &str) -> std::collections::BTreeSet<RecordId> {
        let user = self
            .state
            .engine
            .storage
            .user(user_id)
            .await
            .unwrap()
            .expect("user");
        let principal = sync_core::policy::Principal {
            user_id: user_id.into(),
            role: user.role.parse().unwrap(),
            area: self
                .state
                .engine
                .storage
                .area(user_id)
                .await
                .unwrap()
                .into_iter()
                .collect(),
        };
        self.documents()
            .await
            .into_iter()
            .filter(|(id, doc)| {
                let meta = sync_core::doc::meta(id.kind(), doc).unwrap();
                principal.can_read(id.kind(), &meta)
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Counts rows of a table, for checking that nothing was stored.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}");
        self.texts(&sql).await[0].parse().unwrap()
    }

    /// The first column of every row `sql` selects, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let rows: Vec<(String,)> = if self.db.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        } else {
            let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        };
        rows.into_iter().map(|(text,)| text).collect()
    }

    /// Runs `sql` (one or more statements) on the server's database, from
    /// a connection of its own: for setting up what no API does.
    pub async fn execute(&self, sql: &str) {
        if self.db.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    /// Deletes every projection row, as a database from before they
    /// existed would have none.
    pub async fn wipe_projections(&self) {
        let ids: Vec<String> = self
            .documents()
            .await
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        let mut tx = self.state.engine.storage.begin(true).await.unwrap();
        for id in ids {
            let kind = id.parse::<RecordId>().unwrap().kind();
            tx.project(&id, kind.as_str(), None, &Default::default())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What login returns.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Session {
    /// The user.
    pub user_id: String,
    /// The new device.
    pub device_id: String,
    /// The refresh token.
    pub refresh_token: String,
    /// A bearer token.
    pub access_token: String,
}

/// Logs in over HTTP.
pub async fn login(base: &str, username: &str, password: &str) -> Session {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({
            "username": username,
            "password": password,
            "device_name": "test phone",
        }))
        .send()
        .await
        .expect("login request");
    assert_eq!(response.status(), 200, "login as {username}");
    response.json().await.expect("login body")
}

/// A phone: a replica and a logged-in HTTP client.
pub struct Device<S: ReplicaStore> {
    /// The local documents.
    pub replica: Replica<S>,
    /// The server's base URL.
    pub base: String,
    http: reqwest::Client,
    /// The bearer token.
    pub token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// The device id.
    pub device_id: String,
    /// The user id.
    pub user_id: String,
    /// Sync requests sent so far.
    pub requests: usize,
}

/// A transport failure or non-200 answer.
#[derive(Debug)]
pub struct HttpError(pub String);

impl<S: ReplicaStore> Device<S> {
    /// Logs in as `username` (with [`PASSWORD`]) at `base`, with a replica
    /// in `store`.
    pub async fn login(base: &str, username: &str, store: S) -> Self {
        Self::login_with(base, username, PASSWORD, store).await
    }

    /// Logs in as `username` with `password` at `base`, with a replica in
    /// `store`.
    pub async fn login_with(base: &str, username: &str, password: &str, store: S) -> Self {
        let session = login(base, username, password).await;
        let http = reqwest::Client::new();
        let me: gridsync_server::http::auth::Me = http
            .get(format!("{base}/v1/me"))
            .bearer_auth(&session.access_token)
            .send()
            .await
            .expect("GET /v1/me")
            .json()
            .await
            .expect("me");
        let mut replica = Replica::open(store).expect("replica");
        replica.set_principal(Some(sync_core::policy::Principal {
            user_id: me.user_id.clone(),
            role: me.role.parse().expect("role"),
            area: me.area.into_iter().collect(),
        }));
        Device {
            replica,
            base: base.to_owned(),
            http,
            token: session.access_token,
            refresh_token: session.refresh_token,
            device_id: session.device_id,
            user_id: me.user_id,
            requests: 0,
        }
    }

    /// The same device running a modified app that skips the local policy
    /// check: what the server must stop on its own.
    pub fn tampered(mut self) -> Self {
        self.replica.set_principal(None);
        self
    }

    /// Sends a JSON request with this device's token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Syncs until the server has nothing more to send.
    pub async fn sync(&mut self) -> SyncReport {
        self.try_sync().await.expect("sync")
    }

    /// Syncs, returning transport and protocol failures.
    pub async fn try_sync(&mut self) -> Result<SyncReport, sync_core::SyncError<HttpError>> {
        let http = self.http.clone();
        let url = format!("{}/v1/sync", self.base);
        let token = self.token.clone();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let report = self
            .replica
            .sync_with(|body| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                post_sync(http.clone(), url.clone(), token.clone(), body)
            })
            .await;
        self.requests += requests.load(std::sync::atomic::Ordering::SeqCst);
        report
    }

    /// Gives up on any request after `timeout` (by default a request
    /// waits as long as the server takes): for runs that kill servers,
    /// where a connection can be left hanging.
    pub fn set_request_timeout(&mut self, timeout: std::time::Duration) {
        self.http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("HTTP client");
    }

    /// Points the device at another server address (same database).
    pub fn reconnect(&mut self, base: String) {
        self.base = base;
    }

    /// Sends `bytes[first..]` of the file `sha256` as one part of its
    /// upload (`Content-Range`), returning status and body.
    pub async fn put_part(
        &self,
        sha256: &str,
        media_type: &str,
        bytes: &[u8],
        first: usize,
    ) -> (u16, serde_json::Value) {
        let part = bytes[first..].to_vec();
        let range = format!("bytes {first}-{}/{}", bytes.len() - 1, bytes.len());
        let response = self
            .http
            .put(format!("{}/v1/attachments/{sha256}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", media_type)
            .header("content-range", range)
            .body(part)
            .send()
            .await
            .expect("upload request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Uploads every file the replica's queue holds ready, each in one
    /// request from where the server stands, and takes those the server
    /// kept (or refused for good) off the queue. Returns each file's final
    /// status.
    pub async fn upload_files(&mut self) -> Vec<(String, u16)> {
        let mut done = Vec::new();
        for upload in self.replica.uploads_ready() {
            let bytes = self
                .replica
                .file(&upload.sha256)
                .expect("read file")
                .expect("the phone keeps its files");
            let path = format!("/v1/attachments/{}/upload", upload.sha256);
            let (status, state) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{state}");
            let first = match state["complete"].as_bool() {
                Some(true) => bytes.len(),
                _ => state["received"].as_u64().unwrap_or(0) as usize,
            };
            let status = match first == bytes.len() {
                true => 200,
                false => {
                    self.put_part(&upload.sha256, &upload.media_type, &bytes, first)
                        .await
                        .0
                }
            };
            if matches!(status, 200 | 201 | 415 | 422) {
                self.replica.upload_done(&upload.sha256).expect("queue");
            }
            done.push((upload.sha256, status));
        }
        done
    }

    /// Sends the first half of `bytes` as one part covering the whole file
    /// `sha256`, waits `pause`, then drops the connection: a phone losing
    /// its signal mid-upload. Returns how long the request took, the pause
    /// excluded.
    pub async fn cut_upload(
        &self,
        sha256: &str,
        bytes: &[u8],
        pause: std::time::Duration,
    ) -> std::time::Duration {
        let half = bytes::Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
        let stream = futures_util::stream::unfold(Some(half), move |half| async move {
            match half {
                Some(half) => Some((Ok(half), None)),
                None => {
                    tokio::time::sleep(pause).await;
                    Some((
                        Err(std::io::Error::other("the phone lost its signal")),
                        None,
                    ))
                }
            }
        });
        let started = std::time::Instant::now();
        let sent = self
            .http
            .put(format!("{}/v1/attachments/{sha256}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "image/jpeg")
            .header(
                "content-range",
                format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()),
            )
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
        assert!(sent.is_err(), "the request was cut, not answered");
        started.elapsed().saturating_sub(pause)
    }

    /// `GET`s a path with this device's token: status, media type, bytes.
    pub async fn fetch(&self, path: &str) -> (u16, String, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            media_type,
            response.bytes().await.expect("body").to_vec(),
        )
    }

    /// Posts a raw body to `/v1/sync`, returning status and body.
    pub async fn post_raw(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.try_post_raw(body).await.expect("request")
    }

    /// [`Device::post_raw`], giving back a failed connection as an error
    /// (a server shedding load may close it), as a phone would see it.
    pub async fn try_post_raw(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), reqwest::Error> {
        let response = self
            .http
            .post(format!("{}/v1/sync", self.base))
            .bearer_auth(&self.token)
            .header("content-type", CONTENT_TYPE)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?.to_vec()))
    }
}

async fn post_sync(
    http: reqwest::Client,
    url: String,
    token: String,
    body: Vec<u8>,
) -> Result<Vec<u8>, HttpError> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    if !status.is_success() {
        return Err(HttpError(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    Ok(bytes.to_vec())
}

/// `gridsync` running as a separate process, so that a test can kill it
/// the way a crash would. Killed when dropped.
pub struct ServerProcess {
    /// Its base URL.
    pub base: String,
    child: std::process::Child,
}

impl ServerProcess {
    /// Starts `bin serve` on a free loopback port over `db` and waits until
    /// it listens.
    pub fn start(bin: &str, db: &TestDb) -> Self {
        Self::start_with(bin, db, &[])
    }

    /// [`ServerProcess::start`] with extra environment variables (settings
    /// such as `GRIDSYNC_ACCESS_TOKEN_TTL_SECS`).
    pub fn start_with(bin: &str, db: &TestDb, env: &[(String, String)]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .env("GRIDSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // Tests sign in as one user from one address many times over.
            .env("GRIDSYNC_LOGIN_ATTEMPTS_PER_USERNAME_PER_MINUTE", "0")
            .env("GRIDSYNC_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run gridsync serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .expect("read the server log");
            if let Some(rest) = line.split("\"addr\":\"").nth(1) {
                break rest.split('"').next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            base: format!("http://{addr}"),
            child,
        }
    }

    /// Creates a user with [`PASSWORD`] through `bin admin create-user`,
    /// creating the org unit first if needed.
    pub fn create_user(bin: &str, db: &TestDb, username: &str, org_unit: &str) {
        use std::io::Write;
        // Fails harmlessly when the unit exists.
        let _ = std::process::Command::new(bin)
            .args(["admin", "--database-url", &db.url, "create-org-unit"])
            .args(["--id", org_unit, "--kind", "grid", "--name", org_unit])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let mut child = std::process::Command::new(bin)
            .args(["admin", "--database-url", &db.url, "create-user"])
            .args(["--role", "grid_worker", "--org-unit", org_unit])
            .args(["--username", username])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run gridsync admin");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(PASSWORD.as_bytes())
            .expect("write password");
        drop(stdin);
        assert!(child.wait().expect("wait").success(), "create-user failed");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process (SIGKILL: no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
