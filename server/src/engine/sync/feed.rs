//! What goes down to a device: the documents of its scope it lacks, the
//! documents that left its scope, and the next cursor.
//!
//! The server keeps, per device, which documents it has sent (and in which
//! response). A response counts only once the device presents the cursor it
//! carried, so a lost response is simply sent again. Documents the device
//! does not hold come whole (a snapshot); documents it holds come as the
//! changes since its cursor, or whole when the change log was compacted
//! past its cursor. When the user's role or units change, the
//! device rescans its whole scope once.

use std::collections::{BTreeMap, HashMap, HashSet};

use sync_core::RecordId;
use sync_core::automerge::ChangeHash;
use sync_core::protocol::{DocError, DocPull, Heads};

use super::merge::MergedDocs;
use super::{Cursor, Writer, chunk};
use crate::domain::now_ms;
use crate::engine::EngineError;
use crate::storage::{AuditRow, DocTx};

/// The answer to one round.
pub(super) struct Answer {
    pub(super) docs: Vec<DocPull>,
    pub(super) drop: Vec<RecordId>,
    pub(super) more: bool,
    pub(super) next: Cursor,
    /// Documents that could not be sent: their stored copy is damaged.
    pub(super) errors: Vec<DocError>,
    /// Bookkeeping to write before the answer is sent.
    pub(super) updates: DeviceUpdates,
}

/// What the server must record about the device for this answer.
#[derive(Default)]
pub(super) struct DeviceUpdates {
    round: i64,
    sent: Vec<String>,
    dropped: Vec<String>,
    confirmed_drops: Vec<String>,
    sensitive_sent: Vec<String>,
}

impl DeviceUpdates {
    pub(super) fn is_empty(&self) -> bool {
        self.sent.is_empty()
            && self.dropped.is_empty()
            && self.confirmed_drops.is_empty()
            && self.sensitive_sent.is_empty()
    }

    pub(super) async fn apply(
        &self,
        tx: &mut dyn DocTx,
        writer: &Writer,
    ) -> Result<(), EngineError> {
        let device = &writer.auth.device_id;
        // Forget confirmed drops first: a document dropped before and sent
        // again in this answer must stay remembered.
        tx.forget(device, &self.confirmed_drops).await?;
        tx.remember(device, &self.sent, self.round).await?;
        tx.mark_dropped(device, &self.dropped, self.round).await?;
        let now = now_ms();
        for doc in &self.sensitive_sent {
            tx.audit(&AuditRow {
                at: now,
                user_id: writer.auth.user_id.clone(),
                device_id: Some(device.clone()),
                action: "read_sensitive".into(),
                target: doc.clone(),
                detail: "sent to device".into(),
            })
            .await?;
        }
        Ok(())
    }
}

