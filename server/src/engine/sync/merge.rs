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
//!
//! A push is merged in two steps. [`prepare`] does all the Automerge work
//! against the stored copy read before: apply, read the record, the
//! policy, the projection rows, the snapshot, the answer's changes. It
//! reads and writes nothing, so a round runs it off the async workers and
//! outside the write transaction, its documents in parallel.
//! [`Prepared::write`] then writes what was decided, in the write
//! transaction, provided the document's heads are still those it was
//! merged against; when another round wrote the document in between, the
//! push is prepared again there, against what that round stored ([`push`]).
//! Either way each change is stored once, as the bytes it arrived as.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

use sync_core::automerge::{Automerge, Change, ChangeHash, ReadDoc};
use sync_core::doc::{self, AnyRecord, DocMeta};
use sync_core::policy::{self, Denial};
use sync_core::protocol::{DocError, DocPull, DocPush, Heads};
use sync_core::view::View;
use sync_core::workflow::Deadlines;
use sync_core::{RecordId, RecordKind};

use super::{Writer, chunk, doc_error};
use crate::domain::{now_ms, random_hex};
use crate::engine::EngineError;
use crate::projection::{self, Projection, Read, conflicts_in};
use crate::storage::{AuditRow, DocRow, DocTx, DocWrite, NewChange, QuarantineRow};

/// A document merged in this round: what the device is sent of it.
#[derive(Clone)]
pub(super) struct Merged {
    /// The server's heads and the changes the device lacks.
    pub(super) pull: DocPull,
    /// The server did not have the document before this round.
    pub(super) created: bool,
}

impl Merged {
    fn of(id: &RecordId, doc: &Automerge, device_heads: &[ChangeHash], created: bool) -> Self {
        let heads = doc.get_heads();
        let mut theirs = device_heads.to_vec();
        theirs.sort();
        // Usually the device holds everything: it just sent what it lacked.
        let chunks = if heads == theirs {
            Vec::new()
        } else {
            doc.get_changes(device_heads)
                .iter()
                .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
                .collect()
        };
        Self {
            pull: DocPull {
                id: id.clone(),
                heads: Heads(heads),
                chunks,
            },
            created,
        }
    }
}

/// An incoming document, decoded.
#[derive(Clone)]
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
#[derive(Default, Clone)]
pub(crate) struct Outcome {
    /// The merged document, when the device may see it.
    pub(super) merged: Option<(RecordId, Merged)>,
    /// Why (some of) its changes were refused.
    pub(crate) error: Option<DocError>,
    /// The document, when the device must not hold it.
    pub(super) drop: Option<RecordId>,
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
    /// Every new change is accepted: the merged document, its record and
    /// the changes new to the server, in causal order.
    Store(Automerge, Read, Vec<Change>),
    /// Some new changes are refused: `accepted` (if anything is left, with
    /// the changes of it new to the server) is stored, `held` go to
    /// quarantine.
    Split {
        accepted: Option<(Automerge, Read, Vec<Change>)>,
        held: Vec<Change>,
        /// Every new change, in causal order.
        new: Vec<Change>,
        denial: Denial,
    },
}

/// The changes of `sent` that `doc` lacks, once each, as the bytes they
/// arrived as, in the order sent.
fn fresh_changes(doc: &Automerge, sent: &[Change]) -> Vec<Change> {
    let mut seen = HashSet::new();
    sent.iter()
        .filter(|c| doc.get_change_by_hash(&c.hash()).is_none() && seen.insert(c.hash()))
        .cloned()
        .collect()
}

/// `fresh` in causal order. Phones send changes in causal order; changes
/// sent in another order are taken from the merged document instead.
fn causal_order(fresh: Vec<Change>, merged: &Automerge, base: &[ChangeHash]) -> Vec<Change> {
    let all: HashSet<ChangeHash> = fresh.iter().map(Change::hash).collect();
    let mut placed = HashSet::with_capacity(fresh.len());
    let causal = fresh.iter().all(|c| {
        let ready = c
            .deps()
            .iter()
            .all(|d| !all.contains(d) || placed.contains(d));
        placed.insert(c.hash());
        ready
    });
    match causal {
        true => fresh,
        false => merged.get_changes(base),
    }
}

