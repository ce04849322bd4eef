//! Storage behind one trait, so that SQLite (embedded, the default) and
//! PostgreSQL can serve the same server.
//!
//! The document tables are an append-only change log plus one snapshot row
//! per document. Every change gets a `seq` from one feed; devices follow the
//! feed with a cursor. A backend must guarantee that a change becomes visible
//! to readers in `seq` order (no reader may see seq N+1 committed while seq N
//! is still to come), or a cursor could skip a change.

use async_trait::async_trait;

pub use crate::domain::{OrgUnitKind, QuarantineStatus};

pub mod files;
pub mod postgres;
pub mod query;
mod sql;
pub use sql::{Backend, SqlStorage};
pub mod sqlite;
mod statement;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique key is taken (the name of the thing that clashed).
    #[error("{0} exists already")]
    Conflict(&'static str),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A user account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Stable id.
    pub id: String,
    /// Login name, unique.
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Role name.
    pub role: String,
    /// Bumped whenever role or org units change.
    pub scope_version: i64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A device a user logged in on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    /// Stable id, carried in every access token.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Set once the device is revoked; it can do nothing after.
    pub revoked_at: Option<i64>,
}

/// A node of the org-unit tree.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
#[schema(as = OrgUnit)]
pub struct OrgUnitRow {
    /// Stable id: lowercase letters, digits, `.` and `-`.
    #[schema(pattern = "^[a-z0-9.-]{1,64}$")]
    pub id: String,
    /// The parent, `None` (`null`) for a root.
    #[schema(required = true)]
    pub parent_id: Option<String>,
    /// Its level.
    pub kind: OrgUnitKind,
    /// Name shown to people.
    pub name: String,
    /// Ids from the root down, each followed by `/` (e.g. `/demo/demo.t1/`).
    /// A unit's subtree is every unit whose path starts with its path.
    pub path: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Which documents a user may receive, as the feed queries need it.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The user.
    pub user_id: String,
    /// Whether the user's role sees its org units' subtrees.
    pub area: bool,
    /// Whether the role receives sensitive details.
    pub sensitive: bool,
    /// Whether the feed finds the scope's documents through their own
    /// index ranges (by org unit, reporter and assignee) instead of walking
    /// every document written since the cursor: the cheaper way when the
    /// area is a few units ([`Scope::narrowed`]).
    pub narrow: bool,
}

impl Scope {
    /// The scope of `user_id` in `role`: decided by the role alone, the
    /// area itself being resolved in the queries.
    pub fn of(user_id: &str, role: sync_core::policy::Role) -> Self {
        Self {
            user_id: user_id.to_owned(),
            area: role.has_area(),
            sensitive: role.sees_sensitive(),
            narrow: false,
        }
    }

    /// This scope, read by its own index ranges when its area holds at
    /// most [`Scope::NARROW_UNITS`] org units (`area_units`).
    ///
    /// The walk passes over every document written since the cursor, in
    /// scope or not, but stops once a page is full; the ranges read only
    /// the scope's documents, all of them since the cursor, and sort them.
    /// A grid worker's or a community's few units are a small part of the
    /// feed, and in a morning rush each answer would otherwise walk what
    /// every phone before it wrote. A township's or the county's area is a
    /// large part, and a first sync of it would read far more than a page.
    pub fn narrowed(self, area_units: usize) -> Self {
        Self {
            narrow: !self.area || area_units <= Self::NARROW_UNITS,
            ..self
        }
    }

    /// Most org units in an area read by its own index ranges: a
    /// community with its grids.
    pub const NARROW_UNITS: usize = 16;
}

