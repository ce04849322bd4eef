//! The engine: what the server does with records, apart from how it is
//! asked. A sync round and its merge ([`sync`]), the desk's changes
//! ([`sync::desk_change`]), the decisions on quarantined changes
//! ([`admin`]), attached files ([`attachments`]), bulk writes ([`bulk`]),
//! reindexing ([`reindex`]), compaction ([`compaction`]), and the
//! announcement that the feed grew ([`notify`]).
//!
//! It knows nothing of HTTP: it takes an [`Engine`] and answers with
//! [`EngineError`], which the HTTP layer turns into status codes.

pub mod admin;
pub mod attachments;
pub mod bulk;
pub mod compaction;
pub mod notify;
pub mod reindex;
pub mod sync;

use std::sync::Arc;

use crate::config::Config;
use crate::storage::{Storage, StorageError};

/// What the engine works with: the database, the settings, and the parts
/// an instance shares between requests. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// Settings.
    pub config: Arc<Config>,
    /// The database's instance id, first 8 bytes: stamped into cursors.
    pub instance: [u8; 8],
    /// Tells connected devices that documents changed.
    pub notifier: notify::Notifier,
    /// Attached files and their blob store.
    pub files: attachments::Files,
    /// The sync rounds waiting to write, committed together.
    pub commits: Arc<sync::Commits>,
}

/// Why the engine refused or failed a request. Each kind of refusal is a
/// variant the HTTP layer maps to its status and code; everything else is
/// [`EngineError::Storage`] or [`EngineError::Internal`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A sync message that is not acceptable (cursor, actors).
    #[error("{0}")]
    BadSyncMessage(String),
    /// A sync request carrying more documents than the server takes.
    #[error("{0}")]
    TooManyDocuments(String),
    /// A sync request whose changes hold more operations than the server
    /// takes.
    #[error("{0}")]
    TooManyOperations(String),
    /// A field value that is not acceptable.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// It was done already, or exists already.
    #[error("{0} exists already")]
    Conflict(&'static str),
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist, or the user may not see it.
    #[error("{0} not found")]
    Missing(&'static str),
    /// The database failed or refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A fault of the server's.
    #[error("{0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EngineError {
    /// A fault of the server's, with what went wrong for the log.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EngineError::Internal(e.into())
    }
}
