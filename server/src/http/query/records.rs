//! One record at a time: its merged JSON, its history (each change: when,
//! by whom, from which device, which fields) and its open conflicts, with a
//! way to resolve one, which is itself a change merged like any other.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;
use sync_core::automerge::transaction::{CommitOptions, Transactable};
use sync_core::automerge::{
    self, Automerge, Change, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value,
};
use sync_core::doc::{self, AnyRecord};
use sync_core::workflow::{self, CaseState};
use sync_core::{RecordId, RecordKind};

use crate::domain::now_ms;
use crate::engine::sync::{desk_change, principal};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::http::{ApiJson, AppState};
use crate::projection::{self, ConflictRow, item_segment};
use crate::storage::AuditRow;

/// The record routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records/{id}", get(show))
        .route("/v1/records/{id}/history", get(history))
        .route("/v1/records/{id}/conflicts", get(conflicts))
        .route("/v1/records/{id}/conflicts/resolve", post(resolve))
}

/// The OpenAPI description of [`router`]'s routes (see [`crate::http::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, history, conflicts, resolve))]
pub struct Api;

/// A record as merged.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordView {
    /// Record id.
    pub id: String,
    /// `household`, `case`, `visit` or `sensitive`.
    #[schema(value_type = crate::http::schemas::RecordKindName)]
    pub kind: String,
    /// The document's heads, hex.
    pub heads: Vec<String>,
    /// The record as the merged document holds it: the fields of
    /// `sync_core::records` (`Household`, `Case`, `Visit`, `Sensitive`),
    /// enum values by their variant names, text as strings.
    #[schema(value_type = Object)]
    pub record: Json_,
    /// For cases: the state folded from the events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<CaseState>,
}

/// The stored document `id` names, if the caller may read it; anything
/// else answers `404` naming `noun`, so that nobody learns what exists
/// outside their scope.
pub(crate) async fn readable(
    state: &AppState,
    auth: &AuthDevice,
    id: &str,
    noun: &'static str,
) -> Result<(RecordId, Automerge, AnyRecord), AppError> {
    let record_id: RecordId = id.parse().map_err(|_| AppError::Missing(noun))?;
    let principal = principal(&state.engine, auth).await?;
    let snapshot = state
        .engine
        .storage
        .snapshot(id)
        .await?
        .ok_or(AppError::Missing(noun))?;
    let document = doc::load(&snapshot).map_err(AppError::internal)?;
    let record = AnyRecord::read(record_id.kind(), &document).map_err(AppError::internal)?;
    if !principal.can_read(record_id.kind(), &record.meta()) {
        return Err(AppError::Missing(noun));
    }
    if record_id.kind() == RecordKind::Sensitive {
        state
            .engine
            .storage
            .audit(&AuditRow {
                at: now_ms(),
                user_id: auth.user_id.clone(),
                device_id: Some(auth.device_id.clone()),
                action: "read_sensitive".into(),
                target: id.to_owned(),
                detail: "read through the query API".into(),
            })
            .await?;
    }
    Ok((record_id, document, record))
}

/// The whole document as JSON, nested objects bounded as in
/// [`projection::value_json`]: history reads every intermediate state of a
/// document, which no record check has seen.
fn to_json(document: &Automerge) -> Json_ {
    projection::value_json(document, &Value::Object(ObjType::Map), &automerge::ROOT)
}

