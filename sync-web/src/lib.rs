//! sync-core for the browser: the field app's replica as a WebAssembly
//! module (`apps/build.sh` builds it with wasm-bindgen).
//!
//! The app's JavaScript only shows records and moves bytes. Everything that
//! decides something runs here, in the same Rust the server runs: reading
//! and checking records, the policy check before every local commit, the
//! case workflow, pending changes, conflicts, and the sync rounds
//! ([`sync_core::SyncRun`]).
//!
//! Storage is the one thing a browser only offers asynchronously
//! (IndexedDB), while a [`ReplicaStore`] must be durable when it returns.
//! So the store here is a journal: every write the replica makes is queued,
//! and the app takes the queue after each call ([`Replica::take_writes`])
//! and commits it in one IndexedDB transaction before it tells the user
//! the edit is saved. A tab killed before that commit loses only an edit
//! it never reported saved; one killed after loses nothing.

use std::collections::BTreeMap;
use std::io;

use serde::Deserialize;
use serde_json::{Value, json};
use sync_core::automerge::{ActorId, ChangeHash};
use sync_core::doc::{AnyRecord, DocError};
use sync_core::policy::{self, EVENT_KINDS, Principal, Role};
use sync_core::protocol::SyncResponse;
use sync_core::records::{
    ATTACHMENT_MEDIA_TYPES, Attachment, Case, Household, MAX_ATTACHMENT_BYTES, Record, Sensitive,
    Visit,
};
use sync_core::store::{Rejected, ReplicaStore, Stored, StoredDoc, Upload};
use sync_core::workflow::{self, Deadlines};
use sync_core::{RecordId, RecordKind, ReplicaError, SyncRun, conflicts};
use wasm_bindgen::prelude::*;

