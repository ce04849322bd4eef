//! Typed reads and edits of record documents, and the check every document
//! must pass before a phone commits it or the server stores it.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, LoadOptions, TextEncoding};

use crate::id::RecordKind;
use crate::records::{Attachment, Case, Household, Record, Sensitive, ValidationError, Visit};
use crate::view::View;

/// Why a document cannot be read or edited as the record it should hold.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The document does not have the shape of its record type.
    #[error("document is not a valid {kind}: {source}")]
    Shape {
        /// The record kind expected.
        kind: RecordKind,
        /// What did not fit.
        source: Box<autosurgeon::HydrateError>,
    },
    /// The document has the right shape but breaks a record rule.
    #[error("document is not a valid {kind}: {source}")]
    Invalid {
        /// The record kind expected.
        kind: RecordKind,
        /// The rule broken.
        source: ValidationError,
    },
    /// Writing the record into the document failed.
    #[error("could not write the {kind} record: {source}")]
    Write {
        /// The record kind written.
        kind: RecordKind,
        /// The cause.
        source: Box<autosurgeon::ReconcileError>,
    },
}

/// How text positions are counted in gridsync documents: UTF-8 bytes, as in
/// Rust strings, which is what `autosurgeon::Text::splice` takes. (Automerge's
/// default, Unicode code points, would misplace every edit after a Chinese
/// character.) This is a property of the API only; stored bytes are the same
/// whatever a device counts in.
pub const TEXT_ENCODING: TextEncoding = TextEncoding::Utf8CodeUnit;

/// An empty document that writes as `actor`.
pub fn empty(actor: ActorId) -> Automerge {
    Automerge::new_with_encoding(TEXT_ENCODING).with_actor(actor)
}

/// Loads a saved document (or concatenated changes).
pub fn load(bytes: &[u8]) -> Result<Automerge, AutomergeError> {
    Automerge::load_with_options(bytes, LoadOptions::new().text_encoding(TEXT_ENCODING))
}

/// Reads the record a document holds, checking it on the way: how deeply it
/// nests and its shape ([`crate::shape`], which names the field at fault),
/// then the record's rules ([`Record::validate`]).
///
/// The shape walk reads every field with the same hydration as the record
/// does, so a document the record reads from has the record's shape: the
/// walk runs only when reading fails, to say where.
pub fn read<R: Record>(doc: &Automerge) -> Result<R, DocError> {
    read_in(&View::new(doc))
}

/// [`read`] from a document already being read (`view`), so that the depth
/// check, the record and its conflicts ([`crate::conflicts::conflicts_in`])
/// all read each object once.
pub fn read_in<R: Record>(view: &View<'_>) -> Result<R, DocError> {
    let invalid = |source| DocError::Invalid {
        kind: R::KIND,
        source,
    };
    crate::shape::check_depth_in(view).map_err(invalid)?;
    hydrate_valid(view).map_err(|e| match e {
        DocError::Shape { .. } => crate::shape::check(R::KIND, view.doc())
            .err()
            .map_or(e, invalid),
        e => e,
    })
}

/// Reads the record and checks its rules, without walking its shape.
fn hydrate_valid<R: Record>(view: &View<'_>) -> Result<R, DocError> {
    let record: R = autosurgeon::hydrate(view).map_err(|source| DocError::Shape {
        kind: R::KIND,
        source: Box::new(source),
    })?;
    record.validate().map_err(|source| DocError::Invalid {
        kind: R::KIND,
        source,
    })?;
    Ok(record)
}

/// What decides who may see a document: where it belongs and, for cases,
/// who reported it and who handles it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocMeta {
    /// The org unit the record belongs to.
    pub org_unit: String,
    /// The reporting user, for cases.
    pub reporter: Option<String>,
    /// The user the case is assigned to, for assigned cases.
    pub assignee: Option<String>,
}

/// A record of any kind, read (and checked) from its document once, so
/// that the policy and the server's bookkeeping need not read it again.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRecord {
    /// A household.
    Household(Household),
    /// A case.
    Case(Case),
    /// A visit.
    Visit(Visit),
    /// Special-population details.
    Sensitive(Sensitive),
}

impl AnyRecord {
    /// Reads the record of `kind` that `doc` holds.
    pub fn read(kind: RecordKind, doc: &Automerge) -> Result<Self, DocError> {
        Self::read_in(kind, &View::new(doc))
    }

