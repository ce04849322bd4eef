//! The shape of record documents, checked before a record is read from one.
//!
//! `autosurgeon` says what it found where a record expected something else,
//! not where ("unexpected text"). [`check`] walks a document along the
//! fields of its record kind and names the field at fault
//! (`events[2].author: must be a string (str), not Automerge text`). Every
//! leaf is checked by the same `autosurgeon` hydration that reads the
//! record, so this check never accepts what reading would refuse; what it
//! adds is the path.
//!
//! It also bounds how deeply objects nest anywhere in a document, under
//! keys the record does not know as well: a document is data from the
//! network, and the code that walks its values (projections, conflicts,
//! history) recurses. A record nests four objects deep at most; a
//! document nesting more than [`MAX_DEPTH`] is refused.

use std::collections::VecDeque;

use automerge::{Automerge, ObjId, ObjType, Prop, ReadDoc, Value};
use autosurgeon::hydrate::Unexpected;
use autosurgeon::{Hydrate, HydrateError, Text};

use crate::id::RecordKind;
use crate::records::{CaseCategory, Relation, Residence, Sex, ValidationError};
use crate::view::{Item, Object, View};

/// How deeply objects may nest in a record document: a map or list inside
/// the root map is at depth 1. Records need 4 (a case's `events`, an
/// event, its `data`); the rest is room for fields to come.
pub const MAX_DEPTH: usize = 16;

/// Checks that no object in `doc` nests deeper than [`MAX_DEPTH`], among
/// every value of every field, concurrent values included. The walk keeps
/// its own stack, so it is safe on a document of any depth.
pub fn check_depth(doc: &Automerge) -> Result<(), ValidationError> {
    check_depth_in(&View::new(doc))
}

/// [`check_depth`] on a document already being read.
pub fn check_depth_in(view: &View<'_>) -> Result<(), ValidationError> {
    // Each object with its depth and the root key it sits under.
    let mut stack: Vec<(ObjId, usize, String)> = vec![(automerge::ROOT, 0, String::new())];
    while let Some((obj, depth, top)) = stack.pop() {
        let children = objects_in(view, &obj);
        if children.is_empty() {
            continue;
        }
        if depth == MAX_DEPTH {
            return Err(ValidationError {
                field: top,
                problem: format!(
                    "nests objects more than {MAX_DEPTH} deep, the limit for a record document"
                ),
            });
        }
        for (key, child) in children {
            let top = if depth == 0 { key } else { top.clone() };
            stack.push((child, depth + 1, top));
        }
    }
    Ok(())
}

/// The objects directly inside `obj`, every concurrent value included, each
/// with the key or index it sits at.
fn objects_in(view: &View<'_>, obj: &ObjId) -> Vec<(String, ObjId)> {
    let mut out = Vec::new();
    // Every value of a field written concurrently, the shown one alone
    // otherwise.
    let mut add = |prop: &dyn Fn() -> Prop, item: &Item| {
        let name = || match prop() {
            Prop::Map(key) => key,
            Prop::Seq(index) => index.to_string(),
        };
        if item.conflict {
            for (value, id) in view.doc().get_all(obj, prop()).unwrap_or_default() {
                if matches!(value, Value::Object(_)) {
                    out.push((name(), id));
                }
            }
        } else if let Some(id) = item.object() {
            out.push((name(), id.clone()));
        }
    };
    match &*view.object(obj) {
        Object::Map(fields) => {
            for (key, item) in fields.iter() {
                add(&|| Prop::Map(key.to_owned()), item);
            }
        }
        Object::List(items) => {
            for (index, item) in items.iter().enumerate() {
                add(&|| Prop::Seq(index), item);
            }
        }
        // Text holds characters; nothing walks into it.
        Object::Other => {}
    }
    out
}

