//! Attached files: uploads that survive bad networks, files seen only by
//! those who may read a record naming them, and files no record names
//! removed after a while.
//!
//! - **Upload** (`PUT /v1/attachments/{sha256}`, see `http.rs` and
//!   `api-spec/attachments.md`): a file is taken only from a caller who may
//!   read a record that names it, so nobody stores bytes no record wants.
//!   It may come in parts (`Content-Range`); every part is kept in the
//!   database as it arrives, the bytes of a dropped connection included,
//!   and an upload resumes from the last byte received, on any instance.
//!   When the last byte is in, the whole is checked against its SHA-256
//!   and its type read from the bytes ([`media`]); a file that fails is
//!   dropped with its parts, nothing kept. A file already held is not sent
//!   again: the answer says so at once.
//! - **Kept**: the file without its metadata and, for images, a thumbnail,
//!   in a [`Blobs`] store under `files/<sha256>` and `thumbs/<sha256>`;
//!   one row in `attachments`. However many records name it, it is kept
//!   once.
//! - **Read**: only by a caller who may read a record that names the file
//!   now (the scope rule of the feed, sensitive records included); anyone
//!   else gets the same `404` as for a file that does not exist.
//! - **Swept** ([`Files::sweep`], run with compaction): a file no record
//!   has named for the retention period is deleted, and so are uploads
//!   abandoned for as long.

pub mod blobs;

pub mod media;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sync_core::records::is_sha256;

pub use blobs::{BlobError, Blobs};
use media::MediaError;

use crate::storage::files::{Appended, AttachmentRow, UploadPart};
use crate::storage::{Scope, Storage, StorageError};

/// The limits on uploads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest file, in bytes.
    pub max_bytes: i64,
    /// The most bytes one device may upload in a day (UTC), retries and
    /// abandoned uploads included.
    pub daily_bytes_per_device: i64,
}

/// Who is uploading or reading.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's scope, as the feed sees it.
    pub scope: Scope,
    /// The device.
    pub device_id: String,
}

/// Attached files over a storage and a blob store.
#[derive(Clone)]
pub struct Files {
    storage: Arc<dyn Storage>,
    blobs: Arc<dyn Blobs>,
    limits: Limits,
}

/// Why a file is refused, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path does not name a SHA-256.
    #[error("{0:?} is not a SHA-256 (64 lowercase hex digits)")]
    BadHash(String),
    /// No such file, or not for this caller.
    #[error("no such file")]
    NotFound,
    /// No record the caller may read names the file (yet).
    #[error("no record you can read names this file; sync the record that does, then upload")]
    NotReferenced,
    /// The part does not start where the upload stands.
    #[error("the upload stands at byte {0}; send from there")]
    Offset(i64),
    /// The file is over the size limit.
    #[error("the file is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file's size.
        size: i64,
        /// The limit.
        limit: i64,
    },
    /// The device sent its bytes for the day.
    #[error("this device has uploaded its {0} bytes for today; try again tomorrow")]
    DailyLimit(i64),
    /// The range or length of the request is wrong.
    #[error("{0}")]
    BadRange(String),
    /// The bytes received are not those the hash names.
    #[error("the bytes received do not have SHA-256 {0}; the upload is dropped, start it over")]
    HashMismatch(String),
    /// The bytes are not of an allowed type, or not the type claimed.
    #[error("{0}; the upload is dropped")]
    Media(#[from] MediaError),
    /// The connection ended before the part did; what came is kept.
    #[error("the connection ended after byte {0}; resume from there")]
    Interrupted(i64),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A task of the upload panicked or was cancelled.
    #[error("an upload task failed: {0}")]
    Task(String),
}

