//! Fields written concurrently.
//!
//! Automerge keeps every value two devices wrote to one field at once and
//! shows one of them; nothing typed is lost. [`conflicts`] lists each such
//! field with all its values, so that a person can review it: the server
//! in its queries and the console, a phone on the record's page.

use automerge::{Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::shape::MAX_DEPTH;
use crate::view::{Item, Object, View};

/// A field written concurrently: every value, and the one shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRow {
    /// Where: map keys and list item ids (or positions) joined by `/`,
    /// e.g. `members/m2/phone`.
    pub path: String,
    /// The value readers see.
    pub shown: serde_json::Value,
    /// Every value, each with the actor that wrote it.
    pub values: Vec<ConflictValue>,
}

/// One of a conflicted field's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value; a map or list with what it holds.
    pub value: serde_json::Value,
    /// Hex Automerge actor id of the change that wrote it.
    pub actor: String,
}

/// Every field of `doc` that holds more than one value, in document order.
///
/// One pass over the document: each map and list is read once with its
/// values and conflict flags, and only a field that holds several values
/// is looked up again (for all of them).
///
/// Objects nested deeper than [`MAX_DEPTH`] are not walked into: reading
/// refuses such a document, and this must not exhaust the stack on one that
/// got stored all the same.
pub fn conflicts(doc: &Automerge) -> Vec<ConflictRow> {
    conflicts_in(&View::new(doc))
}

/// [`conflicts`] of a document already being read: the objects the record
/// was read from are not read again.
pub fn conflicts_in(view: &View<'_>) -> Vec<ConflictRow> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk(view, &automerge::ROOT, 0, &mut path, &mut out);
    out
}

/// Walks the object `obj` at `path`, `depth` objects below the root;
/// `path` is restored before returning.
fn walk(view: &View<'_>, obj: &ObjId, depth: usize, path: &mut String, out: &mut Vec<ConflictRow>) {
    match &*view.object(obj) {
        Object::Map(fields) => {
            for (key, item) in fields.iter() {
                let len = push_segment(path, key);
                visit(view, obj, key.into(), item, depth, path, out);
                path.truncate(len);
            }
        }
        Object::List(items) => {
            let mut segments: Vec<String> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let segment = match (&item.value, item.object()) {
                    (Value::Object(ObjType::Map), Some(child)) => map_item_id(view, child),
                    _ => None,
                }
                .unwrap_or_else(|| index.to_string());
                let len = push_segment(path, &segment);
                visit(view, obj, index.into(), item, depth, path, out);
                path.truncate(len);
                segments.push(segment);
            }
            duplicates(view.doc(), obj, &segments, path, out);
        }
        Object::Other => {}
    }
}

/// Appends `segment` to `path`; returns the length to truncate back to.
fn push_segment(path: &mut String, segment: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(segment);
    len
}

/// The `id` field of a map that is a list item, when it is a string.
fn map_item_id(view: &View<'_>, item: &ObjId) -> Option<String> {
    id_of(autosurgeon::ReadDoc::get(view, item, "id"))
}