fn parse_heads(bytes: &[u8]) -> Heads {
    Heads(
        bytes
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

fn parse_id(id: &str) -> Result<RecordId, EngineError> {
    id.parse()
        .map_err(|_| EngineError::internal(format!("stored document id {id:?} is malformed")))
}

/// What to send for documents the device holds, changed in
/// `(base, upto]`: each one's changes in that range, through the index on
/// (document, seq), never a scan of everyone else's changes. When the
/// change log was compacted past `base`, some of those changes are gone:
/// each document then goes whole, a snapshot, which the device merges with
/// what it holds (`sync-protocol.md` §3.2).
///
/// The horizon is read again after the changes: a compaction committing in
/// between (PostgreSQL reads see each statement's own snapshot) would leave
/// holes, and the horizon only grows, so a horizon still at or below `base`
/// afterwards means nothing read was deleted.
async fn held_changes(
    tx: &mut dyn DocTx,
    base: i64,
    upto: i64,
    held: BTreeMap<String, (RecordId, Heads)>,
    errors: &mut Vec<DocError>,
) -> Result<Vec<DocPull>, EngineError> {
    let mut pulls = Vec::with_capacity(held.len());
    if held.is_empty() {
        return Ok(pulls);
    }
    if base >= tx.compacted_seq().await? {
        // Read together through the index on (document, seq): never a
        // scan of everyone else's changes.
        let ids: Vec<String> = held.keys().cloned().collect();
        let mut changes: HashMap<String, Vec<serde_bytes::ByteBuf>> = HashMap::new();
        for (doc_id, bytes) in tx.changes_between(&ids, base, upto).await? {
            changes
                .entry(doc_id)
                .or_default()
                .push(serde_bytes::ByteBuf::from(bytes));
        }
        for (doc_id, (id, heads)) in &held {
            pulls.push(DocPull {
                id: id.clone(),
                heads: heads.clone(),
                chunks: changes.remove(doc_id).unwrap_or_default(),
            });
        }
        if base >= tx.compacted_seq().await? {
            return Ok(pulls);
        }
        pulls.clear();
    }
    for (doc_id, (id, _)) in held {
        // Heads and snapshot from one read, so that they agree.
        let Some(row) = tx.load(&doc_id).await? else {
            continue;
        };
        if !chunk::intact(&row.snapshot) {
            errors.push(damaged(&id));
            continue;
        }
        pulls.push(DocPull {
            id,
            heads: parse_heads(&row.heads),
            chunks: vec![serde_bytes::ByteBuf::from(row.snapshot)],
        });
    }
    Ok(pulls)
}

/// Builds the answer for a device at `cursor`, given the documents it
/// pushed and that were merged this round. `own` is the range of seqs
/// `(first, last]` the round wrote; `feed_end`, its last, is the highest
/// seq once the round's own writes committed: writers allocate seqs in turn,
/// so everything up to it is committed when the feed is read. Once every
/// document of the scope past the cursor is sent, the device is current up
/// to there, and its next round need not look at anything older, in its
/// scope or not.
///
/// The feed may also hold documents written after `feed_end`, by rounds
/// that committed while the answer was read. They are sent as they are now
/// (all their changes past the cursor, or whole), and once more in the
/// device's next round, since the cursor stops at `feed_end`: a document
/// the device pushed this round and someone wrote since is sent then.
pub(super) async fn answer(
    tx: &mut dyn DocTx,
    writer: &Writer,
    page: usize,
    cursor: Cursor,
    merged: MergedDocs,
    own: (i64, i64),
) -> Result<Answer, EngineError> {
    let feed_end = own.1;
    let device = writer.auth.device_id.as_str();
    let round = cursor.round + 1;
    let mut updates = DeviceUpdates {
        round,
        ..DeviceUpdates::default()
    };

    // A changed role or set of units: rescan the whole scope once. The
    // cursor says which scope the device has scanned, so a lost answer
    // means the rescan simply starts again.
    let scope = writer.auth.scope_version;
    let rescan = cursor.scope != scope;
    let cursor = if rescan {
        Cursor {
            after: 0,
            scope,
            ..cursor
        }
    } else {
        cursor
    };

    let limit = i64::try_from(page).unwrap_or(i64::MAX);
    let mut feed = tx
        .feed(
            &writer.scope,
            device,
            cursor.round,
            cursor.after,
            limit + 1,
            own,
        )
        .await?;
    let more = feed.len() > page;
    feed.truncate(page);
    let next = match feed.last() {
        Some(last) if more => Cursor {
            after: last.seq,
            round,
            ..cursor
        },
        _ => {
            let end = feed_end.max(cursor.base);
            Cursor {
                base: end,
                after: end,
                round,
                scope,
            }
        }
    };

    // A document's changes are read up to its seq in the feed, which may
    // be past the cursor's end.
    let upto = feed
        .last()
        .map_or(0, |last| last.seq)
        .max(next.after)
        .max(cursor.base);
    let mut docs = Vec::with_capacity(feed.len() + merged.len());
    let pushed: HashSet<RecordId> = merged.keys().cloned().collect();
    for (id, m) in merged {
        if m.created {
            updates.sent.push(id.to_string());
        }
        docs.push(m.pull);
    }

    let mut by_log = BTreeMap::new();
    let mut errors = Vec::new();
    for row in feed {
        let id = parse_id(&row.id)?;
        if pushed.contains(&id) || (row.known && row.seq <= cursor.base) {
            continue;
        }
        if row.known {
            by_log.insert(row.id, (id, parse_heads(&row.heads)));
            continue;
        }
        // The feed leaves out the snapshots of what the round wrote, which
        // is mostly what the device pushed; anything else it wrote (an
        // Automerge sync message's document) is read here.
        let (heads, snapshot) = match row.snapshot {
            Some(snapshot) => (row.heads, snapshot),
            None => match tx.load(&row.id).await? {
                Some(stored) => (stored.heads, stored.snapshot),
                None => continue,
            },
        };
        if !chunk::intact(&snapshot) {
            errors.push(damaged(&id));
            continue;
        }
        if row.kind == "sensitive" {
            updates.sensitive_sent.push(row.id.clone());
        }
        updates.sent.push(row.id);
        docs.push(DocPull {
            id,
            heads: parse_heads(&heads),
            chunks: vec![serde_bytes::ByteBuf::from(snapshot)],
        });
    }
    docs.extend(held_changes(tx, cursor.base, upto, by_log, &mut errors).await?);

    // Documents that left the scope: newly, or told before and not yet
    // confirmed by the device.
    let since = if rescan { -1 } else { cursor.base };
    let left = tx.out_of_scope(&writer.scope, device, since).await?;
    let mut drop = Vec::new();
    for (doc_id, told_in) in tx.drops(device).await? {
        if told_in <= cursor.round {
            updates.confirmed_drops.push(doc_id);
        } else {
            drop.push(parse_id(&doc_id)?);
        }
    }
    for doc_id in left {
        drop.push(parse_id(&doc_id)?);
    }
    // A document sent in this answer is back in scope: not dropped.
    drop.retain(|id| !docs.iter().any(|d| &d.id == id));
    drop.sort();
    drop.dedup();
    updates.dropped = drop.iter().map(|id| id.to_string()).collect();

    Ok(Answer {
        docs,
        drop,
        more,
        next,
        errors,
        updates,
    })
}

/// The answer for a document whose stored snapshot is damaged: the device
/// is told, the rest of the round goes on.
fn damaged(id: &RecordId) -> DocError {
    tracing::error!(doc = %id, "stored snapshot is damaged; not sent");
    super::merge::unreadable(id)
}
