//! Administration that changes records: who acts ([`Actor`], the org
//! units they administer) and the decisions on changes held in quarantine
//! ([`decide`]), shared by the HTTP API and the command line.

use std::collections::{HashMap, HashSet};

use sync_core::RecordId;
use sync_core::automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use sync_core::doc::{self, AnyRecord};

use super::sync::{Previous, store_as};
use crate::domain::{QuarantineStatus, now_ms};
use crate::engine::{Engine, EngineError};
use crate::storage::{AuditReader, AuditRow, QuarantineRow};

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id, or `cli` for the command line.
    pub user_id: String,
    /// Device id, when acting through the API.
    pub device_id: Option<String>,
    /// The org units the actor may administer; `None` for the command
    /// line, which may administer everything.
    pub area: Option<HashSet<String>>,
    /// Whether the actor's area is the whole tree (the command line, or an
    /// admin bound to a root unit): only such an actor decides on what
    /// belongs to no unit, and reads audit entries that concern no unit.
    pub whole_tree: bool,
}

impl Actor {
    /// The command line, run by whoever can reach the database.
    pub fn cli() -> Self {
        Self {
            user_id: "cli".into(),
            device_id: None,
            area: None,
            whole_tree: true,
        }
    }

    /// Refuses unless the actor may act on what belongs to `unit`, or, for
    /// `None` (nothing says where it belongs), unless the actor's area is
    /// the whole tree.
    pub fn check_unit(&self, unit: Option<&str>) -> Result<(), EngineError> {
        match unit {
            Some(unit) => self.check_area([unit]),
            None if self.whole_tree => Ok(()),
            None => Err(EngineError::Forbidden(
                "this change names no org unit: only an admin of the whole tree decides on it"
                    .into(),
            )),
        }
    }

    /// The audit entries this actor reads.
    pub fn audit_reader(&self) -> AuditReader<'_> {
        AuditReader {
            user_id: &self.user_id,
            whole_tree: self.whole_tree,
        }
    }

    /// Refuses unless every unit is within the actor's area.
    pub fn check_area<'a>(
        &self,
        units: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), EngineError> {
        let Some(area) = &self.area else {
            return Ok(());
        };
        for unit in units {
            if !area.contains(unit) {
                return Err(EngineError::Forbidden(format!(
                    "org unit {unit:?} is outside the area you administer"
                )));
            }
        }
        Ok(())
    }
}

/// A record with changes held in quarantine, read once: the record as the
/// server stores it (`None`: not yet) and every change of it still held.
pub struct Held {
    /// The record.
    pub id: RecordId,
    /// The record as stored; `None` when the server holds none.
    pub stored: Option<Automerge>,
    /// Its changes still held.
    pub pending: Vec<QuarantineRow>,
}

impl Held {
    /// Reads the record `doc_id` and its held changes.
    pub async fn read(engine: &Engine, doc_id: &str) -> Result<Self, EngineError> {
        let stored = match engine.storage.snapshot(doc_id).await? {
            Some(snapshot) => Some(doc::load(&snapshot).map_err(EngineError::internal)?),
            None => None,
        };
        Ok(Self {
            id: doc_id.parse().map_err(EngineError::internal)?,
            stored,
            pending: engine.storage.pending_quarantine_of(doc_id).await?,
        })
    }

    /// The org unit the record of the held change `entry` belongs to: the
    /// stored record's; for a record the server does not hold yet, the one
    /// the change would give it, applied with the held changes it builds on
    /// to an empty document. `None` when that makes no readable record.
    pub fn unit(&self, entry: &QuarantineRow) -> Result<Option<String>, EngineError> {
        if let Some(stored) = &self.stored {
            let meta = doc::meta(self.id.kind(), stored).map_err(EngineError::internal)?;
            return Ok(Some(meta.org_unit));
        }
        Ok(self
            .with(entry, doc::empty(ActorId::random()))
            .and_then(|document| doc::meta(self.id.kind(), &document).ok())
            .map(|meta| meta.org_unit)
            .filter(|unit| !unit.is_empty()))
    }