/// Checks that `doc` has the shape of a record of `kind`, naming the first
/// field that does not fit. Keys the record does not know are left alone.
pub fn check(kind: RecordKind, doc: &Automerge) -> Result<(), ValidationError> {
    let root = match kind {
        RecordKind::Household => &HOUSEHOLD,
        RecordKind::Case => &CASE,
        RecordKind::Visit => &VISIT,
        RecordKind::Sensitive => &SENSITIVE,
    };
    let mut queue = VecDeque::from([(automerge::ROOT, String::new(), root)]);
    while let Some((obj, path, shape)) = queue.pop_front() {
        match shape {
            Shape::Record(fields) => {
                for field in *fields {
                    let at = match path.as_str() {
                        "" => field.key.to_owned(),
                        _ => format!("{path}.{}", field.key),
                    };
                    let key = field.key.into();
                    value(doc, &obj, key, at, &field.shape, field.optional, &mut queue)?;
                }
            }
            Shape::List(item) => {
                for i in 0..doc.length(&obj) {
                    let at = format!("{path}[{i}]");
                    value(doc, &obj, i.into(), at, item, false, &mut queue)?;
                }
            }
            Shape::Map(item) => {
                for key in doc.keys(&obj) {
                    let at = format!("{path}.{key}");
                    value(doc, &obj, key.into(), at, item, false, &mut queue)?;
                }
            }
            Shape::Leaf(..) => {}
        }
    }
    Ok(())
}

