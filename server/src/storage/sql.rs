//! The SQL both backends share. SQLite and PostgreSQL accept the same
//! statements here (`$n` parameters, `ON CONFLICT`, `RETURNING`), so the
//! [`Storage`] and [`DocTx`] implementations are written once, as a macro
//! instantiated per backend with its concrete types. What differs (opening,
//! migrations, how a write transaction excludes other writers) stays in each
//! backend's module.

use super::StorageError;
#[allow(unused_imports)]
use super::{DocTx, Storage};

pub(super) fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => StorageError::Database(e),
    }
}

/// Implements [`Storage`] for `$storage` (which has a `pool` and an inherent
/// `begin_tx(write)`) and [`DocTx`] for a new transaction type `$tx`.
macro_rules! sql_storage {
    ($storage:ty, $db:ty, $tx:ident) => {
        use $crate::storage::sql::conflict_on_unique;
        use $crate::storage::{DeviceRow, DocRow, DocWrite, FeedDoc, Result, SigningKeyRow, UserRow, DocTx};

#[async_trait::async_trait]
impl $crate::storage::Storage for $storage {
    async fn instance_id(&self) -> Result<String> {
        let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn insert_user(&self, user: &UserRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, role, org_unit, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, created_at, revoked_at FROM devices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn device_by_refresh_hash(&self, hash: &str) -> Result<Option<DeviceRow>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, created_at, revoked_at FROM devices
             WHERE refresh_token_hash = $1",
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
            "INSERT INTO signing_keys (kid, private_der, public_key, created_at) VALUES ($1, $2, $3, $4)",
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
        let tx = self.begin_tx(write).await?;
        Ok(Box::new($tx { tx }))
    }
}

struct $tx {
    tx: sqlx::Transaction<'static, $db>,
}

#[async_trait::async_trait]
impl $crate::storage::DocTx for $tx {
    async fn load(&mut self, id: &str) -> Result<Option<DocRow>> {
        Ok(
            sqlx::query_as("SELECT snapshot, heads FROM documents WHERE id = $1")
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
                    CASE WHEN first_seq > $1 THEN snapshot END AS snapshot
             FROM documents WHERE seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(base)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn changes_between(&mut self, base: i64, upto: i64) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(sqlx::query_as(
            "SELECT doc_id, bytes FROM changes WHERE seq > $1 AND seq <= $2 ORDER BY seq",
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
    };
}

pub(super) use sql_storage;