impl FileError {
    fn task(e: tokio::task::JoinError) -> Self {
        FileError::Task(e.to_string())
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UploadState {
    /// The file.
    pub sha256: String,
    /// Bytes received from the start, to resume from; the whole size once
    /// the file is kept.
    pub received: i64,
    /// The file's size, once known.
    pub size: Option<i64>,
    /// Whether the file is kept (by this upload or an earlier one).
    pub complete: bool,
    /// What the bytes are, once kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// What a `PUT` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The file is kept: by this request (`true`) or before it.
    Kept(AttachmentRow, bool),
    /// A part is kept; more is expected.
    Part {
        /// Bytes received from the start.
        received: i64,
        /// The whole size.
        size: i64,
    },
}

/// One `PUT`: where its bytes go in the file.
#[derive(Debug, Clone)]
pub struct Put {
    /// The file.
    pub sha256: String,
    /// The media type the upload claims.
    pub media_type: String,
    /// Where the body starts in the file.
    pub first: i64,
    /// How many bytes the body holds.
    pub len: i64,
    /// The whole file's size.
    pub size: i64,
}

const DAY_MS: i64 = 86_400_000;

fn file_key(sha256: &str) -> String {
    format!("files/{sha256}")
}

fn thumb_key(sha256: &str) -> String {
    format!("thumbs/{sha256}")
}

impl Files {
    /// Files over `storage`, their bytes in `blobs`.
    pub fn new(storage: Arc<dyn Storage>, blobs: Arc<dyn Blobs>, limits: Limits) -> Self {
        Self {
            storage,
            blobs,
            limits,
        }
    }

    /// Refuses a malformed hash, and a caller no record of whose names
    /// the file; returns the kept file's row if there is one.
    async fn admit(
        &self,
        caller: &Caller,
        sha256: &str,
    ) -> Result<Option<AttachmentRow>, FileError> {
        if !is_sha256(sha256) {
            return Err(FileError::BadHash(sha256.to_owned()));
        }
        if !self
            .storage
            .attachment_readable(&caller.scope, sha256)
            .await?
        {
            return Err(FileError::NotReferenced);
        }
        Ok(self.storage.attachment(sha256).await?)
    }

    /// Where the caller's upload of a file stands.
    pub async fn state(&self, caller: &Caller, sha256: &str) -> Result<UploadState, FileError> {
        if let Some(kept) = self.admit(caller, sha256).await? {
            return Ok(state_of(&kept));
        }
        let upload = self.storage.upload(sha256, &caller.device_id).await?;
        Ok(UploadState {
            sha256: sha256.to_owned(),
            received: upload.as_ref().map_or(0, |u| u.received),
            size: upload.map(|u| u.size),
            complete: false,
            media_type: None,
        })
    }

    /// Takes one `PUT` of `put.sha256` with its `body`. A file already kept
    /// is answered at once, its body unread.
    ///
    /// The work runs in tasks of their own, which read the body to its end
    /// whatever becomes of the request: when a connection drops, its
    /// request is dropped with it, but the bytes that came are kept. The
    /// body is read while the request is checked, so that what reached the
    /// server before a connection broke is in hand, not left in a socket
    /// buffer that a reset discards.
    pub async fn receive<S, E>(
        &self,
        caller: &Caller,
        put: Put,
        body: S,
    ) -> Result<Received, FileError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if put.size > self.limits.max_bytes {
            return Err(FileError::TooLarge {
                size: put.size,
                limit: self.limits.max_bytes,
            });
        }
        if put.size <= 0 || put.first < 0 || put.len < 0 || put.first + put.len > put.size {
            return Err(FileError::BadRange(format!(
                "bytes {}..{} do not fit in a file of {} bytes",
                put.first,
                put.first + put.len,
                put.size
            )));
        }
        let files = self.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            let reader = tokio::spawn(read_body(body, put.len));
            let admitted = files.admit(&caller, &put.sha256).await;
            if !matches!(admitted, Ok(None)) {
                reader.abort();
            }
            if let Some(kept) = admitted? {
                return Ok(Received::Kept(kept, false));
            }
            let (bytes, cut) = reader.await.map_err(FileError::task)??;
            files.take(&caller, put, bytes, cut).await
        })
        .await
        .map_err(FileError::task)?
    }

    /// Keeps the bytes of one part, and the file when they complete it.
    async fn take(
        &self,
        caller: &Caller,
        put: Put,
        bytes: Vec<u8>,
        cut: bool,
    ) -> Result<Received, FileError> {
        // A part that completes the file is not written to the database
        // only to be read back: it joins the parts before it in memory. It
        // still counts against the day, and must start where the upload
        // stands.
        let last = !cut && put.first + bytes.len() as i64 == put.size;
        let appended = self
            .storage
            .append_upload(&UploadPart {
                sha256: &put.sha256,
                device_id: &caller.device_id,
                user_id: &caller.scope.user_id,
                media_type: &put.media_type,
                size: put.size,
                first: put.first,
                bytes: &bytes,
                keep: !last,
                now: crate::domain::now_ms(),
                daily_limit: self.limits.daily_bytes_per_device,
            })
            .await?;
        let received = match appended {
            Appended::Received(received) => received,
            Appended::Offset(at) => return Err(FileError::Offset(at)),
            Appended::DailyLimit => {
                return Err(FileError::DailyLimit(self.limits.daily_bytes_per_device));
            }
        };
        if last {
            return self.finish(caller, &put, bytes).await;
        }
        if cut {
            return Err(FileError::Interrupted(received));
        }
        if (bytes.len() as i64) < put.len {
            return Err(FileError::BadRange(format!(
                "the body held {} bytes, not the {} the request said; resume from byte {received}",
                bytes.len(),
                put.len
            )));
        }
        Ok(Received::Part {
            received,
            size: put.size,
        })
    }

    /// Checks a complete upload, its earlier parts and its `last`, and
    /// keeps it, or drops it.
    async fn finish(
        &self,
        caller: &Caller,
        put: &Put,
        last: Vec<u8>,
    ) -> Result<Received, FileError> {
        let whole = match put.first {
            0 => last,
            _ => {
                let mut parts = self
                    .storage
                    .upload_parts(&put.sha256, &caller.device_id)
                    .await?;
                parts.push(last);
                parts.concat()
            }
        };
        // The hash first: bytes that are not the named ones are told so,
        // whatever they are, and are not decoded.
        let claimed = put.media_type.clone();
        let named = put.sha256.clone();
        let checked = tokio::task::spawn_blocking(move || {
            if sync_core::replica::sha256_hex(&whole) != named {
                return Err(FileError::HashMismatch(named));
            }
            let size = whole.len();
            Ok((size, media::prepare(&whole, Some(&claimed))?))
        })
        .await
        .map_err(FileError::task)?;
        let (size, prepared) = match checked {
            Ok(checked) => checked,
            Err(refused) => {
                self.storage
                    .end_upload(&put.sha256, &caller.device_id)
                    .await?;
                return Err(refused);
            }
        };
        let sha256 = put.sha256.clone();
        let thumb_size = prepared.thumbnail.as_ref().map_or(0, Vec::len) as i64;
        let row = AttachmentRow {
            sha256: sha256.clone(),
            media_type: prepared.media_type.to_owned(),
            size: size as i64,
            stored_size: prepared.stored.len() as i64,
            thumb_size,
            user_id: caller.scope.user_id.clone(),
            device_id: caller.device_id.clone(),
            created_at: crate::domain::now_ms(),
        };
        // The blobs before the row: a row always has its bytes.
        if let Some(thumbnail) = prepared.thumbnail {
            self.blobs
                .put(&thumb_key(&sha256), thumbnail.into())
                .await?;
        }
        self.blobs
            .put(&file_key(&sha256), prepared.stored.into())
            .await?;
        let new = self.storage.insert_attachment(&row).await?;
        self.storage.end_upload(&sha256, &caller.device_id).await?;
        let row = match new {
            true => row,
            // Another upload kept it meanwhile: its row stands.
            false => self.storage.attachment(&sha256).await?.unwrap_or(row),
        };
        Ok(Received::Kept(row, new))
    }

    /// A kept file (or its thumbnail), with its media type, for a caller
    /// who may read a record naming it; [`FileError::NotFound`] otherwise,
    /// the same whether it does not exist or is not theirs to see.
    pub async fn open(
        &self,
        scope: &Scope,
        sha256: &str,
        thumbnail: bool,
    ) -> Result<(String, Bytes), FileError> {
        if !is_sha256(sha256) || !self.storage.attachment_readable(scope, sha256).await? {
            return Err(FileError::NotFound);
        }
        let Some(row) = self.storage.attachment(sha256).await? else {
            return Err(FileError::NotFound);
        };
        let (key, media_type) = match thumbnail {
            false => (file_key(sha256), row.media_type),
            true if row.thumb_size > 0 => (thumb_key(sha256), "image/jpeg".to_owned()),
            true => return Err(FileError::NotFound),
        };
        match self.blobs.get(&key).await? {
            Some(bytes) => Ok((media_type, bytes)),
            None => {
                tracing::error!(
                    sha256,
                    key,
                    "a kept file's bytes are missing from the store"
                );
                Err(FileError::NotFound)
            }
        }
    }

    /// Deletes files no record has named for `retention_days` (their rows,
    /// then their bytes) and uploads untouched for as long.
    pub async fn sweep(&self, now: i64, retention_days: u32) -> Result<Swept, FileError> {
        let cutoff = now - i64::from(retention_days) * DAY_MS;
        let swept = self.storage.sweep_attachments(now, cutoff).await?;
        for sha256 in &swept.files {
            self.blobs.delete(&thumb_key(sha256)).await?;
            self.blobs.delete(&file_key(sha256)).await?;
        }
        Ok(Swept {
            files: swept.files.len() as u64,
            uploads: swept.uploads,
        })
    }
}

/// Reads a body of at most `len` bytes: its bytes, and whether the
/// connection broke before its end.
async fn read_body<S, E>(mut body: S, len: i64) -> Result<(Vec<u8>, bool), FileError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut bytes = Vec::with_capacity(len as usize);
    while let Some(frame) = body.next().await {
        match frame {
            Ok(chunk) if (bytes.len() + chunk.len()) as i64 > len => {
                return Err(FileError::BadRange(format!(
                    "the body holds more than the {len} bytes the request said"
                )));
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) => {
                tracing::debug!(error = %e, "upload cut off");
                return Ok((bytes, true));
            }
        }
    }
    Ok((bytes, false))
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Files deleted.
    pub files: u64,
    /// Abandoned uploads dropped.
    pub uploads: u64,
}

/// The state of a kept file.
pub fn state_of(row: &AttachmentRow) -> UploadState {
    UploadState {
        sha256: row.sha256.clone(),
        received: row.size,
        size: Some(row.size),
        complete: true,
        media_type: Some(row.media_type.clone()),
    }
}
