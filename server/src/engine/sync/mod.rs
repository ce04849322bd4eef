//! One round of the batched sync protocol (`api-spec/sync-protocol.md`),
//! asked for by `POST /v1/sync` ([`crate::http::sync`]).
//!
//! A round merges what the device sent ([`merge`]), commits, and only then
//! answers with what the device lacks ([`feed`]): for documents it sent,
//! exactly the changes missing from its heads; for the rest of its scope,
//! whatever the feed holds past its cursor (whole snapshots for documents it
//! does not hold), and the ids of documents that left its scope. A document
//! that fails to decode, apply, validate or pass the policy is answered with
//! an error; the rest of the batch still merges.

mod am;
mod chunk;
mod claims;
mod desk;
mod feed;
mod group;
mod merge;

pub use desk::desk_change;
pub(crate) use merge::{Incoming, Previous, push, store_as};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use sync_core::RecordId;
use sync_core::policy::Principal;
use sync_core::protocol::{DocError, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use tokio::sync::Semaphore;

use crate::domain::{AuthDevice, now_ms};
use crate::engine::{Engine, EngineError};
use crate::storage::{DocRow, DocTx, Scope};
use am::AmPrepared;
use group::{GroupCommit, Waiting};
use merge::{MergedDocs, Prepared};

/// Where a device stands in the feed. Encoded as 40 bytes: the database's
/// instance id (8, so a cursor from another database is recognised), then
/// `base`, `after`, `round` and `scope` (8 each, big-endian).
///
/// In steady state `base == after`: the device holds every change up to
/// that seq. While a large answer is paged, `base` stays where the device
/// started and `after` advances over the documents already sent.
///
/// `round` counts the responses the device has applied: presenting a cursor
/// confirms the response that carried it, and with it the documents that
/// response sent or told the device to drop. `scope` is the user's scope
/// version the device has scanned; a different one starts a rescan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    base: i64,
    after: i64,
    round: i64,
    scope: i64,
}

impl Cursor {
    const START: Cursor = Cursor {
        base: 0,
        after: 0,
        round: 0,
        scope: -1,
    };

    /// Reads a device's cursor; `None` for one from another database, which
    /// the device must be told of.
    fn decode(bytes: Option<&[u8]>, instance: [u8; 8]) -> Result<Option<Self>, EngineError> {
        let Some(bytes) = bytes else {
            return Ok(Some(Self::START));
        };
        let bad = || EngineError::BadSyncMessage("cursor is not one this server issued".into());
        if bytes.len() != 40 {
            return Err(bad());
        }
        if bytes[..8] != instance {
            return Ok(None);
        }
        let base = i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let after = i64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let round = i64::from_be_bytes(bytes[24..32].try_into().expect("8 bytes"));
        let scope = i64::from_be_bytes(bytes[32..40].try_into().expect("8 bytes"));
        // `after` may trail `base` while a device rescans a changed scope.
        if base < 0 || after < 0 || round < 0 {
            return Err(bad());
        }
        Ok(Some(Self {
            base,
            after,
            round,
            scope,
        }))
    }

    fn encode(self, instance: [u8; 8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&instance);
        for n in [self.base, self.after, self.round, self.scope] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }
}

/// The user and device behind a round, with what the policy needs.
pub(crate) struct Writer {
    auth: AuthDevice,
    principal: Principal,
    scope: Scope,
    actors: HashSet<String>,
    deadlines: sync_core::workflow::Deadlines,
    /// Changes put in quarantine so far this round.
    held: std::sync::atomic::AtomicUsize,
}

/// Most actor ids a request may announce.
const MAX_ACTORS: usize = 8;

impl Writer {
    /// Whether the user may see a document of `kind` described by `meta`.
    pub(crate) fn can_read(
        &self,
        kind: sync_core::RecordKind,
        meta: &sync_core::doc::DocMeta,
    ) -> bool {
        self.principal.can_read(kind, meta)
    }

    /// Whom the changes this round stores are attributed to: the user and
    /// device.
    pub(crate) fn author(&self) -> (&str, &str) {
        (&self.auth.user_id, &self.auth.device_id)
    }

    /// Whether the policy lets the user turn `before` into `after`.
    pub(crate) fn check_write(
        &self,
        before: Option<&sync_core::doc::AnyRecord>,
        after: &sync_core::doc::AnyRecord,
    ) -> Result<(), sync_core::policy::Denial> {
        sync_core::policy::check_write(&self.principal, before, after)
    }

