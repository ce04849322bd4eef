//! Configuration, in layers: built-in defaults, then a TOML file, then
//! `GRIDSYNC_*` environment variables, then command-line flags. Each layer
//! overrides only the keys it sets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Server settings.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and other local state.
    pub data_dir: PathBuf,
    /// Database URL; when unset, `sqlite://<data_dir>/gridsync.db`.
    pub database_url: Option<String>,
    /// PostgreSQL only: most connections this instance opens.
    pub db_max_connections: u32,
    /// PostgreSQL only: how long a request waits for a free connection, in
    /// seconds.
    pub db_acquire_timeout_secs: u64,
    /// Largest request body accepted, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// `iss` of issued tokens, and the only issuer accepted.
    pub issuer: String,
    /// `aud` of issued tokens, and the only audience accepted.
    pub audience: String,
    /// Most documents sent down in one sync response.
    pub sync_page_docs: usize,
    /// Most documents (pushes and Automerge sync messages together) one
    /// sync request may carry; more is answered `413 too_many_documents`.
    pub sync_max_docs: usize,
    /// Most operations one pushed change may hold; a larger change is
    /// refused (`change_too_large`) before it is decoded.
    pub sync_max_change_ops: u64,
    /// Most operations all the changes of one sync request may hold
    /// together; more is answered `413 too_many_operations`.
    pub sync_max_request_ops: u64,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Case time limits (a `[deadlines]` table).
    pub deadlines: sync_core::workflow::Deadlines,
    /// The local time zone, as minutes east of UTC (480: China Standard
    /// Time): where days begin in daily logs and how exports show times.
    pub utc_offset_minutes: i32,
    /// How many days accepted changes are kept as rows of their own in
    /// the change log; older ones live on only inside the documents'
    /// snapshots (see [`crate::engine::compaction`]).
    pub change_retention_days: u32,
    /// Seconds between two compactions run by the server; 0: never (the
    /// command line `gridsync admin compact` still works).
    pub compaction_interval_secs: u64,
    /// Sign-in attempts admitted per username and minute (a burst of this
    /// many, then one every `60 / n` seconds); 0: no limit.
    pub login_attempts_per_username_per_minute: u32,
    /// Sign-in attempts admitted per client address (the TCP peer; an IPv6
    /// address counts by its /64) and minute; 0: no limit.
    pub login_attempts_per_address_per_minute: u32,
    /// Most password hashes computed at once (each Argon2 hash holds about
    /// 19 MiB while it runs).
    pub password_hash_concurrency: usize,
    /// How long a sign-in waits for a hashing slot before it is answered
    /// `503 overloaded`, in milliseconds.
    pub password_hash_wait_ms: u64,
    /// Lifetime of a refresh token, in seconds from when it was issued;
    /// every refresh issues a new one.
    pub refresh_token_ttl_secs: u64,
    /// Seconds during which the refresh token replaced last is still taken
    /// for a retry (its answer lost on the way) rather than for a copy.
    pub refresh_reuse_grace_secs: u64,

    // Limits that keep one client from holding the server ([`crate::http::limits`]).
    /// Seconds a client has to send a request's headers, from the first
    /// byte (or from the end of the previous request on a kept-alive
    /// connection); after that the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body, from the end of
    /// its headers; after that it is answered `408 body_timeout`.
    pub body_read_timeout_secs: u64,
    /// Seconds a request may take until its answer starts (the body read
    /// included; a streamed answer, such as `/v1/events` or an export, is
    /// not timed once it starts); after that it is answered
    /// `503 timed_out`.
    pub request_timeout_secs: u64,
    /// Most requests served at once by this instance; more are answered
    /// `503 overloaded` at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// Most `/v1/events` streams one device may hold open on this
    /// instance; one more is answered `429 too_many_streams`.
    pub max_event_streams_per_device: usize,
    /// The bearer token that `GET /metrics` requires; unset, `/metrics`
    /// answers `404`.
    pub metrics_token: Option<String>,

    // Attached files ([`crate::engine::attachments`]).
    /// Where attached files' bytes are kept: `directory` (under
    /// `attachment_dir`; one server), `database` (a table of the database;
    /// every instance shares it), or `s3` (a bucket of S3-compatible
    /// storage, see `s3_*`).
    pub attachment_store: AttachmentStore,
    /// The directory of the `directory` store; when unset,
    /// `<data_dir>/attachments`.
    pub attachment_dir: Option<PathBuf>,
    /// The largest file accepted, in bytes.
    pub attachment_max_bytes: u64,
    /// The most bytes one device may upload in a day (UTC).
    pub attachment_daily_bytes_per_device: u64,
    /// Days a file stays kept after the last record naming it stops
    /// naming it (or an upload stays resumable after its last part);
    /// swept with compaction.
    pub attachment_retention_days: u32,
    /// The bucket of the `s3` store.
    pub s3_bucket: Option<String>,
    /// The endpoint of an S3-compatible service other than AWS.
    pub s3_endpoint: Option<String>,
    /// The region of the bucket.
    pub s3_region: String,
    /// The access key id; unset, `AWS_ACCESS_KEY_ID` from the environment.
    pub s3_access_key_id: Option<String>,
    /// The secret key; unset, `AWS_SECRET_ACCESS_KEY` from the environment.
    pub s3_secret_access_key: Option<String>,
}

