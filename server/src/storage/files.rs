//! The tables of attached files, shared by both backends: files received
//! and verified (`attachments`), uploads under way and their parts
//! (`attachment_uploads`, `attachment_parts`), the daily bytes per device
//! (`attachment_quota`), and the blob table for a server that keeps files
//! in its database (`attachment_blobs`). Which records name a file is the
//! projection `proj_attachments`, written with the records.

use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::sql::{Backend, Column, SqlStorage, in_scope};
use super::statement::Statement;
use super::{Result, Scope};

/// A file received whole, verified and kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttachmentRow {
    /// SHA-256 of the bytes as uploaded, lowercase hex.
    pub sha256: String,
    /// What the bytes are.
    pub media_type: String,
    /// Size as uploaded, in bytes.
    pub size: i64,
    /// Size of the copy kept (without metadata), in bytes.
    pub stored_size: i64,
    /// Size of the thumbnail, 0 when there is none.
    pub thumb_size: i64,
    /// Who uploaded it first.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
    /// When it was kept (ms since the epoch).
    pub created_at: i64,
}

/// An upload under way.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    /// The file.
    pub sha256: String,
    /// The device sending it.
    pub device_id: String,
    /// The media type the upload claimed.
    pub media_type: String,
    /// The whole file's size, in bytes.
    pub size: i64,
    /// Bytes received so far, from the start.
    pub received: i64,
}

/// Bytes of an upload, arriving at `first`.
#[derive(Debug, Clone, Copy)]
pub struct UploadPart<'a> {
    /// The file.
    pub sha256: &'a str,
    /// The device sending it.
    pub device_id: &'a str,
    /// The user behind the device.
    pub user_id: &'a str,
    /// The media type the upload claims.
    pub media_type: &'a str,
    /// The whole file's size.
    pub size: i64,
    /// Where these bytes start in the file. 0 starts the upload over.
    pub first: i64,
    /// The bytes.
    pub bytes: &'a [u8],
    /// Whether to keep them as a part. A part that completes the file is
    /// only counted (against the day) and checked (its start); the upload
    /// stays where it stood until the file is kept.
    pub keep: bool,
    /// Now, in ms since the epoch.
    pub now: i64,
    /// Most bytes the device may send today, these included.
    pub daily_limit: i64,
}

/// What became of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Taken: this many bytes of the file are received (kept parts only).
    Received(i64),
    /// Not kept: the upload stands at this many bytes, not at the part's
    /// start.
    Offset(i64),
    /// Not kept: the device would pass its daily limit.
    DailyLimit,
}

/// What a sweep of unreferenced files found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files deleted from the table; their blobs are the caller's to delete.
    pub files: Vec<String>,
    /// Abandoned uploads dropped.
    pub uploads: u64,
}