    /// [`AnyRecord::read`] from a document already being read.
    pub fn read_in(kind: RecordKind, view: &View<'_>) -> Result<Self, DocError> {
        Ok(match kind {
            RecordKind::Household => AnyRecord::Household(read_in(view)?),
            RecordKind::Case => AnyRecord::Case(read_in(view)?),
            RecordKind::Visit => AnyRecord::Visit(read_in(view)?),
            RecordKind::Sensitive => AnyRecord::Sensitive(read_in(view)?),
        })
    }

    /// Reads the record of `kind` from a document this side stored after
    /// [`AnyRecord::read`] accepted it: the record's rules are checked
    /// again (they may have changed since), the document's shape, a walk of
    /// every field, is not.
    pub fn read_stored(kind: RecordKind, doc: &Automerge) -> Result<Self, DocError> {
        Self::read_stored_in(kind, &View::new(doc))
    }

    /// [`AnyRecord::read_stored`] from a document already being read.
    pub fn read_stored_in(kind: RecordKind, view: &View<'_>) -> Result<Self, DocError> {
        Ok(match kind {
            RecordKind::Household => AnyRecord::Household(hydrate_valid(view)?),
            RecordKind::Case => AnyRecord::Case(hydrate_valid(view)?),
            RecordKind::Visit => AnyRecord::Visit(hydrate_valid(view)?),
            RecordKind::Sensitive => AnyRecord::Sensitive(hydrate_valid(view)?),
        })
    }

    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            AnyRecord::Household(_) => RecordKind::Household,
            AnyRecord::Case(_) => RecordKind::Case,
            AnyRecord::Visit(_) => RecordKind::Visit,
            AnyRecord::Sensitive(_) => RecordKind::Sensitive,
        }
    }

    /// Every file the record references: its own, then those of a case's
    /// events, in list order. A file named twice is listed twice.
    pub fn attachments(&self) -> Vec<(Option<&str>, &Attachment)> {
        fn own(list: &[Attachment]) -> Vec<(Option<&str>, &Attachment)> {
            list.iter().map(|a| (None, a)).collect()
        }
        match self {
            AnyRecord::Household(h) => own(&h.attachments),
            AnyRecord::Visit(v) => own(&v.attachments),
            AnyRecord::Sensitive(s) => own(&s.attachments),
            AnyRecord::Case(c) => {
                let mut all = own(&c.attachments);
                for e in &c.events {
                    all.extend(e.attachments.iter().map(|a| (Some(e.id.as_str()), a)));
                }
                all
            }
        }
    }

    /// The record's own list of attached files (not a case event's).
    pub fn attachments_mut(&mut self) -> &mut Vec<Attachment> {
        match self {
            AnyRecord::Household(h) => &mut h.attachments,
            AnyRecord::Visit(v) => &mut v.attachments,
            AnyRecord::Sensitive(s) => &mut s.attachments,
            AnyRecord::Case(c) => &mut c.attachments,
        }
    }

    /// What decides who may see it.
    pub fn meta(&self) -> DocMeta {
        let area = |org_unit: &str| DocMeta {
            org_unit: org_unit.to_owned(),
            ..DocMeta::default()
        };
        match self {
            AnyRecord::Household(h) => area(&h.org_unit),
            AnyRecord::Visit(v) => area(&v.org_unit),
            AnyRecord::Sensitive(s) => area(&s.org_unit),
            AnyRecord::Case(c) => DocMeta {
                org_unit: c.org_unit.clone(),
                reporter: Some(c.reporter.clone()),
                assignee: crate::workflow::fold(c, &crate::workflow::Deadlines::default()).assignee,
            },
        }
    }
}

/// Checks that `doc` holds a valid record of `kind` and returns its
/// [`DocMeta`].
pub fn meta(kind: RecordKind, doc: &Automerge) -> Result<DocMeta, DocError> {
    Ok(AnyRecord::read(kind, doc)?.meta())
}

/// Checks that `doc` holds a valid record of `kind`.
pub fn check(kind: RecordKind, doc: &Automerge) -> Result<(), DocError> {
    meta(kind, doc).map(drop)
}