/// One record as merged
///
/// The record as the merged document holds it, with the document's heads
/// and, for a case, the state folded from its events. A record the caller
/// may not see answers `404`, as if it did not exist. Reading
/// special-population details (`hs_`) is written to the audit log.
#[utoipa::path(
    get,
    path = "/v1/records/{id}",
    operation_id = "showRecord",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Record id: `hh_`, `cs_`, `vs_` or `hs_` and 32 \
        hexadecimal digits. Any other id answers `404`.")),
    responses(
        (status = 200, description = "The record.", body = RecordView),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::RecordNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn show(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<RecordView>, AppError> {
    let (record_id, document, record) = readable(&state, &auth, &id, "record").await?;
    Ok(Json(RecordView {
        id,
        kind: record_id.kind().as_str().to_owned(),
        heads: document.get_heads().iter().map(|h| h.to_string()).collect(),
        record: to_json(&document),
        state: match &record {
            AnyRecord::Case(case) => Some(workflow::fold(case, &state.engine.config.deadlines)),
            _ => None,
        },
    }))
}

/// One change in a record's history.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Position in the server's feed; `null` for a compacted change (one
    /// received before the change log's retention window, kept only in the
    /// record's document).
    #[schema(required = true)]
    pub seq: Option<i64>,
    /// When the server stored it (ms since the epoch); `null` for a
    /// compacted change, whose server time is no longer kept.
    #[schema(required = true)]
    pub received_at: Option<i64>,
    /// When the device made it, by its own clock (ms since the epoch).
    pub made_at: i64,
    /// The user whose device sent it. For a compacted change, the user its
    /// actor is registered to (the same, since a device may only send its
    /// own actors' changes); empty if no device registered the actor.
    pub user_id: String,
    /// That user's display name, when the user exists.
    pub user_name: Option<String>,
    /// The device that sent it (for a compacted change: that registered
    /// its actor; empty if none did).
    pub device_id: String,
    /// Hex Automerge actor id.
    pub actor: String,
    /// Hex change hash.
    pub hash: String,
    /// The fields it changed, as paths: map keys and list item ids joined
    /// by `/` (e.g. `members/m2/phone`); an added or removed item is named
    /// once, not field by field.
    pub fields: Vec<String>,
}

/// A change of a record's history, before its fields are worked out.
struct Listed {
    change: Change,
    seq: Option<i64>,
    received_at: Option<i64>,
    user_id: String,
    device_id: String,
}

/// A record's history
///
/// Every change to the record, oldest first: when the device made it (by
/// its own clock) and when the server stored it, the user and device that
/// sent it, and the fields it changed, as paths of map keys and list item
/// ids (`members/m2/phone`). A change whose value lost to a concurrent one
/// still names the field it wrote. A record the caller may not see answers
/// `404`.
///
/// Changes received before the change log's retention window
/// (`change_retention_days`) are compacted: they are listed first, in
/// causal order, read from the record's document, with `seq` and
/// `received_at` `null` and the user and device that registered their
/// actor. The changes still in the log follow, in feed order.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/history",
    operation_id = "recordHistory",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Record id: `hh_`, `cs_`, `vs_` or `hs_` and 32 \
        hexadecimal digits. Any other id answers `404`.")),
    responses(
        (status = 200, description = "Every change, oldest first: compacted ones (without \
            `seq` and `received_at`) before those still in the change log.",
            body = Vec<HistoryEntry>),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::RecordNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 409, description = "`not_applicable`: the history holds a change that cannot be replayed.", body = crate::http::error::ErrorBody),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn history(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, AppError> {
    let (_, stored, _) = readable(&state, &auth, &id, "record").await?;
    // Read after the snapshot: a change compacted in between is in the
    // snapshot, and one stored in between is in the rows.
    let rows = state.engine.storage.doc_changes(&id).await?;
    let mut logged = Vec::with_capacity(rows.len());
    for row in rows {
        logged.push(Listed {
            change: Change::from_bytes(row.bytes).map_err(AppError::internal)?,
            seq: Some(row.seq),
            received_at: Some(row.received_at),
            user_id: row.user_id,
            device_id: row.device_id,
        });
    }
    let in_log: BTreeSet<automerge::ChangeHash> = logged.iter().map(|l| l.change.hash()).collect();
    let compacted: Vec<Change> = replayable(|| stored.get_changes(&[]))?
        .into_iter()
        .filter(|c| !in_log.contains(&c.hash()))
        .collect();
    let actors = compacted
        .iter()
        .map(|c| c.actor_id().to_hex_string())
        .collect();
    let owners = owners_of(&state, actors).await?;
    let mut listed: Vec<Listed> = compacted
        .into_iter()
        .map(|change| {
            let (device_id, user_id) = owners
                .get(&change.actor_id().to_hex_string())
                .cloned()
                .unwrap_or_default();
            Listed {
                change,
                seq: None,
                received_at: None,
                user_id,
                device_id,
            }
        })
        .collect();
    listed.extend(logged);

    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for l in &listed {
        if !names.contains_key(&l.user_id) {
            let user = state.engine.storage.user(&l.user_id).await?;
            names.insert(l.user_id.clone(), user.map(|u| u.display_name));
        }
    }
    let mut document = Automerge::new();
    let mut before = to_json(&document);
    let mut entries = Vec::with_capacity(listed.len());
    for l in listed {
        let change = l.change;
        // The change's time (seconds) is whatever the phone wrote: it may
        // be anything an i64 holds.
        let made_at = change.timestamp().saturating_mul(1000);
        let hash = change.hash().to_string();
        let actor = change.actor_id().to_hex_string();
        let (after, fields) = replayable(|| {
            let ops = change.decode().operations;
            document.apply_changes([change])?;
            let after = to_json(&document);
            let mut fields = Vec::new();
            diff("", Some(&before), Some(&after), &mut fields);
            // A write that lost to a concurrent one changes nothing
            // visible, but it was still made: name it from the change's
            // own operations.
            for path in written_keys(&document, &ops) {
                let covered = fields
                    .iter()
                    .any(|f| path == *f || path.starts_with(&format!("{f}/")));
                if !covered {
                    fields.push(path);
                }
            }
            Ok::<_, automerge::AutomergeError>((after, fields))
        })?
        .map_err(AppError::internal)?;
        before = after;
        entries.push(HistoryEntry {
            seq: l.seq,
            received_at: l.received_at,
            made_at,
            user_name: names.get(&l.user_id).cloned().flatten(),
            user_id: l.user_id,
            device_id: l.device_id,
            actor,
            hash,
            fields,
        });
    }
    Ok(Json(entries))
}

/// The paths at which `a` and `b` differ. Lists whose items all carry a
/// string `id` are compared item by item by id.
fn diff(path: &str, a: Option<&Json_>, b: Option<&Json_>, out: &mut Vec<String>) {
    let join = |segment: &str| match path {
        "" => segment.to_owned(),
        _ => format!("{path}/{segment}"),
    };
    match (a, b) {
        (a, b) if a == b => {}
        (Some(Json_::Object(a)), Some(Json_::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                diff(&join(key), a.get(key), b.get(key), out);
            }
        }
        (Some(Json_::Array(a)), Some(Json_::Array(b))) => match (keyed(a), keyed(b)) {
            (Some(a), Some(b)) => {
                let ids: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
                for id in ids {
                    diff(&join(id), a.get(id).copied(), b.get(id).copied(), out);
                }
            }
            _ if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    diff(&join(&i.to_string()), Some(x), Some(y), out);
                }
            }
            _ => out.push(path.to_owned()),
        },
        _ => out.push(path.to_owned()),
    }
}

