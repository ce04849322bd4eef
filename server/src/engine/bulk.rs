//! Bulk loading: an admin/ops path for initial loads (a county's records
//! migrated from an older system, a benchmark county), not something a
//! device can reach.
//!
//! Each document is written exactly as a merge writes it
//! ([`crate::engine::sync::store_as`]: the changes new to the server, attributed to
//! the user and device given, the merged snapshot, and the projection rows),
//! so that what a bulk load stores cannot be told apart from what devices
//! syncing the same documents would have stored, but without HTTP, without
//! the per-document policy check, and with many documents per transaction.
//! The caller vouches for the documents: whoever can run this can write to
//! the database anyway. Each document must still hold a valid record with
//! its whole history; a document stored already is merged with what is
//! given, as a sync round would.

use sync_core::RecordId;
use sync_core::automerge::{Automerge, ReadDoc};
use sync_core::doc::{self, AnyRecord};

use crate::engine::{Engine, EngineError};
use crate::storage::DocTx;

/// One document to load.
#[derive(Debug, Clone)]
pub struct BulkDoc {
    /// Its record id.
    pub id: RecordId,
    /// The document as the device that made it holds it, with its whole
    /// history.
    pub doc: Automerge,
    /// The user its new changes are attributed to.
    pub user_id: String,
    /// The device its new changes are attributed to.
    pub device_id: String,
}

/// What a bulk load stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkReport {
    /// Documents given.
    pub documents: usize,
    /// Changes the server did not have before.
    pub new_changes: usize,
    /// Documents the server held already with every change given.
    pub unchanged: usize,
}

impl std::ops::AddAssign for BulkReport {
    fn add_assign(&mut self, other: Self) {
        self.documents += other.documents;
        self.new_changes += other.new_changes;
        self.unchanged += other.unchanged;
    }
}

/// Stores `docs`, `per_transaction` documents to a write transaction
/// (at least one). A document that does not hold a valid record, or lacks
/// changes its history depends on, stops the load with an error naming it;
/// the transactions committed before stay.
pub async fn store_documents(
    engine: &Engine,
    docs: impl IntoIterator<Item = BulkDoc>,
    per_transaction: usize,
) -> Result<BulkReport, EngineError> {
    let per_transaction = per_transaction.max(1);
    let mut report = BulkReport::default();
    let mut docs = docs.into_iter().peekable();
    while docs.peek().is_some() {
        let mut tx = engine.storage.begin(true).await?;
        let feed_before = tx.max_seq().await?;
        for bulk in docs.by_ref().take(per_transaction) {
            report += store_one(engine, &mut *tx, bulk).await?;
        }
        let feed_after = tx.max_seq().await?;
        tx.commit().await?;
        if feed_after > feed_before {
            engine.notifier.publish(feed_after);
        }
    }
    Ok(report)
}

async fn store_one(
    engine: &Engine,
    tx: &mut dyn DocTx,
    bulk: BulkDoc,
) -> Result<BulkReport, EngineError> {
    let BulkDoc {
        id,
        doc: mut given,
        user_id,
        device_id,
    } = bulk;
    let refuse = |problem: String| EngineError::Invalid {
        field: "documents",
        problem: format!("{id}: {problem}"),
    };
    let stored = match tx.load(&id.to_string()).await? {
        Some(row) => Some(doc::load(&row.snapshot).map_err(EngineError::internal)?),
        None => None,
    };
    let existed = stored.is_some();
    let (merged, base) = match stored {
        None => (given, Vec::new()),
        Some(mut stored) => {
            let base = stored.get_heads();
            stored
                .merge(&mut given)
                .map_err(|e| refuse(format!("does not merge with the stored document: {e}")))?;
            (stored, base)
        }
    };
    let missing = merged.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(refuse(format!(
            "{} change(s) it depends on are missing",
            missing.len()
        )));
    }
    let record = AnyRecord::read(id.kind(), &merged).map_err(|e| refuse(e.to_string()))?;
    let new_changes = merged.get_changes(&base).len();
    crate::engine::sync::store_as(
        tx,
        (user_id.as_str(), device_id.as_str()),
        &id,
        &merged,
        &base,
        &record,
        match existed {
            true => crate::engine::sync::Previous::Unknown,
            false => crate::engine::sync::Previous::New,
        },
        &engine.config.deadlines,
    )
    .await?;
    Ok(BulkReport {
        documents: 1,
        new_changes,
        unchanged: usize::from(new_changes == 0),
    })
}

/// Refreshes the database's planner statistics: call once after the last
/// batch of a large load, so that queries are planned for the tables as
/// they now are (PostgreSQL would otherwise wait for autovacuum to notice).
pub async fn analyze(engine: &Engine) -> Result<(), EngineError> {
    Ok(engine.storage.analyze().await?)
}
