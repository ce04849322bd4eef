//! Change-log compaction: the rows of `changes` older than the retention
//! window are deleted, since each document's snapshot (`Automerge::save`)
//! holds its whole history anyway, compressed and columnar.
//!
//! What a row adds to its change is the server's side of it: its place in
//! the feed (`seq`) and when it was received. After compaction:
//!
//! - a device whose cursor lies below the horizon (the highest seq
//!   compacted) gets whole snapshots for the documents it holds that changed
//!   since its cursor, instead of the changes (see `sync::feed`);
//! - a record's history reads compacted changes from the snapshot, with
//!   their user and device from the actor's registration and no server
//!   time (see `query::records`);
//! - a device pushing a compacted change again merges nothing: the snapshot
//!   has it, so it is not new.
//!
//! Compaction walks the feed from the horizon in batches, each its own
//! write transaction, so that it holds the write lock briefly however much
//! there is to delete. It runs in the server every
//! `compaction_interval_secs` and on demand with `gridsync admin compact`,
//! and so does the sweep of attached files no record names any more
//! ([`crate::engine::attachments::Files::sweep`]).

use std::time::Duration;

use crate::engine::{Engine, EngineError};
use crate::storage::Storage;

/// Changes deleted per write transaction: a few milliseconds of the lock.
pub const BATCH: i64 = 2_000;

const DAY_MS: i64 = 86_400_000;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Change rows deleted.
    pub removed: u64,
    /// Write transactions it took.
    pub batches: u64,
    /// The horizon at the end: every change with a seq at or below it now
    /// lives only in its document's snapshot.
    pub horizon: i64,
}

/// The time before which changes are compacted, `retention_days` before
/// `now` (ms since the epoch).
pub fn cutoff(now: i64, retention_days: u32) -> i64 {
    now - i64::from(retention_days) * DAY_MS
}

/// Deletes every change received before `cutoff` from the change log,
/// `batch` changes to a transaction (at least one). Running it again with
/// the same cutoff deletes nothing more.
pub async fn compact(
    storage: &dyn Storage,
    cutoff: i64,
    batch: i64,
) -> Result<Report, EngineError> {
    let batch = batch.max(1);
    let mut report = Report::default();
    loop {
        let mut tx = storage.begin(true).await?;
        let done = tx.compact(cutoff, batch, crate::domain::now_ms()).await?;
        tx.commit().await?;
        report.batches += 1;
        report.removed += done.removed;
        report.horizon = done.horizon;
        if !done.more {
            return Ok(report);
        }
        // Let waiting writers take the lock between batches.
        tokio::task::yield_now().await;
    }
}

/// Compacts with the configured retention, now.
pub async fn compact_now(engine: &Engine) -> Result<Report, EngineError> {
    let cutoff = cutoff(crate::domain::now_ms(), engine.config.change_retention_days);
    compact(engine.storage.as_ref(), cutoff, BATCH).await
}

/// Starts the periodic compaction of a serving instance: a minute after
/// start (or after the interval, if shorter), then every interval. `None`
/// when the interval is 0. Several instances on one database may each run
/// it: batches exclude each other through the write lock, and a batch with
/// nothing left to delete is a single read.
pub fn spawn(engine: Engine) -> Option<tokio::task::JoinHandle<()>> {
    let every = engine.config.compaction_interval_secs;
    if every == 0 {
        return None;
    }
    let every = Duration::from_secs(every);
    let first = every.min(Duration::from_secs(60));
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match compact_now(&engine).await {
                Ok(report) if report.removed > 0 => {
                    tracing::info!(
                        removed = report.removed,
                        batches = report.batches,
                        horizon = report.horizon,
                        "change log compacted"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "change log compaction failed"),
            }
            let retention = engine.config.attachment_retention_days;
            match engine.files.sweep(crate::domain::now_ms(), retention).await {
                Ok(swept) if swept.files + swept.uploads > 0 => {
                    tracing::info!(
                        files = swept.files,
                        uploads = swept.uploads,
                        "unreferenced attachments swept"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "attachment sweep failed"),
            }
        }
    }))
}