/// The paths of the map keys `ops` wrote, in a document that holds them.
fn written_keys(document: &Automerge, ops: &[automerge::legacy::Op]) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for op in ops {
        let automerge::legacy::Key::Map(key) = &op.key else {
            continue;
        };
        let Ok(obj) = document.import_obj(&op.obj.to_string()) else {
            continue;
        };
        if let Some(path) = path_of(document, &obj) {
            paths.insert(match path.as_str() {
                "" => key.to_string(),
                _ => format!("{path}/{key}"),
            });
        }
    }
    paths.into_iter().collect()
}

/// Where an object sits, as a conflict path.
fn path_of(document: &Automerge, obj: &ObjId) -> Option<String> {
    let mut segments = Vec::new();
    for parent in document.parents(obj).ok()? {
        segments.push(match parent.prop {
            Prop::Map(key) => key,
            Prop::Seq(index) => item_segment(document, &parent.obj, index),
        });
    }
    segments.reverse();
    Some(segments.join("/"))
}

/// Each field that differs between two states of a record, with its value
/// before and after (`null` where it is absent), as [`diff`] names them.
pub(crate) fn field_changes(
    document_before: &Automerge,
    document_after: &Automerge,
) -> Vec<FieldChange> {
    let (before, after) = (to_json(document_before), to_json(document_after));
    let mut paths = Vec::new();
    diff("", Some(&before), Some(&after), &mut paths);
    paths
        .into_iter()
        .map(|path| FieldChange {
            before: value_at(&before, &path),
            after: value_at(&after, &path),
            path,
        })
        .collect()
}

/// One field a change makes differ.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// Where: map keys and list item ids (or positions) joined by `/`.
    pub path: String,
    /// The value before; `null` when the field is new.
    pub before: Json_,
    /// The value after; `null` when the field is removed.
    pub after: Json_,
}

/// The value at a [`diff`] path: map keys, and list items by their `id`
/// (or position).
fn value_at(value: &Json_, path: &str) -> Json_ {
    let mut at = value;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let next = match at {
            Json_::Object(map) => map.get(segment),
            Json_::Array(items) => keyed(items)
                .and_then(|by_id| by_id.get(segment).copied())
                .or_else(|| segment.parse::<usize>().ok().and_then(|i| items.get(i))),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return Json_::Null,
        }
    }
    at.clone()
}

fn keyed(items: &[Json_]) -> Option<BTreeMap<&str, &Json_>> {
    items
        .iter()
        .map(|item| Some((item.get("id")?.as_str()?, item)))
        .collect()
}

/// An open conflict, with who wrote each value.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConflictView {
    /// Where: map keys and list item ids joined by `/`.
    pub path: String,
    /// The value readers see now.
    #[schema(value_type = Value)]
    pub shown: Json_,
    /// Every value written concurrently.
    pub values: Vec<ConflictValueView>,
}

