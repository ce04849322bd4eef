//! The embedded SQLite backend: one file, zero set-up.
//!
//! WAL mode lets readers run beside the single writer; `synchronous = FULL`
//! makes every commit durable before the server acknowledges it, even across
//! power loss. Write transactions start with `BEGIN IMMEDIATE`, which takes
//! the write lock at once: writers are serialised, so feed `seq`s become
//! visible in order.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::query::sql_queries;
use super::sql::sql_storage;

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    /// One writer of this instance at a time (see [`super::Storage::begin`]).
    turn: std::sync::Arc<tokio::sync::Semaphore>,
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at a `sqlite:` URL and brings
    /// its schema up to date.
    pub async fn open(url: &str) -> super::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Pages read through a memory map and a larger page cache: a
            // merge reads snapshots and index pages all over the file, and
            // each read through the default 2 MiB cache is a system call.
            .pragma("mmap_size", (256u64 << 20).to_string())
            .pragma("cache_size", "-32768");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let id = crate::domain::random_hex(16);
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('instance_id', $1) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .execute(&pool)
        .await?;
        Ok(Self {
            turn: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            pool,
        })
    }

    /// The connection pool (for its gauges in the metrics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `BEGIN IMMEDIATE` takes the write lock at once, so a write
    /// transaction never has to upgrade (and never fails to) mid-way.
    async fn begin_tx(&self, write: bool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        if write {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
    }
}

sql_storage!(SqliteStorage, Sqlite, SqliteTx);
sql_queries!(SqliteStorage, Sqlite);
super::files::sql_files!(SqliteStorage, Sqlite);
