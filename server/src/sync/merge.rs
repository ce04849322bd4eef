//! Merging what a device sent: decode, apply, check, store or hold back.
//!
//! Every new change must come from an actor registered to the sending
//! device. The merged document must still hold a valid record, and the
//! policy must allow the change from the record before to the record after.
//! When it does not, the changes are tried one by one in causal order: those
//! the policy allows are stored, the first refused one and everything that
//! depends on it go to quarantine. Automerge changes form a hash chain, so
//! the shared history can only contain a change together with all it
//! depends on; the device is told to reset the document to the server's
//! heads, and keeps the refused edits for its user to see.

use std::collections::{BTreeMap, HashSet};

use sync_core::automerge::sync::{Message as AmMessage, State as AmState, SyncDoc};
use sync_core::automerge::{Automerge, Change, ChangeHash, ReadDoc};
use sync_core::doc::{self, AnyRecord};
use sync_core::policy::{self, Denial};
use sync_core::protocol::{AmSync, DocError, DocPush};
use sync_core::workflow::Deadlines;
use sync_core::{RecordId, RecordKind};

use super::{Writer, doc_error};
use crate::error::AppError;
use crate::projection::{self, Projection};
use crate::storage::{AuditRow, DocTx, DocWrite, NewChange, QuarantineRow};
use crate::{now_ms, random_hex};

/// A document merged in this round, kept to answer from.
pub(super) struct Merged {
    pub(super) doc: Automerge,
    pub(super) device_heads: Vec<ChangeHash>,
    /// The server did not have the document before this round.
    pub(super) created: bool,
}

/// An incoming document, decoded.
pub(crate) struct Incoming {
    id: RecordId,
    heads: Vec<ChangeHash>,
    changes: Vec<Change>,
}

impl Incoming {
    /// Changes to one document from a device whose heads are `heads`.
    pub(crate) fn new(id: RecordId, heads: Vec<ChangeHash>, changes: Vec<Change>) -> Self {
        Self { id, heads, changes }
    }

    /// The document's id.
    pub(crate) fn id(&self) -> &RecordId {
        &self.id
    }
}

/// What became of one pushed document.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The merged document, when the device may see it.
    pub(super) merged: Option<(RecordId, Merged)>,
    /// Why (some of) its changes were refused.
    pub(crate) error: Option<DocError>,
    /// The document, when the device must not hold it.
    pub(super) drop: Option<RecordId>,
}