/// Where attached files' bytes are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentStore {
    /// Files under a directory of the server's disk.
    #[default]
    Directory,
    /// A table of the database.
    Database,
    /// An S3-compatible bucket.
    S3,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 16,
            db_acquire_timeout_secs: 10,
            max_body_bytes: 16 * 1024 * 1024,
            access_token_ttl_secs: 15 * 60,
            issuer: "gridsync".into(),
            audience: "gridsync".into(),
            sync_page_docs: 1000,
            sync_max_docs: 1000,
            sync_max_change_ops: 100_000,
            sync_max_request_ops: 1_000_000,
            log_format: LogFormat::Text,
            deadlines: Default::default(),
            utc_offset_minutes: 8 * 60,
            change_retention_days: 30,
            compaction_interval_secs: 3600,
            login_attempts_per_username_per_minute: 10,
            login_attempts_per_address_per_minute: 60,
            password_hash_concurrency: 4,
            password_hash_wait_ms: 2000,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_reuse_grace_secs: 30,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 60,
            request_timeout_secs: 120,
            max_concurrent_requests: 512,
            max_event_streams_per_device: 4,
            metrics_token: None,
            attachment_store: AttachmentStore::Directory,
            attachment_dir: None,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachment_daily_bytes_per_device: 200 * 1024 * 1024,
            attachment_retention_days: 30,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_secs", &self.db_acquire_timeout_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("sync_page_docs", &self.sync_page_docs)
            .field("sync_max_docs", &self.sync_max_docs)
            .field("sync_max_change_ops", &self.sync_max_change_ops)
            .field("sync_max_request_ops", &self.sync_max_request_ops)
            .field("log_format", &self.log_format)
            .field("deadlines", &self.deadlines)
            .field("utc_offset_minutes", &self.utc_offset_minutes)
            .field("change_retention_days", &self.change_retention_days)
            .field("compaction_interval_secs", &self.compaction_interval_secs)
            .field(
                "login_attempts_per_username_per_minute",
                &self.login_attempts_per_username_per_minute,
            )
            .field(
                "login_attempts_per_address_per_minute",
                &self.login_attempts_per_address_per_minute,
            )
            .field("password_hash_concurrency", &self.password_hash_concurrency)
            .field("password_hash_wait_ms", &self.password_hash_wait_ms)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("refresh_reuse_grace_secs", &self.refresh_reuse_grace_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field(
                "max_event_streams_per_device",
                &self.max_event_streams_per_device,
            )
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("attachment_store", &self.attachment_store)
            .field("attachment_dir", &self.attachment_dir)
            .field("attachment_max_bytes", &self.attachment_max_bytes)
            .field(
                "attachment_daily_bytes_per_device",
                &self.attachment_daily_bytes_per_device,
            )
            .field("attachment_retention_days", &self.attachment_retention_days)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &self.s3_secret_access_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// A URL with any password replaced by `***`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A layer has a bad key or value.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Builds the configuration from its layers. `env` is the process
    /// environment (only `GRIDSYNC_*` is read); `flags` are keys set on the
    /// command line.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: toml::Table,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, raw) in env {
            let Some(key) = name.strip_prefix("GRIDSYNC_") else {
                continue;
            };
            if key == "CONFIG" {
                continue;
            }
            table.insert(key.to_ascii_lowercase(), env_value(&raw));
        }
        table.extend(flags);
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.max_body_bytes < 1024 {
            return invalid("max_body_bytes must be at least 1024");
        }
        if self.access_token_ttl_secs == 0 {
            return invalid("access_token_ttl_secs must be positive");
        }
        if self.db_max_connections == 0 {
            return invalid("db_max_connections must be positive");
        }
        if self.sync_page_docs == 0 {
            return invalid("sync_page_docs must be positive");
        }
        if self.password_hash_concurrency == 0 {
            return invalid("password_hash_concurrency must be positive");
        }
        if self.refresh_token_ttl_secs == 0 {
            return invalid("refresh_token_ttl_secs must be positive");
        }
        if self.sync_max_docs == 0 || self.sync_max_change_ops == 0 {
            return invalid("sync_max_docs and sync_max_change_ops must be positive");
        }
        if self.sync_max_request_ops < self.sync_max_change_ops {
            return invalid("sync_max_request_ops must be at least sync_max_change_ops");
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return invalid("utc_offset_minutes must be between -840 and 840");
        }
        if self.header_read_timeout_secs == 0
            || self.body_read_timeout_secs == 0
            || self.request_timeout_secs == 0
        {
            return invalid("header, body and request timeouts must be positive");
        }
        if self.max_concurrent_requests == 0 || self.max_event_streams_per_device == 0 {
            return invalid(
                "max_concurrent_requests and max_event_streams_per_device must be positive",
            );
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return invalid("metrics_token must be at least 16 characters");
        }
        let most = sync_core::records::MAX_ATTACHMENT_BYTES as u64;
        if !(1..=most).contains(&self.attachment_max_bytes) {
            return invalid(&format!("attachment_max_bytes must be from 1 to {most}"));
        }
        if self.attachment_store == AttachmentStore::S3 && self.s3_bucket.is_none() {
            return invalid("attachment_store = \"s3\" needs s3_bucket");
        }
        Ok(())
    }

    /// The directory of the `directory` attachment store.
    pub fn attachment_dir(&self) -> PathBuf {
        match &self.attachment_dir {
            Some(dir) => dir.clone(),
            None => self.data_dir.join("attachments"),
        }
    }

    /// The database to open.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("gridsync.db").display()),
        }
    }
}

