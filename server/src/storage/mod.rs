//! Storage behind one trait, so that SQLite (embedded, the default) and
//! PostgreSQL can serve the same server.
//!
//! The document tables are an append-only change log plus one snapshot row
//! per document. Every change gets a `seq` from one feed; devices follow the
//! feed with a cursor. A backend must guarantee that a change becomes visible
//! to readers in `seq` order (no reader may see seq N+1 committed while seq N
//! is still to come), or a cursor could skip a change.

use async_trait::async_trait;

pub mod postgres;
mod sql;
pub mod sqlite;

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
    /// The org unit the user works in.
    pub org_unit: String,
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

/// A document in the change feed after some position.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedDoc {
    /// Record id.
    pub id: String,
    /// The seq of its first change.
    pub first_seq: i64,
    /// The seq of its latest change.
    pub seq: i64,
    /// Its heads, 32-byte hashes concatenated.
    pub heads: Vec<u8>,
    /// The snapshot, only when asked for (the device has none of it).
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

/// A merged document and the new changes that made it.
#[derive(Debug)]
pub struct DocWrite<'a> {
    /// Record id.
    pub id: &'a str,
    /// Record kind name.
    pub kind: &'a str,
    /// The org unit the record belongs to now.
    pub org_unit: &'a str,
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
pub trait Storage: Send + Sync + 'static {
    /// A random id fixed when this database was created: a cursor from
    /// another database is recognised as such.
    async fn instance_id(&self) -> Result<String>;
    /// Adds a user; `Conflict("username")` if the name is taken.
    async fn insert_user(&self, user: &UserRow) -> Result<()>;
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
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    /// Adds a signing key.
    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
    /// How many documents are stored.
    async fn document_count(&self) -> Result<i64>;
    /// Starts a transaction over documents. A write transaction excludes
    /// other writers of the same documents until it ends.
    async fn begin(&self, write: bool) -> Result<Box<dyn DocTx>>;
}

/// A transaction over documents. Dropped without [`DocTx::commit`], it rolls
/// back.
#[async_trait]
pub trait DocTx: Send {
    /// Loads one document.
    async fn load(&mut self, id: &str) -> Result<Option<DocRow>>;
    /// Appends new changes to the log and replaces the document's snapshot.
    async fn save(&mut self, write: DocWrite<'_>) -> Result<()>;
    /// The highest seq in the feed (0 when empty).
    async fn max_seq(&mut self) -> Result<i64>;
    /// Documents whose latest change is after `after`, in feed order, at
    /// most `limit`; with snapshots for those whose first change is after
    /// `base` (the reader has none of them).
    async fn feed(&mut self, base: i64, after: i64, limit: i64) -> Result<Vec<FeedDoc>>;
    /// The changes with `base < seq <= upto`, in feed order, as
    /// `(document id, change bytes)`.
    async fn changes_between(&mut self, base: i64, upto: i64) -> Result<Vec<(String, Vec<u8>)>>;
    /// Makes everything durable.
    async fn commit(self: Box<Self>) -> Result<()>;
}