/// What a field must hold.
enum Shape {
    /// A value read by `autosurgeon`, described for people.
    Leaf(&'static str, LeafCheck),
    /// A map with these fields.
    Record(&'static [Field]),
    /// A list of these.
    List(&'static Shape),
    /// A map from any string to these.
    Map(&'static Shape),
}

/// Reads the value at a property as the record does, and drops it.
type LeafCheck = fn(&Automerge, &ObjId, autosurgeon::Prop<'_>) -> Result<(), HydrateError>;

/// One field of a record.
struct Field {
    key: &'static str,
    shape: Shape,
    /// Read as a default when missing (`#[autosurgeon(missing = …)]`).
    optional: bool,
}

fn leaf<T: Hydrate>(
    doc: &Automerge,
    obj: &ObjId,
    prop: autosurgeon::Prop<'_>,
) -> Result<(), HydrateError> {
    autosurgeon::hydrate_prop::<_, T, _, _>(doc, obj, prop).map(drop)
}

const STR: Shape = Shape::Leaf("a string (str; not Automerge text)", leaf::<String>);
const INT: Shape = Shape::Leaf("a signed integer", leaf::<i64>);
const BOOL: Shape = Shape::Leaf("a boolean", leaf::<bool>);
const TEXT: Shape = Shape::Leaf("Automerge text", leaf::<Text>);

const fn required(key: &'static str, shape: Shape) -> Field {
    Field {
        key,
        shape,
        optional: false,
    }
}

const fn optional(key: &'static str, shape: Shape) -> Field {
    Field {
        key,
        shape,
        optional: true,
    }
}

const MEMBER: Shape = Shape::Record(&[
    required("id", STR),
    required("name", STR),
    required("id_number", STR),
    required(
        "sex",
        Shape::Leaf("one of Male, Female, Unknown", leaf::<Sex>),
    ),
    required("birth_date", STR),
    required(
        "relation",
        Shape::Leaf(
            "one of Head, Spouse, Child, Parent, Grandchild, Sibling, Other",
            leaf::<Relation>,
        ),
    ),
    required("phone", STR),
    required(
        "residence",
        Shape::Leaf("one of Registered, Floating, Resident", leaf::<Residence>),
    ),
]);

const ATTACHMENT: Shape = Shape::Record(&[
    required("sha256", STR),
    required("media_type", STR),
    required("size", INT),
    required("name", STR),
    required("taken_at", INT),
    required("author", STR),
    required("device", STR),
    optional("location", STR),
    optional("caption", STR),
]);

const ATTACHMENTS: Field = optional("attachments", Shape::List(&ATTACHMENT));

const HOUSEHOLD: Shape = Shape::Record(&[
    required("org_unit", STR),
    required(
        "address",
        Shape::Record(&[
            required("building", STR),
            required("unit", STR),
            required("room", STR),
        ]),
    ),
    required("head", STR),
    required("members", Shape::List(&MEMBER)),
    optional("tags", Shape::Map(&BOOL)),
    required("notes", TEXT),
    ATTACHMENTS,
]);

const PARTY: Shape = Shape::Record(&[
    required("id", STR),
    required("name", STR),
    required("phone", STR),
    required("role", STR),
]);

const EVENT: Shape = Shape::Record(&[
    required("id", STR),
    required("kind", STR),
    required("author", STR),
    required("device", STR),
    required("at", INT),
    optional("role", STR),
    optional("hlc", INT),
    required("data", Shape::Map(&STR)),
    ATTACHMENTS,
]);

const CASE: Shape = Shape::Record(&[
    required("org_unit", STR),
    required(
        "category",
        Shape::Leaf(
            "one of Labour, Traffic, Medical, School, LandRights, Environment, Property, \
             Finance, Consumer, Family, Neighbour, Demolition, Hazard, Request, Other",
            leaf::<CaseCategory>,
        ),
    ),
    required("title", STR),
    required("description", TEXT),
    required("parties", Shape::List(&PARTY)),
    optional("household", STR),
    required("location", STR),
    required("reporter", STR),
    required("reported_at", INT),
    required("events", Shape::List(&EVENT)),
    ATTACHMENTS,
]);

const VISIT: Shape = Shape::Record(&[
    required("household", STR),
    required("org_unit", STR),
    required("worker", STR),
    required("visited_at", INT),
    required("findings", TEXT),
    required("follow_up", BOOL),
    optional("location", STR),
    ATTACHMENTS,
]);

const SENSITIVE: Shape = Shape::Record(&[
    required("household", STR),
    required("org_unit", STR),
    required("categories", Shape::Map(&BOOL)),
    required("notes", TEXT),
    ATTACHMENTS,
]);

/// Checks the value at `prop` of `obj` against `shape`: a leaf at once, an
/// object by queueing it. An `optional` value may be missing. Each value is
/// looked up once (a leaf by its check), and again only to describe a
/// value at fault: a document is walked at every merge.
#[allow(clippy::too_many_arguments)]
fn value(
    doc: &Automerge,
    obj: &ObjId,
    prop: automerge::Prop,
    path: String,
    shape: &'static Shape,
    optional: bool,
    queue: &mut VecDeque<(ObjId, String, &'static Shape)>,
) -> Result<(), ValidationError> {
    let (what, wanted) = match shape {
        Shape::Leaf(what, check) => {
            let Err(e) = check(doc, obj, (&prop).into()) else {
                return Ok(());
            };
            let found = doc.get(obj, prop).ok().flatten();
            if found.is_none() && optional {
                return Ok(());
            }
            let problem = match e {
                HydrateError::Unexpected(Unexpected::Other { found, .. }) => {
                    format!("must be {what}, not {found:?}")
                }
                _ => format!("must be {what}, not {}", describe(found.as_ref())),
            };
            return Err(ValidationError {
                field: path,
                problem,
            });
        }
        Shape::Record(_) | Shape::Map(_) => ("a map", ObjType::Map),
        Shape::List(_) => ("a list", ObjType::List),
    };
    let found = doc.get(obj, prop).ok().flatten();
    if found.is_none() && optional {
        return Ok(());
    }
    match found {
        Some((Value::Object(t), child))
            if t == wanted || (wanted == ObjType::Map && t == ObjType::Table) =>
        {
            queue.push_back((child, path, shape));
            Ok(())
        }
        other => Err(ValidationError {
            field: path,
            problem: format!("must be {what}, not {}", describe(other.as_ref())),
        }),
    }
}

/// What a value is, for people.
fn describe(found: Option<&(Value<'_>, ObjId)>) -> String {
    use automerge::ScalarValue as S;
    let Some((value, _)) = found else {
        return "missing".into();
    };
    match value {
        Value::Object(ObjType::Text) => "Automerge text".into(),
        Value::Object(ObjType::List) => "a list".into(),
        Value::Object(ObjType::Map | ObjType::Table) => "a map".into(),
        Value::Scalar(s) => match s.as_ref() {
            S::Str(_) => "a string".into(),
            S::Int(_) => "a signed integer".into(),
            S::Uint(_) => "an unsigned integer".into(),
            S::F64(_) => "a float".into(),
            S::Counter(_) => "a counter".into(),
            S::Timestamp(_) => "a timestamp".into(),
            S::Boolean(_) => "a boolean".into(),
            S::Bytes(_) => "bytes".into(),
            S::Null => "null".into(),
            S::Unknown { .. } => "a value of an unknown type".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;
    use crate::records::{Case, CaseEvent, Household, Member, Party, Sensitive, Visit};
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ROOT};

    fn full_case() -> Case {
        Case {
            org_unit: "g1".into(),
            title: "t".into(),
            reporter: "u1".into(),
            household: crate::RecordId::new(RecordKind::Household).to_string(),
            parties: vec![Party {
                id: "p1".into(),
                name: "甲".into(),
                phone: String::new(),
                role: "applicant".into(),
            }],
            events: vec![CaseEvent {
                attachments: Vec::new(),
                id: "e1".into(),
                kind: "report".into(),
                author: "u1".into(),
                device: "d1".into(),
                at: 1,
                role: "grid_worker".into(),
                hlc: 1 << 16,
                data: [("note".to_owned(), "x".to_owned())].into(),
            }],
            ..Default::default()
        }
    }

    /// Every key a document holds, as paths, lists by `[]`.
    fn keys(doc: &Automerge, obj: &ObjId, path: &str, out: &mut Vec<String>) {
        for key in doc.keys(obj) {
            let at = format!("{path}.{key}");
            if let Ok(Some((Value::Object(t), child))) = doc.get(obj, key.as_str()) {
                match t {
                    ObjType::List => {
                        if let Ok(Some((Value::Object(ObjType::Map), item))) = doc.get(&child, 0) {
                            keys(doc, &item, &format!("{at}[]"), out);
                        }
                    }
                    ObjType::Map => keys(doc, &child, &at, out),
                    _ => {}
                }
            }
            out.push(at);
        }
    }

    /// The paths a shape describes, in the form of [`keys`].
    fn described(shape: &Shape, path: &str, out: &mut Vec<String>) {
        match shape {
            Shape::Record(fields) => {
                for f in *fields {
                    let at = format!("{path}.{}", f.key);
                    match &f.shape {
                        Shape::List(item) => described(item, &format!("{at}[]"), out),
                        Shape::Record(_) => described(&f.shape, &at, out),
                        _ => {}
                    }
                    out.push(at);
                }
            }
            Shape::List(_) | Shape::Map(_) | Shape::Leaf(..) => {}
        }
    }

    fn assert_covers<R: crate::records::Record>(record: &R, shape: &Shape) {
        let d = doc::create(ActorId::random(), record, 0).unwrap();
        check(R::KIND, &d).unwrap();
        let mut stored = Vec::new();
        keys(&d, &ROOT, "", &mut stored);
        let mut known = Vec::new();
        described(shape, "", &mut known);
        for key in &stored {
            // A map of any keys (`tags`, `data`) is a leaf here.
            let under_free_map = [".tags.", ".categories.", ".data."]
                .iter()
                .any(|m| key.contains(m));
            assert!(
                under_free_map || known.contains(key),
                "{} field {key} is not in its shape",
                R::KIND
            );
        }
    }

    #[test]
    fn shapes_cover_every_field_of_every_record() {
        let mut h = Household {
            org_unit: "g1".into(),
            ..Default::default()
        };
        h.members.push(Member::new("m1", "甲"));
        h.set_tag(crate::records::Tag::Veteran, true);
        assert_covers(&h, &HOUSEHOLD);
        assert_covers(&full_case(), &CASE);
        let v = Visit {
            household: crate::RecordId::new(RecordKind::Household).to_string(),
            org_unit: "g1".into(),
            worker: "u1".into(),
            ..Default::default()
        };
        assert_covers(&v, &VISIT);
        let s = Sensitive {
            household: crate::RecordId::new(RecordKind::Household).to_string(),
            org_unit: "g1".into(),
            categories: [("community_correction".to_owned(), true)].into(),
            ..Default::default()
        };
        assert_covers(&s, &SENSITIVE);
    }

    /// A case document with `f` applied to it as a raw change.
    fn tampered(f: impl FnOnce(&mut AutoCommit)) -> Automerge {
        let d = doc::create(ActorId::random(), &full_case(), 0).unwrap();
        let mut d = AutoCommit::load(&d.save()).unwrap();
        f(&mut d);
        d.commit();
        d.document().clone()
    }

    fn events(d: &AutoCommit) -> (ObjId, ObjId) {
        let (_, events) = d.get(ROOT, "events").unwrap().unwrap();
        let (_, first) = d.get(&events, 0).unwrap().unwrap();
        (events, first)
    }

    #[test]
    fn the_field_at_fault_is_named() {
        /// A case name, a tampering, the field named and part of the problem.
        type Tampering = (
            &'static str,
            Box<dyn FnOnce(&mut AutoCommit)>,
            &'static str,
            &'static str,
        );
        let cases: Vec<Tampering> = vec![
            (
                "a plain string written as text",
                Box::new(|d| {
                    let t = d.put_object(ROOT, "reporter", ObjType::Text).unwrap();
                    d.splice_text(&t, 0, 0, "u2").unwrap();
                }),
                "reporter",
                "must be a string (str; not Automerge text), not Automerge text",
            ),
            (
                "an event author written as text",
                Box::new(|d| {
                    let (_, e) = events(d);
                    d.put_object(&e, "author", ObjType::Text).unwrap();
                }),
                "events[0].author",
                "Automerge text",
            ),
            (
                "a missing key",
                Box::new(|d| d.delete(ROOT, "title").unwrap()),
                "title",
                "not missing",
            ),
            (
                "an unsigned time",
                Box::new(|d| d.put(ROOT, "reported_at", 5u64).unwrap()),
                "reported_at",
                "not an unsigned integer",
            ),
            (
                "an unknown category",
                Box::new(|d| d.put(ROOT, "category", "Alien").unwrap()),
                "category",
                "not \"Alien\"",
            ),
            (
                "text where a list belongs",
                Box::new(|d| {
                    d.put_object(ROOT, "parties", ObjType::Text).unwrap();
                }),
                "parties",
                "must be a list, not Automerge text",
            ),
            (
                "a number in event data",
                Box::new(|d| {
                    let (_, e) = events(d);
                    let (_, data) = d.get(&e, "data").unwrap().unwrap();
                    d.put(&data, "n", 1).unwrap();
                }),
                "events[0].data.n",
                "not a signed integer",
            ),
        ];
        for (case, f, field, problem) in cases {
            let d = tampered(f);
            let err = check(RecordKind::Case, &d).unwrap_err();
            assert_eq!(err.field, field, "{case}: {err}");
            assert!(err.problem.contains(problem), "{case}: {err}");
            assert!(doc::read::<Case>(&d).is_err(), "{case}");
        }
        // Keys the record does not know are left alone.
        let d = tampered(|d| d.put(ROOT, "later", 1).unwrap());
        assert!(check(RecordKind::Case, &d).is_ok());
    }

    /// A case with `depth` maps nested under an unknown key.
    fn nested(depth: usize) -> Automerge {
        tampered(|d| {
            let mut obj = ROOT;
            for _ in 0..depth {
                obj = d.put_object(&obj, "x", ObjType::Map).unwrap();
            }
        })
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        assert!(check_depth(&nested(MAX_DEPTH)).is_ok());
        let err = check_depth(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(err.field, "x");
        assert!(err.problem.contains("16"), "{err}");
        // Far deeper than any stack would take recursively.
        assert!(check_depth(&nested(200_000)).is_err());
        assert!(doc::read::<Case>(&nested(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn depth_counts_concurrent_values_that_are_not_shown() {
        let base = doc::create(ActorId::random(), &full_case(), 0).unwrap();
        let mut a = AutoCommit::load(&base.save())
            .unwrap()
            .with_actor(ActorId::from([2u8; 16]));
        // The lower actor loses: its nested map is a value not shown.
        let mut b = AutoCommit::load(&base.save())
            .unwrap()
            .with_actor(ActorId::from([1u8; 16]));
        a.put(ROOT, "x", "flat").unwrap();
        let mut obj = b.put_object(ROOT, "x", ObjType::Map).unwrap();
        for _ in 0..MAX_DEPTH {
            obj = b.put_object(&obj, "x", ObjType::Map).unwrap();
        }
        a.merge(&mut b).unwrap();
        assert!(matches!(a.get(ROOT, "x"), Ok(Some((Value::Scalar(_), _)))));
        assert!(check_depth(a.document()).is_err());
    }
}