    /// Loads the user's area and registers the actors the device announces
    /// (an actor registered to another device stays theirs).
    pub(crate) async fn load(
        engine: &Engine,
        auth: &AuthDevice,
        announced: &[serde_bytes::ByteBuf],
    ) -> Result<Self, EngineError> {
        if announced.len() > MAX_ACTORS || announced.iter().any(|a| a.is_empty() || a.len() > 32) {
            return Err(EngineError::BadSyncMessage(format!(
                "announce at most {MAX_ACTORS} actor ids of 1 to 32 bytes"
            )));
        }
        let mut actors: HashSet<String> = engine
            .storage
            .device_actors(&auth.device_id)
            .await?
            .into_iter()
            .collect();
        // Only actors not registered to this device yet cost a write.
        for actor in announced.iter().map(hex::encode) {
            if actors.contains(&actor) {
                continue;
            }
            let owner = engine
                .storage
                .register_actor(&actor, &auth.device_id, &auth.user_id, now_ms())
                .await?;
            if owner == auth.device_id {
                actors.insert(actor);
            } else {
                tracing::warn!(%actor, "actor announced by a device it is not registered to");
            }
        }
        let principal = principal(engine, auth).await?;
        Ok(Self {
            scope: Scope::of(&auth.user_id, auth.role).narrowed(principal.area.len()),
            principal,
            actors,
            auth: auth.clone(),
            deadlines: engine.config.deadlines.clone(),
            held: Default::default(),
        })
    }
}

/// Who `auth` is to the policy: the user, their role and their area.
pub(crate) async fn principal(
    engine: &Engine,
    auth: &AuthDevice,
) -> Result<Principal, EngineError> {
    let area = engine.storage.area(&auth.user_id).await?;
    Ok(Principal {
        user_id: auth.user_id.clone(),
        role: auth.role,
        area: area.into_iter().collect(),
    })
}

