//! The SQL both backends share. SQLite and PostgreSQL accept the same
//! statements here (`$n` parameters, `ON CONFLICT`, `RETURNING`, `||`), so
//! the [`Storage`](super::Storage) and [`DocTx`](super::DocTx)
//! implementations are written once, generic over the sqlx driver. What
//! differs (opening, migrations, how a write transaction excludes other
//! writers) stays in each backend's module, behind [`Backend`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use sqlx::database::HasStatementCache;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Transaction,
    Type,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::statement::{Binds, Placeholders, Statement, p};
use super::{
    AuditEntry, AuditReader, AuditRow, CompactBatch, DeviceRow, DocRow, DocTx, DocWrite, FeedDoc,
    NewChange, OrgUnitKind, OrgUnitRow, QuarantineRow, QuarantineStatus, RefreshState,
    RefreshToken, Result, Scope, SigningKeyRow, Storage, StorageError, UserRow,
};
use crate::projection::{Part, Projection};

/// A document write held until the transaction next reads the feed.
pub(super) struct PendingDoc {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) org_unit: String,
    pub(super) reporter: Option<String>,
    pub(super) assignee: Option<String>,
    pub(super) snapshot: Vec<u8>,
    pub(super) heads: Vec<u8>,
    pub(super) changes: Vec<NewChange>,
    pub(super) user_id: String,
    pub(super) device_id: String,
    pub(super) now: i64,
}

pub(super) fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => StorageError::Database(e),
    }
}

// The scope rule in SQL, written once: the area (`area_units!`, split in
// two for statements whose parameters a [`Statement`] numbers) and the
// documents of a scope (`in_scope!`). Their Rust twin is
// `sync_core::policy::Principal::can_read`; `tests/tests/scope_rule.rs`
// checks that both agree.

/// The start of [`area_units!`], up to the user's id.
macro_rules! area_head {
    () => {
        "SELECT o.id FROM org_units o JOIN user_units uu ON uu.user_id = "
    };
}
pub(super) use area_head;

/// The rest of [`area_units!`], after the user's id.
macro_rules! area_tail {
    () => {
        " JOIN org_units b ON b.id = uu.org_unit_id WHERE o.path LIKE b.path || '%'"
    };
}
pub(super) use area_tail;

/// The org units of the area of the user given as parameter `$user` (e.g.
/// `"$1"`): every unit in the subtree of a unit the user is bound to. May
/// name a unit more than once.
macro_rules! area_units {
    ($user:literal) => {
        concat!(
            $crate::storage::sql::area_head!(),
            $user,
            $crate::storage::sql::area_tail!()
        )
    };
}
pub(super) use area_units;

/// Whether document `d` is in the scope of user `$1`, whose role sees its
/// area when `$2` and sensitive details when `$3`. Never NULL (so that
/// `NOT` works): absent reporters and assignees compare as empty strings.
/// Reporters and assignees are set on cases only.
macro_rules! in_scope {
    () => {
        concat!(
            "(($2 AND d.org_unit IN (",
            $crate::storage::sql::area_units!("$1"),
            ") AND (d.kind <> 'sensitive' OR $3))
              OR COALESCE(d.reporter, '') = $1 OR COALESCE(d.assignee, '') = $1)"
        )
    };
}
pub(super) use in_scope;

/// What differs between the backends the SQL here runs on: how a
/// transaction starts, how a statement's count of changed rows is read,
/// and how a statement's parameters are written.
///
/// What the SQL needs of a driver besides (which Rust types it binds and
/// reads, that a connection runs statements) is the `where` clause of each
/// generic block below, the same list on each: Rust does not carry a
/// trait's `where` clauses to the code that names the trait, so they cannot
/// be said once here. SQLite and PostgreSQL meet them.
pub trait Backend: Database + HasStatementCache + Placeholders {
    /// Begins a transaction. A write transaction excludes every other
    /// writer (of every instance) from the start, so feed seqs allocated in
    /// it become visible in order.
    fn begin_tx(
        pool: &Pool<Self>,
        write: bool,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// The statement that copies the write-ahead log into the database
    /// file without waiting for readers or writers, where the backend
    /// leaves that to its client (SQLite); `None` where the database does
    /// it itself (PostgreSQL).
    const CHECKPOINT: Option<&'static str>;

    /// Where the backend reads many small rows faster packed into one: an
    /// aggregate gathering the rows of its group into one JSON text, an
    /// array holding for each row an array of the values `columns` (an
    /// SQL list) gives (`[]` for no rows). `None` where rows are read as
    /// fast as they come ([`fetch_small`]).
    fn json_rows(columns: &str) -> Option<String>;
}

/// Fetches the rows of `q`, a query of `columns`, as `T`s (a tuple, or a
/// struct whose fields come in the columns' order): as they are, or
/// packed into one row where the backend reads them faster so
/// ([`Backend::json_rows`]).
///
/// For queries answering thousands of small rows. SQLite's driver runs
/// each connection on a thread of its own and hands every row over to the
/// task reading it, waking one side or the other: for a county's case
/// tally that cost more than counting the rows.
pub(super) async fn fetch_small<DB, T>(
    conn: &mut DB::Connection,
    q: &mut Statement<'_>,
    columns: &str,
    persistent: bool,
) -> Result<Vec<T>>
where
    DB: Backend + Binds,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    T: serde::de::DeserializeOwned + for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let Some(packed) = DB::json_rows(columns) else {
        return Ok(q
            .query_as()?
            .persistent(persistent)
            .fetch_all(&mut *conn)
            .await?);
    };
    q.wrap(&format!("SELECT {packed} FROM ("), ") r");
    let (text,): (String,) = q
        .query_as()?
        .persistent(persistent)
        .fetch_one(&mut *conn)
        .await?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
}

