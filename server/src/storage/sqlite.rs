//! The embedded SQLite backend: one file, zero set-up.
//!
//! WAL mode lets readers run beside the single writer; `synchronous = FULL`
//! makes every commit durable before the server acknowledges it, even across
//! power loss. Write transactions start with `BEGIN IMMEDIATE`, which takes
//! the write lock at once: writers are serialised, so feed `seq`s become
//! visible in order.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::sql::{Backend, SqlStorage};

/// SQLite storage.
pub type SqliteStorage = SqlStorage<Sqlite>;

impl SqlStorage<Sqlite> {
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
            .pragma("cache_size", "-32768")
            // The write-ahead log is copied into the database file after
            // each write transaction commits, beside the next writer
            // (`SqlStorage::checkpoint`). A commit does it itself only when
            // the log has grown past 32 MiB, holding the write lock
            // meanwhile.
            .pragma("wal_autocheckpoint", "8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let id = crate::domain::random_hex(16);
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('instance_id', $1) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .execute(&pool)
        .await?;
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool, writes))
    }
}

impl Backend for Sqlite {
    /// `BEGIN IMMEDIATE` takes the write lock at once, so a write
    /// transaction never has to upgrade (and never fails to) mid-way.
    async fn begin_tx(
        pool: &SqlitePool,
        write: bool,
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        if write {
            pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            pool.begin().await
        }
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    const CHECKPOINT: Option<&'static str> = Some("PRAGMA wal_checkpoint(PASSIVE)");

    fn json_rows(columns: &str) -> Option<String> {
        Some(format!("json_group_array(json_array({columns}))"))
    }
}