/// Runs one sync round for `auth`.
pub async fn round(
    engine: &Engine,
    auth: &AuthDevice,
    request: SyncRequest,
) -> Result<SyncResponse, EngineError> {
    let instance = engine.instance;
    let config = &engine.config;
    // Limits first, before anything is decoded or written.
    let docs = request.docs.len().saturating_add(request.am_sync.len());
    if docs > config.sync_max_docs {
        return Err(EngineError::TooManyDocuments(format!(
            "a sync request carries at most {} documents; this one carries {docs}: send the rest in the next round",
            config.sync_max_docs
        )));
    }
    let cursor = Cursor::decode(request.cursor.as_deref().map(|c| &c[..]), instance)?;
    let limits = merge::Limits {
        change_ops: config.sync_max_change_ops,
    };
    let mut errors = Vec::new();
    let mut incoming = Vec::new();
    let mut seen = HashSet::new();
    let mut ops: u64 = 0;
    for push in request.docs {
        if !seen.insert(push.id.clone()) {
            errors.push(doc_error(
                &push.id,
                "duplicate_document",
                "document sent twice in one request",
            ));
            continue;
        }
        match merge::decode_push(push, limits) {
            Ok((doc, n)) => {
                ops = ops.saturating_add(n);
                incoming.push(doc);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut am_sync = Vec::new();
    for msg in &request.am_sync {
        match am::decode_am_sync(msg, limits) {
            Ok((message, n)) => {
                ops = ops.saturating_add(n);
                am_sync.push((msg.id.clone(), message));
            }
            Err(e) => errors.push(e),
        }
    }
    if ops > config.sync_max_request_ops {
        return Err(EngineError::TooManyOperations(format!(
            "the changes of one sync request hold at most {} operations; send fewer changes per round",
            config.sync_max_request_ops
        )));
    }
    let writer = Arc::new(Writer::load(engine, auth, &request.actors).await?);
    // Only a round bringing changes writes; a push of no changes (a device
    // stating its heads) is answered from a read transaction.
    let write = incoming.iter().any(|d| d.has_changes()) || !am_sync.is_empty();

    // Merge against the stored copies, outside any transaction: a round
    // holds the write lock only to write what it decided.
    let ids: Vec<String> = incoming
        .iter()
        .map(|doc| doc.id())
        .chain(am_sync.iter().map(|(id, _)| id))
        .map(ToString::to_string)
        .collect();
    // Read once any earlier round of this instance pushing one of them
    // has written it, so as not to merge twice.
    let claim = match write {
        true => Some(engine.commits.claims.claim(&ids).await),
        false => None,
    };
    let mut stored = read_documents(engine, &ids).await?;
    // A document both pushed and sent a sync message for is merged again
    // under the lock, after the push: both need its stored copy.
    let am_stored: Vec<Option<DocRow>> = am_sync
        .iter()
        .map(|(id, _)| stored.get(&id.to_string()).cloned())
        .collect();
    let pushes = incoming
        .into_iter()
        .map(|doc| {
            let row = stored.remove(&doc.id().to_string());
            (doc, row)
        })
        .collect();
    let mut prepared = prepare_all(&writer, pushes, true).await?;
    let mut am_prepared = prepare_am_all(&writer, am_sync, am_stored).await?;
    let named = named_households(&prepared, &am_prepared);
    if !named.is_empty() {
        let mut tx = engine.storage.begin(false).await?;
        let (pushes, messages) = (&mut prepared, &mut am_prepared);
        check_visits(&mut *tx, &writer, &named, &[], pushes, messages).await?;
    }

    let round = Round {
        writer,
        cursor,
        ids,
        prepared,
        am_sync: am_prepared,
        errors,
    };
    let page = config.sync_page_docs;
    let writer = round.writer.clone();
    // A round bringing changes is written with the other rounds waiting to
    // write, and answered outside the write lock from what was committed;
    // one bringing none is answered from a read transaction alone. Either
    // way, what the device is sent is recorded before the answer goes out.
    let mut tx;
    let written = if write {
        let Done::Written(written) = engine.commits.run(engine, Work::Round(round)).await? else {
            unreachable!("a round's work is answered with what it wrote");
        };
        drop(claim);
        tx = engine.storage.begin(false).await?;
        written
    } else {
        tx = engine.storage.begin(false).await?;
        round.write(&mut *tx, false).await?
    };
    let (response, updates) = answer(&mut *tx, &writer, written, instance, page).await?;
    tx.commit().await?;
    if !updates.is_empty() {
        engine
            .commits
            .run(engine, Work::Record(writer, updates))
            .await?;
    }
    Ok(response)
}

/// A round merged and checked, ready to write what it decided.
struct Round {
    writer: Arc<Writer>,
    cursor: Option<Cursor>,
    /// The ids of the documents pushed and sent sync messages for.
    ids: Vec<String>,
    prepared: Vec<(Incoming, Prepared)>,
    /// Automerge sync messages merged, each with the message to merge
    /// again under the lock.
    am_sync: Vec<(sync_core::automerge::sync::Message, AmPrepared)>,
    /// Documents refused before merging.
    errors: Vec<DocError>,
}

/// What a round wrote, and what its answer starts from.
struct Written {
    cursor: Cursor,
    /// The device's cursor was unknown: it starts over.
    reset: bool,
    merged: MergedDocs,
    errors: Vec<DocError>,
    dropped: Vec<RecordId>,
    am_replies: Vec<sync_core::protocol::AmSync>,
    /// The feed's last seq before and after the round's writes.
    feed: (i64, i64),
}

impl Round {
    /// Writes the round in `tx` (when `write`; otherwise it only checks
    /// the cursor). Leaves the round as it was, so that a transaction that
    /// fails can be tried again.
    async fn write(&self, tx: &mut dyn DocTx, write: bool) -> Result<Written, EngineError> {
        let writer = &self.writer;
        // Writers exclude each other, so the feed grows here only by our
        // writes.
        let feed_before = tx.max_seq().await?;
        // A cursor from another database, or past the end of the feed (the
        // database went back in time, restored from a backup): start the
        // device over and say so. Its replica then offers again every
        // change the server no longer has.
        let (cursor, reset) = match self.cursor {
            Some(c) if c.after <= feed_before && c.base <= feed_before => (c, false),
            _ => {
                tracing::warn!(
                    feed = feed_before,
                    "unknown cursor; sending everything again"
                );
                (Cursor::START, true)
            }
        };
        // Another round may have written a document since it was read: such
        // a push is merged again, here, against what that round stored.
        let current = match write {
            true => tx.heads(&self.ids).await?,
            false => HashMap::new(),
        };
        let moved: Vec<&(Incoming, Prepared)> = (self.prepared.iter())
            .filter(|(doc, p)| write && !p.is_current(current.get(&doc.id().to_string())))
            .collect();
        let mut again = self.merge_again(tx, &moved).await?;
        let mut errors = self.errors.clone();
        let mut merged = BTreeMap::new();
        let mut dropped = Vec::new();
        for (doc, prepared) in &self.prepared {
            let outcome = match again.remove(doc.id()) {
                Some(again) => again.write(tx, writer).await?,
                None => prepared.write(tx, writer).await?,
            };
            merged.extend(outcome.merged);
            errors.extend(outcome.error);
            dropped.extend(outcome.drop);
        }
        let mut am_replies = Vec::new();
        // Documents this round has written so far: their heads in
        // `current` are from before.
        let mut written: HashSet<&RecordId> = self.prepared.iter().map(|(d, _)| d.id()).collect();
        for (message, prepared) in &self.am_sync {
            let id = prepared.id();
            // Merged again when another write moved the document since it
            // was merged, this round's own included.
            let current = current.get(&id.to_string());
            let first = written.insert(id);
            let again = !first || !prepared.is_current(current);
            let outcome = if !again {
                prepared.write(tx, writer).await?
            } else {
                crate::metrics::merged_again();
                am::am_sync_round(tx, writer, id, message).await?
            };
            match outcome {
                Ok(reply) => am_replies.push(reply),
                Err(e) => errors.push(e),
            }
        }
        let feed_after = if write {
            tx.max_seq().await?
        } else {
            feed_before
        };
        Ok(Written {
            cursor,
            reset,
            merged,
            errors,
            dropped,
            am_replies,
            feed: (feed_before, feed_after),
        })
    }

    /// Merges again, under the write lock, the pushes `moved` whose
    /// documents another round wrote since they were merged: against what
    /// that round stored, read together, on every core.
    async fn merge_again(
        &self,
        tx: &mut dyn DocTx,
        moved: &[&(Incoming, Prepared)],
    ) -> Result<HashMap<RecordId, Prepared>, EngineError> {
        if moved.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = moved.iter().map(|(doc, _)| doc.id().to_string()).collect();
        let mut stored = tx.load_many(&ids).await?;
        let pushes = (moved.iter())
            .map(|(doc, _)| {
                crate::metrics::merged_again();
                let row = stored.remove(&doc.id().to_string());
                (doc.clone(), row)
            })
            .collect();
        let mut again = prepare_all(&self.writer, pushes, false).await?;
        let named = named_households(&again, &[]);
        if !named.is_empty() {
            check_visits(
                tx,
                &self.writer,
                &named,
                &self.prepared,
                &mut again,
                &mut [],
            )
            .await?;
        }
        Ok(again
            .into_iter()
            .map(|(doc, p)| (doc.id().clone(), p))
            .collect())
    }
}

/// The households the visits among `prepared` and `am` name, to check.
fn named_households(
    prepared: &[(Incoming, Prepared)],
    am: &[(sync_core::automerge::sync::Message, AmPrepared)],
) -> Vec<String> {
    (prepared.iter().filter_map(|(_, p)| p.household()))
        .chain(am.iter().filter_map(|(_, p)| p.household()))
        .map(str::to_owned)
        .collect()
}

/// Keeps each visit among `prepared` and `am` only if the writer may see
/// the household it names (`named`, from [`named_households`]): one
/// stored (read in `tx`), or one this round stores (among `prepared` or
/// the round's `others`).
async fn check_visits(
    tx: &mut dyn DocTx,
    writer: &Writer,
    named: &[String],
    others: &[(Incoming, Prepared)],
    prepared: &mut [(Incoming, Prepared)],
    am: &mut [(sync_core::automerge::sync::Message, AmPrepared)],
) -> Result<(), EngineError> {
    let mut households = merge::households(tx, named).await?;
    for (doc, p) in others.iter().chain(prepared.iter()) {
        if let Some(meta) = p.stored_meta() {
            households.insert(doc.id().to_string(), meta.clone());
        }
    }
    for (_, p) in prepared.iter_mut() {
        if let Some(id) = p.household() {
            let meta = households.get(id).cloned();
            p.check_visit(writer, meta.as_ref());
        }
    }
    for (_, p) in am.iter_mut() {
        if let Some(id) = p.household() {
            let meta = households.get(id).cloned();
            p.check_visit(writer, meta.as_ref());
        }
    }
    Ok(())
}

/// The answer to a round that wrote `written`: what the device lacks of
/// the feed up to the round's last write, read in `tx`, and what the
/// server must record of having sent it.
async fn answer(
    tx: &mut dyn DocTx,
    writer: &Writer,
    written: Written,
    instance: [u8; 8],
    page: usize,
) -> Result<(SyncResponse, feed::DeviceUpdates), EngineError> {
    let Written {
        cursor,
        reset,
        merged,
        mut errors,
        mut dropped,
        am_replies,
        feed,
    } = written;
    let answer = feed::answer(tx, writer, page, cursor, merged, feed).await?;
    errors.extend(answer.errors);
    dropped.extend(answer.drop);
    dropped.sort();
    dropped.dedup();
    let response = SyncResponse {
        v: PROTOCOL_VERSION,
        cursor: serde_bytes::ByteBuf::from(answer.next.encode(instance)),
        more: answer.more,
        reset,
        docs: answer.docs,
        errors,
        drop: dropped,
        am_sync: am_replies,
    };
    Ok((response, answer.updates))
}

/// Group commit: the writes of an instance's rounds, committed together.
///
/// A round writes twice: what it merged, and then, once its answer is
/// built, what the device was sent. Each waits for its turn without a
/// connection. The first to get the turn (the leader) takes every write
/// queued by then, its own and those that came while the previous group
/// was writing, and runs them one after another in one write transaction:
/// each sees what the ones before it wrote, exactly as if they had
/// committed one by one, but the write lock is taken once and the commit
/// flushed to disk once for all of them. When the group's transaction
/// fails, each of its writes is tried again alone, so that one round's
/// failure is not another's.
///
/// Rounds pushing the same document are merged in turn
/// ([`claims`]): the later one reads it once the earlier one's write has
/// committed.
#[derive(Default)]
pub struct Commits {
    group: GroupCommit<Work, Done>,
    claims: claims::Claims,
}

/// What a round writes through the group commit.
enum Work {
    /// What a round merged.
    Round(Round),
    /// What a device was sent.
    Record(Arc<Writer>, feed::DeviceUpdates),
}

/// A write done, not yet committed.
enum Done {
    Written(Written),
    Recorded,
}

impl Work {
    async fn run(&self, tx: &mut dyn DocTx) -> Result<Done, EngineError> {
        match self {
            Work::Round(round) => round.write(tx, true).await.map(Done::Written),
            Work::Record(writer, updates) => {
                updates.apply(tx, writer).await?;
                Ok(Done::Recorded)
            }
        }
    }
}

impl Commits {
    /// Runs `work` with whatever other writes are waiting, and gives its
    /// outcome once they are committed.
    async fn run(&self, engine: &Engine, work: Work) -> Result<Done, EngineError> {
        let engine = engine.clone();
        self.group
            .run(work, move |group| async move {
                write_group(&engine, group).await;
            })
            .await
    }
}

/// Writes a group in one transaction and gives each its outcome; when the
/// transaction fails, each write again alone.
async fn write_group(engine: &Engine, group: Vec<Waiting<Work, Done>>) {
    let work: Vec<&Work> = group.iter().map(|w| &w.work).collect();
    match commit(engine, &work).await {
        Ok(done) => {
            crate::metrics::group_committed(group.len());
            for (waiting, done) in group.into_iter().zip(done) {
                let _ = waiting.done.send(Ok(done));
            }
        }
        Err(e) if group.len() == 1 => {
            let _ = group.into_iter().next().expect("one").done.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(writes = group.len(), error = %e, "a group commit failed; writing its parts one by one");
            crate::metrics::group_failed();
            for waiting in group {
                let done = commit(engine, &[&waiting.work])
                    .await
                    .map(|mut done| done.pop().expect("one outcome per write"));
                let _ = waiting.done.send(done);
            }
        }
    }
}

/// Runs `work` in one write transaction, commits, and gives the outcomes
/// in order.
async fn commit(engine: &Engine, work: &[&Work]) -> Result<Vec<Done>, EngineError> {
    let mut tx = engine.storage.begin(true).await?;
    let mut outcomes = Vec::with_capacity(work.len());
    for work in work {
        outcomes.push(work.run(&mut *tx).await?);
    }
    tx.commit().await?;
    let feeds = outcomes.iter().filter_map(|done| match done {
        Done::Written(w) => Some(w.feed),
        Done::Recorded => None,
    });
    if let Some(end) = feeds
        .filter(|(before, after)| after > before)
        .map(|f| f.1)
        .max()
    {
        engine.notifier.publish(end);
    }
    Ok(outcomes)
}

/// The stored copies of these documents, read together outside any
/// write transaction.
async fn read_documents(
    engine: &Engine,
    ids: &[String],
) -> Result<HashMap<String, DocRow>, EngineError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut tx = engine.storage.begin(false).await?;
    Ok(tx.load_many(ids).await?)
}

/// Fewest documents worth a thread of their own.
const MIN_DOCS_PER_TASK: usize = 8;

/// One merging thread per core, for all rounds together: a round takes as
/// many as its documents fill, all at once, and rounds take their turns, so
/// that the first to come is the first answered.
fn merge_slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(cores())))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Prepares every push of a round ([`merge::prepare`]) on blocking
/// threads, the documents split among the cores, and gives each back with
/// its push.
async fn prepare_all(
    writer: &Arc<Writer>,
    pushes: Vec<(Incoming, Option<DocRow>)>,
    in_turn: bool,
) -> Result<Vec<(Incoming, Prepared)>, EngineError> {
    if pushes.is_empty() {
        return Ok(Vec::new());
    }
    let per_task = match in_turn {
        true => pushes.len().div_ceil(cores()).max(MIN_DOCS_PER_TASK),
        false => pushes.len().div_ceil(cores()),
    };
    // A round takes all the threads it needs at once, in its turn: rounds
    // are merged one after another, each on every core, so that the first
    // to come is answered first instead of all of them at the end. Pushes
    // merged again under the write lock do not wait for a turn: every
    // writer waits for them.
    let needed = pushes.len().div_ceil(per_task);
    let slots = match in_turn {
        true => Some(
            merge_slots()
                .clone()
                .acquire_many_owned(u32::try_from(needed).unwrap_or(u32::MAX))
                .await
                .map_err(EngineError::internal)?,
        ),
        false => None,
    };
    let slots = Arc::new(slots);
    let mut tasks = Vec::new();
    let mut pushes = pushes.into_iter().peekable();
    while pushes.peek().is_some() {
        let part: Vec<_> = pushes.by_ref().take(per_task).collect();
        let slots = slots.clone();
        let writer = writer.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let _slots = slots;
            part.into_iter()
                .map(|(doc, row)| {
                    // Automerge can panic on crafted changes: the document
                    // is refused, the round goes on.
                    let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        merge::prepare(&writer, &doc, row.as_ref())
                    }))
                    .unwrap_or_else(|_| merge::unappliable(&doc, row.as_ref()));
                    (doc, prepared)
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut prepared = Vec::new();
    for task in tasks {
        prepared.extend(task.await.map_err(EngineError::internal)?);
    }
    Ok(prepared)
}

