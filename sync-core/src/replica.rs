//! The client side: a phone's local copy of the documents in its scope.
//!
//! Every local edit is committed to the [`ReplicaStore`] before the call
//! returns. A change stays pending until the server acknowledges it, which it
//! does by returning heads whose history contains the change; so "pending" is
//! derived (the changes not in the history of the acknowledged heads), never a
//! second list that could drift from the documents.
//!
//! The replica builds requests and applies responses; moving the bytes is
//! the caller's business ([`Replica::sync_with`] loops over any transport).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash, ReadDoc};
use serde_bytes::ByteBuf;

use crate::doc::{self, AnyRecord, DocError};
use crate::id::{RecordId, RecordKind};
use crate::policy::{self, Denial, Principal};
use crate::protocol::{
    DecodeError, DocError as ServerDocError, DocPush, Heads, PROTOCOL_VERSION, SyncRequest,
    SyncResponse,
};
use crate::records::{Attachment, Case, Household, Record, Sensitive, Visit};
use crate::store::{Rejected, ReplicaStore, StoredDoc, Upload};

/// Why a replica operation failed. Nothing was changed when it did.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// No such document on this replica.
    #[error("no record {0} on this device")]
    UnknownRecord(RecordId),
    /// The id names another kind of record than the one asked for.
    #[error("record {id} is a {}, not a {expected}", id.kind())]
    WrongKind {
        /// The id used.
        id: RecordId,
        /// The kind asked for.
        expected: crate::RecordKind,
    },
    /// A document with this id exists already.
    #[error("record {0} exists already")]
    Exists(RecordId),
    /// The record could not be read or written.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// Automerge could not load what the server sent.
    #[error("could not load changes for {id}: {source}")]
    Load {
        /// The document.
        id: RecordId,
        /// The cause.
        source: Box<AutomergeError>,
    },
    /// The server's response lacks changes for the heads it claims.
    #[error("the server sent heads for {0} without the changes behind them")]
    IncompleteResponse(RecordId),
    /// The local store failed.
    #[error("local storage failed: {0}")]
    Store(#[from] std::io::Error),
    /// The policy does not allow this edit; nothing was written.
    #[error("not allowed: {0}")]
    Denied(#[from] Denial),
}

/// The rule that refuses a visit naming a household the writer may not
/// see (on the phone: one the replica does not hold). The server refuses
/// it under the same name.
pub const VISIT_HOUSEHOLD_RULE: &str = "visit_household";

/// Most documents one request carries by default; the server's
/// `sync_max_docs` is at least this by default.
pub const DEFAULT_MAX_REQUEST_DOCS: usize = 500;

/// A failed sync: the transport, the response, or applying it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError<E> {
    /// The transport failed; nothing was applied, retrying is safe.
    #[error("transport: {0}")]
    Transport(E),
    /// The server answered with something that is not a sync response.
    #[error("bad response: {0}")]
    Decode(#[from] DecodeError),
    /// The response could not be applied.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

/// What a sync (one or more rounds) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// Requests sent.
    pub rounds: usize,
    /// Documents that came down with new changes.
    pub received: usize,
    /// Documents the server would not accept, with its reasons.
    pub errors: Vec<ServerDocError>,
    /// Documents removed from this device: outside its scope now.
    pub dropped: Vec<RecordId>,
}

struct Entry {
    doc: Automerge,
    acked: Vec<ChangeHash>,
}

impl Entry {
    /// Local changes outside the history of the acknowledged heads.
    fn unacked(&self) -> Vec<Change> {
        if self.doc.get_heads() == self.acked {
            return Vec::new();
        }
        self.doc.get_changes(&self.acked)
    }
}

/// A device's local copy of its documents.
pub struct Replica<S: ReplicaStore> {
    store: S,
    actor: ActorId,
    cursor: Option<Vec<u8>>,
    docs: BTreeMap<RecordId, Entry>,
    rejected: Vec<Rejected>,
    uploads: Vec<Upload>,
    principal: Option<Principal>,
    clock: fn() -> i64,
    max_request_bytes: usize,
    max_request_docs: usize,
}

impl<S: ReplicaStore> Replica<S> {
    /// Opens the replica held in `store`, choosing and storing a fresh
    /// random actor id the first time.
    pub fn open(mut store: S) -> Result<Self, ReplicaError> {
        let stored = store.load()?;
        let actor = match stored.actor {
            Some(actor) => actor,
            None => {
                let actor = ActorId::random();
                store.put_actor(&actor)?;
                actor
            }
        };
        let mut docs = BTreeMap::new();
        for (id, stored_doc) in stored.docs {
            let doc = doc::load(&stored_doc.bytes)
                .map_err(|source| ReplicaError::Load {
                    id: id.clone(),
                    source: Box::new(source),
                })?
                .with_actor(actor.clone());
            docs.insert(
                id,
                Entry {
                    doc,
                    acked: stored_doc.acked,
                },
            );
        }
        Ok(Self {
            store,
            actor,
            cursor: stored.cursor,
            docs,
            rejected: stored.rejected,
            uploads: stored.uploads,
            principal: None,
            clock: system_now_ms,
            max_request_bytes: 4 * 1024 * 1024,
            max_request_docs: DEFAULT_MAX_REQUEST_DOCS,
        })
    }

    /// Replaces the clock that stamps local changes (milliseconds since the
    /// Unix epoch); the default reads the system clock.
    pub fn set_clock(&mut self, clock: fn() -> i64) {
        self.clock = clock;
    }

    /// Checks every later local edit against the policy for `principal` (the
    /// user as the server describes them, `GET /v1/me`), so that this device
    /// never makes a change the server would refuse. `None` turns the check
    /// off.
    pub fn set_principal(&mut self, principal: Option<Principal>) {
        self.principal = principal;
    }

    /// The Automerge actor id every local change is written with.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// The store, e.g. to reopen the replica from it.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, to take what it queued (a store that persists
    /// asynchronously, as in a browser).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The ids of every document held.
    pub fn ids(&self) -> impl Iterator<Item = &RecordId> {
        self.docs.keys()
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the replica holds no documents.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The Automerge document behind a record.
    pub fn document(&self, id: &RecordId) -> Option<&Automerge> {
        self.docs.get(id).map(|e| &e.doc)
    }

    /// Creates a record under a fresh id.
    pub fn create<R: Record>(&mut self, record: &R) -> Result<RecordId, ReplicaError> {
        let id = RecordId::new(R::KIND);
        self.create_with_id(id.clone(), record)?;
        Ok(id)
    }

    /// Creates a record under a given id (for deterministic data).
    pub fn create_with_id<R: Record>(
        &mut self,
        id: RecordId,
        record: &R,
    ) -> Result<(), ReplicaError> {
        check_kind::<R>(&id)?;
        if self.docs.contains_key(&id) {
            return Err(ReplicaError::Exists(id));
        }
        let doc = doc::create(self.actor.clone(), record, (self.clock)())?;
        if let Some(p) = &self.principal {
            policy::check_write_docs(p, R::KIND, None, &doc)?;
            self.check_visit_household(R::KIND, None, &doc)?;
        }
        let entry = Entry {
            doc,
            acked: Vec::new(),
        };
        persist(&mut self.store, &id, &entry)?;
        self.docs.insert(id, entry);
        Ok(())
    }

    /// Reads a record.
    pub fn read<R: Record>(&self, id: &RecordId) -> Result<R, ReplicaError> {
        check_kind::<R>(id)?;
        let entry = self
            .docs
            .get(id)
            .ok_or_else(|| ReplicaError::UnknownRecord(id.clone()))?;
        Ok(doc::read(&entry.doc)?)
    }

    /// Edits a record as one local change, stored before this returns.
    /// Returns the change's hash, or `None` if `f` changed nothing.
    pub fn update<R: Record>(
        &mut self,
        id: &RecordId,
        f: impl FnOnce(&mut R),
    ) -> Result<Option<ChangeHash>, ReplicaError> {
        check_kind::<R>(id)?;
        let now = (self.clock)();
        if self.principal.is_none() {
            let entry = self
                .docs
                .get_mut(id)
                .ok_or_else(|| ReplicaError::UnknownRecord(id.clone()))?;
            let hash = doc::edit(&mut entry.doc, now, f)?;
            if hash.is_some() {
                persist(&mut self.store, id, entry)?;
            }
            return Ok(hash);
        }
        let current = &self
            .docs
            .get(id)
            .ok_or_else(|| ReplicaError::UnknownRecord(id.clone()))?
            .doc;
        let mut edited = current.clone();
        let hash = doc::edit(&mut edited, now, f)?;
        if hash.is_none() {
            return Ok(None);
        }
        if let Some(p) = &self.principal {
            policy::check_write_docs(p, R::KIND, Some(current), &edited)?;
            visit_household(&self.docs, R::KIND, Some(current), &edited)?;
        }
        let entry = self.docs.get_mut(id).expect("held above");
        entry.doc = edited;
        persist(&mut self.store, id, entry)?;
        Ok(hash)
    }

    fn check_visit_household(
        &self,
        kind: crate::RecordKind,
        before: Option<&Automerge>,
        after: &Automerge,
    ) -> Result<(), Denial> {
        visit_household(&self.docs, kind, before, after)
    }

    /// Attaches a file to a record: keeps its bytes on the device, adds
    /// `attachment` (its hash and size filled in from `bytes`) to the
    /// record's list as one local change, and queues the upload. Attaching
    /// the same bytes again changes nothing. Returns the reference as
    /// written.
    ///
    /// The file is kept and queued before the record names it: a crash in
    /// between leaves a queued file that no record names, which
    /// [`Replica::uploads_ready`] never offers, never a reference whose
    /// bytes are lost.
    pub fn attach(
        &mut self,
        id: &RecordId,
        bytes: &[u8],
        mut attachment: Attachment,
    ) -> Result<Attachment, ReplicaError> {
        attachment.sha256 = sha256_hex(bytes);
        attachment.size = bytes.len() as i64;
        let held = self
            .docs
            .get(id)
            .ok_or_else(|| ReplicaError::UnknownRecord(id.clone()))?;
        let record = AnyRecord::read(id.kind(), &held.doc)?;
        if let Some(same) = record
            .attachments()
            .into_iter()
            .find(|(_, a)| a.sha256 == attachment.sha256)
        {
            return Ok(same.1.clone());
        }
        let queued = self.uploads.iter().any(|u| u.sha256 == attachment.sha256);
        self.queue_file(id, bytes, &attachment.media_type)?;
        let a = attachment.clone();
        let named = match id.kind() {
            RecordKind::Household => self.update::<Household>(id, |r| r.attachments.push(a)),
            RecordKind::Case => self.update::<Case>(id, |r| r.attachments.push(a)),
            RecordKind::Visit => self.update::<Visit>(id, |r| r.attachments.push(a)),
            RecordKind::Sensitive => self.update::<Sensitive>(id, |r| r.attachments.push(a)),
        };
        if let Err(refused) = named {
            // The record does not take it (the policy, say): nothing of it
            // waits to be sent.
            if !queued {
                self.upload_done(&attachment.sha256)?;
            }
            return Err(refused);
        }
        Ok(attachment)
    }

    /// Keeps a file's bytes on the device and queues their upload for
    /// record `id`, which the caller makes reference them (a case event's
    /// attachments, say, written with the event). Returns the SHA-256.
    pub fn queue_file(
        &mut self,
        id: &RecordId,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, ReplicaError> {
        let sha256 = sha256_hex(bytes);
        self.store.put_file(&sha256, bytes)?;
        if !self.uploads.iter().any(|u| u.sha256 == sha256) {
            self.uploads.push(Upload {
                sha256: sha256.clone(),
                media_type: media_type.to_owned(),
                size: bytes.len() as u64,
                record: id.clone(),
            });
            self.store.put_uploads(&self.uploads)?;
        }
        Ok(sha256)
    }

    /// Every queued upload, oldest first.
    pub fn uploads(&self) -> &[Upload] {
        &self.uploads
    }

    /// The queued uploads the server will take now: those whose record it
    /// holds as this device wrote it (no local change is waiting to be
    /// sent) and whose record names the file.
    pub fn uploads_ready(&self) -> Vec<Upload> {
        self.uploads
            .iter()
            .filter(|u| {
                let Some(entry) = self.docs.get(&u.record) else {
                    return false;
                };
                if entry.acked.is_empty() || !entry.unacked().is_empty() {
                    return false;
                }
                AnyRecord::read(u.record.kind(), &entry.doc)
                    .is_ok_and(|r| r.attachments().iter().any(|(_, a)| a.sha256 == u.sha256))
            })
            .cloned()
            .collect()
    }

    /// A file's bytes as this device keeps them.
    pub fn file(&mut self, sha256: &str) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(self.store.read_file(sha256)?)
    }

    /// Takes a file off the upload queue: the server holds it, or refused
    /// it for good. Its bytes stay on the device.
    pub fn upload_done(&mut self, sha256: &str) -> Result<(), ReplicaError> {
        let before = self.uploads.len();
        self.uploads.retain(|u| u.sha256 != sha256);
        if self.uploads.len() != before {
            self.store.put_uploads(&self.uploads)?;
        }
        Ok(())
    }

    /// Local edits the server refused, kept for the user to see (and for
    /// an admin to approve on the server).
    pub fn rejected(&self) -> &[Rejected] {
        &self.rejected
    }

    /// Changes not yet acknowledged by the server, per document.
    pub fn pending(&self) -> BTreeMap<RecordId, Vec<ChangeHash>> {
        self.docs
            .iter()
            .filter_map(|(id, e)| {
                let hashes: Vec<ChangeHash> = e.unacked().iter().map(|c| c.hash()).collect();
                (!hashes.is_empty()).then(|| (id.clone(), hashes))
            })
            .collect()
    }

    /// Caps the changes carried by one request (default 4 MiB), so that a
    /// phone with a backlog stays under the server's body limit; the rest
    /// goes in the following rounds of the same [`Replica::sync_with`].
    pub fn set_max_request_bytes(&mut self, bytes: usize) {
        self.max_request_bytes = bytes;
    }

    /// Caps the documents carried by one request (default
    /// [`DEFAULT_MAX_REQUEST_DOCS`]), to stay under the server's
    /// `sync_max_docs`; the rest goes in the following rounds.
    pub fn set_max_request_docs(&mut self, docs: usize) {
        self.max_request_docs = docs.max(1);
    }

    /// The request for the next round: unacknowledged changes (as many
    /// documents as fit the request cap, at least one), and the cursor of
    /// the last applied response.
    pub fn sync_request(&self) -> SyncRequest {
        let mut docs = Vec::new();
        let mut size = 0;
        for (id, e) in &self.docs {
            let changes: Vec<ByteBuf> = e
                .unacked()
                .iter()
                .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                .collect();
            if changes.is_empty() {
                continue;
            }
            let doc_size: usize = changes.iter().map(|c| c.len()).sum();
            if !docs.is_empty() && size + doc_size > self.max_request_bytes {
                continue;
            }
            if docs.len() >= self.max_request_docs {
                break;
            }
            size += doc_size;
            docs.push(DocPush {
                id: id.clone(),
                heads: Heads(e.doc.get_heads()),
                changes,
            });
        }
        SyncRequest {
            v: PROTOCOL_VERSION,
            cursor: self.cursor.clone().map(ByteBuf::from),
            actors: vec![ByteBuf::from(self.actor.to_bytes().to_vec())],
            docs,
            am_sync: Vec::new(),
        }
    }

    /// Applies a server response: loads every document's new changes,
    /// records the acknowledged heads, and stores the cursor last.
    pub fn apply_response(&mut self, response: SyncResponse) -> Result<SyncReport, ReplicaError> {
        let mut report = SyncReport {
            rounds: 1,
            ..Default::default()
        };
        if response.reset {
            // The server lost track of us: nothing is acknowledged until it
            // says so again.
            for (id, entry) in &mut self.docs {
                if !entry.acked.is_empty() {
                    entry.acked.clear();
                    persist(&mut self.store, id, entry)?;
                }
            }
        }
        for pull in response.docs {
            let entry = self.docs.entry(pull.id.clone()).or_insert_with(|| Entry {
                doc: doc::empty(self.actor.clone()),
                acked: Vec::new(),
            });
            for chunk in &pull.chunks {
                entry
                    .doc
                    .load_incremental(chunk)
                    .map_err(|source| ReplicaError::Load {
                        id: pull.id.clone(),
                        source: Box::new(source),
                    })?;
            }
            let complete = pull
                .heads
                .0
                .iter()
                .all(|h| entry.doc.get_change_by_hash(h).is_some());
            if !complete {
                return Err(ReplicaError::IncompleteResponse(pull.id));
            }
            let mut acked = pull.heads.0;
            acked.sort_unstable();
            entry.acked = acked;
            if !pull.chunks.is_empty() {
                report.received += 1;
            }
            persist(&mut self.store, &pull.id, entry)?;
        }
        let mut refused_any = false;
        for error in &response.errors {
            let Some(entry) = self.docs.get_mut(&error.id) else {
                continue;
            };
            match error.code.as_str() {
                // The server lacks history our acknowledged heads assume:
                // send the document's whole history next time.
                "missing_dependencies" => {
                    entry.acked.clear();
                    persist(&mut self.store, &error.id, entry)?;
                }
                // Refused for good: keep the edits aside for the user and
                // go back to what the server holds.
                "forbidden" | "unregistered_actor" => {
                    let refused = entry.unacked();
                    if !refused.is_empty() {
                        self.rejected.push(Rejected {
                            id: error.id.clone(),
                            code: error.code.clone(),
                            message: error.message.clone(),
                            changes: refused
                                .iter()
                                .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                                .collect(),
                        });
                        refused_any = true;
                    }
                    if !response.drop.contains(&error.id) {
                        let reset = entry.doc.fork_at(&entry.acked).map_err(|source| {
                            ReplicaError::Load {
                                id: error.id.clone(),
                                source: Box::new(source),
                            }
                        })?;
                        entry.doc = reset.with_actor(self.actor.clone());
                        persist(&mut self.store, &error.id, entry)?;
                    }
                }
                _ => {}
            }
        }
        for id in &response.drop {
            let Some(entry) = self.docs.remove(id) else {
                continue;
            };
            let unsent = entry.unacked();
            let already_kept = self.rejected.iter().any(|r| &r.id == id);
            if !unsent.is_empty() && !already_kept {
                self.rejected.push(Rejected {
                    id: id.clone(),
                    code: "out_of_scope".into(),
                    message: "the record left this device's scope before these edits were sent"
                        .into(),
                    changes: unsent
                        .iter()
                        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                        .collect(),
                });
                refused_any = true;
            }
            self.store.remove_doc(id)?;
            report.dropped.push(id.clone());
        }
        if refused_any {
            self.store.put_rejected(&self.rejected)?;
            // Later local changes must not reuse the sequence numbers of the
            // refused ones (an admin may still approve those): write as a
            // new actor from now on.
            self.actor = ActorId::random();
            self.store.put_actor(&self.actor)?;
            for entry in self.docs.values_mut() {
                entry.doc.set_actor(self.actor.clone());
            }
        }
        self.store.put_cursor(&response.cursor)?;
        self.cursor = Some(response.cursor.into_vec());
        report.errors = response.errors;
        Ok(report)
    }

    /// The request for the next round of `run`.
    pub fn round_request(&self, run: &mut SyncRun) -> SyncRequest {
        let request = self.sync_request();
        run.sent = request.docs.iter().map(|d| d.id.clone()).collect();
        request
    }

    /// Applies the response to `run`'s last request; `Ok(true)` when the
    /// sync needs another round.
    pub fn round_response(
        &mut self,
        run: &mut SyncRun,
        response: SyncResponse,
    ) -> Result<bool, ReplicaError> {
        let more = response.more;
        let report = self.apply_response(response)?;
        run.report.rounds += 1;
        run.report.received += report.received;
        run.report.dropped.extend(report.dropped);
        // Documents pending but not offered in this round: left out for
        // size, or found pending only now (the server's heads went back,
        // as after a restore from backup).
        let unsent = self.pending().keys().any(|id| !run.sent.contains(id));
        // Once per sync, resend whole histories the server asked for.
        let resend = !run.resent_history
            && report
                .errors
                .iter()
                .any(|e| e.code == "missing_dependencies");
        run.resent_history |= resend;
        run.report.errors.extend(report.errors);
        Ok(more || unsent || resend)
    }

    /// Syncs until the server has nothing more to send and every pending
    /// change has been offered, one request per round through `send`, which
    /// posts a request body and returns the response body.
    pub async fn sync_with<F, Fut, E>(&mut self, mut send: F) -> Result<SyncReport, SyncError<E>>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let mut run = SyncRun::default();
        loop {
            let request = self.round_request(&mut run);
            let reply = send(request.encode()).await.map_err(SyncError::Transport)?;
            let response = SyncResponse::decode(&reply)?;
            if !self.round_response(&mut run, response)? {
                return Ok(run.into_report());
            }
        }
    }
}

/// One sync in progress, driven round by round with
/// [`Replica::round_request`] and [`Replica::round_response`] by a caller
/// that cannot hold the replica across its transport's waits (a browser,
/// where the user keeps editing while a round is in flight);
/// [`Replica::sync_with`] drives one for callers that can.
#[derive(Debug, Default)]
pub struct SyncRun {
    sent: BTreeSet<RecordId>,
    resent_history: bool,
    report: SyncReport,
}

impl SyncRun {
    /// What the rounds so far did.
    pub fn report(&self) -> &SyncReport {
        &self.report
    }

    /// What the sync did.
    pub fn into_report(self) -> SyncReport {
        self.report
    }
}

/// A visit must name a household this replica holds (the documents it
/// may see); checked when the visit is new or names another household.
fn visit_household(
    docs: &BTreeMap<RecordId, Entry>,
    kind: crate::RecordKind,
    before: Option<&Automerge>,
    after: &Automerge,
) -> Result<(), Denial> {
    if kind != crate::RecordKind::Visit {
        return Ok(());
    }
    let household = |d: &Automerge| {
        doc::read::<crate::records::Visit>(d)
            .ok()
            .map(|v| v.household)
    };
    let named = household(after).unwrap_or_default();
    if before.and_then(household).as_deref() == Some(named.as_str()) {
        return Ok(());
    }
    let held = named
        .parse::<RecordId>()
        .is_ok_and(|id| id.kind() == crate::RecordKind::Household && docs.contains_key(&id));
    if held {
        return Ok(());
    }
    Err(Denial {
        rule: VISIT_HOUSEHOLD_RULE,
        message: format!(
            "household {named} is not one you may see; a visit names a household of your area"
        ),
    })
}

/// The SHA-256 of `bytes` as attachments name it: 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn persist(
    store: &mut impl ReplicaStore,
    id: &RecordId,
    entry: &Entry,
) -> Result<(), ReplicaError> {
    let stored = StoredDoc {
        bytes: entry.doc.save(),
        acked: entry.acked.clone(),
    };
    store.put_doc(id, &stored)?;
    Ok(())
}

fn check_kind<R: Record>(id: &RecordId) -> Result<(), ReplicaError> {
    if id.kind() != R::KIND {
        return Err(ReplicaError::WrongKind {
            id: id.clone(),
            expected: R::KIND,
        });
    }
    Ok(())
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// wasm32 in a browser has no system clock in `std`: the host sets one with
/// [`Replica::set_clock`].
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn system_now_ms() -> i64 {
    0
}
