//! `POST /v1/sync`: one round of the batched sync protocol
//! (`api-spec/sync-protocol.md`).
//!
//! A round merges what the device sent, commits, and only then answers with
//! what the device lacks: for documents it sent, exactly the changes missing
//! from its heads; for the rest, whatever the feed holds past its cursor
//! (whole snapshots for documents it has never seen). A document that fails
//! to decode, apply or validate is answered with an error and leaves nothing
//! behind; the rest of the batch still merges.

use std::collections::{BTreeMap, HashSet};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sync_core::automerge::sync::{Message as AmMessage, State as AmState, SyncDoc};
use sync_core::automerge::{Automerge, Change, ChangeHash, ReadDoc};
use sync_core::protocol::{
    AmSync, CONTENT_TYPE, DecodeError, DocError, DocPull, DocPush, Heads, PROTOCOL_VERSION,
    SyncRequest, SyncResponse,
};
use sync_core::{RecordId, RecordKind};

use crate::auth::AuthDevice;
use crate::error::AppError;
use crate::storage::{DocTx, DocWrite, NewChange};
use crate::{AppState, now_ms};

/// The sync route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", post(sync))
}

#[tracing::instrument(
    name = "sync_round",
    skip_all,
    fields(user = %auth.user_id, device = %auth.device_id, docs_up, docs_down, errors)
)]
async fn sync(
    State(state): State<AppState>,
    auth: AuthDevice,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(CONTENT_TYPE)) {
        return Err(AppError::UnsupportedMediaType(CONTENT_TYPE));
    }
    let request = SyncRequest::decode(&body?).map_err(|e| match e {
        DecodeError::Version(_) => AppError::UnsupportedVersion(e.to_string()),
        DecodeError::Malformed(_) => AppError::BadSyncMessage(e.to_string()),
    })?;
    let span = tracing::Span::current();
    span.record("docs_up", request.docs.len() + request.am_sync.len());
    let response = round(&state, &auth, request).await?;
    span.record("docs_down", response.docs.len());
    span.record("errors", response.errors.len());
    if !response.errors.is_empty() {
        tracing::warn!(errors = ?response.errors, "documents refused");
    }
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        response.encode(),
    )
        .into_response())
}

/// Where a device stands in the feed. Encoded as 24 bytes: the database's
/// instance id (8, so a cursor from another database restarts from zero),
/// `base` and `after` (8 each, big-endian).
///
/// In steady state `base == after`: the device holds every change up to
/// that seq. While a large answer is paged, `base` stays where the device
/// started and `after` advances over the documents already sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    base: i64,
    after: i64,
}

impl Cursor {
    const START: Cursor = Cursor { base: 0, after: 0 };

    /// Reads a device's cursor; `None` for one from another database, which
    /// the device must be told of.
    fn decode(bytes: Option<&[u8]>, instance: [u8; 8]) -> Result<Option<Self>, AppError> {
        let Some(bytes) = bytes else {
            return Ok(Some(Self::START));
        };
        let bad = || AppError::BadSyncMessage("cursor is not one this server issued".into());
        if bytes.len() != 24 {
            return Err(bad());
        }
        if bytes[..8] != instance {
            return Ok(None);
        }
        let base = i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let after = i64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if base < 0 || after < base {
            return Err(bad());
        }
        Ok(Some(Self { base, after }))
    }

    fn encode(self, instance: [u8; 8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&instance);
        out.extend_from_slice(&self.base.to_be_bytes());
        out.extend_from_slice(&self.after.to_be_bytes());
        out
    }
}

/// A document merged in this round, kept to answer from.
struct Merged {
    doc: Automerge,
    device_heads: Vec<ChangeHash>,
}

/// An incoming document, decoded.
struct Incoming {
    id: RecordId,
    heads: Vec<ChangeHash>,
    changes: Vec<Change>,
}

fn doc_error(id: &RecordId, code: &str, message: impl Into<String>) -> DocError {
    DocError {
        id: id.clone(),
        code: code.into(),
        message: message.into(),
        change: None,
    }
}

/// Decodes every change of a push; a corrupt one refuses the document.
fn decode_push(push: DocPush) -> Result<Incoming, DocError> {
    let mut changes = Vec::with_capacity(push.changes.len());
    for (i, bytes) in push.changes.into_iter().enumerate() {
        let change = Change::from_bytes(bytes.into_vec()).map_err(|e| {
            doc_error(
                &push.id,
                "corrupt_change",
                format!("change {i} is not a valid Automerge change: {e}"),
            )
        })?;
        changes.push(change);
    }
    Ok(Incoming {
        id: push.id,
        heads: push.heads.0,
        changes,
    })
}