/// One of a conflict's values.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConflictValueView {
    /// The value: a string, number, boolean or null; for items added under
    /// one id, the item with what it holds.
    #[schema(value_type = Value)]
    pub value: Json_,
    /// Whether it is the one shown.
    pub shown: bool,
    /// Hex actor id that wrote it.
    pub actor: String,
    /// The user whose device registered that actor, when known.
    pub user_id: Option<String>,
    /// That device, when known.
    pub device_id: Option<String>,
}

/// The device and user each of these actors is registered to, by actor.
async fn owners_of(
    state: &AppState,
    actors: BTreeSet<String>,
) -> Result<BTreeMap<String, (String, String)>, AppError> {
    let actors: Vec<String> = actors.into_iter().collect();
    Ok(state
        .engine
        .storage
        .actor_owners(&actors)
        .await?
        .into_iter()
        .map(|(actor, device, user)| (actor, (device, user)))
        .collect())
}

async fn views(state: &AppState, rows: Vec<ConflictRow>) -> Result<Vec<ConflictView>, AppError> {
    let actors = rows
        .iter()
        .flat_map(|c| c.values.iter().map(|v| v.actor.clone()))
        .collect();
    let owners = owners_of(state, actors).await?;
    Ok(rows
        .into_iter()
        .map(|c| ConflictView {
            values: c
                .values
                .into_iter()
                .map(|v| {
                    let owner = owners.get(&v.actor);
                    ConflictValueView {
                        shown: v.value == c.shown,
                        value: v.value,
                        user_id: owner.map(|(_, user)| user.clone()),
                        device_id: owner.map(|(device, _)| device.clone()),
                        actor: v.actor,
                    }
                })
                .collect(),
            path: c.path,
            shown: c.shown,
        })
        .collect())
}