/// Decides what becomes of `changes` sent for a document that is
/// `before` (`None`: the server has none), saved as `snapshot`. The
/// changes are applied onto `before` itself; the rare push the policy
/// refuses in part loads `snapshot` again to split it. Pure: reads nothing,
/// writes nothing.
fn plan(
    writer: &Writer,
    id: &RecordId,
    before: Option<(Automerge, &AnyRecord)>,
    snapshot: Option<&[u8]>,
    changes: &[Change],
) -> Plan {
    let kind = id.kind();
    let before_record = before.as_ref().map(|(_, r)| *r);
    let mut doc = before
        .map(|(d, _)| d)
        .unwrap_or_else(|| doc::empty(sync_core::automerge::ActorId::random()));
    let base = doc.get_heads();
    let fresh = fresh_changes(&doc, changes);
    if let Err(e) = doc.apply_changes(changes.iter().cloned()) {
        return Plan::Refuse(doc_error(
            id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        ));
    }
    if let Some(refusal) = missing_dependencies(id, &doc) {
        return Plan::Refuse(refusal);
    }
    let new = causal_order(fresh, &doc, &base);
    if new.is_empty() && before_record.is_some() {
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
    let view = View::new(&doc);
    let after = match AnyRecord::read_in(kind, &view) {
        Ok(record) => record,
        Err(e) => return Plan::Refuse(doc_error(id, "invalid_record", e.to_string())),
    };
    match policy::check_write(&writer.principal, before_record, &after) {
        Ok(()) => {
            let after = Read::of(after, &view);
            Plan::Store(doc, after, new)
        }
        Err(denial) => {
            let before = snapshot.and_then(|s| doc::load(s).ok());
            let (accepted, held) = split(writer, kind, before.as_ref(), &new);
            let held_hashes: HashSet<ChangeHash> = held.iter().map(Change::hash).collect();
            let accepted = accepted.and_then(|d| {
                let read = Read::new(kind, &d).ok()?;
                let stored: Vec<Change> = new
                    .iter()
                    .filter(|c| !held_hashes.contains(&c.hash()))
                    .cloned()
                    .collect();
                Some((d, read, stored))
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

/// What a push will write, decided before the write transaction
/// ([`prepare`]).
pub(crate) struct Prepared {
    id: RecordId,
    /// The heads of the stored copy it was merged against, as stored
    /// (`None`: the server had none).
    base: Option<Vec<u8>>,
    /// The merged document to store.
    write: Option<Write>,
    /// Refused changes to hold back.
    held: Option<Held>,
    /// The household a visit to store names, when it is new or another
    /// than before: stored only if the writer may see that household
    /// ([`Prepared::check_visit`]).
    household: Option<String>,
    /// Every change new to the server, in causal order.
    new: Vec<Change>,
    outcome: Outcome,
}

impl Prepared {
    fn new(id: RecordId, base: Option<Vec<u8>>) -> Self {
        Self {
            id,
            base,
            write: None,
            held: None,
            household: None,
            new: Vec::new(),
            outcome: Outcome::default(),
        }
    }

    fn refused(mut self, error: DocError) -> Self {
        self.outcome.error = Some(error);
        self
    }

    /// Whether the document is stored with the heads it was merged
    /// against: `current` as the write transaction reads them.
    pub(super) fn is_current(&self, current: Option<&Vec<u8>>) -> bool {
        self.base.as_ref() == current
    }

    /// The household to look up for [`Prepared::check_visit`], if any.
    pub(super) fn household(&self) -> Option<&str> {
        self.household.as_deref()
    }

    /// What this push stores, if anything: the record's org unit and
    /// people, for a visit of the same round naming it.
    pub(super) fn stored_meta(&self) -> Option<&DocMeta> {
        self.write.as_ref().map(|w| &w.meta)
    }

    /// Keeps the visit only if the writer may see the household it names,
    /// described by `household` (`None`: there is no such household, which
    /// is answered the same, so that the answer tells nothing). A refused
    /// visit's new changes are all held back.
    pub(super) fn check_visit(&mut self, writer: &Writer, household: Option<&DocMeta>) {
        let Some(id) = self.household.take() else {
            return;
        };
        let Some(denial) = visit_denial(writer, &id, household) else {
            return;
        };
        if let Some(earlier) = self.held.take() {
            writer.held.fetch_sub(earlier.rows.len(), Ordering::Relaxed);
        }
        let (held, error) = hold(writer, &self.id, &self.new, &denial);
        self.write = None;
        self.held = Some(held);
        self.outcome = Outcome {
            merged: None,
            error: Some(error),
            drop: Some(self.id.clone()),
        };
    }

    /// Writes what was decided: the held-back changes, then the merged
    /// document. Returns what became of the push. Writing leaves it as it
    /// was: a transaction that fails writes it again in the next.
    pub(super) async fn write(
        &self,
        tx: &mut dyn DocTx,
        writer: &Writer,
    ) -> Result<Outcome, EngineError> {
        if let Some(held) = &self.held {
            held.write(tx).await?;
        }
        if let Some(write) = &self.write {
            write.apply(tx, writer.author(), &self.id).await?;
        }
        Ok(self.outcome.clone())
    }
}

/// What becomes of a document whose changes made Automerge panic: refused,
/// as changes that do not apply.
pub(crate) fn unappliable(incoming: &Incoming, stored: Option<&DocRow>) -> Prepared {
    let id = &incoming.id;
    tracing::warn!(doc = %id, "Automerge panicked on the changes pushed for a document");
    Prepared::new(id.clone(), stored.map(|row| row.heads.clone())).refused(doc_error(
        id,
        "invalid_change",
        "these changes cannot be applied".to_owned(),
    ))
}

/// Merges one push against the stored copy `stored` (`None`: the server
/// has none) and decides what to write. Pure, and the costly part of a
/// round: run it off the async workers.
pub(crate) fn prepare(writer: &Writer, incoming: &Incoming, stored: Option<&DocRow>) -> Prepared {
    let id = &incoming.id;
    let kind = id.kind();
    let prepared = Prepared::new(id.clone(), stored.map(|row| row.heads.clone()));
    let before = match stored.map(|row| doc::load(&row.snapshot)).transpose() {
        Ok(before) => before,
        Err(e) => {
            tracing::error!(doc = %id, error = %e, "stored snapshot does not load");
            return prepared.refused(unreadable(id));
        }
    };
    // The stored copy is read once: its record, and (when it is merged
    // into) the fields written concurrently, for the rows it projects to.
    let (before_record, before_conflicts) = match &before {
        Some(stored) => {
            let view = View::new(stored);
            match AnyRecord::read_stored_in(kind, &view) {
                Ok(record) => (
                    Some(record),
                    incoming.has_changes().then(|| conflicts_in(&view)),
                ),
                Err(e) => {
                    tracing::error!(doc = %id, error = %e, "stored document is not a valid record");
                    return prepared.refused(unreadable(id));
                }
            }
        }
        None => (None, None),
    };
    if let (Some(stored), Some(record)) = (&before, &before_record)
        && !writer.can_read(kind, &record.meta())
    {
        // A device that builds on the stored history held the document
        // (it left the device's scope while it was edited offline): its
        // changes wait in quarantine. Anything else is answered as for a
        // document the server does not have.
        let knows_history = incoming.changes.iter().any(|c| {
            c.deps()
                .iter()
                .any(|d| stored.get_change_by_hash(d).is_some())
        });
        return if knows_history {
            left_scope(writer, prepared, stored, &incoming.changes)
        } else {
            out_of_scope(writer, prepared, &incoming.changes)
        };
    }
    // The rows the stored copy projects to, before it is merged into.
    let rows_before = match (&before_record, before_conflicts) {
        (Some(record), Some(conflicts)) => Some(projection::project(
            &id.to_string(),
            record,
            conflicts,
            &writer.deadlines,
        )),
        _ if before.is_none() => Some(Projection::default()),
        _ => None,
    };
    let created = before.is_none();
    let snapshot = stored.map(|row| &row.snapshot[..]);
    let mut prepared = prepared;
    let before = before.zip(before_record.as_ref());
    match plan(writer, id, before, snapshot, &incoming.changes) {
        Plan::Refuse(error) => return prepared.refused(error),
        Plan::Unchanged(doc) => {
            prepared.outcome.merged =
                Some((id.clone(), Merged::of(id, &doc, &incoming.heads, created)));
        }
        Plan::Store(doc, read, new) => {
            prepared.household = visit_household(before_record.as_ref(), &read.record);
            prepared.write = Some(Write::new(
                id,
                &doc,
                &new,
                read,
                rows_before,
                &writer.deadlines,
            ));
            prepared.outcome.merged =
                Some((id.clone(), Merged::of(id, &doc, &incoming.heads, created)));
            prepared.new = new;
        }
        Plan::Split {
            accepted,
            held,
            new,
            denial,
        } => {
            let (held, error) = hold(writer, id, &held, &denial);
            prepared.held = Some(held);
            prepared.outcome.error = Some(error);
            match accepted.filter(|(_, read, _)| writer.can_read(kind, &read.record.meta())) {
                Some((doc, read, stored_new)) => {
                    prepared.household = visit_household(before_record.as_ref(), &read.record);
                    prepared.write = Some(Write::new(
                        id,
                        &doc,
                        &stored_new,
                        read,
                        rows_before,
                        &writer.deadlines,
                    ));
                    prepared.outcome.merged =
                        Some((id.clone(), Merged::of(id, &doc, &incoming.heads, created)));
                }
                None => prepared.outcome.drop = Some(id.clone()),
            }
            prepared.new = new;
        }
    }
    prepared
}

/// Merges one pushed document inside the write transaction `tx`: read,
/// [`prepare`], check a visit's household, write. The outer error is the
/// server's fault.
pub(crate) async fn push(
    tx: &mut dyn DocTx,
    writer: &Writer,
    incoming: &Incoming,
) -> Result<Outcome, EngineError> {
    let stored = tx.load(&incoming.id.to_string()).await?;
    let mut prepared = prepare(writer, incoming, stored.as_ref());
    if let Some(household) = prepared.household() {
        let meta = household_meta(tx, household).await?;
        prepared.check_visit(writer, meta.as_ref());
    }
    prepared.write(tx, writer).await
}

/// A push building on a stored document the writer may no longer see:
/// the device's own new changes are held for review, and the document is
/// dropped from the device.
fn left_scope(
    writer: &Writer,
    mut prepared: Prepared,
    stored: &Automerge,
    changes: &[Change],
) -> Prepared {
    let id = prepared.id.clone();
    let denial = Denial {
        rule: "out_of_scope",
        message: format!("this {} is outside your area", id.kind()),
    };
    let mut doc = stored.clone();
    let base = doc.get_heads();
    let fresh = fresh_changes(&doc, changes);
    let mut held = Vec::new();
    if doc.apply_changes(changes.iter().cloned()).is_ok() && doc.get_missing_deps(&[]).is_empty() {
        let new = causal_order(fresh, &doc, &base);
        // Only the device's own changes are kept for review.
        if new
            .iter()
            .all(|c| writer.actors.contains(&c.actor_id().to_hex_string()))
        {
            held = new;
        }
    }
    let (held, error) = hold(writer, &id, &held, &denial);
    prepared.held = Some(held);
    prepared.outcome.error = Some(error);
    prepared.outcome.drop = Some(id);
    prepared
}

/// A push to a stored document the writer may not see: answered as a
/// push to a document the server does not have would be, so that the
/// answer does not tell whether the id exists. What would be stored there
/// is held for review instead.
fn out_of_scope(writer: &Writer, mut prepared: Prepared, changes: &[Change]) -> Prepared {
    let id = prepared.id.clone();
    let denial = Denial {
        rule: "out_of_scope",
        message: format!("this {} is outside your area", id.kind()),
    };
    let held = match plan(writer, &id, None, None, changes) {
        Plan::Refuse(error) => return prepared.refused(error),
        Plan::Unchanged(_) => Vec::new(),
        Plan::Store(_, _, new) | Plan::Split { new, .. } => new,
    };
    let (held, error) = hold(writer, &id, &held, &denial);
    prepared.held = Some(held);
    prepared.outcome.error = Some(error);
    prepared.outcome.drop = Some(id);
    prepared
}

/// The household a visit names, when the visit is new or names another
/// household than before: the writer must be able to see it.
pub(super) fn visit_household(before: Option<&AnyRecord>, after: &AnyRecord) -> Option<String> {
    let AnyRecord::Visit(visit) = after else {
        return None;
    };
    match before {
        Some(AnyRecord::Visit(old)) if old.household == visit.household => None,
        _ => Some(visit.household.clone()),
    }
}

/// Where each of these stored households belongs, as `tx` has them (an id
/// that names no household is absent).
pub(super) async fn households(
    tx: &mut dyn DocTx,
    ids: &[String],
) -> Result<HashMap<String, DocMeta>, EngineError> {
    Ok(tx
        .metas(ids)
        .await?
        .into_iter()
        .filter(|(_, (kind, _))| kind == RecordKind::Household.as_str())
        .map(|(id, (_, meta))| (id, meta))
        .collect())
}

/// Where the stored household `id` belongs; `None` when there is none.
pub(super) async fn household_meta(
    tx: &mut dyn DocTx,
    id: &str,
) -> Result<Option<DocMeta>, EngineError> {
    Ok(households(tx, &[id.to_owned()]).await?.remove(id))
}

/// Refuses a visit naming `household`, described by `meta`, unless the
/// writer may see it. A household that does not exist is refused the same,
/// so that the answer tells nothing.
pub(super) fn visit_denial(
    writer: &Writer,
    household: &str,
    meta: Option<&DocMeta>,
) -> Option<Denial> {
    let is_household = household
        .parse::<RecordId>()
        .is_ok_and(|id| id.kind() == RecordKind::Household);
    let readable =
        is_household && meta.is_some_and(|meta| writer.can_read(RecordKind::Household, meta));
    (!readable).then(|| Denial {
        rule: sync_core::replica::VISIT_HOUSEHOLD_RULE,
        message: format!(
            "household {household} is not one you may see; a visit names a household of your area"
        ),
    })
}

pub(super) fn readable(writer: &Writer, kind: RecordKind, doc: &Automerge) -> bool {
    doc::meta(kind, doc).is_ok_and(|meta| writer.can_read(kind, &meta))
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

/// Refused changes to put in quarantine, with their audit entry.
pub(super) struct Held {
    rows: Vec<QuarantineRow>,
    /// `None` when nothing was refused.
    audit: Option<AuditRow>,
}

impl Held {
    async fn write(&self, tx: &mut dyn DocTx) -> Result<(), EngineError> {
        if !self.rows.is_empty() {
            tx.quarantine(&self.rows).await?;
        }
        if let Some(audit) = &self.audit {
            tx.audit(audit).await?;
            crate::metrics::quarantined(self.rows.len());
        }
        Ok(())
    }
}

/// Decides how refused changes are held: the first of them, up to the
/// limits per document and per round (the device keeps every one), with
/// an audit entry; returns them and the document's answer.
fn hold(writer: &Writer, id: &RecordId, refused: &[Change], denial: &Denial) -> (Held, DocError) {
    let room = MAX_HELD_PER_ROUND.saturating_sub(writer.held.load(Ordering::Relaxed));
    let keep = refused.len().min(MAX_HELD_PER_DOCUMENT).min(room);
    writer.held.fetch_add(keep, Ordering::Relaxed);
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
            status: crate::domain::QuarantineStatus::Pending,
            decided_by: None,
            decided_at: None,
        })
        .collect();
    let audit = (!refused.is_empty()).then(|| {
        tracing::warn!(doc = %id, changes = refused.len(), held = keep, rule = denial.rule, "changes quarantined");
        AuditRow {
            at: now,
            user_id: writer.auth.user_id.clone(),
            device_id: Some(writer.auth.device_id.clone()),
            action: "quarantine".into(),
            target: id.to_string(),
            detail: format!(
                "{} change(s) refused, {} held: {}",
                refused.len(),
                keep,
                denial
            ),
        }
    });
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
    let error = DocError {
        change: refused
            .first()
            .map(|c| serde_bytes::ByteBuf::from(c.hash().0.to_vec())),
        ..doc_error(id, "forbidden", message)
    };
    (Held { rows, audit }, error)
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
    /// The rows it projects to (`None`: not known).
    pub(super) fn rows(self, id: &RecordId, deadlines: &Deadlines) -> Option<Projection> {
        match self {
            Previous::New => Some(Projection::default()),
            Previous::Stored(doc, record) => Some(projection::project(
                &id.to_string(),
                record,
                projection::conflicts(doc),
                deadlines,
            )),
            Previous::Unknown => None,
        }
    }

    /// From a stored document, if any.
    pub(crate) fn of(stored: Option<&'a Automerge>, record: Option<&'a AnyRecord>) -> Self {
        match (stored, record) {
            (None, _) => Previous::New,
            (Some(doc), Some(record)) => Previous::Stored(doc, record),
            (Some(_), None) => Previous::Unknown,
        }
    }
}

/// A merged document ready to store: its new changes, snapshot and heads,
/// and the rows it projects to. Built without the database; written by
/// [`Write::apply`].
pub(crate) struct Write {
    changes: Vec<NewChange>,
    snapshot: Vec<u8>,
    heads: Vec<u8>,
    meta: DocMeta,
    projection: Projection,
    /// The rows before (`None`: not known, every row is rewritten).
    before: Option<Projection>,
}

impl Write {
    /// `doc`, merged from `new` (the changes the server lacks, in causal
    /// order), holding what `read` read of it (a case's due time from
    /// `deadlines`).
    pub(crate) fn new(
        id: &RecordId,
        doc: &Automerge,
        new: &[Change],
        read: Read,
        before: Option<Projection>,
        deadlines: &Deadlines,
    ) -> Self {
        let doc_id = id.to_string();
        Self {
            changes: new
                .iter()
                .map(|c| NewChange {
                    hash: c.hash().0,
                    bytes: c.raw_bytes().to_vec(),
                    actor: c.actor_id().to_hex_string(),
                })
                .collect(),
            snapshot: doc.save(),
            heads: doc.get_heads().iter().flat_map(|h| h.0).collect(),
            meta: read.record.meta(),
            projection: projection::project(&doc_id, &read.record, read.conflicts, deadlines),
            before,
        }
    }

    /// Stores it, the changes attributed to a user and device.
    pub(crate) async fn apply(
        &self,
        tx: &mut dyn DocTx,
        (user_id, device_id): (&str, &str),
        id: &RecordId,
    ) -> Result<(), EngineError> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let doc_id = id.to_string();
        let kind = id.kind().as_str();
        tx.save(DocWrite {
            id: &doc_id,
            kind,
            org_unit: &self.meta.org_unit,
            reporter: self.meta.reporter.as_deref(),
            assignee: self.meta.assignee.as_deref(),
            snapshot: &self.snapshot,
            heads: &self.heads,
            changes: &self.changes,
            user_id,
            device_id,
            now: now_ms(),
        })
        .await?;
        tx.project(&doc_id, kind, self.before.as_ref(), &self.projection)
            .await?;
        crate::metrics::merged(self.changes.len());
        Ok(())
    }
}

/// Writes the changes `doc` gained since `base`, attributed to a user and
/// device, and the rows the merged `record` projects to (a case's due time
/// from `deadlines`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_as(
    tx: &mut dyn DocTx,
    author: (&str, &str),
    id: &RecordId,
    doc: &Automerge,
    base: &[ChangeHash],
    record: &AnyRecord,
    previous: Previous<'_>,
    deadlines: &Deadlines,
) -> Result<(), EngineError> {
    if doc.get_heads() == base {
        return Ok(());
    }
    let new = doc.get_changes(base);
    let before = previous.rows(id, deadlines);
    let read = Read {
        record: record.clone(),
        conflicts: projection::conflicts(doc),
    };
    Write::new(id, doc, &new, read, before, deadlines)
        .apply(tx, author, id)
        .await
}

/// Documents merged this round, by id.
pub(super) type MergedDocs = BTreeMap<RecordId, Merged>;
