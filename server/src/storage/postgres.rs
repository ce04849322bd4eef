//! The PostgreSQL backend, for deployments with several stateless server
//! instances in front of one database.
//!
//! Write transactions take one transaction-scoped advisory lock before they
//! read anything, so writers are serialised across every instance: two
//! devices syncing the same document through different instances merge one
//! after the other (neither overwrites the other's snapshot), and feed
//! `seq`s, allocated under the lock, become visible in commit order, which
//! the cursor relies on. Readers take a repeatable-read snapshot and never
//! wait for writers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres, Transaction};

use super::sql::{Backend, SqlStorage};

/// The advisory lock key held by every write transaction ("gridsync" in
/// ASCII).
const WRITE_LOCK: i64 = 0x6772_6964_7379_6e63;

/// Pool settings for PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Most connections this instance opens: one for write transactions,
    /// the rest (at least one) for everything else.
    pub max_connections: u32,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
}

/// PostgreSQL storage.
pub type PostgresStorage = SqlStorage<Postgres>;

impl SqlStorage<Postgres> {
    /// Connects to a `postgres://` URL (TLS and other connection options go
    /// in the URL, e.g. `?sslmode=require`) and brings the schema up to date.
    /// Instances starting together are safe: migrations take a lock.
    pub async fn open(url: &str, settings: PoolSettings) -> super::Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.saturating_sub(1).max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('instance_id', $1) ON CONFLICT DO NOTHING",
        )
        .bind(crate::domain::random_hex(16))
        .execute(&pool)
        .await?;
        let writes = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool, writes))
    }
}

impl Backend for Postgres {
    async fn begin_tx(
        pool: &PgPool,
        write: bool,
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        if write {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    const CHECKPOINT: Option<&'static str> = None;

    /// PostgreSQL's driver reads rows in the task that asks, and building
    /// the JSON cost more than it saved (a county's tally: 24 ms against
    /// 12 to 15 ms as rows, in `psql`).
    fn json_rows(_columns: &str) -> Option<String> {
        None
    }
}