/// A record's open conflicts
///
/// Fields two people wrote at once and nobody has written since: every
/// value, the actor, user and device that wrote it, and which one readers
/// see (Automerge's deterministic pick). Also items two phones added to a
/// list under one id, each with what it holds. A record the caller may not
/// see answers `404`.
#[utoipa::path(
    get,
    path = "/v1/records/{id}/conflicts",
    operation_id = "recordConflicts",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Record id: `hh_`, `cs_`, `vs_` or `hs_` and 32 \
        hexadecimal digits. Any other id answers `404`.")),
    responses(
        (status = 200, description = "The open conflicts, by path.", body = Vec<ConflictView>),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::RecordNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn conflicts(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConflictView>>, AppError> {
    readable(&state, &auth, &id, "record").await?;
    let rows = state
        .engine
        .storage
        .conflicts(&id)
        .await?
        .into_iter()
        .map(|(path, shown, values)| {
            Ok(ConflictRow {
                path,
                shown: serde_json::from_str(&shown).map_err(AppError::internal)?,
                values: serde_json::from_str(&values).map_err(AppError::internal)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(Json(views(&state, rows).await?))
}

/// `POST /v1/records/{id}/conflicts/resolve`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// The conflicted field, as listed.
    pub path: String,
    /// The value to keep: usually one of those listed, or a correction. A
    /// string, number, boolean or null.
    #[schema(value_type = Value)]
    pub value: Json_,
}

/// Resolve a conflict
///
/// Writes the chosen value at a conflicted field, over every concurrent
/// value: a change in the caller's name, merged through the same policy and
/// storage path as a phone's, which phones receive at their next sync.
/// Answers with the conflicts that remain.
///
/// Checks, in order: the body (`400 bad_json`, `413`), `value` is a string,
/// number, boolean or null (`422`), the record exists and the caller may
/// see it (`404`), there is an open field conflict at `path` (`409`; items
/// added under one id are resolved by editing the record), the edited
/// record is valid (`422`), the caller's role may make the change (`403`;
/// supervisors only read).
#[utoipa::path(
    post,
    path = "/v1/records/{id}/conflicts/resolve",
    operation_id = "resolveConflict",
    tag = "queries",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Record id: `hh_`, `cs_`, `vs_` or `hs_` and 32 \
        hexadecimal digits. Any other id answers `404`.")),
    request_body(content = Resolution, example = json!({"path": "members/m2/phone", "value": "13911112222"})),
    responses(
        (status = 200, description = "The conflicts that remain.", body = Vec<ConflictView>),
        (status = 400, response = crate::http::schemas::BadJson),
        (status = 403, description = "The caller's role may not make this change.",
            body = crate::http::schemas::ForbiddenError,
            example = json!({"code": "forbidden",
                "message": "a supervisor may not change records (rule read_only)"})),
        (status = 409, description = "There is no open field conflict at `path`.",
            body = crate::http::schemas::NotApplicableError,
            example = json!({"code": "not_applicable",
                "message": "there is no open conflict at \"address/room\""})),
        (status = 413, response = crate::http::schemas::BodyTooLarge),
        (status = 415, response = crate::http::schemas::UnsupportedEncoding),
        (status = 422, description = "`value` is not a scalar, or writing it would leave an \
            invalid record.", body = crate::http::schemas::InvalidFieldError,
            example = json!({"code": "invalid_field",
                "message": "value: must be a string, number, boolean or null"})),
        (status = 401, response = crate::http::schemas::BearerRefused),
        (status = 404, response = crate::http::schemas::RecordNotFound),
        (status = 405, response = crate::http::schemas::MethodNotAllowed),
        (status = 500, response = crate::http::schemas::Internal),
    ),
)]
async fn resolve(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(id): Path<String>,
    ApiJson(resolution): ApiJson<Resolution>,
) -> Result<Json<Vec<ConflictView>>, AppError> {
    let value = scalar(&resolution.value).ok_or(AppError::Invalid {
        field: "value",
        problem: "must be a string, number, boolean or null".into(),
    })?;
    let now = now_ms();
    let remaining = desk_change(&state.engine, &auth, &id, "record", |document, _| {
        let open = projection::conflicts(document);
        let Some(conflict) = open.iter().find(|c| c.path == resolution.path) else {
            return Err(AppError::Refused(format!(
                "there is no open conflict at {:?}",
                resolution.path
            )));
        };
        if conflict
            .values
            .iter()
            .any(|v| v.value.is_object() || v.value.is_array())
        {
            return Err(AppError::Refused(format!(
                "{:?} holds items written at once under one id, not a field value: \
                 edit the record to keep the right one",
                resolution.path
            )));
        }
        let (obj, prop) = locate(document, &resolution.path).ok_or_else(|| {
            AppError::internal(format!("conflict path {:?} not found", resolution.path))
        })?;
        let options = CommitOptions::default()
            .with_time(now.div_euclid(1000))
            .with_message(format!("resolve {}", resolution.path));
        document
            .transact_with(|_| options, |tx| tx.put(&obj, prop, value))
            .map_err(|failure| AppError::internal(failure.error))?;
        Ok(projection::conflicts(document))
    })
    .await?;
    tracing::info!(record = %id, path = %resolution.path, user = %auth.user_id, "conflict resolved");
    Ok(Json(views(&state, remaining).await?))
}

fn scalar(value: &Json_) -> Option<ScalarValue> {
    Some(match value {
        Json_::String(s) => ScalarValue::Str(s.as_str().into()),
        Json_::Bool(b) => ScalarValue::Boolean(*b),
        Json_::Null => ScalarValue::Null,
        Json_::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64()?),
        },
        Json_::Array(_) | Json_::Object(_) => return None,
    })
}

/// The object and property a conflict path names.
fn locate(document: &Automerge, path: &str) -> Option<(ObjId, Prop)> {
    let mut obj = automerge::ROOT;
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next() {
        let prop: Prop = match document.object_type(&obj).ok()? {
            ObjType::Map | ObjType::Table => segment.into(),
            ObjType::List => (0..document.length(&obj))
                .find(|&i| item_segment(document, &obj, i) == segment)?
                .into(),
            ObjType::Text => return None,
        };
        if segments.peek().is_none() {
            return Some((obj, prop));
        }
        match document.get(&obj, prop).ok()?? {
            (Value::Object(_), child) => obj = child,
            _ => return None,
        }
    }
    None
}

/// Runs a step of replaying a record's history. Automerge can panic on a
/// crafted change that the merge took: the history is then refused rather
/// than the server failing.
fn replayable<T>(step: impl FnOnce() -> T) -> Result<T, AppError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).map_err(|_| {
        AppError::Refused("this record's history holds a change that cannot be replayed".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_fields_and_items_by_id() {
        let a = json!({"address": {"room": "301"}, "members": [{"id": "m1", "phone": "1"}]});
        let b = json!({
            "address": {"room": "302"},
            "members": [{"id": "m1", "phone": "2"}, {"id": "m2", "phone": "3"}],
            "notes": "x"
        });
        let mut out = Vec::new();
        diff("", Some(&a), Some(&b), &mut out);
        assert_eq!(
            out,
            ["address/room", "members/m1/phone", "members/m2", "notes"]
        );
    }
}
