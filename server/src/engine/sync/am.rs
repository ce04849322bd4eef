//! Automerge's own sync protocol, the fallback for devices that cannot
//! state their heads (`api-spec/sync-protocol.md` §12): one stateless step
//! per document and round.
//!
//! A step is merged like a push ([`super::merge`]): [`prepare_am_sync`]
//! does the Automerge work against the stored copy read before, outside
//! the write transaction; [`AmPrepared::write`] writes what was decided,
//! provided the document's heads are still those it was merged against;
//! otherwise the step is merged again inside the transaction
//! ([`am_sync_round`]). The same checks apply as for a push, but refused
//! changes are not split: the step is refused whole.

use sync_core::RecordId;
use sync_core::automerge::sync::{Message as AmMessage, State as AmState, SyncDoc};
use sync_core::doc::{self, AnyRecord, DocMeta};
use sync_core::policy;
use sync_core::protocol::{AmSync, DocError};

use super::merge::{
    Limits, Previous, Write, household_meta, missing_dependencies, readable, unreadable,
    visit_denial, visit_household,
};
use super::{Writer, chunk, doc_error};
use crate::engine::EngineError;
use crate::projection::Read;
use crate::storage::{DocRow, DocTx};

/// Decodes one Automerge sync message, checking the change chunks it
/// carries as [`super::merge::decode_push`] checks a push's. Returns the message and the
/// operations it holds.
pub(super) fn decode_am_sync(msg: &AmSync, limits: Limits) -> Result<(AmMessage, u64), DocError> {
    let bad = |why: String| doc_error(&msg.id, "bad_am_sync_message", why);
    let message =
        AmMessage::decode(&msg.message).map_err(|_| bad("not an Automerge sync message".into()))?;
    let mut ops: u64 = 0;
    for (i, bytes) in message.changes.iter().enumerate() {
        // Automerge's own sync protocol may send a whole document (chunk
        // type 0) to a peer that has nothing; those pass, bounded by the
        // body limit only.
        if bytes.get(8) == Some(&0) {
            continue;
        }
        match chunk::inspect(bytes, limits.change_ops) {
            Ok(n) => ops = ops.saturating_add(n),
            Err(chunk::Refusal::TooManyOps) => {
                return Err(doc_error(
                    &msg.id,
                    "change_too_large",
                    format!(
                        "change {i} holds more than {} operations",
                        limits.change_ops
                    ),
                ));
            }
            Err(_) => {
                return Err(bad(format!(
                    "chunk {i} is not an uncompressed Automerge change"
                )));
            }
        }
    }
    Ok((message, ops))
}

/// An Automerge sync message (the fallback protocol) merged against the
/// stored copy, and what to write and answer: decided before the write
/// transaction ([`prepare_am_sync`]), like a push's
/// [`super::merge::Prepared`].
pub(crate) struct AmPrepared {
    id: RecordId,
    /// The heads of the stored copy it was merged against, as stored
    /// (`None`: the server had none).
    base: Option<Vec<u8>>,
    /// The merged document to store.
    write: Option<Write>,
    /// The household a visit to store names, when it is new or another
    /// than before ([`AmPrepared::check_visit`]).
    household: Option<String>,
    /// The reply to send, or why the message was refused.
    outcome: Result<AmSync, DocError>,
}

impl AmPrepared {
    fn refused(id: RecordId, base: Option<Vec<u8>>, error: DocError) -> Self {
        Self {
            id,
            base,
            write: None,
            household: None,
            outcome: Err(error),
        }
    }

    /// The document's id.
    pub(super) fn id(&self) -> &RecordId {
        &self.id
    }

    /// Whether the document is stored with the heads it was merged
    /// against: `current` as the write transaction reads them.
    pub(super) fn is_current(&self, current: Option<&Vec<u8>>) -> bool {
        self.base.as_ref() == current
    }

    /// The household to look up for [`AmPrepared::check_visit`], if any.
    pub(super) fn household(&self) -> Option<&str> {
        self.household.as_deref()
    }

    /// Refuses the message unless the writer may see the household the
    /// visit names, described by `household`.
    pub(super) fn check_visit(&mut self, writer: &Writer, household: Option<&DocMeta>) {
        let Some(id) = self.household.take() else {
            return;
        };
        if let Some(denial) = visit_denial(writer, &id, household) {
            self.write = None;
            self.outcome = Err(doc_error(&self.id, "forbidden", denial.to_string()));
        }
    }

    /// Writes what was decided, and gives the reply. Writing leaves it as
    /// it was: a transaction that fails writes it again in the next.
    pub(super) async fn write(
        &self,
        tx: &mut dyn DocTx,
        writer: &Writer,
    ) -> Result<Result<AmSync, DocError>, EngineError> {
        if let Some(write) = &self.write {
            write.apply(tx, writer.author(), &self.id).await?;
        }
        Ok(self.outcome.clone())
    }
}

