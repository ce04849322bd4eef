//! Changes made at the desk, without a phone: department and centre staff
//! act on cases, and anyone who may edit a record resolves its conflicts.
//! Each is one Automerge change by an actor bound to the caller's session,
//! merged through the same policy and path as a phone's.

use sync_core::RecordId;
use sync_core::automerge::{ActorId, Automerge};
use sync_core::doc::{self, AnyRecord};

use super::{Incoming, Writer, push};
use crate::domain::{AuthDevice, now_ms, random_hex};
use crate::engine::{Engine, EngineError};

/// The first bytes of every desk actor id, which tell a device's desk
/// actor from the other actors registered to it.
const DESK_ACTOR_PREFIX: &[u8] = b"desk";

/// The Automerge actor a device writes desk edits with: random, and
/// registered to the device before its first use, so that no other device
/// can predict it or claim it first (a derived id could be announced by
/// anyone who read the device id in a record's history). A device keeps
/// the one it registered first.
async fn desk_actor(engine: &Engine, auth: &AuthDevice) -> Result<ActorId, EngineError> {
    let prefix = hex::encode(DESK_ACTOR_PREFIX);
    let registered = engine.storage.device_actors(&auth.device_id).await?;
    let mine = registered
        .iter()
        .filter(|a| a.len() == 2 * (DESK_ACTOR_PREFIX.len() + 16) && a.starts_with(&prefix))
        .min();
    if let Some(actor) = mine.and_then(|a| hex::decode(a).ok()) {
        return Ok(ActorId::from(actor));
    }
    // A fresh random id is never taken; should it be, choose another
    // rather than fail.
    for _ in 0..3 {
        let actor = format!("{prefix}{}", random_hex(16));
        let owner = engine
            .storage
            .register_actor(&actor, &auth.device_id, &auth.user_id, now_ms())
            .await?;
        if owner == auth.device_id {
            let bytes = hex::decode(&actor).map_err(EngineError::internal)?;
            return Ok(ActorId::from(bytes));
        }
    }
    Err(EngineError::internal("no free desk actor id"))
}

/// Makes one change to a stored record at the desk, through the same
/// policy and merge path as a phone's change, and commits it. `edit` gets
/// the record's document (with the session's actor) and the record as
/// stored; it returns the value to answer with. A record the caller may
/// not see is [`EngineError::Missing`] naming `noun`. An error of `edit`
/// is returned as it is, and nothing is written.
pub async fn desk_change<T, E: From<EngineError>>(
    engine: &Engine,
    auth: &AuthDevice,
    id: &str,
    noun: &'static str,
    edit: impl FnOnce(&mut Automerge, &AnyRecord) -> Result<T, E>,
) -> Result<T, E> {
    change(engine, auth, id, noun, edit).await?
}

/// [`desk_change`], with the errors of `edit` apart from the engine's.
async fn change<T, E>(
    engine: &Engine,
    auth: &AuthDevice,
    id: &str,
    noun: &'static str,
    edit: impl FnOnce(&mut Automerge, &AnyRecord) -> Result<T, E>,
) -> Result<Result<T, E>, EngineError> {
    let missing = || EngineError::Missing(noun);
    let record_id: RecordId = id.parse().map_err(|_| missing())?;
    let actor = desk_actor(engine, auth).await?;
    let writer = Writer::load(engine, auth, &[]).await?;
    let mut tx = engine.storage.begin(true).await?;
    let stored = tx.load(id).await?.ok_or_else(missing)?;
    let document = doc::load(&stored.snapshot).map_err(EngineError::internal)?;
    let record = AnyRecord::read(record_id.kind(), &document).map_err(EngineError::internal)?;
    if !writer.can_read(record_id.kind(), &record.meta()) {
        return Err(missing());
    }
    let mut document = document.with_actor(actor);
    let answer = match edit(&mut document, &record) {
        Ok(answer) => answer,
        Err(e) => return Ok(Err(e)),
    };
    // Checked before merging, so that a refused desk edit is answered at
    // once and never held in quarantine.
    let after = AnyRecord::read(record_id.kind(), &document).map_err(|e| EngineError::Invalid {
        field: "value",
        problem: e.to_string(),
    })?;
    writer
        .check_write(Some(&record), &after)
        .map_err(|denial| EngineError::Forbidden(denial.to_string()))?;
    let change = document
        .get_last_local_change()
        .ok_or_else(|| EngineError::internal("no change was made"))?;
    let incoming = Incoming::new(record_id, document.get_heads(), vec![change]);
    let outcome = push(&mut *tx, &writer, &incoming).await?;
    if let Some(error) = outcome.error {
        return Err(match error.code.as_str() {
            "forbidden" => EngineError::Forbidden(error.message),
            "invalid_record" => EngineError::Invalid {
                field: "value",
                problem: error.message,
            },
            _ => EngineError::internal(format!("{}: {}", error.code, error.message)),
        });
    }
    let feed_end = tx.max_seq().await?;
    tx.commit().await?;
    engine.notifier.publish(feed_end);
    Ok(Ok(answer))
}