/// The attachment tables.
#[async_trait::async_trait]
pub trait FileTables {
    /// The kept file with this hash.
    async fn attachment(&self, sha256: &str) -> Result<Option<AttachmentRow>>;
    /// Keeps a verified file's row; `false` if it was kept already.
    async fn insert_attachment(&self, row: &AttachmentRow) -> Result<bool>;
    /// Whether a record in `scope` names the file: who may fetch it, and
    /// whose uploads of it are taken.
    async fn attachment_readable(&self, scope: &Scope, sha256: &str) -> Result<bool>;
    /// The files each of `doc_ids` names (its events' included), as
    /// `(doc_id, sha256)` in each record's order.
    async fn attachment_files(&self, doc_ids: &[String]) -> Result<Vec<(String, String)>>;
    /// The device's upload of a file, if one is under way.
    async fn upload(&self, sha256: &str, device_id: &str) -> Result<Option<UploadRow>>;
    /// Keeps a part of an upload, counting its bytes against the device's
    /// day, all or nothing.
    async fn append_upload(&self, part: &UploadPart<'_>) -> Result<Appended>;
    /// The parts of an upload, in order, each its bytes.
    async fn upload_parts(&self, sha256: &str, device_id: &str) -> Result<Vec<Vec<u8>>>;
    /// Forgets an upload and its parts.
    async fn end_upload(&self, sha256: &str, device_id: &str) -> Result<()>;
    /// Marks files no record names (and unmarks those named again), then
    /// deletes the rows of files unnamed since before `cutoff`, and drops
    /// uploads untouched since before `cutoff`.
    async fn sweep_attachments(&self, now: i64, cutoff: i64) -> Result<Swept>;
    /// A blob of the database blob store.
    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a blob of the database blob store.
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Deletes a blob of the database blob store, if there.
    async fn delete_blob(&self, key: &str) -> Result<()>;
}

#[async_trait::async_trait]
impl<DB: Backend> FileTables for SqlStorage<DB>
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
    async fn attachment(&self, sha256: &str) -> Result<Option<AttachmentRow>> {
        Ok(sqlx::query_as(
            "SELECT sha256, media_type, size, stored_size, thumb_size, user_id,
                    device_id, created_at
             FROM attachments WHERE sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn insert_attachment(&self, row: &AttachmentRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO attachments (sha256, media_type, size, stored_size, thumb_size,
                 user_id, device_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&row.sha256)
        .bind(&row.media_type)
        .bind(row.size)
        .bind(row.stored_size)
        .bind(row.thumb_size)
        .bind(&row.user_id)
        .bind(&row.device_id)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn attachment_readable(&self, scope: &Scope, sha256: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(concat!(
            "SELECT a.size FROM proj_attachments a JOIN documents d ON d.id = a.doc_id
             WHERE a.sha256 = $4 AND ",
            in_scope!(),
            " LIMIT 1"
        ))
        .bind(&scope.user_id)
        .bind(scope.area)
        .bind(scope.sensitive)
        .bind(sha256)
        .persistent(false)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn attachment_files(&self, doc_ids: &[String]) -> Result<Vec<(String, String)>> {
        let mut files = Vec::new();
        for chunk in doc_ids.chunks(500) {
            let mut q =
                Statement::new("SELECT doc_id, sha256 FROM proj_attachments WHERE doc_id IN (");
            q.list(chunk).push(") ORDER BY doc_id, position");
            let rows: Vec<(String, String)> = q
                .query_as()?
                .persistent(false)
                .fetch_all(&self.pool)
                .await?;
            files.extend(rows);
        }
        Ok(files)
    }

    async fn upload(&self, sha256: &str, device_id: &str) -> Result<Option<UploadRow>> {
        Ok(sqlx::query_as(
            "SELECT sha256, device_id, media_type, size, received
             FROM attachment_uploads WHERE sha256 = $1 AND device_id = $2",
        )
        .bind(sha256)
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn append_upload(&self, part: &UploadPart<'_>) -> Result<Appended> {
        let len = part.bytes.len() as i64;
        let kept = if part.keep { len } else { 0 };
        let mut tx = self.pool.begin().await?;
        // A write first, so that SQLite takes its write lock at once
        // (a read first would have to upgrade, and could deadlock).
        let moved = sqlx::query(
            "UPDATE attachment_uploads SET received = received + $1, updated_at = $2
             WHERE sha256 = $3 AND device_id = $4 AND received = $5 AND size = $6
                 AND media_type = $7",
        )
        .bind(kept)
        .bind(part.now)
        .bind(part.sha256)
        .bind(part.device_id)
        .bind(part.first)
        .bind(part.size)
        .bind(part.media_type)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&moved) == 0 {
            if part.first != 0 {
                let at: Option<(i64,)> = sqlx::query_as(
                    "SELECT received FROM attachment_uploads
                     WHERE sha256 = $1 AND device_id = $2",
                )
                .bind(part.sha256)
                .bind(part.device_id)
                .fetch_optional(&mut *tx)
                .await?;
                return Ok(Appended::Offset(at.map_or(0, |(r,)| r)));
            }
            // From the start: whatever was received before goes.
            sqlx::query("DELETE FROM attachment_parts WHERE sha256 = $1 AND device_id = $2")
                .bind(part.sha256)
                .bind(part.device_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO attachment_uploads (sha256, device_id, user_id, media_type,
                     size, received, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (sha256, device_id) DO UPDATE SET
                     user_id = excluded.user_id, media_type = excluded.media_type,
                     size = excluded.size, received = excluded.received,
                     updated_at = excluded.updated_at",
            )
            .bind(part.sha256)
            .bind(part.device_id)
            .bind(part.user_id)
            .bind(part.media_type)
            .bind(part.size)
            .bind(kept)
            .bind(part.now)
            .execute(&mut *tx)
            .await?;
        }
        let day = part.now.div_euclid(86_400_000);
        let (today,): (i64,) = sqlx::query_as(
            "INSERT INTO attachment_quota (device_id, day, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (device_id, day) DO UPDATE
                 SET bytes = attachment_quota.bytes + excluded.bytes
             RETURNING bytes",
        )
        .bind(part.device_id)
        .bind(day)
        .bind(len)
        .fetch_one(&mut *tx)
        .await?;
        if today > part.daily_limit {
            return Ok(Appended::DailyLimit);
        }
        if kept > 0 {
            sqlx::query(
                "INSERT INTO attachment_parts (sha256, device_id, first, bytes)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(part.sha256)
            .bind(part.device_id)
            .bind(part.first)
            .bind(part.bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Appended::Received(part.first + kept))
    }

    async fn upload_parts(&self, sha256: &str, device_id: &str) -> Result<Vec<Vec<u8>>> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT bytes FROM attachment_parts WHERE sha256 = $1 AND device_id = $2
             ORDER BY first",
        )
        .bind(sha256)
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    async fn end_upload(&self, sha256: &str, device_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["attachment_parts", "attachment_uploads"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE sha256 = $1 AND device_id = $2"
            ))
            .bind(sha256)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep_attachments(&self, now: i64, cutoff: i64) -> Result<Swept> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE attachments SET unreferenced_since = NULL
             WHERE unreferenced_since IS NOT NULL
               AND EXISTS (SELECT 1 FROM proj_attachments p WHERE p.sha256 = attachments.sha256)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE attachments SET unreferenced_since = $1
             WHERE unreferenced_since IS NULL
               AND NOT EXISTS (SELECT 1 FROM proj_attachments p WHERE p.sha256 = attachments.sha256)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let files: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM attachments WHERE unreferenced_since < $1 RETURNING sha256",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM attachment_parts WHERE EXISTS (
                 SELECT 1 FROM attachment_uploads u
                 WHERE u.sha256 = attachment_parts.sha256
                   AND u.device_id = attachment_parts.device_id AND u.updated_at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let dropped = sqlx::query("DELETE FROM attachment_uploads WHERE updated_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let uploads = DB::rows_affected(&dropped);
        sqlx::query("DELETE FROM attachment_quota WHERE day < $1")
            .bind(cutoff.div_euclid(86_400_000))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Swept {
            files: files.into_iter().map(|(s,)| s).collect(),
            uploads,
        })
    }

    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM attachment_blobs WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(b,)| b))
    }

    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO attachment_blobs (key, bytes) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes",
        )
        .bind(key)
        .bind(bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_blob(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM attachment_blobs WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