/// A change held back by the policy.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = QuarantineEntry)]
pub struct QuarantineRow {
    /// Entry id, `q_` and 24 hexadecimal digits.
    pub id: String,
    /// The record the change belongs to.
    pub doc_id: String,
    /// Change hash, in hexadecimal.
    #[serde(with = "hex::serde")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub hash: Vec<u8>,
    /// The raw change.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Hashes the change depends on, concatenated.
    #[serde(skip)]
    pub deps: Vec<u8>,
    /// Hex actor id: the change's Automerge actor.
    pub actor: String,
    /// Who sent it; an approved change is merged in their name.
    pub user_id: String,
    /// From which device.
    pub device_id: String,
    /// The policy rule that refused the push this change came in (the same
    /// for every change held from one push; see `sync-protocol.md` §9.1).
    pub rule: String,
    /// Why, for people.
    pub message: String,
    /// Milliseconds since the Unix epoch.
    pub received_at: i64,
    /// Where it stands.
    pub status: QuarantineStatus,
    /// The admin who decided (`cli` for the command line); `null` while
    /// pending.
    #[schema(required = true)]
    pub decided_by: Option<String>,
    /// When (milliseconds since the Unix epoch); `null` while pending.
    #[schema(required = true)]
    pub decided_at: Option<i64>,
}

/// One audit entry, as written. The org units it concerns are given
/// beside it ([`Storage::audit_in`]) or found from its target
/// ([`Storage::audit`]).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct AuditRow {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// Who acted; `cli` for the `gridsync admin` command line.
    pub user_id: String,
    /// From which device, when known; `null` for the command line.
    pub device_id: Option<String>,
    /// What they did (see [`AuditEntry::action`]).
    pub action: String,
    /// On what: the id of the org unit, user, device or record acted on.
    pub target: String,
    /// Details, for people. May be empty.
    pub detail: String,
}

/// One audit entry, as read back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// Who acted; `cli` for the `gridsync admin` command line.
    pub user_id: String,
    /// From which device, when known; `null` for the command line.
    #[schema(required = true)]
    pub device_id: Option<String>,
    /// What they did:
    ///
    /// | action | target | recorded when |
    /// |---|---|---|
    /// | `create_org_unit` | org unit | an org unit is created |
    /// | `move_org_unit` | org unit | an org unit is moved (detail: old and new path) |
    /// | `create_user` | user | a user is created (detail: username, role, units) |
    /// | `set_role` | user | a role or set of units is replaced (detail: before and after) |
    /// | `reset_password` | user | a password is replaced |
    /// | `revoke_device` | device | a device is revoked, by a person or because its refresh token was used twice (detail says so) |
    /// | `import_households` | grid | a household ledger is imported (detail: households, members, rows refused) |
    /// | `quarantine` | record | the policy held back changes a device sent (detail: how many, and why) |
    /// | `quarantine_approved` | record | an admin approved a held change |
    /// | `quarantine_discarded` | record | an admin discarded a held change |
    /// | `read_sensitive` | record | special-population details were sent whole to a device |
    /// | `rotate_key` | key id | a token-signing key was added (`gridsync admin rotate-key`) |
    pub action: String,
    /// On what: the id of the org unit, user, device or record acted on.
    pub target: String,
    /// Details, for people. May be empty.
    pub detail: String,
    /// The org units the entry concerns, sorted: the unit created or moved
    /// (with its old and new parent), the units of the user acted on
    /// (before and after), of the owner of the device revoked, of the
    /// record (for one the server does not hold, the units it would belong
    /// to, or those of the user who sent it). Empty for entries that concern
    /// the whole tree (`rotate_key`).
    pub org_units: Vec<String>,
}

impl AuditEntry {
    /// The entry with the units it concerns.
    pub fn new(row: AuditRow, org_units: Vec<String>) -> Self {
        Self {
            at: row.at,
            user_id: row.user_id,
            device_id: row.device_id,
            action: row.action,
            target: row.target,
            detail: row.detail,
            org_units,
        }
    }
}

/// Whose audit entries to read.
#[derive(Debug, Clone)]
pub struct AuditReader<'a> {
    /// The admin: entries concerning a unit of their area.
    pub user_id: &'a str,
    /// Whether the admin also reads entries that concern no unit (the
    /// whole tree).
    pub whole_tree: bool,
}

/// A device's refresh token, found by its hash.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// The device it stands for.
    pub device: DeviceRow,
    /// The hash of the device's current token.
    pub current_hash: String,
    /// Whether it is the device's current token, or one replaced by a
    /// newer one.
    pub state: RefreshState,
}