impl Outcome {
    fn refused(error: DocError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// Decodes every change of a push; a corrupt one refuses the document.
pub(super) fn decode_push(push: DocPush) -> Result<Incoming, DocError> {
    let mut changes = Vec::with_capacity(push.changes.len());
    for (i, bytes) in push.changes.into_iter().enumerate() {
        let change = Change::from_bytes(bytes.into_vec()).map_err(|e| {
            doc_error(
                &push.id,
                "corrupt_change",
                format!("change {i} is not a valid Automerge change: {e}"),
            )
        })?;
        changes.push(change);
    }
    Ok(Incoming {
        id: push.id,
        heads: push.heads.0,
        changes,
    })
}

/// Loads a stored document, if there is one.
pub(super) async fn load(tx: &mut dyn DocTx, id: &RecordId) -> Result<Option<Automerge>, AppError> {
    match tx.load(&id.to_string()).await? {
        Some(row) => Ok(Some(doc::load(&row.snapshot).map_err(AppError::internal)?)),
        None => Ok(None),
    }
}

/// Merges one pushed document. The outer error is the server's fault.
pub(crate) async fn push(
    tx: &mut dyn DocTx,
    writer: &Writer,
    incoming: Incoming,
) -> Result<Outcome, AppError> {
    let id = incoming.id;
    let kind = id.kind();
    let before = load(tx, &id).await?;
    let before_record = match &before {
        Some(stored) => match AnyRecord::read(kind, stored) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::error!(doc = %id, error = %e, "stored document is not a valid record");
                return Ok(Outcome::refused(doc_error(
                    &id,
                    "invalid_record",
                    format!("the stored record cannot be read ({e}); an admin must repair it"),
                )));
            }
        },
        None => None,
    };
    if let Some(stored) = &before
        && before_record
            .as_ref()
            .is_some_and(|r| !writer.principal.can_read(kind, &r.meta()))
    {
        // Not theirs to see: answer nothing about it beyond the refusal.
        let mut outcome = Outcome::refused(doc_error(
            &id,
            "forbidden",
            format!("this {kind} is outside your area (rule out_of_scope)"),
        ));
        if !incoming.changes.is_empty() {
            let denial = Denial {
                rule: "out_of_scope",
                message: format!("this {kind} is outside the sender's area"),
            };
            let mut doc = stored.clone();
            let base = doc.get_heads();
            // Only the device's own changes are kept for review.
            if doc.apply_changes(incoming.changes).is_ok() && doc.get_missing_deps(&[]).is_empty() {
                let held = doc.get_changes(&base);
                if held
                    .iter()
                    .all(|c| writer.actors.contains(&c.actor_id().to_hex_string()))
                {
                    hold_back(tx, writer, &id, &held, &denial).await?;
                }
            }
        }
        outcome.drop = Some(id);
        return Ok(outcome);
    }
    let mut doc = before
        .clone()
        .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
    let base = doc.get_heads();
    if let Err(e) = doc.apply_changes(incoming.changes) {
        return Ok(Outcome::refused(doc_error(
            &id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        )));
    }
    if let Some(refusal) = missing_dependencies(&id, &doc) {
        return Ok(Outcome::refused(refusal));
    }
    let new = doc.get_changes(&base);
    if let Some(change) = new
        .iter()
        .find(|c| !writer.actors.contains(&c.actor_id().to_hex_string()))
    {
        return Ok(Outcome::refused(DocError {
            change: Some(serde_bytes::ByteBuf::from(change.hash().0.to_vec())),
            ..doc_error(
                &id,
                "unregistered_actor",
                format!(
                    "change {} is by actor {}, which is not registered to this device",
                    change.hash(),
                    change.actor_id()
                ),
            )
        }));
    }
    let after_record = match AnyRecord::read(kind, &doc) {
        Ok(record) => record,
        Err(e) => {
            return Ok(Outcome::refused(doc_error(
                &id,
                "invalid_record",
                e.to_string(),
            )));
        }
    };
    let device_heads = incoming.heads;
    let created = before.is_none();
    match policy::check_write(&writer.principal, before_record.as_ref(), &after_record) {
        Ok(()) => {
            let previous = Previous::of(before.as_ref(), before_record.as_ref());
            store(tx, writer, &id, &doc, &base, &after_record, previous).await?;
            Ok(Outcome {
                merged: Some((
                    id,
                    Merged {
                        doc,
                        device_heads,
                        created,
                    },
                )),
                ..Outcome::default()
            })
        }
        Err(denial) => {
            let (accepted, held) = split(writer, kind, before.as_ref(), &new);
            hold_back(tx, writer, &id, &held, &denial).await?;
            let first = held.first().map(|c| c.hash());
            let error = DocError {
                change: first.map(|h| serde_bytes::ByteBuf::from(h.0.to_vec())),
                ..doc_error(
                    &id,
                    "forbidden",
                    format!(
                        "{}; {} change(s) held for review (rule {})",
                        denial.message,
                        held.len(),
                        denial.rule
                    ),
                )
            };
            let accepted = accepted.and_then(|d| {
                let record = AnyRecord::read(kind, &d).ok()?;
                writer
                    .principal
                    .can_read(kind, &record.meta())
                    .then_some((d, record))
            });
            match accepted {
                Some((accepted, record)) => {
                    let previous = Previous::of(before.as_ref(), before_record.as_ref());
                    store(tx, writer, &id, &accepted, &base, &record, previous).await?;
                    Ok(Outcome {
                        merged: Some((
                            id,
                            Merged {
                                doc: accepted,
                                device_heads,
                                created,
                            },
                        )),
                        error: Some(error),
                        drop: None,
                    })
                }
                _ => Ok(Outcome {
                    error: Some(error),
                    drop: Some(id),
                    ..Outcome::default()
                }),
            }
        }
    }
}

fn readable(writer: &Writer, kind: RecordKind, doc: &Automerge) -> bool {
    doc::meta(kind, doc).is_ok_and(|meta| writer.principal.can_read(kind, &meta))
}

