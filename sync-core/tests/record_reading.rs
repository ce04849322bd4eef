//! Reading a record reads each object of its document once and answers
//! autosurgeon's lookups from memory (`doc::read`). Whatever a document
//! holds, that must read exactly what autosurgeon reading the document
//! itself reads: the same record, or a refusal where it refuses. The
//! documents here start as valid records and are then edited at random
//! through Automerge directly, fields of the record and others, by two
//! devices at once, so that fields hold concurrent values.
//!
//! The fields written concurrently are listed from the same read of the
//! document as the record (`conflicts::conflicts_in`): they must be those
//! Automerge's own lookups find, field by field.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use proptest::prelude::*;
use sync_core::conflicts::{self, item_segment, value_json};
use sync_core::doc::{self, DocError};
use sync_core::records::{Case, CaseEvent, Household, Member, Record, Visit};
use sync_core::view::View;

/// Every object of `doc`, root first.
fn objects(doc: &Automerge) -> Vec<(ObjId, ObjType)> {
    let mut out = vec![(automerge::ROOT, ObjType::Map)];
    let mut i = 0;
    while i < out.len() {
        let (obj, typ) = out[i].clone();
        let children: Vec<(ObjId, ObjType)> = match typ {
            ObjType::Map | ObjType::Table => doc
                .map_range(&obj, ..)
                .filter_map(|item| match item.value.clone().into_value() {
                    Value::Object(t) => Some((item.id(), t)),
                    Value::Scalar(_) => None,
                })
                .collect(),
            ObjType::List => doc
                .list_range(&obj, ..)
                .filter_map(|item| match item.value.clone().into_value() {
                    Value::Object(t) => Some((item.id(), t)),
                    Value::Scalar(_) => None,
                })
                .collect(),
            ObjType::Text => Vec::new(),
        };
        out.extend(children);
        i += 1;
    }
    out
}

/// The keys edits write under: the records' own fields and one they do
/// not know.
const KEYS: &[&str] = &[
    "org_unit",
    "address",
    "room",
    "head",
    "members",
    "id",
    "name",
    "sex",
    "relation",
    "tags",
    "elderly",
    "notes",
    "events",
    "kind",
    "at",
    "data",
    "title",
    "household",
    "worker",
    "visited_at",
    "findings",
    "follow_up",
    "attachments",
    "unknown",
];

/// One edit: which object (an index into [`objects`], wrapped), which key
/// or position, and what to write there.
#[derive(Debug, Clone)]
struct Edit {
    object: usize,
    key: usize,
    value: NewValue,
}

#[derive(Debug, Clone)]
enum NewValue {
    Scalar(ScalarValue),
    Object(ObjType),
    Delete,
}