/// A list item's `id` field, as `get` read it, when it is a string.
fn id_of(field: Result<Option<(Value<'_>, ObjId)>, automerge::AutomergeError>) -> Option<String> {
    match field {
        Ok(Some((Value::Scalar(id), _))) => match id.as_ref() {
            ScalarValue::Str(id) => Some(id.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Items of one list that carry the same id (two phones added an item
/// with the same id at once): each is kept, and listed for review.
/// `segments` names each item by position; `path` is the list's.
fn duplicates(
    doc: &Automerge,
    list: &ObjId,
    segments: &[String],
    path: &mut String,
    out: &mut Vec<ConflictRow>,
) {
    let mut seen = std::collections::BTreeMap::<&str, Vec<usize>>::new();
    for (index, segment) in segments.iter().enumerate() {
        if *segment != index.to_string() {
            seen.entry(segment).or_default().push(index);
        }
    }
    for (segment, indexes) in seen.into_iter().filter(|(_, i)| i.len() > 1) {
        let values: Vec<ConflictValue> = indexes
            .iter()
            .filter_map(|&i| {
                let (value, id) = doc.get(list, i).ok()??;
                Some(ConflictValue {
                    value: value_json(doc, &value, &id),
                    actor: actor_of(&id),
                })
            })
            .collect();
        let len = push_segment(path, segment);
        out.push(ConflictRow {
            path: path.clone(),
            shown: values.first().map(|v| v.value.clone()).unwrap_or_default(),
            values,
        });
        path.truncate(len);
    }
}

fn actor_of(id: &ObjId) -> String {
    match id {
        ObjId::Id(_, actor, _) => actor.to_hex_string(),
        ObjId::Root => String::new(),
    }
}

/// One field (`prop`, read as `item`) at `path` of an object `depth` below
/// the root: listed when it holds several values, then walked into when the
/// value shown is an object within [`MAX_DEPTH`].
fn visit(
    view: &View<'_>,
    obj: &ObjId,
    prop: automerge::Prop,
    item: &Item,
    depth: usize,
    path: &mut String,
    out: &mut Vec<ConflictRow>,
) {
    let doc = view.doc();
    if item.conflict
        && let Ok(values) = doc.get_all(obj, prop)
    {
        out.push(ConflictRow {
            path: path.clone(),
            shown: value_json(doc, &item.value, &item.id),
            values: values
                .iter()
                .map(|(value, id)| ConflictValue {
                    value: value_json(doc, value, id),
                    actor: actor_of(id),
                })
                .collect(),
        });
    }
    if let Some(child) = item.object()
        && depth < MAX_DEPTH
    {
        walk(view, child, depth + 1, path, out);
    }
}

/// How a list item is named in a path: its `id` field when it is a map
/// that has one (members, parties, events), else its position.
pub fn item_segment(doc: &Automerge, list: &ObjId, index: usize) -> String {
    match doc.get(list, index) {
        Ok(Some((Value::Object(ObjType::Map), item))) => id_of(doc.get(&item, "id")),
        _ => None,
    }
    .unwrap_or_else(|| index.to_string())
}

/// A value as JSON: scalars as themselves, maps and lists with what they
/// hold (`id` names the object), text as a string. Objects nested more
/// than [`MAX_DEPTH`] below `value` read as `null`: a record never nests
/// that deep, and this must not exhaust the stack on a document that does.
pub fn value_json(doc: &Automerge, value: &Value<'_>, id: &ObjId) -> serde_json::Value {
    json_within(doc, value, id, MAX_DEPTH)
}

/// [`value_json`], walking at most `depth` objects further down.
fn json_within(doc: &Automerge, value: &Value<'_>, id: &ObjId, depth: usize) -> serde_json::Value {
    use serde_json::json;
    let below = depth.saturating_sub(1);
    match value {
        Value::Object(ObjType::Map | ObjType::Table | ObjType::List) if depth == 0 => {
            serde_json::Value::Null
        }
        Value::Object(ObjType::Map | ObjType::Table) => doc
            .keys(id)
            .filter_map(|key| {
                let (v, child) = doc.get(id, key.as_str()).ok()??;
                Some((key, json_within(doc, &v, &child, below)))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Object(ObjType::List) => (0..doc.length(id))
            .filter_map(|i| doc.get(id, i).ok().flatten())
            .map(|(v, child)| json_within(doc, &v, &child, below))
            .collect::<Vec<_>>()
            .into(),
        Value::Object(ObjType::Text) => json!(doc.text(id).unwrap_or_default()),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => json!(s.as_str()),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => json!(i),
            ScalarValue::Uint(u) => json!(u),
            ScalarValue::F64(f) => json!(f),
            ScalarValue::Counter(c) => json!(i64::from(c)),
            ScalarValue::Boolean(b) => json!(b),
            ScalarValue::Null => serde_json::Value::Null,
            ScalarValue::Bytes(b) => json!(hex::encode(b)),
            ScalarValue::Unknown { bytes, .. } => json!(hex::encode(bytes)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT};

    #[test]
    fn concurrent_writes_to_one_field_are_listed_with_every_value() {
        let mut a = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        let mut tx = a.transaction();
        let members = tx.put_object(ROOT, "members", ObjType::List).unwrap();
        let m = tx.insert_object(&members, 0, ObjType::Map).unwrap();
        tx.put(&m, "id", "m1").unwrap();
        tx.put(&m, "phone", "111").unwrap();
        tx.put(ROOT, "head", "m1").unwrap();
        tx.commit();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        for (doc, phone) in [(&mut a, "222"), (&mut b, "333")] {
            let mut tx = doc.transaction();
            tx.put(&m, "phone", phone).unwrap();
            tx.commit();
        }
        a.merge(&mut b).unwrap();

        let found = conflicts(&a);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "members/m1/phone");
        let mut values: Vec<_> = found[0].values.iter().map(|v| v.value.clone()).collect();
        values.sort_by_key(|v| v.to_string());
        assert_eq!(values, [serde_json::json!("222"), serde_json::json!("333")]);
        assert!(values.contains(&found[0].shown));
        let actors: Vec<_> = found[0].values.iter().map(|v| v.actor.clone()).collect();
        assert!(actors.contains(&ActorId::from([1u8; 16]).to_hex_string()));
        assert!(actors.contains(&ActorId::from([2u8; 16]).to_hex_string()));

        // Writing the field again resolves it.
        let mut tx = a.transaction();
        tx.put(&m, "phone", "444").unwrap();
        tx.commit();
        assert!(conflicts(&a).is_empty());
    }
}