/// Splits refused changes: applies them one at a time in causal order onto
/// `before`, keeping each the policy allows and holding back each it
/// refuses together with everything depending on one held back. Returns the
/// accepted document (`None` if nothing is left of a new document) and the
/// held-back changes.
fn split(
    writer: &Writer,
    kind: RecordKind,
    before: Option<&Automerge>,
    new: &[Change],
) -> (Option<Automerge>, Vec<Change>) {
    let mut accepted = before.cloned();
    let mut held = Vec::new();
    let mut held_hashes = HashSet::new();
    for change in new {
        let depends_on_held = change.deps().iter().any(|d| held_hashes.contains(d));
        let allowed = !depends_on_held && {
            let mut candidate = accepted
                .clone()
                .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
            candidate.apply_changes([change.clone()]).is_ok()
                && policy::check_write_docs(&writer.principal, kind, accepted.as_ref(), &candidate)
                    .is_ok()
                && {
                    accepted = Some(candidate);
                    true
                }
        };
        if !allowed {
            held_hashes.insert(change.hash());
            held.push(change.clone());
        }
    }
    (accepted, held)
}

/// Puts refused changes in quarantine and audits it.
async fn hold_back(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: &RecordId,
    held: &[Change],
    denial: &Denial,
) -> Result<(), AppError> {
    let now = now_ms();
    let rows: Vec<QuarantineRow> = held
        .iter()
        .map(|c| QuarantineRow {
            id: format!("q_{}", random_hex(12)),
            doc_id: id.to_string(),
            hash: c.hash().0.to_vec(),
            bytes: c.raw_bytes().to_vec(),
            deps: c.deps().iter().flat_map(|h| h.0).collect(),
            actor: c.actor_id().to_hex_string(),
            user_id: writer.auth.user_id.clone(),
            device_id: writer.auth.device_id.clone(),
            rule: denial.rule.to_owned(),
            message: denial.message.clone(),
            received_at: now,
            status: "pending".into(),
            decided_by: None,
            decided_at: None,
        })
        .collect();
    tx.quarantine(&rows).await?;
    tx.audit(&AuditRow {
        at: now,
        user_id: writer.auth.user_id.clone(),
        device_id: Some(writer.auth.device_id.clone()),
        action: "quarantine".into(),
        target: id.to_string(),
        detail: format!("{} change(s) refused: {}", rows.len(), denial),
    })
    .await?;
    tracing::warn!(doc = %id, changes = rows.len(), rule = denial.rule, "changes quarantined");
    crate::metrics::quarantined(rows.len());
    Ok(())
}

/// The refusal for a document holding changes it cannot apply yet.
pub(super) fn missing_dependencies(id: &RecordId, doc: &Automerge) -> Option<DocError> {
    let missing = doc.get_missing_deps(&[]);
    if missing.is_empty() {
        return None;
    }
    let listed: Vec<String> = missing.iter().map(|h| h.to_string()).collect();
    Some(doc_error(
        id,
        "missing_dependencies",
        format!(
            "changes depend on changes the server does not have: {}; send the whole history of this document",
            listed.join(", ")
        ),
    ))
}

/// Writes the changes `doc` gained since `base` (its heads as loaded),
/// attributed to the writer, and the rows the merged `record` projects to.
#[allow(clippy::too_many_arguments)]
pub(super) async fn store(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: &RecordId,
    doc: &Automerge,
    base: &[ChangeHash],
    record: &AnyRecord,
    previous: Previous<'_>,
) -> Result<(), AppError> {
    let author = (writer.auth.user_id.as_str(), writer.auth.device_id.as_str());
    store_as(
        tx,
        author,
        id,
        doc,
        base,
        record,
        previous,
        &writer.deadlines,
    )
    .await
}

/// What a document was before a write, so that only the projection rows
/// that change are rewritten.
#[derive(Clone, Copy)]
pub(crate) enum Previous<'a> {
    /// It did not exist: it has no rows.
    New,
    /// As stored, with its record.
    Stored(&'a Automerge, &'a AnyRecord),
    /// Not known here: every row is rewritten.
    Unknown,
}

impl<'a> Previous<'a> {
    /// From a stored document, if any.
    pub(crate) fn of(stored: Option<&'a Automerge>, record: Option<&'a AnyRecord>) -> Self {
        match (stored, record) {
            (None, _) => Previous::New,
            (Some(doc), Some(record)) => Previous::Stored(doc, record),
            (Some(_), None) => Previous::Unknown,
        }
    }
}