/// An environment value as TOML: numbers and booleans as such, anything
/// else as a string.
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_)),
            ) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gridsync.toml");
        std::fs::write(&file, "max_body_bytes = 2048\nissuer = \"file\"\n").unwrap();
        let env = [
            ("GRIDSYNC_ISSUER".to_owned(), "env".to_owned()),
            ("GRIDSYNC_ACCESS_TOKEN_TTL_SECS".to_owned(), "60".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let mut flags = toml::Table::new();
        flags.insert("access_token_ttl_secs".into(), toml::Value::Integer(30));
        let config = Config::load(Some(&file), env, flags).unwrap();
        assert_eq!(config.max_body_bytes, 2048);
        assert_eq!(config.issuer, "env");
        assert_eq!(config.access_token_ttl_secs, 30);
        assert_eq!(config.listen, Config::default().listen);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let env = [("GRIDSYNC_NO_SUCH_KEY".to_owned(), "1".to_owned())];
        assert!(Config::load(None, env, toml::Table::new()).is_err());
        let env = [("GRIDSYNC_LISTEN".to_owned(), "not an address".to_owned())];
        assert!(Config::load(None, env, toml::Table::new()).is_err());
    }

    #[test]
    fn debug_hides_database_password() {
        let config = Config {
            database_url: Some("postgres://app:s3cret@db/gridsync".into()),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db/gridsync"), "{shown}");
        let config = Config {
            metrics_token: Some("scrape-token-0123456789".into()),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("scrape-token"), "{shown}");
    }
}