/// A new document holding `record`, written as one change by `actor` at
/// `time` (milliseconds since the Unix epoch).
pub fn create<R: Record>(actor: ActorId, record: &R, time: i64) -> Result<Automerge, DocError> {
    record
        .validate()
        .and_then(|()| record.validate_strict())
        .map_err(|source| DocError::Invalid {
            kind: R::KIND,
            source,
        })?;
    let mut doc = empty(actor);
    doc.transact_with(
        |_| commit_options(time),
        |tx| autosurgeon::reconcile(tx, record),
    )
    .map_err(|failure| DocError::Write {
        kind: R::KIND,
        source: Box::new(failure.error),
    })?;
    Ok(doc)
}

/// Edits the record in `doc` through `f` as one change at `time`.
///
/// The edited record must still be valid (and keep the strict rules if it
/// kept them before, see [`Record::validate_strict`]), or nothing is
/// written. Returns the
/// new change's hash, or `None` when `f` changed nothing.
///
/// The record is read inside the same transaction that writes it: a
/// transaction may depend on more hashes than the document's heads (its
/// actor's previous change, when others have built on it), and text edits
/// are only accepted against the exact base they were read from.
pub fn edit<R: Record>(
    doc: &mut Automerge,
    time: i64,
    f: impl FnOnce(&mut R),
) -> Result<Option<ChangeHash>, DocError> {
    let done = doc
        .transact_with(
            |_| commit_options(time),
            |tx| {
                let mut record: R = autosurgeon::hydrate(tx).map_err(|source| DocError::Shape {
                    kind: R::KIND,
                    source: Box::new(source),
                })?;
                let strict_before = record.validate_strict().is_ok();
                f(&mut record);
                record
                    .validate()
                    .and_then(|()| match strict_before {
                        true => record.validate_strict(),
                        false => Ok(()),
                    })
                    .map_err(|source| DocError::Invalid {
                        kind: R::KIND,
                        source,
                    })?;
                autosurgeon::reconcile(tx, &record).map_err(|source| DocError::Write {
                    kind: R::KIND,
                    source: Box::new(source),
                })
            },
        )
        .map_err(|failure| failure.error)?;
    Ok(done.hash)
}

fn commit_options(time: i64) -> CommitOptions {
    // Automerge stores change times in seconds.
    CommitOptions::default().with_time(time.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Member;

    #[test]
    fn create_edit_read() {
        let mut h = Household {
            org_unit: "grid-1".into(),
            ..Default::default()
        };
        h.members.push(Member::new("m1", "王五"));
        let mut doc = create(ActorId::random(), &h, 1_700_000_000_000).unwrap();
        assert_eq!(read::<Household>(&doc).unwrap(), h);

        let hash = edit::<Household>(&mut doc, 0, |h| h.address.room = "301".into()).unwrap();
        assert!(hash.is_some());
        assert_eq!(read::<Household>(&doc).unwrap().address.room, "301");

        let unchanged = edit::<Household>(&mut doc, 0, |_| {}).unwrap();
        assert_eq!(unchanged, None);
    }

    #[test]
    fn invalid_edit_writes_nothing() {
        let h = Household {
            org_unit: "grid-1".into(),
            ..Default::default()
        };
        let mut doc = create(ActorId::random(), &h, 0).unwrap();
        let heads = doc.get_heads();
        let err = edit::<Household>(&mut doc, 0, |h| h.org_unit.clear()).unwrap_err();
        assert!(matches!(err, DocError::Invalid { .. }));
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn text_can_be_edited_after_another_phone_built_on_our_last_change() {
        let h = Household {
            org_unit: "grid-1".into(),
            notes: "甲".into(),
            ..Default::default()
        };
        let mut mine = create(ActorId::random(), &h, 0).unwrap();
        let mut theirs = load(&mine.save()).unwrap().with_actor(ActorId::random());
        edit::<Household>(&mut theirs, 0, |h| h.address.room = "1".into()).unwrap();
        mine.merge(&mut theirs).unwrap();
        // Our last change is now an ancestor, not a head.
        edit::<Household>(&mut mine, 0, |h| h.notes.splice(3, 0, "乙")).unwrap();
        assert_eq!(read::<Household>(&mine).unwrap().notes.as_str(), "甲乙");
    }

    #[test]
    fn a_case_document_is_not_a_household() {
        let doc = Automerge::new();
        assert!(check(RecordKind::Household, &doc).is_err());
    }
}