/// A Rust type the SQL binds as a parameter and reads back as a column.
pub trait Column<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

impl<DB: Database, T> Column<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send
{
}

/// Storage on a SQL database: [`SqliteStorage`](super::sqlite::SqliteStorage)
/// or [`PostgresStorage`](super::postgres::PostgresStorage).
#[derive(Debug)]
pub struct SqlStorage<DB: Database> {
    /// One writer of this instance at a time (see [`Storage::begin`]).
    turn: Arc<Semaphore>,
    /// A checkpoint is running (see [`SqlStorage::checkpoint`]).
    checkpointing: Arc<AtomicBool>,
    pub(super) pool: Pool<DB>,
    /// The connection write transactions run on, apart from `pool`: a
    /// writer holds the write lock, which every other writer waits for,
    /// and must not wait for a connection behind the readers of a rush.
    /// One is enough, since this instance's writers take turns.
    writes: Pool<DB>,
}

impl<DB: Database> Clone for SqlStorage<DB> {
    fn clone(&self) -> Self {
        Self {
            turn: self.turn.clone(),
            checkpointing: self.checkpointing.clone(),
            pool: self.pool.clone(),
            writes: self.writes.clone(),
        }
    }
}

impl<DB: Database> SqlStorage<DB> {
    /// Storage on an open, migrated database: `pool` for reads, `writes`
    /// (one connection) for write transactions.
    pub(super) fn new(pool: Pool<DB>, writes: Pool<DB>) -> Self {
        Self {
            turn: Arc::new(Semaphore::new(1)),
            checkpointing: Arc::default(),
            pool,
            writes,
        }
    }

    /// The connection pool (for its gauges in the metrics, and PostgreSQL's
    /// change notifier).
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Backend> SqlStorage<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    /// Copies what the write-ahead log holds into the database file, in a
    /// task of its own beside the readers and writers, where the backend
    /// leaves that to its client (SQLite): a write transaction starts one
    /// once it has committed, so that commits need not do it holding the
    /// write lock. Nothing starts while another is running; one that fails
    /// (no connection free in a rush) is done by the next.
    fn checkpoint(&self) {
        let Some(checkpoint) = DB::CHECKPOINT else {
            return;
        };
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, running) = (self.pool.clone(), self.checkpointing.clone());
        tokio::spawn(async move {
            if let Err(e) = sqlx::query(checkpoint).execute(&pool).await {
                tracing::debug!(error = %e, "checkpoint not done");
            }
            running.store(false, Ordering::Release);
        });
    }
}

const DEVICE_COLUMNS: &str = "SELECT id, user_id, name, created_at, revoked_at FROM devices";