/// Writes the changes `doc` gained since `base`, attributed to a user and
/// device, and the rows the merged `record` projects to (a case's due time
/// from `deadlines`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_as(
    tx: &mut dyn DocTx,
    (user_id, device_id): (&str, &str),
    id: &RecordId,
    doc: &Automerge,
    base: &[ChangeHash],
    record: &AnyRecord,
    previous: Previous<'_>,
    deadlines: &Deadlines,
) -> Result<(), AppError> {
    if doc.get_heads() == base {
        return Ok(());
    }
    let new_changes: Vec<NewChange> = doc
        .get_changes(base)
        .iter()
        .map(|c| NewChange {
            hash: c.hash().0,
            bytes: c.raw_bytes().to_vec(),
            actor: c.actor_id().to_hex_string(),
        })
        .collect();
    let heads: Vec<u8> = doc.get_heads().iter().flat_map(|h| h.0).collect();
    let meta = record.meta();
    let doc_id = id.to_string();
    tx.save(DocWrite {
        id: &doc_id,
        kind: id.kind().as_str(),
        org_unit: &meta.org_unit,
        reporter: meta.reporter.as_deref(),
        assignee: meta.assignee.as_deref(),
        snapshot: &doc.save(),
        heads: &heads,
        changes: &new_changes,
        user_id,
        device_id,
        now: now_ms(),
    })
    .await?;
    let projection = projection::project(&doc_id, record, doc, deadlines);
    let before = match previous {
        Previous::New => Some(Projection::default()),
        Previous::Stored(doc, record) => Some(projection::project(&doc_id, record, doc, deadlines)),
        Previous::Unknown => None,
    };
    tx.project(&doc_id, id.kind().as_str(), before.as_ref(), &projection)
        .await?;
    crate::metrics::merged(new_changes.len());
    Ok(())
}

/// One stateless step of Automerge's own sync protocol for one document:
/// the fallback for devices that cannot state their heads. The same checks
/// apply as for a push, but refused changes are not split: the step is
/// refused whole.
pub(super) async fn am_sync_round(
    tx: &mut dyn DocTx,
    writer: &Writer,
    msg: AmSync,
) -> Result<Result<AmSync, DocError>, AppError> {
    let id = msg.id;
    let kind = id.kind();
    let message = match AmMessage::decode(&msg.message) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Err(doc_error(
                &id,
                "bad_am_sync_message",
                format!("not an Automerge sync message: {e}"),
            )));
        }
    };
    let before = load(tx, &id).await?;
    if let Some(stored) = &before
        && !readable(writer, kind, stored)
    {
        return Ok(Err(doc_error(
            &id,
            "forbidden",
            format!("this {kind} is outside your area (rule out_of_scope)"),
        )));
    }
    let mut doc = before
        .clone()
        .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
    let base = doc.get_heads();
    let mut am_state = AmState::new();
    if let Err(e) = doc.receive_sync_message(&mut am_state, message) {
        return Ok(Err(doc_error(
            &id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        )));
    }
    if let Some(refusal) = missing_dependencies(&id, &doc) {
        return Ok(Err(refusal));
    }
    if doc.get_heads() != base {
        let new = doc.get_changes(&base);
        if new
            .iter()
            .any(|c| !writer.actors.contains(&c.actor_id().to_hex_string()))
        {
            return Ok(Err(doc_error(
                &id,
                "unregistered_actor",
                "a change is by an actor not registered to this device",
            )));
        }
        let record = match AnyRecord::read(kind, &doc) {
            Ok(record) => record,
            Err(e) => return Ok(Err(doc_error(&id, "invalid_record", e.to_string()))),
        };
        if let Err(denial) =
            policy::check_write_docs(&writer.principal, kind, before.as_ref(), &doc)
        {
            return Ok(Err(doc_error(&id, "forbidden", denial.to_string())));
        }
        let before_record = before.as_ref().and_then(|d| AnyRecord::read(kind, d).ok());
        let previous = Previous::of(before.as_ref(), before_record.as_ref());
        store(tx, writer, &id, &doc, &base, &record, previous).await?;
    } else if before.is_none() {
        // Nothing stored and nothing sent: there is no such document.
        return Ok(Ok(AmSync {
            id,
            message: serde_bytes::ByteBuf::from(Vec::new()),
        }));
    }
    let reply = doc
        .generate_sync_message(&mut am_state)
        .map(|m| m.encode())
        .unwrap_or_default();
    Ok(Ok(AmSync {
        id,
        message: serde_bytes::ByteBuf::from(reply),
    }))
}

/// Documents merged this round, by id.
pub(super) type MergedDocs = BTreeMap<RecordId, Merged>;