/// Prepares every Automerge sync message of a round
/// ([`am::prepare_am_sync`]) on one blocking thread, each against its
/// stored copy in `stored`, in order.
async fn prepare_am_all(
    writer: &Arc<Writer>,
    messages: Vec<(RecordId, sync_core::automerge::sync::Message)>,
    stored: Vec<Option<DocRow>>,
) -> Result<Vec<(sync_core::automerge::sync::Message, AmPrepared)>, EngineError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let writer = writer.clone();
    let _slot = merge_slots()
        .clone()
        .acquire_owned()
        .await
        .map_err(EngineError::internal)?;
    tokio::task::spawn_blocking(move || {
        messages
            .into_iter()
            .zip(stored)
            .map(|((id, message), row)| {
                let prepared = am::prepare_am_sync(&writer, &id, &message, row.as_ref());
                (message, prepared)
            })
            .collect()
    })
    .await
    .map_err(EngineError::internal)
}

fn doc_error(id: &RecordId, code: &str, message: impl Into<String>) -> DocError {
    DocError {
        id: id.clone(),
        code: code.into(),
        message: message.into(),
        change: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_checks_its_origin() {
        let here = [1; 8];
        let c = Cursor {
            base: 5,
            after: 9,
            round: 3,
            scope: 2,
        };
        let bytes = c.encode(here);
        assert_eq!(Cursor::decode(Some(&bytes), here).unwrap(), Some(c));
        assert_eq!(Cursor::decode(Some(&bytes), [2; 8]).unwrap(), None);
        assert_eq!(Cursor::decode(None, here).unwrap(), Some(Cursor::START));
        assert!(Cursor::decode(Some(&bytes[..10]), here).is_err());
        let negative = Cursor {
            base: -1,
            after: 5,
            round: 1,
            scope: 0,
        }
        .encode(here);
        assert!(Cursor::decode(Some(&negative), here).is_err());
    }
}