/// One stateless step of Automerge's own sync protocol for one document:
/// the fallback for devices that cannot state their heads. Merges the
/// message for document `id` against the stored copy `stored` (`None`: the
/// server has none) and decides what to write and answer. The same checks
/// apply as for a push, but refused changes are not split: the step is
/// refused whole. Pure, like [`super::merge::prepare`]: run it off the async workers. A
/// message that makes Automerge panic is refused.
pub(crate) fn prepare_am_sync(
    writer: &Writer,
    id: &RecordId,
    message: &AmMessage,
    stored: Option<&DocRow>,
) -> AmPrepared {
    let base = stored.map(|row| row.heads.clone());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        merge_am_sync(writer, id, message.clone(), stored)
    }))
    .unwrap_or_else(|_| {
        tracing::warn!(doc = %id, "Automerge panicked on a sync message");
        AmPrepared::refused(
            id.clone(),
            base,
            doc_error(id, "invalid_change", "these changes cannot be applied"),
        )
    })
}

fn merge_am_sync(
    writer: &Writer,
    id: &RecordId,
    message: AmMessage,
    stored: Option<&DocRow>,
) -> AmPrepared {
    let kind = id.kind();
    let base = stored.map(|row| row.heads.clone());
    let refused = |error| AmPrepared::refused(id.clone(), base.clone(), error);
    let before = match stored.map(|row| doc::load(&row.snapshot)).transpose() {
        Ok(before) => before,
        Err(e) => {
            tracing::error!(doc = %id, error = %e, "stored snapshot does not load");
            return refused(unreadable(id));
        }
    };
    // A document the writer may not see is answered as one the server
    // does not have, and nothing sent for it is stored.
    let hidden = before.as_ref().is_some_and(|d| !readable(writer, kind, d));
    let before = if hidden { None } else { before };
    let mut doc = before
        .clone()
        .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
    let heads = doc.get_heads();
    let mut am_state = AmState::new();
    if let Err(e) = doc.receive_sync_message(&mut am_state, message) {
        return refused(doc_error(
            id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        ));
    }
    if let Some(refusal) = missing_dependencies(id, &doc) {
        return refused(refusal);
    }
    let mut write = None;
    let mut household = None;
    if doc.get_heads() != heads {
        let new = doc.get_changes(&heads);
        if new
            .iter()
            .any(|c| !writer.actors.contains(&c.actor_id().to_hex_string()))
        {
            return refused(doc_error(
                id,
                "unregistered_actor",
                "a change is by an actor not registered to this device",
            ));
        }
        let read = match Read::new(kind, &doc) {
            Ok(read) => read,
            Err(e) => return refused(doc_error(id, "invalid_record", e.to_string())),
        };
        if hidden {
            return refused(doc_error(
                id,
                "forbidden",
                format!("this {kind} is outside your area (rule out_of_scope)"),
            ));
        }
        if let Err(denial) =
            policy::check_write_docs(&writer.principal, kind, before.as_ref(), &doc)
        {
            return refused(doc_error(id, "forbidden", denial.to_string()));
        }
        let before_record = before.as_ref().and_then(|d| AnyRecord::read(kind, d).ok());
        household = visit_household(before_record.as_ref(), &read.record);
        let previous = Previous::of(before.as_ref(), before_record.as_ref());
        let before = previous.rows(id, &writer.deadlines);
        write = Some(Write::new(id, &doc, &new, read, before, &writer.deadlines));
    } else if before.is_none() {
        // Nothing stored and nothing sent: there is no such document.
        return AmPrepared {
            id: id.clone(),
            base,
            write: None,
            household: None,
            outcome: Ok(AmSync {
                id: id.clone(),
                message: serde_bytes::ByteBuf::from(Vec::new()),
            }),
        };
    }
    let reply = doc
        .generate_sync_message(&mut am_state)
        .map(|m| m.encode())
        .unwrap_or_default();
    AmPrepared {
        id: id.clone(),
        base,
        write,
        household,
        outcome: Ok(AmSync {
            id: id.clone(),
            message: serde_bytes::ByteBuf::from(reply),
        }),
    }
}

/// Merges an Automerge sync message inside the write transaction `tx`:
/// read, [`prepare_am_sync`], check a visit's household, write. For a
/// document another write moved since the message was merged outside the
/// transaction. The outer error is the server's fault.
pub(super) async fn am_sync_round(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: &RecordId,
    message: &AmMessage,
) -> Result<Result<AmSync, DocError>, EngineError> {
    let stored = tx.load(&id.to_string()).await?;
    let mut prepared = prepare_am_sync(writer, id, message, stored.as_ref());
    if let Some(household) = prepared.household() {
        let meta = household_meta(tx, household).await?;
        prepared.check_visit(writer, meta.as_ref());
    }
    prepared.write(tx, writer).await
}