    /// `document` with the held change `entry` applied, and the held changes
    /// it builds on; `None` when they do not apply.
    pub fn with(&self, entry: &QuarantineRow, mut document: Automerge) -> Option<Automerge> {
        let by_hash: HashMap<&[u8], &QuarantineRow> = self
            .pending
            .iter()
            .map(|q| (q.hash.as_slice(), q))
            .collect();
        let mut wanted = vec![entry];
        let mut taken = HashSet::new();
        let mut changes = Vec::new();
        while let Some(q) = wanted.pop() {
            if !taken.insert(q.hash.as_slice()) {
                continue;
            }
            changes.push(Change::from_bytes(q.bytes.clone()).ok()?);
            wanted.extend(
                q.deps
                    .chunks_exact(32)
                    .filter_map(|dep| by_hash.get(dep).copied()),
            );
        }
        document.apply_changes(changes).ok()?;
        Some(document)
    }
}

/// Approves (merges, in the name of its author) or discards a quarantined
/// change. A change is approved only after the changes it depends on.
pub async fn decide(
    engine: &Engine,
    actor: &Actor,
    entry_id: &str,
    approve: bool,
) -> Result<QuarantineRow, EngineError> {
    let entry = engine
        .storage
        .quarantine_entry(entry_id)
        .await?
        .ok_or(EngineError::Missing("quarantine entry"))?;
    if entry.status != QuarantineStatus::Pending {
        return Err(EngineError::Conflict("a decision on this change"));
    }
    let id: RecordId = entry.doc_id.parse().map_err(EngineError::internal)?;
    // For a record not stored yet: the unit the held change would give it,
    // read before the write transaction, which it does not need.
    let would_be = Held::read(engine, &entry.doc_id).await?.unit(&entry)?;
    let mut tx = engine.storage.begin(true).await?;
    let stored = match tx.load(&entry.doc_id).await? {
        Some(row) => Some(doc::load(&row.snapshot).map_err(EngineError::internal)?),
        None => None,
    };
    // Approving and discarding are checked alike: the record (stored, or
    // as the held change would make it) must belong to the actor's area.
    let mut units = Vec::new();
    match &stored {
        Some(stored) => {
            let meta = doc::meta(id.kind(), stored).map_err(EngineError::internal)?;
            actor.check_area([meta.org_unit.as_str()])?;
            units.push(meta.org_unit);
        }
        None => {
            actor.check_unit(would_be.as_deref())?;
            units.extend(would_be);
        }
    }
    if approve {
        let existed = stored.is_some();
        let mut document = stored.unwrap_or_else(|| doc::empty(ActorId::random()));
        let missing = entry
            .deps
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
            .any(|dep| document.get_change_by_hash(&dep).is_none());
        if missing {
            return Err(EngineError::Invalid {
                field: "id",
                problem: "approve the changes this one depends on first".into(),
            });
        }
        let base = document.get_heads();
        let change = Change::from_bytes(entry.bytes.clone()).map_err(EngineError::internal)?;
        document
            .apply_changes([change])
            .map_err(EngineError::internal)?;
        let record = AnyRecord::read(id.kind(), &document).map_err(|e| EngineError::Invalid {
            field: "id",
            problem: format!("merging it would leave an invalid record: {e}"),
        })?;
        actor.check_area([record.meta().org_unit.as_str()])?;
        units.push(record.meta().org_unit);
        let author = (entry.user_id.as_str(), entry.device_id.as_str());
        let deadlines = &engine.config.deadlines;
        let previous = match existed {
            true => Previous::Unknown,
            false => Previous::New,
        };
        store_as(
            &mut *tx, author, &id, &document, &base, &record, previous, deadlines,
        )
        .await?;
    }
    let status = match approve {
        true => QuarantineStatus::Approved,
        false => QuarantineStatus::Discarded,
    };
    if !tx
        .decide_quarantine(entry_id, status, &actor.user_id, now_ms())
        .await?
    {
        return Err(EngineError::Conflict("a decision on this change"));
    }
    let decision = AuditRow {
        at: now_ms(),
        user_id: actor.user_id.clone(),
        device_id: actor.device_id.clone(),
        action: format!("quarantine_{status}"),
        target: entry.doc_id.clone(),
        detail: format!("change {} by {}", hex::encode(&entry.hash), entry.user_id),
    };
    tx.audit_in(&decision, &units).await?;
    let feed_end = tx.max_seq().await?;
    tx.commit().await?;
    if approve {
        engine.notifier.publish(feed_end);
    }
    engine
        .storage
        .quarantine_entry(entry_id)
        .await?
        .ok_or(EngineError::Missing("quarantine entry"))
}