/// Where a refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// The device's current token, issued then (ms since the epoch).
    Current {
        /// When it was issued.
        issued_at: i64,
    },
    /// Replaced by a newer token then.
    Retired {
        /// When it was replaced.
        retired_at: i64,
        /// Whether it is the one replaced last.
        latest: bool,
    },
}

/// A token-signing key pair.
#[derive(Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    /// Key id, sent as `kid` in every token.
    pub kid: String,
    /// Ed25519 private key, PKCS#8 DER.
    pub private_der: Vec<u8>,
    /// Ed25519 public key, 32 bytes.
    pub public_key: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("private_der", &"[redacted]")
            .finish()
    }
}

/// A stored document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocRow {
    /// `Automerge::save()` of the merged document.
    pub snapshot: Vec<u8>,
    /// Its heads, 32-byte hashes concatenated.
    pub heads: Vec<u8>,
}

/// A document in a device's scope, in the change feed after some position.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedDoc {
    /// Record id.
    pub id: String,
    /// Record kind name.
    pub kind: String,
    /// The seq of its latest change.
    pub seq: i64,
    /// Its heads, 32-byte hashes concatenated.
    pub heads: Vec<u8>,
    /// Whether the device holds it already.
    pub known: bool,
    /// The snapshot, when the device does not hold the document and did
    /// not just write it.
    pub snapshot: Option<Vec<u8>>,
}

/// One change to append.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// Change hash.
    pub hash: [u8; 32],
    /// The raw change chunk.
    pub bytes: Vec<u8>,
    /// Hex actor id.
    pub actor: String,
}

/// What one batch of compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactBatch {
    /// Change rows deleted.
    pub removed: u64,
    /// The horizon after the batch: the highest seq compacted.
    pub horizon: i64,
    /// Whether the batch stopped at its limit, with more to compact.
    pub more: bool,
}

/// A merged document and the new changes that made it.
#[derive(Debug)]
pub struct DocWrite<'a> {
    /// Record id.
    pub id: &'a str,
    /// Record kind name.
    pub kind: &'a str,
    /// The org unit the record belongs to now.
    pub org_unit: &'a str,
    /// For cases: the reporting user.
    pub reporter: Option<&'a str>,
    /// For cases: the user it is assigned to.
    pub assignee: Option<&'a str>,
    /// The merged document, saved.
    pub snapshot: &'a [u8],
    /// Its heads, concatenated.
    pub heads: &'a [u8],
    /// Changes not stored before.
    pub changes: &'a [NewChange],
    /// Who sent them.
    pub user_id: &'a str,
    /// From which device.
    pub device_id: &'a str,
    /// Milliseconds since the Unix epoch.
    pub now: i64,
}

