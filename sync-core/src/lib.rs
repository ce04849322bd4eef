//! gridsync's shared core: what a phone and the server must agree on.
//!
//! - [`id`]: record ids that say their kind;
//! - [`records`]: households, cases and visits as Automerge documents;
//! - [`conflicts`]: fields two devices wrote at once, with every value;
//! - [`doc`]: typed reads and edits, and the check every stored document passes;
//! - [`shape`]: the shape and depth of record documents, checked field by field;
//! - [`protocol`]: the batched sync wire format;
//! - [`role`]: roles and the kinds of case event;
//! - [`policy`]: who may see and change what;
//! - [`workflow`]: the case state machine, folded from the event log;
//! - [`replica`] and [`store`]: the phone's side of sync.
//!
//! No I/O framework, database or HTTP here: this crate builds for phones
//! (including `wasm32-unknown-unknown`) as well as for the server.

#![forbid(unsafe_code)]

pub mod conflicts;
pub mod doc;
pub mod id;
pub mod policy;
pub mod protocol;
pub mod records;
pub mod replica;
pub mod role;
pub mod shape;
pub mod store;
pub mod view;
pub mod workflow;

pub use automerge;
pub use autosurgeon;
pub use id::{RecordId, RecordKind};
pub use replica::{Replica, ReplicaError, SyncError, SyncReport, SyncRun};
pub use store::{FileStore, MemoryStore, Rejected, ReplicaStore, Upload};
