//! The embedded SQLite backend: one file, zero set-up.
//!
//! WAL mode lets readers run beside the single writer; `synchronous = FULL`
//! makes every commit durable before the server acknowledges it, even across
//! power loss. Write transactions start with `BEGIN IMMEDIATE`, which takes
//! the write lock at once: writers are serialised, so feed `seq`s become
//! visible in order.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{
    DeviceRow, DocRow, DocTx, DocWrite, FeedDoc, Result, SigningKeyRow, Storage, StorageError,
    UserRow,
};

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::connect(options).await
    }

    /// Opens a database from a `sqlite:` URL.
    pub async fn open_url(url: &str) -> Result<Self> {
        Self::connect(SqliteConnectOptions::from_str(url)?).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let id = crate::random_hex(16);
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }
}

fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => StorageError::Database(e),
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn instance_id(&self) -> Result<String> {
        let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn insert_user(&self, user: &UserRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, role, org_unit, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(&user.org_unit)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique("username"))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_device(&self, device: &DeviceRow, refresh_token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO devices (id, user_id, name, refresh_token_hash, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&device.id)
        .bind(&device.user_id)
        .bind(&device.name)
        .bind(refresh_token_hash)
        .bind(device.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique("device"))?;
        Ok(())
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRow>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, created_at, revoked_at FROM devices WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn device_by_refresh_hash(&self, hash: &str) -> Result<Option<DeviceRow>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, created_at, revoked_at FROM devices
             WHERE refresh_token_hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        Ok(sqlx::query_as(
            "SELECT kid, private_der, public_key, created_at FROM signing_keys
             WHERE retired_at IS NULL ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_der, public_key, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.private_der)
        .bind(&key.public_key)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique("signing key"))?;
        Ok(())
    }

    async fn document_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM documents")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn begin(&self, write: bool) -> Result<Box<dyn DocTx>> {
        let tx = if write {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        };
        Ok(Box::new(SqliteTx { tx }))
    }
}

struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

#[async_trait]
impl DocTx for SqliteTx {
    async fn load(&mut self, id: &str) -> Result<Option<DocRow>> {
        Ok(
            sqlx::query_as("SELECT snapshot, heads FROM documents WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn save(&mut self, w: DocWrite<'_>) -> Result<()> {
        let mut first = None;
        let mut last = None;
        for change in w.changes {
            let (seq,): (i64,) = sqlx::query_as(
                "INSERT INTO changes (doc_id, hash, bytes, actor, user_id, device_id, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            )
            .bind(w.id)
            .bind(&change.hash[..])
            .bind(&change.bytes)
            .bind(&change.actor)
            .bind(w.user_id)
            .bind(w.device_id)
            .bind(w.now)
            .fetch_one(&mut *self.tx)
            .await?;
            first.get_or_insert(seq);
            last = Some(seq);
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO documents
                 (id, kind, org_unit, snapshot, heads, first_seq, seq, change_count, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
                 org_unit = excluded.org_unit,
                 snapshot = excluded.snapshot,
                 heads = excluded.heads,
                 seq = excluded.seq,
                 change_count = documents.change_count + excluded.change_count,
                 updated_at = excluded.updated_at",
        )
        .bind(w.id)
        .bind(w.kind)
        .bind(w.org_unit)
        .bind(w.snapshot)
        .bind(w.heads)
        .bind(first)
        .bind(last)
        .bind(w.changes.len() as i64)
        .bind(w.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn max_seq(&mut self) -> Result<i64> {
        let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM documents")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn feed(&mut self, base: i64, after: i64, limit: i64) -> Result<Vec<FeedDoc>> {
        Ok(sqlx::query_as(
            "SELECT id, first_seq, seq, heads,
                    CASE WHEN first_seq > ? THEN snapshot END AS snapshot
             FROM documents WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(base)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn changes_between(&mut self, base: i64, upto: i64) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(sqlx::query_as(
            "SELECT doc_id, bytes FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq",
        )
        .bind(base)
        .bind(upto)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
