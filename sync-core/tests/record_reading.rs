//! Reading a record reads each object of its document once and answers
//! autosurgeon's lookups from memory (`doc::read`). Whatever a document
//! holds, that must read exactly what autosurgeon reading the document
//! itself reads: the same record, or a refusal where it refuses. The
//! documents here start as valid records and are then edited at random
//! through Automerge directly, fields of the record and others, by two
//! devices at once, so that fields hold concurrent values.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use proptest::prelude::*;
use sync_core::doc::{self, DocError};
use sync_core::records::{Case, CaseEvent, Household, Member, Record, Visit};

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
}