/// Runs one sync round for `auth`.
pub async fn round(
    state: &AppState,
    auth: &AuthDevice,
    request: SyncRequest,
) -> Result<SyncResponse, AppError> {
    let instance = state.instance;
    let cursor = Cursor::decode(request.cursor.as_deref().map(|c| &c[..]), instance)?;
    let mut errors = Vec::new();
    let mut incoming = Vec::new();
    let mut seen = HashSet::new();
    for push in request.docs {
        if !seen.insert(push.id.clone()) {
            errors.push(doc_error(
                &push.id,
                "duplicate_document",
                "document sent twice in one request",
            ));
            continue;
        }
        match decode_push(push) {
            Ok(doc) => incoming.push(doc),
            Err(e) => errors.push(e),
        }
    }
    let write = !incoming.is_empty() || !request.am_sync.is_empty();
    let mut tx = state.storage.begin(write).await?;
    // Writers exclude each other, so the feed grows here only by our writes.
    let feed_before = tx.max_seq().await?;
    // A cursor from another database, or past the end of the feed (the
    // database went back in time, restored from a backup): start the device
    // over and say so. Its replica then offers again every change the
    // server no longer has.
    let (cursor, reset) = match cursor {
        Some(c) if c.after <= feed_before => (c, false),
        _ => {
            tracing::warn!(
                feed = feed_before,
                "unknown cursor; sending everything again"
            );
            (Cursor::START, true)
        }
    };
    let mut merged = BTreeMap::new();
    for doc in incoming {
        let id = doc.id.clone();
        match merge(&mut *tx, auth, doc).await? {
            Ok(m) => {
                merged.insert(id, m);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut am_replies = Vec::new();
    for msg in request.am_sync {
        match am_sync_round(&mut *tx, auth, msg).await? {
            Ok(reply) => am_replies.push(reply),
            Err(e) => errors.push(e),
        }
    }
    let (docs, more, next) = answer(&mut *tx, state.config.sync_page_docs, cursor, &merged).await?;
    let feed_after = if write {
        tx.max_seq().await?
    } else {
        feed_before
    };
    tx.commit().await?;
    if feed_after > feed_before {
        state.notifier.publish(feed_after).await;
    }
    Ok(SyncResponse {
        v: PROTOCOL_VERSION,
        cursor: serde_bytes::ByteBuf::from(next.encode(instance)),
        more,
        reset,
        docs,
        errors,
        am_sync: am_replies,
    })
}

/// Loads a stored document, or an empty one.
async fn load(tx: &mut dyn DocTx, id: &RecordId) -> Result<Automerge, AppError> {
    match tx.load(&id.to_string()).await? {
        Some(row) => Automerge::load(&row.snapshot).map_err(AppError::internal),
        None => Ok(Automerge::new()),
    }
}

/// Applies a document's changes to its stored state and stores the result
/// if it is still a valid record. The outer error is the server's fault; the
/// inner one refuses the document.
async fn merge(
    tx: &mut dyn DocTx,
    auth: &AuthDevice,
    incoming: Incoming,
) -> Result<Result<Merged, DocError>, AppError> {
    let id = incoming.id;
    let mut doc = load(tx, &id).await?;
    let before = doc.get_heads();
    if let Err(e) = doc.apply_changes(incoming.changes) {
        return Ok(Err(doc_error(
            &id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        )));
    }
    if let Some(refusal) = missing_dependencies(&id, &doc) {
        return Ok(Err(refusal));
    }
    if let Err(refusal) = store(tx, auth, &id, &doc, &before).await? {
        return Ok(Err(refusal));
    }
    Ok(Ok(Merged {
        doc,
        device_heads: incoming.heads,
    }))
}

/// The refusal for a document holding changes it cannot apply yet.
fn missing_dependencies(id: &RecordId, doc: &Automerge) -> Option<DocError> {
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

/// Validates a merged document and writes the changes it gained since
/// `before` (its heads as loaded). The inner error refuses the document.
async fn store(
    tx: &mut dyn DocTx,
    auth: &AuthDevice,
    id: &RecordId,
    doc: &Automerge,
    before: &[ChangeHash],
) -> Result<Result<(), DocError>, AppError> {
    if doc.get_heads() == before {
        return Ok(Ok(()));
    }
    let new_changes: Vec<NewChange> = doc
        .get_changes(before)
        .iter()
        .map(|c| NewChange {
            hash: c.hash().0,
            bytes: c.raw_bytes().to_vec(),
            actor: c.actor_id().to_hex_string(),
        })
        .collect();
    let org_unit = match org_unit_of(id.kind(), doc) {
        Ok(unit) => unit,
        Err(e) => return Ok(Err(doc_error(id, "invalid_record", e.to_string()))),
    };
    let heads: Vec<u8> = doc.get_heads().iter().flat_map(|h| h.0).collect();
    tx.save(DocWrite {
        id: &id.to_string(),
        kind: id.kind().as_str(),
        org_unit: &org_unit,
        snapshot: &doc.save(),
        heads: &heads,
        changes: &new_changes,
        user_id: &auth.user_id,
        device_id: &auth.device_id,
        now: now_ms(),
    })
    .await?;
    Ok(Ok(()))
}

/// Checks the document holds a valid record of its kind and returns the org
/// unit it belongs to.
fn org_unit_of(kind: RecordKind, doc: &Automerge) -> Result<String, sync_core::doc::DocError> {
    use sync_core::doc::read;
    use sync_core::records::{Case, Household, Visit};
    Ok(match kind {
        RecordKind::Household => read::<Household>(doc)?.org_unit,
        RecordKind::Case => read::<Case>(doc)?.org_unit,
        RecordKind::Visit => read::<Visit>(doc)?.org_unit,
    })
}

/// One stateless step of Automerge's own sync protocol for one document:
/// the fallback for devices that cannot state their heads.
async fn am_sync_round(
    tx: &mut dyn DocTx,
    auth: &AuthDevice,
    msg: AmSync,
) -> Result<Result<AmSync, DocError>, AppError> {
    let id = msg.id;
    let message = match AmMessage::decode(&msg.message) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Err(doc_error(
                &id,
                "bad_am_sync_message",
                format!("not an Automerge sync message: {e}"),
            )));
        }
    };
    let mut doc = load(tx, &id).await?;
    let before = doc.get_heads();
    let mut am_state = AmState::new();
    if let Err(e) = doc.receive_sync_message(&mut am_state, message) {
        return Ok(Err(doc_error(
            &id,
            "invalid_change",
            format!("changes do not apply: {e}"),
        )));
    }
    if let Err(refusal) = store(tx, auth, &id, &doc, &before).await? {
        return Ok(Err(refusal));
    }
    let reply = doc
        .generate_sync_message(&mut am_state)
        .map(|m| m.encode())
        .unwrap_or_default();
    Ok(Ok(AmSync {
        id,
        message: serde_bytes::ByteBuf::from(reply),
    }))
}

/// Builds the documents going down, whether more remain, and the next
/// cursor.
async fn answer(
    tx: &mut dyn DocTx,
    page: usize,
    cursor: Cursor,
    merged: &BTreeMap<RecordId, Merged>,
) -> Result<(Vec<DocPull>, bool, Cursor), AppError> {
    let limit = i64::try_from(page).unwrap_or(i64::MAX);
    let mut feed = tx.feed(cursor.base, cursor.after, limit + 1).await?;
    let more = feed.len() > page;
    feed.truncate(page);
    let next = match feed.last() {
        Some(last) if more => Cursor {
            base: cursor.base,
            after: last.seq,
        },
        Some(last) => Cursor {
            base: last.seq,
            after: last.seq,
        },
        None => Cursor {
            base: cursor.after,
            after: cursor.after,
        },
    };

    let mut docs = Vec::with_capacity(feed.len() + merged.len());
    for (id, m) in merged {
        docs.push(DocPull {
            id: id.clone(),
            heads: Heads(m.doc.get_heads()),
            chunks: m
                .doc
                .get_changes(&m.device_heads)
                .iter()
                .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
                .collect(),
        });
    }

    let mut by_log = BTreeMap::new();
    for row in feed {
        let Ok(id) = row.id.parse::<RecordId>() else {
            return Err(AppError::internal(format!(
                "stored document id {:?} is malformed",
                row.id
            )));
        };
        if merged.contains_key(&id) {
            continue;
        }
        let heads = Heads(
            row.heads
                .chunks_exact(32)
                .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
                .collect(),
        );
        match row.snapshot {
            Some(snapshot) => docs.push(DocPull {
                id,
                heads,
                chunks: vec![serde_bytes::ByteBuf::from(snapshot)],
            }),
            None => {
                by_log.insert(row.id, (id, heads, Vec::new()));
            }
        }
    }
    if !by_log.is_empty() {
        for (doc_id, bytes) in tx.changes_between(cursor.base, next.after).await? {
            if let Some((_, _, chunks)) = by_log.get_mut(&doc_id) {
                chunks.push(serde_bytes::ByteBuf::from(bytes));
            }
        }
        docs.extend(
            by_log
                .into_values()
                .map(|(id, heads, chunks)| DocPull { id, heads, chunks }),
        );
    }

    Ok((docs, more, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_checks_its_origin() {
        let here = [1; 8];
        let c = Cursor { base: 5, after: 9 };
        let bytes = c.encode(here);
        assert_eq!(Cursor::decode(Some(&bytes), here).unwrap(), Some(c));
        assert_eq!(Cursor::decode(Some(&bytes), [2; 8]).unwrap(), None);
        assert_eq!(Cursor::decode(None, here).unwrap(), Some(Cursor::START));
        assert!(Cursor::decode(Some(&bytes[..10]), here).is_err());
        let backwards = Cursor { base: 9, after: 5 }.encode(here);
        assert!(Cursor::decode(Some(&backwards), here).is_err());
    }
}
