//! Property: however edits from several offline phones interleave and
//! whatever order their documents meet in, every copy ends identical, and
//! nothing typed is lost: no member, no character of the notes, no
//! attached file.

use automerge::{ActorId, Automerge};
use proptest::prelude::*;
use sync_core::doc;
use sync_core::records::{Attachment, Household, Member, Tag};

#[derive(Debug, Clone)]
enum Edit {
    Room(u8),
    Phone(u8),
    AddMember,
    Note {
        at: u8,
    },
    Tag(usize, bool),
    /// Attaches one of a few files: two phones may attach the same one.
    Attach(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<u8>().prop_map(Edit::Room),
        any::<u8>().prop_map(Edit::Phone),
        Just(Edit::AddMember),
        any::<u8>().prop_map(|at| Edit::Note { at }),
        (0..Tag::ALL.len(), any::<bool>()).prop_map(|(t, on)| Edit::Tag(t, on)),
        (0u8..6).prop_map(Edit::Attach),
    ]
}

fn base() -> Household {
    let mut h = Household {
        org_unit: "g1".into(),
        notes: "起".into(),
        ..Default::default()
    };
    h.members.push(Member::new("m0", "户主"));
    h
}

/// Applies one edit on `phone`; returns the member id or note marker it
/// introduced, if any, so the test can look for it afterwards.
fn apply(doc: &mut Automerge, phone: usize, n: usize, edit: &Edit) -> Option<String> {
    let mut introduced = None;
    doc::edit::<Household>(doc, 0, |h| match edit {
        Edit::Room(r) => h.address.room = format!("{r}"),
        Edit::Phone(p) => h.members[0].phone = format!("1380000{p:04}"),
        Edit::AddMember => {
            let id = format!("p{phone}n{n}");
            h.members.push(Member::new(id.clone(), "新成员"));
            introduced = Some(id);
        }
        Edit::Note { at } => {
            // Insert at a character boundary chosen by `at`.
            let bounds: Vec<usize> = h
                .notes
                .as_str()
                .char_indices()
                .map(|(i, _)| i)
                .chain([h.notes.as_str().len()])
                .collect();
            let pos = bounds[*at as usize % bounds.len()];
            let marker = format!("《{phone}-{n}》");
            h.notes.splice(pos, 0, &marker);
            introduced = Some(marker);
        }
        Edit::Tag(t, on) => h.set_tag(Tag::ALL[*t], *on),
        Edit::Attach(file) => {
            let sha256 = format!("{file:02x}").repeat(32);
            if !h.attachments.iter().any(|a| a.sha256 == sha256) {
                h.attachments.push(Attachment {
                    sha256: sha256.clone(),
                    media_type: "image/jpeg".into(),
                    size: 1000 + i64::from(*file),
                    author: format!("worker{phone}"),
                    device: format!("phone{phone}"),
                    ..Default::default()
                });
            }
            introduced = Some(sha256);
        }
    })
    .unwrap();
    introduced
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn offline_edits_converge_and_nothing_typed_is_lost(
        edits in prop::collection::vec((0usize..4, edit()), 1..40),
        merges in prop::collection::vec((0usize..4, 0usize..4), 0..12),
    ) {
        let origin = doc::create(ActorId::random(), &base(), 0).unwrap();
        let saved = origin.save();
        let mut phones: Vec<Automerge> = (0..4)
            .map(|_| doc::load(&saved).unwrap().with_actor(ActorId::random()))
            .collect();
        let mut members = Vec::new();
        let mut markers = Vec::new();
        let mut files = Vec::new();
        // Edits interleaved with partial merges between random pairs.
        let mut merges = merges.into_iter();
        for (n, (phone, e)) in edits.iter().enumerate() {
            match apply(&mut phones[*phone], *phone, n, e) {
                Some(m) if matches!(e, Edit::AddMember) => members.push(m),
                Some(f) if matches!(e, Edit::Attach(_)) => files.push(f),
                Some(m) => markers.push(m),
                None => {}
            }
            if n % 3 == 0
                && let Some((a, b)) = merges.next()
                && a != b
            {
                let mut other = phones[b].clone();
                phones[a].merge(&mut other).unwrap();
            }
        }
        // Everyone meets everyone.
        for a in 0..4 {
            for b in 0..4 {
                if a != b {
                    let mut other = phones[b].clone();
                    phones[a].merge(&mut other).unwrap();
                }
            }
        }
        let first: Household = doc::read(&phones[0]).unwrap();
        for p in &phones[1..] {
            prop_assert_eq!(p.get_heads(), phones[0].get_heads());
            prop_assert_eq!(&doc::read::<Household>(p).unwrap(), &first);
        }
        for id in &members {
            prop_assert!(first.member(id).is_some(), "member {} lost", id);
        }
        for sha256 in &files {
            prop_assert!(
                first.attachments.iter().any(|a| &a.sha256 == sha256),
                "attached file {} lost", sha256
            );
        }
        // No deletions were made, so every typed character survives, in the
        // order it was typed (later inserts may land inside earlier ones).
        let notes = first.notes.as_str();
        let typed: usize = markers.iter().map(|m| m.chars().count()).sum();
        prop_assert_eq!(notes.chars().count(), 1 + typed, "{}", notes);
        for marker in &markers {
            prop_assert!(is_subsequence(marker, notes), "note {} lost: {}", marker, notes);
        }
    }
}

fn is_subsequence(needle: &str, haystack: &str) -> bool {
    let mut rest = haystack.chars();
    needle.chars().all(|c| rest.any(|h| h == c))
}