/// Accounts, devices, keys; and transactions over documents.
#[async_trait]
pub trait Storage: query::Queries + files::FileTables + Send + Sync + 'static {
    /// A random id fixed when this database was created: a cursor from
    /// another database is recognised as such.
    async fn instance_id(&self) -> Result<String>;
    /// Adds an org unit; `Conflict("org unit")` if the id is taken.
    async fn insert_org_unit(&self, unit: &OrgUnitRow) -> Result<()>;
    /// Finds an org unit.
    async fn org_unit(&self, id: &str) -> Result<Option<OrgUnitRow>>;
    /// The whole tree, by path.
    async fn org_units(&self) -> Result<Vec<OrgUnitRow>>;
    /// Moves `unit` (with its subtree) under `parent` and bumps every
    /// user's scope version.
    async fn move_org_unit(&self, unit: &OrgUnitRow, parent: &OrgUnitRow) -> Result<()>;
    /// Adds a user bound to `units`; `Conflict("username")` if the name is
    /// taken.
    async fn insert_user(&self, user: &UserRow, units: &[String]) -> Result<()>;
    /// Replaces a user's role and units and bumps their scope version.
    async fn set_role(&self, user_id: &str, role: &str, units: &[String]) -> Result<()>;
    /// Replaces a user's password hash.
    async fn set_password(&self, user_id: &str, hash: &str) -> Result<()>;
    /// The units a user is bound to.
    async fn user_units(&self, user_id: &str) -> Result<Vec<String>>;
    /// Every unit in the subtrees of the user's units.
    async fn area(&self, user_id: &str) -> Result<Vec<String>>;
    /// Every user.
    async fn users(&self) -> Result<Vec<UserRow>>;
    /// Finds a user by login name.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>>;
    /// Finds a user by id.
    async fn user(&self, id: &str) -> Result<Option<UserRow>>;
    /// Adds a device with the hash of its refresh token.
    async fn insert_device(&self, device: &DeviceRow, refresh_token_hash: &str) -> Result<()>;
    /// Finds a device by id.
    async fn device(&self, id: &str) -> Result<Option<DeviceRow>>;
    /// Finds a device by the hash of its refresh token.
    async fn device_by_refresh_hash(&self, hash: &str) -> Result<Option<DeviceRow>>;
    /// Finds a refresh token, current or replaced, by its hash.
    async fn refresh_token(&self, hash: &str) -> Result<Option<RefreshToken>>;
    /// Replaces a device's refresh token `current` by `new_hash`, issued
    /// `now`, and keeps `current` as replaced; forgets tokens replaced
    /// before `forget_before`. Only while `current` is still the device's
    /// token and the device is not revoked: returns whether it replaced it.
    async fn rotate_refresh_token(
        &self,
        device_id: &str,
        current: &str,
        new_hash: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<bool>;
    /// A user's devices, or everyone's.
    async fn devices(&self, user_id: Option<&str>) -> Result<Vec<DeviceRow>>;
    /// Marks a device revoked (once; later calls keep the first time).
    async fn revoke_device(&self, id: &str, at: i64) -> Result<()>;
    /// Registers `actor` to a device unless it is registered already;
    /// returns the device it belongs to.
    async fn register_actor(
        &self,
        actor: &str,
        device_id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<String>;
    /// The actors registered to a device.
    async fn device_actors(&self, device_id: &str) -> Result<Vec<String>>;
    /// Appends to the audit log. The entry concerns the org unit of the
    /// record it names; for a record the server does not hold, or any other
    /// target, the units of the user who acted (none for the command line).
    async fn audit(&self, entry: &AuditRow) -> Result<()>;
    /// Appends to the audit log an entry concerning these org units.
    async fn audit_in(&self, entry: &AuditRow, org_units: &[String]) -> Result<()>;
    /// The newest audit entries `reader` reads, at most `limit`.
    async fn audit_log(&self, reader: &AuditReader<'_>, limit: i64) -> Result<Vec<AuditEntry>>;
    /// Quarantined changes with a status, oldest first.
    async fn quarantined(&self, status: QuarantineStatus) -> Result<Vec<QuarantineRow>>;
    /// At most `limit` quarantined changes with a status, oldest first,
    /// after `(received_at, id)`.
    async fn quarantine_page(
        &self,
        status: QuarantineStatus,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>>;
    /// The pending quarantined changes to one record.
    async fn pending_quarantine_of(&self, doc_id: &str) -> Result<Vec<QuarantineRow>>;
    /// One quarantined change.
    async fn quarantine_entry(&self, id: &str) -> Result<Option<QuarantineRow>>;
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    /// Adds a signing key.
    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
    /// How many documents are stored.
    async fn document_count(&self) -> Result<i64>;
    /// Refreshes the query planner's statistics (after a bulk load).
    async fn analyze(&self) -> Result<()>;
    /// One document's snapshot.
    async fn snapshot(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Starts a transaction over documents. A write transaction excludes
    /// every other writer until it ends; while it waits for its turn it
    /// holds no connection.
    async fn begin(&self, write: bool) -> Result<Box<dyn DocTx>>;
}

/// A transaction over documents. Dropped without [`DocTx::commit`], it rolls
/// back.
#[async_trait]
pub trait DocTx: Send {
    /// The stored copies of these documents, read together (a document
    /// not stored is absent).
    async fn load_many(
        &mut self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, DocRow>>;
    /// The heads of these documents as this transaction has them (a
    /// document not stored is absent).
    async fn heads(&mut self, ids: &[String])
    -> Result<std::collections::HashMap<String, Vec<u8>>>;
    /// What decides who may see these documents (their org unit, and a
    /// case's reporter and assignee), by id, with their kind, as this
    /// transaction has them (a document not stored is absent).
    async fn metas(
        &mut self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (String, sync_core::doc::DocMeta)>>;
    /// Loads one document, as this transaction has it.
    async fn load(&mut self, id: &str) -> Result<Option<DocRow>>;
    /// Appends new changes to the log and replaces the document's snapshot.
    /// The write may be held and sent with others' before the transaction
    /// next reads the feed or commits.
    async fn save(&mut self, write: DocWrite<'_>) -> Result<()>;
    /// The highest seq in the feed (0 when empty).
    async fn max_seq(&mut self) -> Result<i64>;
    /// Documents in `scope` whose latest change is after `after`, in feed
    /// order, at most `limit`, with snapshots of those `device` does not
    /// hold (as confirmed by its having received response `round`), except
    /// those whose latest change is in `own`, the seqs `(first, last]` the
    /// caller's round wrote: the device sent them.
    async fn feed(
        &mut self,
        scope: &Scope,
        device: &str,
        round: i64,
        after: i64,
        limit: i64,
        own: (i64, i64),
    ) -> Result<Vec<FeedDoc>>;
    /// Documents sent to `device` and not dropped that are no longer in
    /// `scope`, among those changed after `since`.
    async fn out_of_scope(
        &mut self,
        scope: &Scope,
        device: &str,
        since: i64,
    ) -> Result<Vec<String>>;
    /// Documents `device` was told to drop, with the response that told it.
    async fn drops(&mut self, device: &str) -> Result<Vec<(String, i64)>>;
    /// Forgets documents whose drop `device` has confirmed.
    async fn forget(&mut self, device: &str, doc_ids: &[String]) -> Result<()>;
    /// Records that response `round` sends these documents to `device`.
    async fn remember(&mut self, device: &str, doc_ids: &[String], round: i64) -> Result<()>;
    /// Records that response `round` tells `device` to drop these documents.
    async fn mark_dropped(&mut self, device: &str, doc_ids: &[String], round: i64) -> Result<()>;
    /// Holds changes back in quarantine (ignoring ones held already).
    async fn quarantine(&mut self, rows: &[QuarantineRow]) -> Result<()>;
    /// Records an admin's decision on a still pending quarantined change;
    /// false when it was decided already.
    async fn decide_quarantine(
        &mut self,
        id: &str,
        status: QuarantineStatus,
        by: &str,
        at: i64,
    ) -> Result<bool>;
    /// Appends to the audit log inside this transaction, as
    /// [`Storage::audit`] does.
    async fn audit(&mut self, entry: &AuditRow) -> Result<()>;
    /// Appends to the audit log inside this transaction an entry concerning
    /// these org units.
    async fn audit_in(&mut self, entry: &AuditRow, org_units: &[String]) -> Result<()>;
    /// The changes with `base < seq <= upto` of these documents, as
    /// `(doc_id, bytes)` in feed order.
    async fn changes_between(
        &mut self,
        doc_ids: &[String],
        base: i64,
        upto: i64,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// The compaction horizon: every change with a seq at or below it is
    /// gone from the change log, every one above it is still there (0:
    /// nothing compacted).
    async fn compacted_seq(&mut self) -> Result<i64>;
    /// Deletes from the change log at most `limit` changes received before
    /// `cutoff` (ms since the epoch), oldest seq first, stopping at the
    /// first one received at or after it, and moves the horizon past them.
    /// The actor of a deleted change that no device has registered is
    /// registered to the device the change names, so that the change stays
    /// attributable from the snapshot. Needs a write transaction.
    async fn compact(&mut self, cutoff: i64, limit: i64, now: i64) -> Result<CompactBatch>;
    /// Replaces the rows document `id` of `kind` projects to. With the
    /// projection `before` the change (empty for a new document), only the
    /// parts that differ are written; with `None`, all of them.
    async fn project(
        &mut self,
        id: &str,
        kind: &str,
        before: Option<&crate::projection::Projection>,
        projection: &crate::projection::Projection,
    ) -> Result<()>;
    /// Makes everything durable.
    async fn commit(self: Box<Self>) -> Result<()>;
}
