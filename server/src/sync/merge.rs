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

use super::{Writer, chunk, doc_error};
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

    /// Whether any change came with it.
    pub(super) fn has_changes(&self) -> bool {
        !self.changes.is_empty()
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

/// Limits on the changes of one request, checked before Automerge
/// decodes them (see [`super::chunk`]).
#[derive(Clone, Copy)]
pub(super) struct Limits {
    /// Most operations in one change.
    pub(super) change_ops: u64,
}

/// Largest magnitude of a change's time (milliseconds or seconds since the
/// epoch, as the phone's Automerge library writes it): far beyond any real
/// clock, and two such times never overflow a delta.
const MAX_CHANGE_TIME: u64 = 1 << 53;

/// Decodes every change of a push; a corrupt, compressed or oversized one,
/// or one stamped with a time out of range, refuses the document. Returns
/// the push and the operations it holds.
pub(super) fn decode_push(push: DocPush, limits: Limits) -> Result<(Incoming, u64), DocError> {
    let mut changes = Vec::with_capacity(push.changes.len());
    let mut ops: u64 = 0;
    for (i, bytes) in push.changes.into_iter().enumerate() {
        let count = chunk::inspect(&bytes, limits.change_ops).map_err(|refusal| match refusal {
            chunk::Refusal::Compressed => doc_error(
                &push.id,
                "compressed_change",
                format!(
                    "change {i} is a compressed Automerge chunk; send each change uncompressed"
                ),
            ),
            chunk::Refusal::TooManyOps => doc_error(
                &push.id,
                "change_too_large",
                format!(
                    "change {i} holds more than {} operations",
                    limits.change_ops
                ),
            ),
            chunk::Refusal::Corrupt(why) => doc_error(
                &push.id,
                "corrupt_change",
                format!("change {i} is not a valid Automerge change: {why}"),
            ),
        })?;
        ops = ops.saturating_add(count);
        let change = Change::from_bytes(bytes.into_vec()).map_err(|_| {
            doc_error(
                &push.id,
                "corrupt_change",
                format!("change {i} is not a valid Automerge change"),
            )
        })?;
        // The time is whatever the phone wrote, and Automerge keeps a
        // document's change times as deltas, which extreme values overflow
        // (a panic in a debug build, a wrapped time in a release one).
        if change.timestamp().unsigned_abs() > MAX_CHANGE_TIME {
            return Err(doc_error(
                &push.id,
                "invalid_change",
                format!(
                    "change {i} has a time out of range ({}); a change's time must lie within ±2^53",
                    change.timestamp()
                ),
            ));
        }
        changes.push(change);
    }
    Ok((
        Incoming {
            id: push.id,
            heads: push.heads.0,
            changes,
        },
        ops,
    ))
}

/// Loads a stored document, if there is one; a snapshot that does not load
/// is refused for this document only.
pub(super) async fn load(
    tx: &mut dyn DocTx,
    id: &RecordId,
) -> Result<Result<Option<Automerge>, DocError>, AppError> {
    let Some(row) = tx.load(&id.to_string()).await? else {
        return Ok(Ok(None));
    };
    match doc::load(&row.snapshot) {
        Ok(doc) => Ok(Ok(Some(doc))),
        Err(e) => {
            tracing::error!(doc = %id, error = %e, "stored snapshot does not load");
            Ok(Err(unreadable(id)))
        }
    }
}

/// The refusal for a document whose stored copy cannot be read.
pub(super) fn unreadable(id: &RecordId) -> DocError {
    doc_error(
        id,
        "unreadable_document",
        "the server's copy of this record cannot be read; an admin must repair it",
    )
}

/// What to do with one push, decided before anything is written.
enum Plan {
    /// Refused whole: nothing stored, nothing held.
    Refuse(DocError),
    /// Nothing new to store.
    Unchanged(Automerge),
    /// Every new change is accepted.
    Store(Automerge, AnyRecord),
    /// Some new changes are refused: `accepted` (if anything is left)
    /// is stored, `held` go to quarantine.
    Split {
        accepted: Option<(Automerge, AnyRecord)>,
        held: Vec<Change>,
        /// Every new change, in causal order.
        new: Vec<Change>,
        denial: Denial,
    },
}

/// Decides what becomes of `changes` sent for a document that is
/// `before` (`None`: the server has none). Pure: reads nothing, writes
/// nothing.
fn plan(
    writer: &Writer,
    id: &RecordId,
    before: Option<(&Automerge, &AnyRecord)>,
    changes: Vec<Change>,
) -> Plan {
    let kind = id.kind();
    let mut doc = before
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
    let base = doc.get_heads();
    if let Err(e) = doc.apply_changes(changes) {
        return Plan::Refuse(doc_error(
            id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        ));
    }
    if let Some(refusal) = missing_dependencies(id, &doc) {
        return Plan::Refuse(refusal);
    }
    let new = doc.get_changes(&base);
    if new.is_empty() && before.is_some() {
        // A retry, or a push of nothing: no policy to ask, nothing to write.
        return Plan::Unchanged(doc);
    }
    if let Some(change) = new
        .iter()
        .find(|c| !writer.actors.contains(&c.actor_id().to_hex_string()))
    {
        return Plan::Refuse(DocError {
            change: Some(serde_bytes::ByteBuf::from(change.hash().0.to_vec())),
            ..doc_error(
                id,
                "unregistered_actor",
                format!(
                    "change {} is by actor {}, which is not registered to this device",
                    change.hash(),
                    change.actor_id()
                ),
            )
        });
    }
    let after = match AnyRecord::read(kind, &doc) {
        Ok(record) => record,
        Err(e) => return Plan::Refuse(doc_error(id, "invalid_record", e.to_string())),
    };
    match policy::check_write(&writer.principal, before.map(|(_, r)| r), &after) {
        Ok(()) => Plan::Store(doc, after),
        Err(denial) => {
            let (accepted, held) = split(writer, kind, before.map(|(d, _)| d), &new);
            let accepted = accepted.and_then(|d| {
                let record = AnyRecord::read(kind, &d).ok()?;
                Some((d, record))
            });
            Plan::Split {
                accepted,
                held,
                new,
                denial,
            }
        }
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
    let before = match load(tx, &id).await? {
        Ok(before) => before,
        Err(refusal) => return Ok(Outcome::refused(refusal)),
    };
    let before_record = match &before {
        Some(stored) => match AnyRecord::read(kind, stored) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::error!(doc = %id, error = %e, "stored document is not a valid record");
                return Ok(Outcome::refused(unreadable(&id)));
            }
        },
        None => None,
    };
    if let (Some(_), Some(record)) = (&before, &before_record)
        && !writer.principal.can_read(kind, &record.meta())
    {
        let stored = before.as_ref().expect("matched above");
        // A device that builds on the stored history held the document
        // (it left the device's scope while it was edited offline): its
        // changes wait in quarantine. Anything else is answered as for a
        // document the server does not have.
        let knows_history = incoming.changes.iter().any(|c| {
            c.deps()
                .iter()
                .any(|d| stored.get_change_by_hash(d).is_some())
        });
        if knows_history {
            return left_scope(tx, writer, id, stored, incoming.changes).await;
        }
        return out_of_scope(tx, writer, id, incoming.changes).await;
    }
    let stored = before.as_ref().zip(before_record.as_ref());
    let device_heads = incoming.heads;
    let created = before.is_none();
    let mut plan = plan(writer, &id, stored, incoming.changes);
    // A visit must name a household the writer may see; otherwise every
    // new change is held.
    let to_store = match &plan {
        Plan::Store(doc, record) => Some((doc, record)),
        Plan::Split {
            accepted: Some((doc, record)),
            ..
        } => Some((doc, record)),
        _ => None,
    };
    if let Some((doc, record)) = to_store
        && let Some(denial) = visit_denial(tx, writer, before_record.as_ref(), record).await?
    {
        let new = match &plan {
            Plan::Split { new, .. } => new.clone(),
            _ => doc.get_changes(&stored.map(|(d, _)| d.get_heads()).unwrap_or_default()),
        };
        plan = Plan::Split {
            accepted: None,
            held: new.clone(),
            new,
            denial,
        };
    }
    let previous = Previous::of(before.as_ref(), before_record.as_ref());
    let base = before.as_ref().map(|d| d.get_heads()).unwrap_or_default();
    match plan {
        Plan::Refuse(error) => Ok(Outcome::refused(error)),
        Plan::Unchanged(doc) => Ok(Outcome {
            merged: Some((
                id,
                Merged {
                    doc,
                    device_heads,
                    created,
                },
            )),
            ..Outcome::default()
        }),
        Plan::Store(doc, record) => {
            store(tx, writer, &id, &doc, &base, &record, previous).await?;
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
        Plan::Split {
            accepted,
            held,
            denial,
            ..
        } => {
            let error = hold_back(tx, writer, &id, &held, &denial).await?;
            let accepted =
                accepted.filter(|(_, record)| writer.principal.can_read(kind, &record.meta()));
            match accepted {
                Some((accepted, record)) => {
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
                None => Ok(Outcome {
                    error: Some(error),
                    drop: Some(id),
                    ..Outcome::default()
                }),
            }
        }
    }
}

/// A push building on a stored document the writer may no longer see:
/// the device's own new changes are held for review, and the document is
/// dropped from the device.
async fn left_scope(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: RecordId,
    stored: &Automerge,
    changes: Vec<Change>,
) -> Result<Outcome, AppError> {
    let denial = Denial {
        rule: "out_of_scope",
        message: format!("this {} is outside your area", id.kind()),
    };
    let mut doc = stored.clone();
    let base = doc.get_heads();
    let mut held = Vec::new();
    if doc.apply_changes(changes).is_ok() && doc.get_missing_deps(&[]).is_empty() {
        let new = doc.get_changes(&base);
        // Only the device's own changes are kept for review.
        if new
            .iter()
            .all(|c| writer.actors.contains(&c.actor_id().to_hex_string()))
        {
            held = new;
        }
    }
    let error = hold_back(tx, writer, &id, &held, &denial).await?;
    Ok(Outcome {
        error: Some(error),
        drop: Some(id),
        ..Outcome::default()
    })
}

/// A push to a stored document the writer may not see: answered as a
/// push to a document the server does not have would be, so that the
/// answer does not tell whether the id exists. What would be stored there
/// is held for review instead.
async fn out_of_scope(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: RecordId,
    changes: Vec<Change>,
) -> Result<Outcome, AppError> {
    let denial = Denial {
        rule: "out_of_scope",
        message: format!("this {} is outside your area", id.kind()),
    };
    let held = match plan(writer, &id, None, changes) {
        Plan::Refuse(error) => return Ok(Outcome::refused(error)),
        Plan::Unchanged(_) => Vec::new(),
        Plan::Store(doc, _) => doc.get_changes(&[]),
        Plan::Split { new, .. } => new,
    };
    let error = hold_back(tx, writer, &id, &held, &denial).await?;
    Ok(Outcome {
        error: Some(error),
        drop: Some(id),
        ..Outcome::default()
    })
}

/// For a visit whose household is new or changed: refuses one naming a
/// household the writer may not see (or one that does not exist: the
/// same answer, so that it tells nothing).
async fn visit_denial(
    tx: &mut dyn DocTx,
    writer: &Writer,
    before: Option<&AnyRecord>,
    after: &AnyRecord,
) -> Result<Option<Denial>, AppError> {
    let AnyRecord::Visit(visit) = after else {
        return Ok(None);
    };
    if let Some(AnyRecord::Visit(old)) = before
        && old.household == visit.household
    {
        return Ok(None);
    }
    let denial = || Denial {
        rule: sync_core::replica::VISIT_HOUSEHOLD_RULE,
        message: format!(
            "household {} is not one you may see; a visit names a household of your area",
            visit.household
        ),
    };
    let Ok(household) = visit.household.parse::<RecordId>() else {
        return Ok(Some(denial()));
    };
    let Some(row) = tx.load(&household.to_string()).await? else {
        return Ok(Some(denial()));
    };
    let readable = doc::load(&row.snapshot)
        .ok()
        .and_then(|d| doc::meta(RecordKind::Household, &d).ok())
        .is_some_and(|meta| writer.principal.can_read(RecordKind::Household, &meta));
    Ok((!readable).then(denial))
}

fn readable(writer: &Writer, kind: RecordKind, doc: &Automerge) -> bool {
    doc::meta(kind, doc).is_ok_and(|meta| writer.principal.can_read(kind, &meta))
}

/// Splits refused changes: applies them one at a time in causal order onto
/// `before`, keeping each the policy allows and holding back each it
/// refuses together with everything depending on one held back. Returns the
/// accepted document (`None` if nothing is left of a new document) and the
/// held-back changes.
///
/// Each step passing does not make the whole pass (a reporter may hand
/// their own case on, but a case may not be reported in someone else's
/// name), so the accepted part is checked whole, from `before`, as the
/// whole push was: when that is refused, every change is held.
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
    let whole_allowed = match &accepted {
        Some(doc) if held.len() < new.len() => {
            policy::check_write_docs(&writer.principal, kind, before, doc).is_ok()
        }
        _ => true,
    };
    if !whole_allowed {
        return (before.cloned(), new.to_vec());
    }
    (accepted, held)
}

/// Most refused changes of one document held in quarantine per round.
pub(super) const MAX_HELD_PER_DOCUMENT: usize = 16;
/// Most refused changes held in quarantine per round, all documents
/// together.
pub(super) const MAX_HELD_PER_ROUND: usize = 64;

/// Puts refused changes in quarantine (the first of them, up to the
/// limits per document and per round; the device keeps every one), audits
/// it, and returns the document's answer.
async fn hold_back(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: &RecordId,
    refused: &[Change],
    denial: &Denial,
) -> Result<DocError, AppError> {
    let room =
        MAX_HELD_PER_ROUND.saturating_sub(writer.held.load(std::sync::atomic::Ordering::Relaxed));
    let keep = refused.len().min(MAX_HELD_PER_DOCUMENT).min(room);
    writer
        .held
        .fetch_add(keep, std::sync::atomic::Ordering::Relaxed);
    let now = now_ms();
    let rows: Vec<QuarantineRow> = refused[..keep]
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
    if !rows.is_empty() {
        tx.quarantine(&rows).await?;
    }
    if !refused.is_empty() {
        tx.audit(&AuditRow {
            at: now,
            user_id: writer.auth.user_id.clone(),
            device_id: Some(writer.auth.device_id.clone()),
            action: "quarantine".into(),
            target: id.to_string(),
            detail: format!(
                "{} change(s) refused, {} held: {}",
                refused.len(),
                rows.len(),
                denial
            ),
        })
        .await?;
        tracing::warn!(doc = %id, changes = refused.len(), held = rows.len(), rule = denial.rule, "changes quarantined");
        crate::metrics::quarantined(rows.len());
    }
    let not_kept = refused.len() - keep;
    let mut message = format!(
        "{}; {} change(s) held for review (rule {})",
        denial.message, keep, denial.rule
    );
    if not_kept > 0 {
        message.push_str(&format!(
            "; {not_kept} more refused and not kept on the server"
        ));
    }
    Ok(DocError {
        change: refused
            .first()
            .map(|c| serde_bytes::ByteBuf::from(c.hash().0.to_vec())),
        ..doc_error(id, "forbidden", message)
    })
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

/// Decodes one Automerge sync message, checking the change chunks it
/// carries as [`decode_push`] checks a push's. Returns the message and the
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

/// One stateless step of Automerge's own sync protocol for one document:
/// the fallback for devices that cannot state their heads. The same checks
/// apply as for a push, but refused changes are not split: the step is
/// refused whole.
pub(super) async fn am_sync_round(
    tx: &mut dyn DocTx,
    writer: &Writer,
    id: RecordId,
    message: AmMessage,
) -> Result<Result<AmSync, DocError>, AppError> {
    let kind = id.kind();
    let before = match load(tx, &id).await? {
        Ok(before) => before,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // A document the writer may not see is answered as one the server
    // does not have, and nothing sent for it is stored.
    let hidden = before.as_ref().is_some_and(|d| !readable(writer, kind, d));
    let before = if hidden { None } else { before };
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
        if hidden {
            return Ok(Err(doc_error(
                &id,
                "forbidden",
                format!("this {kind} is outside your area (rule out_of_scope)"),
            )));
        }
        if let Err(denial) =
            policy::check_write_docs(&writer.principal, kind, before.as_ref(), &doc)
        {
            return Ok(Err(doc_error(&id, "forbidden", denial.to_string())));
        }
        let before_record = before.as_ref().and_then(|d| AnyRecord::read(kind, d).ok());
        if let Some(denial) = visit_denial(tx, writer, before_record.as_ref(), &record).await? {
            return Ok(Err(doc_error(&id, "forbidden", denial.to_string())));
        }
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