/// One write to persist, in the order the replica made them.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The actor id (bytes).
    Actor(Vec<u8>),
    /// The server's cursor.
    Cursor(Vec<u8>),
    /// The refused edits kept for the user (CBOR).
    Rejected(Vec<u8>),
    /// A document: saved bytes and acknowledged heads (32 bytes each).
    Doc {
        /// The record id.
        id: String,
        /// `Automerge::save()` output.
        bytes: Vec<u8>,
        /// The acknowledged heads, concatenated.
        acked: Vec<u8>,
    },
    /// A document removed.
    Remove(String),
    /// The upload queue (CBOR).
    Uploads(Vec<u8>),
    /// An attached file's bytes, kept under their SHA-256.
    File {
        /// Lowercase hex SHA-256.
        sha256: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// A [`ReplicaStore`] that queues its writes for the app to commit.
#[derive(Debug, Default)]
pub struct Journal {
    initial: Stored,
    writes: Vec<Write>,
}

impl Journal {
    /// A journal whose replica opens on `initial`.
    pub fn new(initial: Stored) -> Self {
        Self {
            initial,
            writes: Vec::new(),
        }
    }

    /// The writes queued since the last call.
    pub fn take(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    /// Drops the queued (not yet taken) writes of file `sha256`: the
    /// attachment that wrote them was refused, and no record names it.
    fn forget_file(&mut self, sha256: &str) {
        self.writes
            .retain(|w| !matches!(w, Write::File { sha256: s, .. } if s == sha256));
    }
}

impl ReplicaStore for Journal {
    fn load(&mut self) -> io::Result<Stored> {
        Ok(std::mem::take(&mut self.initial))
    }

    fn put_actor(&mut self, actor: &ActorId) -> io::Result<()> {
        self.writes.push(Write::Actor(actor.to_bytes().to_vec()));
        Ok(())
    }

    fn put_doc(&mut self, id: &RecordId, doc: &StoredDoc) -> io::Result<()> {
        self.writes.push(Write::Doc {
            id: id.to_string(),
            bytes: doc.bytes.clone(),
            acked: doc.acked.iter().flat_map(|h| h.0).collect(),
        });
        Ok(())
    }

    fn put_cursor(&mut self, cursor: &[u8]) -> io::Result<()> {
        self.writes.push(Write::Cursor(cursor.to_vec()));
        Ok(())
    }

    fn remove_doc(&mut self, id: &RecordId) -> io::Result<()> {
        self.writes.push(Write::Remove(id.to_string()));
        Ok(())
    }

    fn put_rejected(&mut self, rejected: &[Rejected]) -> io::Result<()> {
        let mut bytes = Vec::new();
        ciborium::into_writer(rejected, &mut bytes).map_err(io::Error::other)?;
        self.writes.push(Write::Rejected(bytes));
        Ok(())
    }

    fn put_uploads(&mut self, uploads: &[Upload]) -> io::Result<()> {
        let mut bytes = Vec::new();
        ciborium::into_writer(uploads, &mut bytes).map_err(io::Error::other)?;
        self.writes.push(Write::Uploads(bytes));
        Ok(())
    }

    fn put_file(&mut self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        self.writes.push(Write::File {
            sha256: sha256.to_owned(),
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    /// The page keeps files in IndexedDB and uploads them itself.
    fn read_file(&mut self, _sha256: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// Why a call was refused: a stable code, the policy rule when the policy
/// refused, and a sentence for the user (the server's own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `forbidden`, `invalid_record`, `not_applicable`, `unknown_record`,
    /// `invalid_json`, `not_signed_in`, `bad_response`, `storage`.
    pub code: &'static str,
    /// The policy rule, for `forbidden`.
    pub rule: Option<&'static str>,
    /// What happened, for people.
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            rule: None,
            message: message.into(),
        }
    }
}

impl From<ReplicaError> for Refusal {
    fn from(e: ReplicaError) -> Self {
        match e {
            ReplicaError::Denied(d) => Self {
                code: "forbidden",
                rule: Some(d.rule),
                message: d.message,
            },
            ReplicaError::Doc(e @ DocError::Invalid { .. }) => {
                Self::new("invalid_record", e.to_string())
            }
            ReplicaError::UnknownRecord(_) | ReplicaError::WrongKind { .. } => {
                Self::new("unknown_record", e.to_string())
            }
            ReplicaError::Store(_) => Self::new("storage", e.to_string()),
            e => Self::new("bad_response", e.to_string()),
        }
    }
}

impl From<Refusal> for JsValue {
    fn from(r: Refusal) -> Self {
        let error = js_sys::Error::new(&r.message);
        let set = |key: &str, value: JsValue| {
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&error, &key.into(), &value);
        };
        set("code", r.code.into());
        if let Some(rule) = r.rule {
            set("rule", rule.into());
        }
        error.into()
    }
}

/// The user as `GET /v1/me` describes them, with the server's case
/// deadlines (the defaults when a server does not say).
#[derive(Debug, Clone, Deserialize)]
struct Me {
    user_id: String,
    device_id: String,
    role: String,
    area: Vec<String>,
    #[serde(default)]
    deadlines: Deadlines,
}

/// What the page says of a file it attaches; the rest of the reference
/// (hash, size, author, device) is filled in here.
#[derive(Debug, Clone, Deserialize)]
struct AttachMeta {
    media_type: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    taken_at: i64,
    #[serde(default)]
    caption: String,
    #[serde(default)]
    location: String,
}

/// The phone's replica: records, local edits and sync rounds.
#[wasm_bindgen]
pub struct Replica {
    inner: sync_core::Replica<Journal>,
    me: Option<(Principal, String)>,
    deadlines: Deadlines,
    run: SyncRun,
}

/// Milliseconds since the Unix epoch, by the browser's clock.
fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

#[wasm_bindgen]
impl Replica {
    /// Opens the replica persisted as `stored`: `{actor?, cursor?,
    /// rejected?, uploads?: Uint8Array, docs: [{id, bytes, acked}]}` (files
    /// stay with the page).
    /// A new replica (nothing stored) chooses its actor id; take the writes.
    #[wasm_bindgen]
    pub fn open(stored: JsValue) -> Result<Replica, JsValue> {
        let stored = read_stored(&stored)?;
        let mut inner = sync_core::Replica::open(Journal::new(stored)).map_err(Refusal::from)?;
        inner.set_clock(now_ms);
        Ok(Replica {
            inner,
            me: None,
            deadlines: Deadlines::default(),
            run: SyncRun::default(),
        })
    }

    /// The actor id local changes are written with, in hex.
    pub fn actor(&self) -> String {
        self.inner.actor().to_hex_string()
    }

    /// Checks every later local edit against the policy for the user
    /// described by `me_json` (the body of `GET /v1/me`), and folds cases
    /// with the server's deadlines it gives.
    #[wasm_bindgen(js_name = setPrincipal)]
    pub fn set_principal(&mut self, me_json: &str) -> Result<(), JsValue> {
        let me: Me = serde_json::from_str(me_json)
            .map_err(|e| Refusal::new("invalid_json", format!("GET /v1/me: {e}")))?;
        let role: Role = me
            .role
            .parse()
            .map_err(|e| Refusal::new("invalid_json", format!("GET /v1/me: {e}")))?;
        let principal = Principal {
            user_id: me.user_id,
            role,
            area: me.area.into_iter().collect(),
        };
        self.inner.set_principal(Some(principal.clone()));
        self.me = Some((principal, me.device_id));
        self.deadlines = me.deadlines;
        Ok(())
    }

    /// Every record id held.
    pub fn ids(&self) -> Vec<String> {
        self.inner.ids().map(ToString::to_string).collect()
    }

    /// A record as JSON: `{id, kind, record, pending, conflicts, case}`.
    pub fn view(&self, id: &str) -> Result<String, JsValue> {
        let id = parse_id(id)?;
        let pending = self.inner.pending();
        Ok(self.view_of(&id, &pending)?.to_string())
    }

    /// Every record of `kind` (`household`, `case`, `visit`, `sensitive`)
    /// as a JSON list of views. A record that does not read is left out.
    pub fn views(&self, kind: &str) -> Result<String, JsValue> {
        let kind = RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| Refusal::new("unknown_record", format!("no record kind {kind}")))?;
        let pending = self.inner.pending();
        let views: Vec<Value> = self
            .inner
            .ids()
            .filter(|id| id.kind() == kind)
            .filter_map(|id| self.view_of(id, &pending).ok())
            .collect();
        Ok(Value::Array(views).to_string())
    }

    /// Creates a record of `kind` from the JSON of its fields and returns
    /// its id. A case with no events gets its `report` event, by the
    /// signed-in user from this device; a visit with no worker or time gets
    /// the user and now.
    pub fn create(&mut self, kind: &str, json: &str) -> Result<String, JsValue> {
        let id = match kind {
            "household" => self.inner.create(&parse::<Household>(json)?),
            "sensitive" => self.inner.create(&parse::<Sensitive>(json)?),
            "visit" => {
                let mut visit = parse::<Visit>(json)?;
                if visit.worker.is_empty() {
                    visit.worker = self.principal()?.user_id.clone();
                }
                if visit.visited_at == 0 {
                    visit.visited_at = now_ms();
                }
                self.inner.create(&visit)
            }
            "case" => {
                let mut case = parse::<Case>(json)?;
                if case.events.is_empty() {
                    let (principal, device) = self.me.as_ref().ok_or_else(not_signed_in)?;
                    let now = now_ms();
                    if case.reporter.is_empty() {
                        case.reporter = principal.user_id.clone();
                    }
                    if case.reported_at == 0 {
                        case.reported_at = now;
                    }
                    let by = (principal.user_id.as_str(), device.as_str(), principal.role);
                    workflow::append(&mut case, "report", by, now, BTreeMap::new());
                }
                self.inner.create(&case)
            }
            other => {
                return Err(
                    Refusal::new("unknown_record", format!("no record kind {other}")).into(),
                );
            }
        }
        .map_err(Refusal::from)?;
        Ok(id.to_string())
    }

    /// Replaces the fields of record `id` with the JSON given; only what
    /// differs is written, and text fields are edited as text (a diff), so
    /// that a concurrent edit elsewhere in the same text survives. A case's
    /// events are not touched here ([`Replica::record_event`]). Returns
    /// whether anything changed.
    pub fn update(&mut self, id: &str, json: &str) -> Result<bool, JsValue> {
        let id = parse_id(id)?;
        let changed = match id.kind() {
            RecordKind::Household => {
                let new = parse::<Household>(json)?;
                self.inner.update::<Household>(&id, |h| {
                    h.notes.update(new.notes.as_str());
                    *h = Household {
                        notes: h.notes.clone(),
                        ..new
                    };
                })
            }
            RecordKind::Case => {
                let new = parse::<Case>(json)?;
                self.inner.update::<Case>(&id, |c| {
                    c.description.update(new.description.as_str());
                    *c = Case {
                        description: c.description.clone(),
                        events: std::mem::take(&mut c.events),
                        ..new
                    };
                })
            }
            RecordKind::Visit => {
                let new = parse::<Visit>(json)?;
                self.inner.update::<Visit>(&id, |v| {
                    v.findings.update(new.findings.as_str());
                    *v = Visit {
                        findings: v.findings.clone(),
                        ..new
                    };
                })
            }
            RecordKind::Sensitive => {
                let new = parse::<Sensitive>(json)?;
                self.inner.update::<Sensitive>(&id, |s| {
                    s.notes.update(new.notes.as_str());
                    *s = Sensitive {
                        notes: s.notes.clone(),
                        ..new
                    };
                })
            }
        }
        .map_err(Refusal::from)?;
        Ok(changed.is_some())
    }

    /// Records an event of `kind` with `data_json` (an object of strings,
    /// see `workflow.md`) on case `case_id`, by the signed-in user from
    /// this device, and returns the event's id. Refused with `forbidden`
    /// (and the policy's rule) when the role may not record it, and with
    /// `not_applicable` (and the workflow's reason) when it would not apply
    /// to the case as it is.
    #[wasm_bindgen(js_name = recordEvent)]
    pub fn record_event(
        &mut self,
        case_id: &str,
        kind: &str,
        data_json: &str,
    ) -> Result<String, JsValue> {
        let id = parse_id(case_id)?;
        let data: BTreeMap<String, String> = serde_json::from_str(data_json)
            .map_err(|e| Refusal::new("invalid_json", format!("event data: {e}")))?;
        let now = now_ms();
        let case: Case = self.inner.read(&id).map_err(Refusal::from)?;
        self.try_event(&case, kind, data.clone(), now)?;
        let (principal, device) = self.me.clone().ok_or_else(not_signed_in)?;
        let by = (principal.user_id.as_str(), device.as_str(), principal.role);
        let mut event = String::new();
        self.inner
            .update::<Case>(&id, |c| event = workflow::append(c, kind, by, now, data))
            .map_err(Refusal::from)?;
        Ok(event)
    }

    /// The event kinds the signed-in user may record on case `case_id` now
    /// and that would apply to it, as a JSON list (`["mediate", "resolve",
    /// "comment"]`): the actions to offer. Kinds that need data are tried
    /// with a typical value (a `small` classification, an assignment to
    /// the user, a `mediated` result).
    pub fn actions(&self, case_id: &str) -> Result<String, JsValue> {
        let id = parse_id(case_id)?;
        let user = self.principal()?.user_id.clone();
        let now = now_ms();
        let case: Case = self.inner.read(&id).map_err(Refusal::from)?;
        let kinds: Vec<&str> = EVENT_KINDS
            .into_iter()
            .filter(|&kind| kind != "report")
            .filter(|&kind| {
                let data: BTreeMap<String, String> = match kind {
                    "classify" => [("class", "small")].into(),
                    "assign" => [("to", user.as_str())].into(),
                    "resolve" => [("result", "mediated")].into(),
                    _ => BTreeMap::new(),
                }
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
                self.try_event(&case, kind, data, now).is_ok()
            })
            .collect();
        Ok(json!(kinds).to_string())
    }

    /// Attaches a file to record `id` in the signed-in user's name, from
    /// this device: keeps `bytes` on the phone (a `file` write), adds the
    /// reference to the record's own list as one local change, and queues
    /// the upload (an `uploads` write). `meta_json` is `{media_type, name?,
    /// taken_at?, caption?, location?}` (`taken_at` in ms, `location` as
    /// `"lat,lng"` or empty). Returns the reference as written, as JSON.
    /// Attaching the same bytes again changes nothing. Refused like an edit
    /// (`forbidden` with the policy's rule, `invalid_record`); then nothing
    /// is kept or queued.
    pub fn attach(&mut self, id: &str, bytes: &[u8], meta_json: &str) -> Result<String, JsValue> {
        let id = parse_id(id)?;
        let meta: AttachMeta = serde_json::from_str(meta_json)
            .map_err(|e| Refusal::new("invalid_json", format!("attachment: {e}")))?;
        if !ATTACHMENT_MEDIA_TYPES.contains(&meta.media_type.as_str()) {
            return Err(Refusal::new(
                "invalid_record",
                format!("files of type {} cannot be attached", meta.media_type),
            )
            .into());
        }
        if bytes.is_empty() || bytes.len() as i64 > MAX_ATTACHMENT_BYTES {
            return Err(Refusal::new(
                "invalid_record",
                format!(
                    "a file of {} bytes cannot be attached (1 to {MAX_ATTACHMENT_BYTES})",
                    bytes.len()
                ),
            )
            .into());
        }
        let (principal, device) = self.me.clone().ok_or_else(not_signed_in)?;
        let attachment = Attachment {
            media_type: meta.media_type,
            name: meta.name,
            taken_at: meta.taken_at,
            author: principal.user_id,
            device,
            location: meta.location,
            caption: meta.caption,
            ..Attachment::default()
        };
        let sha256 = sync_core::replica::sha256_hex(bytes);
        let queued = self.inner.uploads().iter().any(|u| u.sha256 == sha256);
        match self.inner.attach(&id, bytes, attachment) {
            Ok(written) => Ok(json!(written).to_string()),
            Err(e) => {
                // Kept and queued before the record was refused: take both
                // back, unless another record had queued the same bytes.
                if !queued {
                    self.inner.upload_done(&sha256).map_err(Refusal::from)?;
                    self.inner.store_mut().forget_file(&sha256);
                }
                Err(Refusal::from(e).into())
            }
        }
    }

    /// Keeps a file's bytes on the phone and queues their upload for record
    /// `id`, which the caller then makes name them (a case event's files).
    /// Returns the SHA-256, in hex.
    #[wasm_bindgen(js_name = queueFile)]
    pub fn queue_file(
        &mut self,
        id: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, JsValue> {
        let id = parse_id(id)?;
        Ok(self
            .inner
            .queue_file(&id, bytes, media_type)
            .map_err(Refusal::from)?)
    }

    /// JSON `[{sha256, media_type, size, record}]`: every file waiting to
    /// be uploaded, oldest first.
    pub fn uploads(&self) -> String {
        uploads_json(self.inner.uploads())
    }

    /// JSON `[{sha256, media_type, size, record}]`: the queued files the
    /// server takes now (their record reached it as this phone wrote it,
    /// and names them). Read each one's bytes from where the page keeps
    /// them and `PUT /v1/attachments/{sha256}`.
    #[wasm_bindgen(js_name = uploadsReady)]
    pub fn uploads_ready(&self) -> String {
        uploads_json(&self.inner.uploads_ready())
    }

    /// Takes file `sha256` off the upload queue: the server holds it, or
    /// refused it for good. Its bytes stay on the phone.
    #[wasm_bindgen(js_name = uploadDone)]
    pub fn upload_done(&mut self, sha256: &str) -> Result<(), JsValue> {
        Ok(self.inner.upload_done(sha256).map_err(Refusal::from)?)
    }

    /// Starts a sync: call before its first round.
    #[wasm_bindgen(js_name = beginSync)]
    pub fn begin_sync(&mut self) {
        self.run = SyncRun::default();
    }

    /// The body of the next `POST /v1/sync`.
    #[wasm_bindgen(js_name = syncRequest)]
    pub fn sync_request(&mut self) -> Vec<u8> {
        self.inner.round_request(&mut self.run).encode()
    }

    /// Applies a `200` response body to the last request. Returns JSON
    /// `{again, received, errors: [{id, code, message}], dropped}`: while
    /// `again` is true, run another round.
    #[wasm_bindgen(js_name = applyResponse)]
    pub fn apply_response(&mut self, body: &[u8]) -> Result<String, JsValue> {
        let response = SyncResponse::decode(body)
            .map_err(|e| Refusal::new("bad_response", format!("sync response: {e}")))?;
        let again = self
            .inner
            .round_response(&mut self.run, response)
            .map_err(Refusal::from)?;
        let report = self.run.report();
        let errors: Vec<Value> = report
            .errors
            .iter()
            .map(|e| json!({"id": e.id.to_string(), "code": e.code, "message": e.message}))
            .collect();
        let dropped: Vec<String> = report.dropped.iter().map(ToString::to_string).collect();
        Ok(json!({
            "again": again,
            "received": report.received,
            "errors": errors,
            "dropped": dropped,
        })
        .to_string())
    }

    /// JSON `{id: n}`: the records with `n` changes not yet acknowledged.
    pub fn pending(&self) -> String {
        let pending: serde_json::Map<String, Value> = self
            .inner
            .pending()
            .into_iter()
            .map(|(id, changes)| (id.to_string(), changes.len().into()))
            .collect();
        Value::Object(pending).to_string()
    }

    /// JSON `[{id, code, message, changes}]`: edits the server refused, or
    /// that left this device's scope before they were sent, kept for the
    /// user.
    pub fn rejected(&self) -> String {
        let rejected: Vec<Value> = self
            .inner
            .rejected()
            .iter()
            .map(|r| {
                json!({
                    "id": r.id.to_string(),
                    "code": r.code,
                    "message": r.message,
                    "changes": r.changes.len(),
                })
            })
            .collect();
        Value::Array(rejected).to_string()
    }

    /// The writes to persist since the last call, in order, as
    /// `{op: "actor"|"cursor"|"rejected"|"uploads", bytes}`, `{op: "doc",
    /// id, bytes, acked}`, `{op: "remove", id}` and `{op: "file", sha256,
    /// bytes}`.
    #[wasm_bindgen(js_name = takeWrites)]
    pub fn take_writes(&mut self) -> js_sys::Array {
        self.take_journal()
            .into_iter()
            .map(|w| {
                let o = js_sys::Object::new();
                let set = |key: &str, value: JsValue| {
                    // Setting a property on a fresh object cannot fail.
                    let _ = js_sys::Reflect::set(&o, &key.into(), &value);
                };
                let bytes = |b: &[u8]| JsValue::from(js_sys::Uint8Array::from(b));
                match w {
                    Write::Actor(b) => {
                        set("op", "actor".into());
                        set("bytes", bytes(&b));
                    }
                    Write::Cursor(b) => {
                        set("op", "cursor".into());
                        set("bytes", bytes(&b));
                    }
                    Write::Rejected(b) => {
                        set("op", "rejected".into());
                        set("bytes", bytes(&b));
                    }
                    Write::Doc {
                        id,
                        bytes: b,
                        acked,
                    } => {
                        set("op", "doc".into());
                        set("id", id.into());
                        set("bytes", bytes(&b));
                        set("acked", bytes(&acked));
                    }
                    Write::Remove(id) => {
                        set("op", "remove".into());
                        set("id", id.into());
                    }
                    Write::Uploads(b) => {
                        set("op", "uploads".into());
                        set("bytes", bytes(&b));
                    }
                    Write::File { sha256, bytes: b } => {
                        set("op", "file".into());
                        set("sha256", sha256.into());
                        set("bytes", bytes(&b));
                    }
                }
                JsValue::from(o)
            })
            .collect()
    }
}

impl Replica {
    /// The queued writes, for callers in Rust.
    pub fn take_journal(&mut self) -> Vec<Write> {
        self.inner.store_mut().take()
    }

    /// Whether the signed-in user's event of `kind` would be allowed by the
    /// policy and apply to `before`: tried on a copy, nothing written.
    fn try_event(
        &self,
        before: &Case,
        kind: &str,
        data: BTreeMap<String, String>,
        now: i64,
    ) -> Result<(), Refusal> {
        let (principal, device) = self.me.as_ref().ok_or_else(not_signed_in)?;
        let by = (principal.user_id.as_str(), device.as_str(), principal.role);
        let mut after = before.clone();
        let event = workflow::append(&mut after, kind, by, now, data);
        let folded = workflow::fold(&after, &self.deadlines);
        let (before, after) = (AnyRecord::Case(before.clone()), AnyRecord::Case(after));
        policy::check_write(principal, Some(&before), &after)
            .map_err(|d| Refusal::from(ReplicaError::Denied(d)))?;
        match folded.events.iter().find(|e| e.id == event) {
            Some(outcome) if !outcome.applied => Err(Refusal::new(
                "not_applicable",
                outcome.reason.clone().unwrap_or_default(),
            )),
            _ => Ok(()),
        }
    }

    fn principal(&self) -> Result<&Principal, Refusal> {
        self.me.as_ref().map(|(p, _)| p).ok_or_else(not_signed_in)
    }

    fn view_of(
        &self,
        id: &RecordId,
        pending: &BTreeMap<RecordId, Vec<ChangeHash>>,
    ) -> Result<Value, Refusal> {
        let doc = self.inner.document(id).ok_or_else(|| {
            Refusal::new("unknown_record", format!("no record {id} on this device"))
        })?;
        let record = AnyRecord::read(id.kind(), doc)
            .map_err(|e| Refusal::new("invalid_record", e.to_string()))?;
        let case = match &record {
            AnyRecord::Case(c) => serde_json::to_value(workflow::fold(c, &self.deadlines)),
            _ => Ok(Value::Null),
        };
        let record = match &record {
            AnyRecord::Household(h) => serde_json::to_value(h),
            AnyRecord::Case(c) => serde_json::to_value(c),
            AnyRecord::Visit(v) => serde_json::to_value(v),
            AnyRecord::Sensitive(s) => serde_json::to_value(s),
        };
        let (Ok(record), Ok(case)) = (record, case) else {
            return Err(Refusal::new(
                "invalid_record",
                format!("{id} does not read"),
            ));
        };
        Ok(json!({
            "id": id.to_string(),
            "kind": id.kind().as_str(),
            "record": record,
            "pending": pending.get(id).map_or(0, Vec::len),
            "conflicts": conflicts::conflicts(doc),
            "case": case,
        }))
    }
}

fn not_signed_in() -> Refusal {
    Refusal::new("not_signed_in", "sign in first")
}

fn uploads_json(uploads: &[Upload]) -> String {
    let list: Vec<Value> = uploads
        .iter()
        .map(|u| {
            json!({
                "sha256": u.sha256,
                "media_type": u.media_type,
                "size": u.size,
                "record": u.record.to_string(),
            })
        })
        .collect();
    Value::Array(list).to_string()
}

fn parse_id(id: &str) -> Result<RecordId, Refusal> {
    id.parse()
        .map_err(|_| Refusal::new("unknown_record", format!("{id} is not a record id")))
}

fn parse<R: Record + for<'de> Deserialize<'de>>(json: &str) -> Result<R, Refusal> {
    serde_json::from_str(json).map_err(|e| {
        Refusal::new(
            "invalid_json",
            format!("not a {} record: {e}", R::KIND.as_str()),
        )
    })
}

/// Reads the object [`Replica::open`] takes.
fn read_stored(stored: &JsValue) -> Result<Stored, Refusal> {
    let bad = |what: &str| Refusal::new("storage", format!("stored replica: {what}"));
    let get = |o: &JsValue, key: &str| js_sys::Reflect::get(o, &key.into()).unwrap_or_default();
    let bytes = |v: JsValue| -> Option<Vec<u8>> {
        (!v.is_undefined() && !v.is_null()).then(|| js_sys::Uint8Array::new(&v).to_vec())
    };
    let mut out = Stored {
        actor: bytes(get(stored, "actor")).map(ActorId::from),
        cursor: bytes(get(stored, "cursor")),
        ..Stored::default()
    };
    if let Some(rejected) = bytes(get(stored, "rejected")) {
        out.rejected = ciborium::from_reader(rejected.as_slice()).map_err(|_| bad("rejected"))?;
    }
    if let Some(uploads) = bytes(get(stored, "uploads")) {
        out.uploads = ciborium::from_reader(uploads.as_slice()).map_err(|_| bad("uploads"))?;
    }
    let docs = get(stored, "docs");
    if !docs.is_undefined() {
        for doc in js_sys::Array::from(&docs).iter() {
            let id: RecordId = get(&doc, "id")
                .as_string()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| bad("a document id"))?;
            let acked = bytes(get(&doc, "acked")).unwrap_or_default();
            if acked.len() % 32 != 0 {
                return Err(bad("acknowledged heads"));
            }
            let acked = acked
                .chunks_exact(32)
                .map(|h| ChangeHash(h.try_into().expect("32 bytes")))
                .collect();
            let bytes = bytes(get(&doc, "bytes")).ok_or_else(|| bad("document bytes"))?;
            out.docs.insert(id, StoredDoc { bytes, acked });
        }
    }
    Ok(out)
}
