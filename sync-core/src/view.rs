//! A document being read, each map and list of it read once, whole: what
//! reading a record, checking how deeply a document nests and listing its
//! fields written concurrently share.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::rc::Rc;

use automerge::{
    Automerge, AutomergeError, ChangeHash, ObjId, ObjType, Prop, ReadDoc as AmRead, Value,
};

/// A document being read, each map and list of it read once, whole.
///
/// Reading a record, checking how deeply the document nests and listing the
/// fields written concurrently each walk the whole document. In automerge
/// 0.12 each `get` seeks through the document's op columns from the start,
/// decoding as it goes, and each `map_range` decodes its object again: for
/// a record of a few dozen fields that was most of the time of reading it,
/// and the server reads every merged document before and after. Here the
/// first look at an object reads all of it in one pass (`map_range`,
/// `list_range`: the values `get` would return, the winner where fields
/// were written concurrently, and whether they were), and every later
/// look, by any of those walks, is answered from memory. autosurgeon has no
/// such reader; this is the small part of its `ReadDoc` that hydration
/// uses.
pub struct View<'a> {
    doc: &'a Automerge,
    objects: RefCell<HashMap<ObjId, Rc<Object>>>,
}

/// One value of a map or list as read: the value shown, its object id (or
/// the id of the operation that wrote it) and whether other values were
/// written to the same field concurrently.
pub(crate) struct Item {
    pub(crate) value: Value<'static>,
    pub(crate) id: ObjId,
    pub(crate) conflict: bool,
}

impl Item {
    /// The object it holds, if it holds one.
    pub(crate) fn object(&self) -> Option<&ObjId> {
        matches!(self.value, Value::Object(_)).then_some(&self.id)
    }
}

/// One object of the document, read whole.
pub(crate) enum Object {
    Map(Fields),
    List(Vec<Item>),
    /// Text, or no object at all: asked of the document itself.
    Other,
}

/// The fields of a map, in document order.
pub(crate) struct Fields {
    entries: Vec<(String, Item)>,
    /// Whether the keys are in order, as Automerge keeps them: then a
    /// field is found by binary search, else (should a document ever
    /// order them otherwise) by a linear one.
    sorted: bool,
}

impl Fields {
    fn new(entries: Vec<(String, Item)>) -> Self {
        let sorted = entries.is_sorted_by(|a, b| a.0 < b.0);
        Self { entries, sorted }
    }

    /// The value under `key`.
    fn get(&self, key: &str) -> Option<&Item> {
        let found = match self.sorted {
            true => (self.entries)
                .binary_search_by(|(k, _)| k.as_str().cmp(key))
                .ok(),
            false => self.entries.iter().position(|(k, _)| k == key),
        };
        found.map(|i| &self.entries[i].1)
    }

    /// Every field, in document order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Item)> {
        self.entries.iter().map(|(k, item)| (k.as_str(), item))
    }
}

impl<'a> View<'a> {
    /// Starts reading `doc`; nothing is read until asked for.
    pub fn new(doc: &'a Automerge) -> Self {
        Self {
            doc,
            objects: RefCell::default(),
        }
    }

    /// The document read.
    pub fn doc(&self) -> &'a Automerge {
        self.doc
    }

    /// The object `obj`, read whole the first time it is asked for.
    pub(crate) fn object(&self, obj: &ObjId) -> Rc<Object> {
        if let Some(object) = self.objects.borrow().get(obj) {
            return object.clone();
        }
        let object = Rc::new(match AmRead::object_type(self.doc, obj) {
            Ok(ObjType::Map | ObjType::Table) => Object::Map(Fields::new(
                AmRead::map_range(self.doc, obj, ..)
                    .map(|item| {
                        let id = item.id();
                        let entry = Item {
                            id,
                            conflict: item.conflict,
                            value: item.value.into_value(),
                        };
                        (item.key.into_owned(), entry)
                    })
                    .collect(),
            )),
            Ok(ObjType::List) => Object::List(
                AmRead::list_range(self.doc, obj, ..)
                    .map(|item| Item {
                        id: item.id(),
                        conflict: item.conflict,
                        value: item.value.into_value(),
                    })
                    .collect(),
            ),
            Ok(ObjType::Text) | Err(_) => Object::Other,
        });
        self.objects
            .borrow_mut()
            .insert(obj.clone(), object.clone());
        object
    }
}

impl autosurgeon::ReadDoc for View<'_> {
    type Parents<'b>
        = automerge::Parents<'b>
    where
        Self: 'b;

    fn get_heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn get<P: Into<Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let prop = prop.into();
        match (&*self.object(obj), &prop) {
            (Object::Map(fields), Prop::Map(key)) => Ok(fields
                .get(key)
                .map(|item| (item.value.clone(), item.id.clone()))),
            (Object::List(items), Prop::Seq(i)) => Ok(items
                .get(*i)
                .map(|item| (item.value.clone(), item.id.clone()))),
            _ => AmRead::get(self.doc, obj, prop),
        }
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<ObjType> {
        AmRead::object_type(self.doc, obj).ok()
    }

    fn map_range<'b, O, R>(&'b self, obj: O, range: R) -> automerge::iter::MapRange<'b>
    where
        R: RangeBounds<String> + 'b,
        O: AsRef<ObjId>,
    {
        AmRead::map_range(self.doc, obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
        &self,
        obj: O,
        range: R,
    ) -> automerge::iter::ListRange<'_> {
        AmRead::list_range(self.doc, obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        match &*self.object(obj.as_ref()) {
            Object::List(items) => items.len(),
            _ => AmRead::length(self.doc, obj),
        }
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        AmRead::text(self.doc, obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        AmRead::parents(self.doc, obj)
    }

    fn is_empty(&self) -> bool {
        AmRead::keys(self.doc, automerge::ROOT).next().is_none()
    }
}