#[async_trait]
impl<DB: Backend> Storage for SqlStorage<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    String: Column<DB>,
    Option<String>: Column<DB>,
    i64: Column<DB>,
    Option<i64>: Column<DB>,
    bool: Column<DB>,
    Vec<u8>: Column<DB>,
    OrgUnitKind: Column<DB>,
    QuarantineStatus: Column<DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn instance_id(&self) -> Result<String> {
        let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn insert_org_unit(&self, unit: &OrgUnitRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_units (id, parent_id, kind, name, path, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&unit.id)
        .bind(&unit.parent_id)
        .bind(unit.kind)
        .bind(&unit.name)
        .bind(&unit.path)
        .bind(unit.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique("org unit"))?;
        Ok(())
    }

    async fn org_unit(&self, id: &str) -> Result<Option<OrgUnitRow>> {
        Ok(sqlx::query_as("SELECT * FROM org_units WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn org_units(&self) -> Result<Vec<OrgUnitRow>> {
        Ok(sqlx::query_as("SELECT * FROM org_units ORDER BY path")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn move_org_unit(&self, unit: &OrgUnitRow, parent: &OrgUnitRow) -> Result<()> {
        let new_path = format!("{}{}/", parent.path, unit.id);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE org_units SET path = $1 || substr(path, $2)
             WHERE path LIKE $3 || '%'",
        )
        .bind(&new_path)
        .bind(unit.path.len() as i64 + 1)
        .bind(&unit.path)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE org_units SET parent_id = $1 WHERE id = $2")
            .bind(&parent.id)
            .bind(&unit.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET scope_version = scope_version + 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_user(&self, user: &UserRow, units: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users
                 (id, username, display_name, password_hash, role, scope_version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(user.scope_version)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("username"))?;
        for unit in units {
            sqlx::query(
                "INSERT INTO user_units (user_id, org_unit_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&user.id)
            .bind(unit)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_role(&self, user_id: &str, role: &str, units: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET role = $1, scope_version = scope_version + 1 WHERE id = $2")
            .bind(role)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_units WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for unit in units {
            sqlx::query(
                "INSERT INTO user_units (user_id, org_unit_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(unit)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_password(&self, user_id: &str, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn user_units(&self, user_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT org_unit_id FROM user_units WHERE user_id = $1 ORDER BY org_unit_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    async fn area(&self, user_id: &str) -> Result<Vec<String>> {
        let mut q = Statement::new(concat!("SELECT DISTINCT a.id FROM (", area_head!()));
        q.bind(user_id).push(concat!(area_tail!(), ") a"));
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String,)> = fetch_small(&mut conn, &mut q, "r.id", true).await?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_device(&self, device: &DeviceRow, refresh_token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO devices (id, user_id, name, refresh_token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
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
        Ok(sqlx::query_as(&format!("{DEVICE_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn device_by_refresh_hash(&self, hash: &str) -> Result<Option<DeviceRow>> {
        Ok(
            sqlx::query_as(&format!("{DEVICE_COLUMNS} WHERE refresh_token_hash = $1"))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn refresh_token(&self, hash: &str) -> Result<Option<RefreshToken>> {
        type Row = (String, String, String, i64, Option<i64>, i64, String);
        const COLUMNS: &str = "SELECT id, user_id, name, created_at, revoked_at,
            COALESCE(refresh_issued_at, created_at), refresh_token_hash FROM devices";
        let current: Option<Row> =
            sqlx::query_as(&format!("{COLUMNS} WHERE refresh_token_hash = $1"))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        let found = |row: Row, state| {
            let (id, user_id, name, created_at, revoked_at, _, current_hash) = row;
            RefreshToken {
                device: DeviceRow {
                    id,
                    user_id,
                    name,
                    created_at,
                    revoked_at,
                },
                current_hash,
                state,
            }
        };
        if let Some(row) = current {
            let issued_at = row.5;
            return Ok(Some(found(row, RefreshState::Current { issued_at })));
        }
        let retired: Option<(String, i64, bool)> = sqlx::query_as(
            "SELECT r.device_id, r.retired_at, NOT EXISTS (
                 SELECT 1 FROM retired_refresh_tokens n
                 WHERE n.device_id = r.device_id AND n.retired_at > r.retired_at)
             FROM retired_refresh_tokens r WHERE r.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((device_id, retired_at, latest)) = retired else {
            return Ok(None);
        };
        let device: Option<Row> = sqlx::query_as(&format!("{COLUMNS} WHERE id = $1"))
            .bind(&device_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(device.map(|row| found(row, RefreshState::Retired { retired_at, latest })))
    }

    async fn rotate_refresh_token(
        &self,
        device_id: &str,
        current: &str,
        new_hash: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Compared as it is replaced: of two rotations of the same
        // token, the second replaces nothing.
        let replaced = sqlx::query(
            "UPDATE devices SET refresh_token_hash = $1, refresh_issued_at = $2
             WHERE id = $3 AND refresh_token_hash = $4 AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(now)
        .bind(device_id)
        .bind(current)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("refresh token"))?;
        if DB::rows_affected(&replaced) != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO retired_refresh_tokens (hash, device_id, retired_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(current)
        .bind(device_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM retired_refresh_tokens WHERE retired_at < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn devices(&self, user_id: Option<&str>) -> Result<Vec<DeviceRow>> {
        Ok(sqlx::query_as(&format!(
            "{DEVICE_COLUMNS} WHERE $1 IS NULL OR user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn revoke_device(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn register_actor(
        &self,
        actor: &str,
        device_id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<String> {
        sqlx::query(
            "INSERT INTO device_actors (actor, device_id, user_id, registered_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(actor)
        .bind(device_id)
        .bind(user_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        let (owner,): (String,) =
            sqlx::query_as("SELECT device_id FROM device_actors WHERE actor = $1")
                .bind(actor)
                .fetch_one(&self.pool)
                .await?;
        Ok(owner)
    }

    async fn device_actors(&self, device_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT actor FROM device_actors WHERE device_id = $1")
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    async fn audit(&self, e: &AuditRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        SqlTx::insert_audit(&mut tx, e, None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_in(&self, e: &AuditRow, org_units: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        SqlTx::insert_audit(&mut tx, e, Some(org_units)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, reader: &AuditReader<'_>, limit: i64) -> Result<Vec<AuditEntry>> {
        type Row = (i64, i64, String, Option<String>, String, String, String);
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT a.id, a.at, a.user_id, a.device_id, a.action, a.target, a.detail
             FROM audit a
             WHERE EXISTS (
                 SELECT 1 FROM audit_units au
                 WHERE au.audit_id = a.id AND au.org_unit IN (",
            area_units!("$1"),
            "))
             OR ($2 AND NOT EXISTS (
                 SELECT 1 FROM audit_units au WHERE au.audit_id = a.id))
             ORDER BY a.id DESC LIMIT $3"
        ))
        .bind(reader.user_id)
        .bind(reader.whole_tree)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut units: HashMap<i64, Vec<String>> = Default::default();
        for chunk in rows.chunks(500) {
            let mut q =
                Statement::new("SELECT audit_id, org_unit FROM audit_units WHERE audit_id IN (");
            q.list(chunk.iter().map(|row| row.0));
            q.push(") ORDER BY org_unit");
            let found: Vec<(i64, String)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&self.pool)
                .await?;
            for (id, unit) in found {
                units.entry(id).or_default().push(unit);
            }
        }
        Ok(rows
            .into_iter()
            .map(|(id, at, user_id, device_id, action, target, detail)| {
                let row = AuditRow {
                    at,
                    user_id,
                    device_id,
                    action,
                    target,
                    detail,
                };
                AuditEntry::new(row, units.remove(&id).unwrap_or_default())
            })
            .collect())
    }

    async fn quarantine_page(
        &self,
        status: QuarantineStatus,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM quarantine WHERE status = $1
             AND ($2 IS NULL OR received_at > $2 OR (received_at = $2 AND id > $3))
             ORDER BY received_at, id LIMIT $4",
        )
        .bind(status)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn pending_quarantine_of(&self, doc_id: &str) -> Result<Vec<QuarantineRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM quarantine WHERE doc_id = $1 AND status = 'pending'
             ORDER BY received_at, id",
        )
        .bind(doc_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn quarantined(&self, status: QuarantineStatus) -> Result<Vec<QuarantineRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM quarantine WHERE status = $1 ORDER BY received_at, id")
                .bind(status)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn quarantine_entry(&self, id: &str) -> Result<Option<QuarantineRow>> {
        Ok(sqlx::query_as("SELECT * FROM quarantine WHERE id = $1")
            .bind(id)
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
            "INSERT INTO signing_keys (kid, private_der, public_key, created_at)
             VALUES ($1, $2, $3, $4)",
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

    async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    async fn snapshot(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT snapshot FROM documents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn begin(&self, write: bool) -> Result<Box<dyn DocTx>> {
        // A writer waits for its turn in this instance, for as long as
        // the writers ahead take, then takes the write connection, free
        // by then: waiting in the pool instead would end in its acquire
        // timeout behind a long writer (a reindex, a compaction).
        let turn = match write {
            true => Some(
                self.turn
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed"),
            ),
            false => None,
        };
        let pool = if write { &self.writes } else { &self.pool };
        let tx = DB::begin_tx(pool, write).await?;
        Ok(Box::new(SqlTx {
            tx,
            docs: Vec::new(),
            pending: Vec::new(),
            written: write.then(|| self.clone()),
            _turn: turn,
        }))
    }
}

struct SqlTx<DB: Database> {
    tx: sqlx::Transaction<'static, DB>,
    /// Document writes not sent yet, in order: sent together before
    /// anything reads the feed, and at commit.
    docs: Vec<PendingDoc>,
    /// Projections to write at commit: document id, kind, the
    /// projection before (`None`: unknown) and after.
    pending: Vec<(String, String, Option<Projection>, Projection)>,
    /// For a write transaction, the storage to checkpoint once it has
    /// committed.
    written: Option<SqlStorage<DB>>,
    /// A writer's turn in this instance, given back after the
    /// transaction ends (fields drop in order).
    _turn: Option<OwnedSemaphorePermit>,
}

impl<DB: Backend> SqlTx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    String: Column<DB>,
    Option<String>: Column<DB>,
    i64: Column<DB>,
    Option<i64>: Column<DB>,
    bool: Column<DB>,
    Vec<u8>: Column<DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// Appends an audit entry concerning `org_units`, or, when `None`,
    /// the unit of the record it names, else the units of the user who
    /// acted.
    async fn insert_audit(
        tx: &mut Transaction<'static, DB>,
        e: &AuditRow,
        org_units: Option<&[String]>,
    ) -> Result<()> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO audit (at, user_id, device_id, action, target, detail)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(e.at)
        .bind(&e.user_id)
        .bind(&e.device_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.detail)
        .fetch_one(&mut **tx)
        .await?;
        let Some(units) = org_units else {
            sqlx::query(
                "INSERT INTO audit_units (audit_id, org_unit)
                 SELECT $1, d.org_unit FROM documents d WHERE d.id = $2
                 UNION
                 SELECT $1, uu.org_unit_id FROM user_units uu WHERE uu.user_id = $3
                     AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = $2)",
            )
            .bind(id)
            .bind(&e.target)
            .bind(&e.user_id)
            .execute(&mut **tx)
            .await?;
            return Ok(());
        };
        let mut units: Vec<&String> = units.iter().collect();
        units.sort();
        units.dedup();
        for chunk in units.chunks(500) {
            let mut q = Statement::new("INSERT INTO audit_units (audit_id, org_unit) ");
            q.values(chunk.iter().map(|unit| [p(id), p(*unit)]));
            q.query()?.persistent(false).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes the pending documents: all their new changes, then
    /// their rows, a few statements for a whole round. Writers
    /// exclude each other, and each document's changes are
    /// inserted together, so a document's seqs are consecutive.
    async fn write_docs(&mut self) -> Result<()> {
        if self.docs.is_empty() {
            return Ok(());
        }
        let docs = std::mem::take(&mut self.docs);
        let rows: Vec<(&PendingDoc, &NewChange)> = docs
            .iter()
            .flat_map(|d| d.changes.iter().map(move |c| (d, c)))
            .collect();
        let mut seqs: HashMap<String, (i64, i64)> = Default::default();
        for chunk in rows.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO changes
                     (doc_id, hash, bytes, actor, user_id, device_id, received_at) ",
            );
            q.values(chunk.iter().map(|(d, change)| {
                [
                    p(&d.id),
                    p(&change.hash[..]),
                    p(&change.bytes),
                    p(&change.actor),
                    p(&d.user_id),
                    p(&d.device_id),
                    p(d.now),
                ]
            }));
            q.push(" RETURNING doc_id, seq");
            let inserted: Vec<(String, i64)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?;
            for (doc_id, seq) in inserted {
                let range = seqs.entry(doc_id).or_insert((seq, seq));
                range.0 = range.0.min(seq);
                range.1 = range.1.max(seq);
            }
        }
        for chunk in docs.chunks(100) {
            let mut q = Statement::new(
                "INSERT INTO documents (id, kind, org_unit, reporter, assignee, snapshot,
                     heads, first_seq, seq, change_count, updated_at) ",
            );
            q.values(chunk.iter().map(|d| {
                let (first, last) = seqs.get(&d.id).copied().unwrap_or_default();
                [
                    p(&d.id),
                    p(&d.kind),
                    p(&d.org_unit),
                    p(&d.reporter),
                    p(&d.assignee),
                    p(&d.snapshot),
                    p(&d.heads),
                    p(first),
                    p(last),
                    p(d.changes.len() as i64),
                    p(d.now),
                ]
            }));
            q.push(
                " ON CONFLICT (id) DO UPDATE SET
                     org_unit = excluded.org_unit,
                     reporter = excluded.reporter,
                     assignee = excluded.assignee,
                     snapshot = excluded.snapshot,
                     heads = excluded.heads,
                     seq = excluded.seq,
                     change_count = documents.change_count + excluded.change_count,
                     updated_at = excluded.updated_at",
            );
            q.query()?.persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Writes the pending projections: per table, one statement
    /// deleting the changed documents' old rows and one inserting
    /// their new rows (in chunks, to stay under bind limits).
    async fn write_projections(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut deletes: HashMap<Part, Vec<&str>> = Default::default();
        let mut rows: Vec<(&str, Projection)> = Vec::new();
        for (id, kind, before, p) in &pending {
            let mut write = HashSet::new();
            for part in Part::ALL {
                let (changed, had_rows) = match before {
                    Some(b) => (!part.same(b, p), !part.is_empty(b)),
                    None => (part.of_kind(kind), true),
                };
                if changed {
                    if had_rows {
                        deletes.entry(part).or_default().push(id);
                    }
                    write.insert(part);
                }
            }
            rows.push((id, p.only(&write).into_owned()));
        }
        for (part, ids) in &deletes {
            let (table, key) = part.table();
            for chunk in ids.chunks(500) {
                let mut q = Statement::new(format!("DELETE FROM {table} WHERE {key} IN ("));
                q.list(chunk.iter().copied());
                q.push(")");
                q.query()?.execute(&mut *self.tx).await?;
            }
        }
        let now = crate::domain::now_ms();
        let households: Vec<_> = rows
            .iter()
            .filter_map(|(id, p)| Some((*id, p.household.as_ref()?)))
            .collect();
        for chunk in households.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_households (id, org_unit, building, unit, room, head_id,
                     head_name, member_count, search, updated_at) ",
            );
            q.values(chunk.iter().map(|(id, h)| {
                [
                    p(*id),
                    p(&h.org_unit),
                    p(&h.building),
                    p(&h.unit),
                    p(&h.room),
                    p(&h.head_id),
                    p(&h.head_name),
                    p(h.member_count),
                    p(&h.search),
                    p(now),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let members: Vec<_> = rows
            .iter()
            .flat_map(|(id, p)| p.members.iter().enumerate().map(move |(i, m)| (*id, i, m)))
            .collect();
        for chunk in members.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_members (household_id, position, member_id, name,
                     id_number, sex, birth_date, relation, phone, residence) ",
            );
            q.values(chunk.iter().map(|(id, i, m)| {
                [
                    p(*id),
                    p(*i as i64),
                    p(&m.member_id),
                    p(&m.name),
                    p(&m.id_number),
                    p(&m.sex),
                    p(&m.birth_date),
                    p(&m.relation),
                    p(&m.phone),
                    p(&m.residence),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let tags: Vec<_> = rows
            .iter()
            .flat_map(|(id, p)| p.tags.iter().map(move |t| (*id, t)))
            .collect();
        for chunk in tags.chunks(500) {
            let mut q =
                Statement::new("INSERT INTO proj_tags (doc_id, household_id, tag, sensitive) ");
            q.values(
                chunk
                    .iter()
                    .map(|(id, t)| [p(*id), p(&t.household_id), p(&t.tag), p(t.sensitive)]),
            );
            q.query()?.execute(&mut *self.tx).await?;
        }
        let visits: Vec<_> = rows
            .iter()
            .filter_map(|(id, p)| Some((*id, p.visit.as_ref()?)))
            .collect();
        for chunk in visits.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_visits (id, household_id, org_unit, worker, visited_at,
                     follow_up, findings) ",
            );
            q.values(chunk.iter().map(|(id, v)| {
                [
                    p(*id),
                    p(&v.household_id),
                    p(&v.org_unit),
                    p(&v.worker),
                    p(v.visited_at),
                    p(v.follow_up),
                    p(&v.findings),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let cases: Vec<_> = rows
            .iter()
            .filter_map(|(id, p)| Some((*id, p.case.as_ref()?)))
            .collect();
        for chunk in cases.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_cases (id, org_unit, category, title, household_id,
                     location, reporter, reported_at, status, class, level, assignee,
                     due_at, resolved_at, resolved_level, result, supervised,
                     not_applied) ",
            );
            q.values(chunk.iter().map(|(id, c)| {
                [
                    p(*id),
                    p(&c.org_unit),
                    p(&c.category),
                    p(&c.title),
                    p(&c.household_id),
                    p(&c.location),
                    p(&c.reporter),
                    p(c.reported_at),
                    p(&c.status),
                    p(&c.class),
                    p(&c.level),
                    p(&c.assignee),
                    p(c.due_at),
                    p(c.resolved_at),
                    p(&c.resolved_level),
                    p(&c.result),
                    p(c.supervised),
                    p(c.not_applied),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let events: Vec<_> = rows
            .iter()
            .flat_map(|(id, p)| p.events.iter().enumerate().map(move |(i, e)| (*id, i, e)))
            .collect();
        for chunk in events.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_case_events (case_id, position, event_id, kind, author,
                     device, at, role, applied, reason) ",
            );
            q.values(chunk.iter().map(|(id, i, e)| {
                [
                    p(*id),
                    p(*i as i64),
                    p(&e.event_id),
                    p(&e.kind),
                    p(&e.author),
                    p(&e.device),
                    p(e.at),
                    p(&e.role),
                    p(e.applied),
                    p(&e.reason),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let attachments: Vec<_> = rows
            .iter()
            .flat_map(|(id, p)| {
                p.attachments
                    .iter()
                    .enumerate()
                    .map(move |(i, a)| (*id, i, a))
            })
            .collect();
        for chunk in attachments.chunks(500) {
            let mut q = Statement::new(
                "INSERT INTO proj_attachments (doc_id, position, sha256, event_id,
                     media_type, size, name, caption, author, device, taken_at,
                     location) ",
            );
            q.values(chunk.iter().map(|(id, i, row)| {
                let a = &row.attachment;
                [
                    p(*id),
                    p(*i as i64),
                    p(&a.sha256),
                    p(&row.event_id),
                    p(&a.media_type),
                    p(a.size),
                    p(&a.name),
                    p(&a.caption),
                    p(&a.author),
                    p(&a.device),
                    p(a.taken_at),
                    p(&a.location),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        let conflicts: Vec<_> = rows
            .iter()
            .flat_map(|(id, p)| p.conflicts.iter().map(move |c| (*id, c)))
            .collect();
        for chunk in conflicts.chunks(500) {
            let mut q = Statement::new("INSERT INTO proj_conflicts (doc_id, path, shown, vals) ");
            q.values(chunk.iter().map(|(id, c)| {
                [
                    p(*id),
                    p(&c.path),
                    p(c.shown.to_string()),
                    p(serde_json::to_string(&c.values).unwrap_or_default()),
                ]
            }));
            q.query()?.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<DB: Backend> DocTx for SqlTx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    String: Column<DB>,
    Option<String>: Column<DB>,
    i64: Column<DB>,
    Option<i64>: Column<DB>,
    bool: Column<DB>,
    Vec<u8>: Column<DB>,
    QuarantineStatus: Column<DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn load_many(&mut self, ids: &[String]) -> Result<HashMap<String, DocRow>> {
        self.write_docs().await?;
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = Statement::new("SELECT id, snapshot, heads FROM documents WHERE id IN (");
            q.list(chunk.iter().map(String::as_str));
            q.push(")");
            let rows: Vec<(String, Vec<u8>, Vec<u8>)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?;
            for (id, snapshot, heads) in rows {
                found.insert(id, DocRow { snapshot, heads });
            }
        }
        Ok(found)
    }

    async fn heads(&mut self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>> {
        self.write_docs().await?;
        let mut heads = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = Statement::new("SELECT id, heads FROM documents WHERE id IN (");
            q.list(chunk.iter().map(String::as_str));
            q.push(")");
            let rows: Vec<(String, Vec<u8>)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?;
            heads.extend(rows);
        }
        Ok(heads)
    }

    async fn metas(
        &mut self,
        ids: &[String],
    ) -> Result<HashMap<String, (String, sync_core::doc::DocMeta)>> {
        self.write_docs().await?;
        let mut metas = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = Statement::new(
                "SELECT id, kind, org_unit, reporter, assignee FROM documents WHERE id IN (",
            );
            q.list(chunk.iter().map(String::as_str));
            q.push(")");
            let rows: Vec<(String, String, String, Option<String>, Option<String>)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?;
            for (id, kind, org_unit, reporter, assignee) in rows {
                let meta = sync_core::doc::DocMeta {
                    org_unit,
                    reporter,
                    assignee,
                };
                metas.insert(id, (kind, meta));
            }
        }
        Ok(metas)
    }

    async fn load(&mut self, id: &str) -> Result<Option<DocRow>> {
        if let Some(d) = self.docs.iter().rev().find(|d| d.id == id) {
            return Ok(Some(DocRow {
                snapshot: d.snapshot.clone(),
                heads: d.heads.clone(),
            }));
        }
        Ok(
            sqlx::query_as("SELECT snapshot, heads FROM documents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn save(&mut self, w: DocWrite<'_>) -> Result<()> {
        if w.changes.is_empty() {
            return Ok(());
        }
        // A second write of a document in one transaction: the
        // first goes out before it, so the seqs stay in order.
        if self.docs.iter().any(|d| d.id == w.id) {
            self.write_docs().await?;
        }
        self.docs.push(PendingDoc {
            id: w.id.to_owned(),
            kind: w.kind.to_owned(),
            org_unit: w.org_unit.to_owned(),
            reporter: w.reporter.map(str::to_owned),
            assignee: w.assignee.map(str::to_owned),
            snapshot: w.snapshot.to_vec(),
            heads: w.heads.to_vec(),
            changes: w.changes.to_vec(),
            user_id: w.user_id.to_owned(),
            device_id: w.device_id.to_owned(),
            now: w.now,
        });
        Ok(())
    }

    async fn max_seq(&mut self) -> Result<i64> {
        self.write_docs().await?;
        let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM documents")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn feed(
        &mut self,
        scope: &Scope,
        device: &str,
        round: i64,
        after: i64,
        limit: i64,
        own: (i64, i64),
    ) -> Result<Vec<FeedDoc>> {
        self.write_docs().await?;
        macro_rules! feed_from {
            ($documents:expr) => {
                concat!(
                    "SELECT d.id, d.kind, d.seq, d.heads, dd.doc_id IS NOT NULL AS known,
                            CASE WHEN dd.doc_id IS NULL AND NOT (d.seq > $8 AND d.seq <= $9)
                                 THEN d.snapshot END AS snapshot
                     FROM ",
                    $documents,
                    " LEFT JOIN device_docs dd ON dd.device_id = $4 AND dd.doc_id = d.id
                         AND dd.round <= $7 AND NOT dd.dropped
                     WHERE d.seq > $5 AND ",
                    in_scope!(),
                    " ORDER BY d.seq LIMIT $6"
                )
            };
        }
        // Either way the rows are those the scope rule keeps: the narrow
        // form only finds them another way, the documents of the area's
        // units, and those the user reported or is assigned, since the
        // cursor.
        let sql = match scope.narrow {
            false => feed_from!("documents d"),
            true => feed_from!(concat!(
                "(SELECT id FROM documents WHERE $2 AND seq > $5 AND org_unit IN (",
                area_units!("$1"),
                ") UNION SELECT id FROM documents WHERE reporter = $1 AND seq > $5
                   UNION SELECT id FROM documents WHERE assignee = $1 AND seq > $5) c
                 JOIN documents d ON d.id = c.id"
            )),
        };
        Ok(sqlx::query_as(sql)
            .bind(&scope.user_id)
            .bind(scope.area)
            .bind(scope.sensitive)
            .bind(device)
            .bind(after)
            .bind(limit)
            .bind(round)
            .bind(own.0)
            .bind(own.1)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn out_of_scope(
        &mut self,
        scope: &Scope,
        device: &str,
        since: i64,
    ) -> Result<Vec<String>> {
        self.write_docs().await?;
        let rows: Vec<(String,)> = sqlx::query_as(concat!(
            "SELECT d.id FROM device_docs dd JOIN documents d ON d.id = dd.doc_id
             WHERE dd.device_id = $4 AND NOT dd.dropped AND d.seq > $5 AND NOT ",
            in_scope!()
        ))
        .bind(&scope.user_id)
        .bind(scope.area)
        .bind(scope.sensitive)
        .bind(device)
        .bind(since)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn drops(&mut self, device: &str) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as(
                "SELECT doc_id, round FROM device_docs WHERE device_id = $1 AND dropped",
            )
            .bind(device)
            .fetch_all(&mut *self.tx)
            .await?,
        )
    }

    // The device's documents change by the hundred in one answer:
    // each of these is a statement per 500 documents, not per
    // document.
    async fn forget(&mut self, device: &str, doc_ids: &[String]) -> Result<()> {
        for ids in doc_ids.chunks(500) {
            let mut q = Statement::new("DELETE FROM device_docs WHERE device_id = ");
            q.bind(device).push(" AND doc_id IN (");
            q.list(ids.iter().map(String::as_str));
            q.push(")");
            q.query()?.persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn remember(&mut self, device: &str, doc_ids: &[String], round: i64) -> Result<()> {
        let mut ids: Vec<&String> = doc_ids.iter().collect();
        // One statement may not update a row twice.
        ids.sort();
        ids.dedup();
        for ids in ids.chunks(500) {
            let mut q =
                Statement::new("INSERT INTO device_docs (device_id, doc_id, round, dropped) ");
            q.values(ids.iter().map(|id| [p(device), p(*id), p(round), p(false)]));
            q.push(
                " ON CONFLICT (device_id, doc_id)
                 DO UPDATE SET round = excluded.round, dropped = FALSE",
            );
            q.query()?.persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn mark_dropped(&mut self, device: &str, doc_ids: &[String], round: i64) -> Result<()> {
        for ids in doc_ids.chunks(500) {
            let mut q = Statement::new("UPDATE device_docs SET dropped = TRUE, round = ");
            q.bind(round)
                .push(" WHERE device_id = ")
                .bind(device)
                .push(" AND doc_id IN (");
            q.list(ids.iter().map(String::as_str));
            q.push(")");
            q.query()?.persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn quarantine(&mut self, rows: &[QuarantineRow]) -> Result<()> {
        for q in rows {
            sqlx::query(
                "INSERT INTO quarantine (id, doc_id, hash, bytes, deps, actor, user_id,
                     device_id, rule, message, received_at, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending')
                 ON CONFLICT DO NOTHING",
            )
            .bind(&q.id)
            .bind(&q.doc_id)
            .bind(&q.hash)
            .bind(&q.bytes)
            .bind(&q.deps)
            .bind(&q.actor)
            .bind(&q.user_id)
            .bind(&q.device_id)
            .bind(&q.rule)
            .bind(&q.message)
            .bind(q.received_at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn decide_quarantine(
        &mut self,
        id: &str,
        status: QuarantineStatus,
        by: &str,
        at: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE quarantine SET status = $1, decided_by = $2, decided_at = $3
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status)
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn audit(&mut self, e: &AuditRow) -> Result<()> {
        // The entry concerns the record's unit: write the record first.
        self.write_docs().await?;
        Self::insert_audit(&mut self.tx, e, None).await
    }

    async fn audit_in(&mut self, e: &AuditRow, org_units: &[String]) -> Result<()> {
        Self::insert_audit(&mut self.tx, e, Some(org_units)).await
    }

    async fn changes_between(
        &mut self,
        doc_ids: &[String],
        base: i64,
        upto: i64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.write_docs().await?;
        // A few statements for any number of documents: each held
        // document a device is sent is one of hundreds at times. Each
        // document's changes are found through the index on (doc_id, seq);
        // the `+` keeps the seq range from being taken as the way in
        // instead, which SQLite's planner otherwise does: a walk over
        // everyone's changes since `base`, some twenty rows read for each
        // one kept in a rush (`BENCHMARKS.md`).
        let mut out = Vec::new();
        for ids in doc_ids.chunks(500) {
            let mut q = Statement::new("SELECT doc_id, bytes FROM changes WHERE +seq > ");
            q.bind(base)
                .push(" AND +seq <= ")
                .bind(upto)
                .push(" AND doc_id IN (");
            q.list(ids.iter().map(String::as_str))
                .push(") ORDER BY seq");
            let rows: Vec<(String, Vec<u8>)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?;
            out.extend(rows);
        }
        Ok(out)
    }

    async fn compacted_seq(&mut self) -> Result<i64> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM meta WHERE key = 'compacted_seq'")
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.and_then(|(v,)| v.parse().ok()).unwrap_or(0))
    }

    async fn compact(&mut self, cutoff: i64, limit: i64, now: i64) -> Result<CompactBatch> {
        self.write_docs().await?;
        let horizon = self.compacted_seq().await?;
        // The oldest rows past the horizon, through the primary key.
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, received_at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(horizon)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        // A prefix of the feed: stop at the first row still kept,
        // even if a later one is older (clocks of several instances).
        let kept = rows.iter().position(|&(_, at)| at >= cutoff);
        let upto = match kept {
            Some(0) => horizon,
            Some(i) => rows[i - 1].0,
            None => rows.last().map_or(horizon, |&(seq, _)| seq),
        };
        let more = kept.is_none() && rows.len() as i64 == limit;
        if upto == horizon {
            return Ok(CompactBatch {
                removed: 0,
                horizon,
                more: false,
            });
        }
        sqlx::query(
            "INSERT INTO device_actors (actor, device_id, user_id, registered_at)
             SELECT c.actor, c.device_id, c.user_id, $3 FROM changes c
             JOIN devices d ON d.id = c.device_id
             WHERE c.seq > $1 AND c.seq <= $2
               AND NOT EXISTS (SELECT 1 FROM device_actors a WHERE a.actor = c.actor)
             ON CONFLICT DO NOTHING",
        )
        .bind(horizon)
        .bind(upto)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM changes WHERE seq > $1 AND seq <= $2")
            .bind(horizon)
            .bind(upto)
            .execute(&mut *self.tx)
            .await?;
        let removed = DB::rows_affected(&deleted);
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('compacted_seq', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(upto.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(CompactBatch {
            removed,
            horizon: upto,
            more,
        })
    }

    async fn project(
        &mut self,
        id: &str,
        kind: &str,
        before: Option<&Projection>,
        p: &Projection,
    ) -> Result<()> {
        // Written with every other document's rows when the
        // transaction commits: a few statements per round, not a
        // few per document.
        match self
            .pending
            .iter_mut()
            .find(|(pending, _, _, _)| pending == id)
        {
            Some(entry) => entry.3 = p.clone(),
            None => self
                .pending
                .push((id.to_owned(), kind.to_owned(), before.cloned(), p.clone())),
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.write_docs().await?;
        self.write_projections().await?;
        self.tx.commit().await?;
        if let Some(storage) = &self.written {
            storage.checkpoint();
        }
        Ok(())
    }
}
