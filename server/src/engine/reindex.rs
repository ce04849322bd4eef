//! Rebuilding the query projections from the stored documents: after an
//! upgrade that changes what documents project to, or a change of the
//! configured deadlines (`gridsync admin reindex`, and at start-up when
//! stale). Part of the sync engine: storage below it, no HTTP.

use sync_core::RecordId;
use sync_core::doc;
use sync_core::workflow::Deadlines;

use crate::projection::{Projection, Read, project};
use crate::storage::{Storage, StorageError};

/// Bumped whenever what documents project to changes: a database whose
/// projections were built by another version (or under other deadlines)
/// is reindexed at start-up.
pub const PROJECTION_VERSION: &str = "1";

/// Documents reindexed per transaction.
const REINDEX_BATCH: i64 = 200;

/// Recomputes every document's projection from the document, in batches;
/// `progress(done, total)` after each batch. Each document is read and its
/// rows written in one transaction, so a concurrent merge is never
/// overwritten with older rows.
pub async fn reindex(
    storage: &dyn Storage,
    deadlines: &Deadlines,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, StorageError> {
    let total = storage.document_count().await?.max(0) as u64;
    let (mut after, mut done) = (String::new(), 0u64);
    loop {
        let ids = storage.document_ids_after(&after, REINDEX_BATCH).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let mut tx = storage.begin(true).await?;
        for id in &ids {
            let (Ok(record_id), Some(stored)) = (id.parse::<RecordId>(), tx.load(id).await?) else {
                continue;
            };
            let kind = record_id.kind();
            let read = doc::load(&stored.snapshot)
                .map_err(|e| e.to_string())
                .and_then(|d| Read::new(kind, &d).map_err(|e| e.to_string()));
            let projection = match read {
                Ok(read) => project(id, &read.record, read.conflicts, deadlines),
                Err(e) => {
                    tracing::warn!(doc = %id, error = %e, "stored document is not a valid record");
                    Projection::default()
                }
            };
            tx.project(id, kind.as_str(), None, &projection).await?;
        }
        tx.commit().await?;
        done += ids.len() as u64;
        progress(done, total.max(done));
        after = last;
    }
    storage
        .set_meta("projection_version", &built_by(deadlines))
        .await?;
    Ok(done)
}

/// What the projections depend on besides the documents: this version's
/// projection code and the configured deadlines (which set due times).
fn built_by(deadlines: &Deadlines) -> String {
    use sha2::Digest;
    let deadlines = serde_json::to_vec(deadlines).unwrap_or_default();
    let digest = sha2::Sha256::digest(&deadlines);
    format!("{PROJECTION_VERSION}:{}", hex::encode(&digest[..8]))
}

/// Reindexes at start-up when the projections were built by another
/// version or under other deadlines (or never, in a database that
/// predates them).
pub async fn reindex_if_stale(
    storage: &dyn Storage,
    deadlines: &Deadlines,
) -> Result<(), StorageError> {
    let version = storage.meta("projection_version").await?;
    let current = built_by(deadlines);
    if version.as_deref() == Some(current.as_str()) {
        return Ok(());
    }
    if storage.document_count().await? > 0 {
        tracing::info!(from = ?version, to = %current, "rebuilding projections");
        let n = reindex(storage, deadlines, |_, _| {}).await?;
        tracing::info!(documents = n, "projections rebuilt");
    } else {
        storage.set_meta("projection_version", &current).await?;
    }
    Ok(())
}