fn new_value() -> impl Strategy<Value = NewValue> {
    prop_oneof![
        "[a-z0-9-]{0,6}".prop_map(|s| NewValue::Scalar(ScalarValue::Str(s.into()))),
        Just(NewValue::Scalar(ScalarValue::Str("Male".into()))),
        Just(NewValue::Scalar(ScalarValue::Str("Head".into()))),
        any::<i64>().prop_map(|n| NewValue::Scalar(ScalarValue::Int(n))),
        (0..2_000_000_000_000i64).prop_map(|n| NewValue::Scalar(ScalarValue::Int(n))),
        any::<bool>().prop_map(|b| NewValue::Scalar(ScalarValue::Boolean(b))),
        Just(NewValue::Scalar(ScalarValue::Null)),
        Just(NewValue::Scalar(ScalarValue::F64(1.5))),
        Just(NewValue::Scalar(ScalarValue::Uint(7))),
        Just(NewValue::Object(ObjType::Map)),
        Just(NewValue::Object(ObjType::List)),
        Just(NewValue::Object(ObjType::Text)),
        Just(NewValue::Delete),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    (any::<usize>(), any::<usize>(), new_value()).prop_map(|(object, key, value)| Edit {
        object,
        key,
        value,
    })
}

/// Applies `edit` to `doc`, wherever it lands. Edits that Automerge
/// refuses (text where it holds no map, say) are skipped.
fn apply(doc: &mut Automerge, edit: &Edit) {
    let all = objects(doc);
    let (obj, typ) = all[edit.object % all.len()].clone();
    let mut tx = doc.transaction();
    let _ = match typ {
        ObjType::Map | ObjType::Table => {
            let prop = Prop::Map(KEYS[edit.key % KEYS.len()].into());
            match &edit.value {
                NewValue::Scalar(v) => tx.put(&obj, prop, v.clone()).map(drop),
                NewValue::Object(t) => tx.put_object(&obj, prop, *t).map(drop),
                NewValue::Delete => tx.delete(&obj, prop),
            }
        }
        ObjType::List => {
            let at = edit.key % (tx.length(&obj) + 1);
            match &edit.value {
                NewValue::Scalar(v) => tx.insert(&obj, at, v.clone()).map(drop),
                NewValue::Object(t) => tx.insert_object(&obj, at, *t).map(drop),
                NewValue::Delete => tx.delete(&obj, at),
            }
        }
        ObjType::Text => tx.splice_text(&obj, 0, 0, "改").map(drop),
    };
    tx.commit();
}

/// `base` edited by two devices at once, `mine` and `theirs`, merged.
fn edited(base: &Automerge, mine: &[Edit], theirs: &[Edit]) -> Automerge {
    let mut a = base.fork().with_actor(ActorId::from([1u8; 16]));
    let mut b = base.fork().with_actor(ActorId::from([2u8; 16]));
    mine.iter().for_each(|e| apply(&mut a, e));
    theirs.iter().for_each(|e| apply(&mut b, e));
    a.merge(&mut b).expect("forks of one document merge");
    a
}

/// `doc::read` against autosurgeon reading the document itself, then the
/// record's rules.
fn agrees<R: Record + std::fmt::Debug + PartialEq>(doc: &Automerge) -> Result<(), TestCaseError> {
    let direct = autosurgeon::hydrate::<_, R>(doc);
    let read = doc::read::<R>(doc);
    match (direct, read) {
        (Ok(direct), Ok(read)) => prop_assert_eq!(direct, read),
        (Ok(direct), Err(DocError::Invalid { source, .. })) => {
            prop_assert_eq!(direct.validate(), Err(source));
        }
        (Err(_), Err(DocError::Invalid { .. } | DocError::Shape { .. })) => {}
        (direct, read) => prop_assert!(false, "autosurgeon read {direct:?}, doc::read {read:?}"),
    }
    Ok(())
}

/// A conflict as compared here: where, the value shown, and every value
/// with the actor that wrote it, in a fixed order.
type Listed = (String, String, Vec<String>);

fn actor_of(id: &ObjId) -> String {
    match id {
        ObjId::Id(_, actor, _) => actor.to_hex_string(),
        ObjId::Root => String::new(),
    }
}

/// Every field of `doc` holding several values, and every id two items of
/// one list share, found with Automerge's own lookups (`keys`, `length`,
/// `get`, `get_all`), one field at a time.
fn looked_up(doc: &Automerge) -> Vec<Listed> {
    fn walk(doc: &Automerge, obj: &ObjId, depth: usize, path: &str, out: &mut Vec<Listed>) {
        let at = |segment: &str| match path {
            "" => segment.to_owned(),
            _ => format!("{path}/{segment}"),
        };
        let value = |v: &Value<'_>, id: &ObjId| value_json(doc, v, id).to_string();
        let fields: Vec<(Prop, String)> = match doc.object_type(obj) {
            Ok(ObjType::Map | ObjType::Table) => {
                doc.keys(obj).map(|k| (Prop::Map(k.clone()), k)).collect()
            }
            Ok(ObjType::List) => (0..doc.length(obj))
                .map(|i| (Prop::Seq(i), item_segment(doc, obj, i)))
                .collect(),
            _ => return,
        };
        for (prop, segment) in &fields {
            let all = doc.get_all(obj, prop.clone()).unwrap();
            let (shown, id) = doc.get(obj, prop.clone()).unwrap().unwrap();
            if all.len() > 1 {
                let mut values: Vec<String> = (all.iter())
                    .map(|(v, id)| format!("{} {}", actor_of(id), value(v, id)))
                    .collect();
                values.sort();
                out.push((at(segment), value(&shown, &id), values));
            }
            if matches!(shown, Value::Object(_)) && depth < sync_core::shape::MAX_DEPTH {
                walk(doc, &id, depth + 1, &at(segment), out);
            }
        }
        // Items of a list named by an id they share.
        let named = fields
            .iter()
            .enumerate()
            .filter_map(|(i, (_, segment))| (*segment != i.to_string()).then_some((segment, i)));
        let mut by_id = std::collections::BTreeMap::<&String, Vec<usize>>::new();
        for (segment, i) in named {
            by_id.entry(segment).or_default().push(i);
        }
        for (segment, items) in by_id.into_iter().filter(|(_, items)| items.len() > 1) {
            let read: Vec<(Value<'_>, ObjId)> = (items.iter())
                .map(|&i| doc.get(obj, i).unwrap().unwrap())
                .collect();
            let mut values: Vec<String> = (read.iter())
                .map(|(v, id)| format!("{} {}", actor_of(id), value(v, id)))
                .collect();
            values.sort();
            out.push((at(segment), value(&read[0].0, &read[0].1), values));
        }
    }
    let mut out = Vec::new();
    walk(doc, &automerge::ROOT, 0, "", &mut out);
    out.sort();
    out
}

/// The conflicts listed from the read that reads the record of `R` (which
/// may refuse it) against those Automerge's lookups find.
fn conflicts_agree<R: Record>(doc: &Automerge) -> Result<(), TestCaseError> {
    let view = View::new(doc);
    let _ = doc::read_in::<R>(&view);
    let mut listed: Vec<Listed> = conflicts::conflicts_in(&view)
        .into_iter()
        .map(|row| {
            let mut values: Vec<String> = (row.values.iter())
                .map(|v| format!("{} {}", v.actor, v.value))
                .collect();
            values.sort();
            (row.path, row.shown.to_string(), values)
        })
        .collect();
    listed.sort();
    prop_assert_eq!(listed, looked_up(doc));
    Ok(())
}

fn household() -> Automerge {
    let mut h = Household {
        org_unit: "g1".into(),
        head: "m0".into(),
        ..Default::default()
    };
    h.members.push(Member::new("m0", "张三"));
    h.members.push(Member::new("m1", "李四"));
    h.tags.insert("elderly".into(), true);
    doc::create(ActorId::from([9u8; 16]), &h, 0).unwrap()
}

fn case() -> Automerge {
    let c = Case {
        org_unit: "g1".into(),
        title: "纠纷".into(),
        reporter: "w".into(),
        reported_at: 1_700_000_000_000,
        events: vec![CaseEvent {
            attachments: Vec::new(),
            id: "e1".into(),
            kind: "report".into(),
            author: "w".into(),
            device: "d".into(),
            at: 1_700_000_000_000,
            role: String::new(),
            hlc: 0,
            data: [("note".to_owned(), "x".to_owned())].into(),
        }],
        ..Default::default()
    };
    doc::create(ActorId::from([9u8; 16]), &c, 0).unwrap()
}

fn visit() -> Automerge {
    let v = Visit {
        household: sync_core::RecordId::new(sync_core::RecordKind::Household).to_string(),
        org_unit: "g1".into(),
        worker: "w".into(),
        visited_at: 1_700_000_000_000,
        ..Default::default()
    };
    doc::create(ActorId::from([9u8; 16]), &v, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_household_reads_as_autosurgeon_reads_it(
        mine in prop::collection::vec(edit(), 0..6),
        theirs in prop::collection::vec(edit(), 0..6),
    ) {
        agrees::<Household>(&edited(&household(), &mine, &theirs))?;
    }

    #[test]
    fn a_case_reads_as_autosurgeon_reads_it(
        mine in prop::collection::vec(edit(), 0..6),
        theirs in prop::collection::vec(edit(), 0..6),
    ) {
        agrees::<Case>(&edited(&case(), &mine, &theirs))?;
    }

    #[test]
    fn a_visit_reads_as_autosurgeon_reads_it(
        mine in prop::collection::vec(edit(), 0..6),
        theirs in prop::collection::vec(edit(), 0..6),
    ) {
        agrees::<Visit>(&edited(&visit(), &mine, &theirs))?;
    }

    #[test]
    fn a_households_conflicts_are_those_automerge_finds(
        mine in prop::collection::vec(edit(), 0..6),
        theirs in prop::collection::vec(edit(), 0..6),
    ) {
        conflicts_agree::<Household>(&edited(&household(), &mine, &theirs))?;
    }

    #[test]
    fn a_cases_conflicts_are_those_automerge_finds(
        mine in prop::collection::vec(edit(), 0..6),
        theirs in prop::collection::vec(edit(), 0..6),
    ) {
        conflicts_agree::<Case>(&edited(&case(), &mine, &theirs))?;
    }
}
