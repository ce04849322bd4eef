//! A phone's queue of attached files: kept with the file's bytes across
//! restarts, offered for upload only once the record naming the file has
//! reached the server.

use sync_core::records::{Attachment, Case};
use sync_core::{FileStore, Replica};

fn report() -> Case {
    Case {
        org_unit: "g1".into(),
        title: "楼道堆放杂物".into(),
        reporter: "w1".into(),
        reported_at: 1,
        ..Default::default()
    }
}

fn photo() -> Attachment {
    Attachment {
        media_type: "image/jpeg".into(),
        name: "IMG_0001.jpg".into(),
        author: "w1".into(),
        device: "phone-1".into(),
        ..Default::default()
    }
}

#[test]
fn attached_files_stay_queued_across_restarts_until_their_record_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Replica::open(FileStore::open(dir.path()).unwrap()).unwrap();
    let case = phone.create(&report()).unwrap();
    let first = phone
        .attach(&case, b"\xff\xd8 first photo", photo())
        .unwrap();
    let second = phone
        .attach(&case, b"\xff\xd8 second photo", photo())
        .unwrap();
    assert_eq!(
        first.sha256,
        sync_core::replica::sha256_hex(b"\xff\xd8 first photo")
    );
    assert_eq!(first.size, b"\xff\xd8 first photo".len() as i64);
    // The same bytes again: the same reference, nothing queued twice.
    assert_eq!(
        phone
            .attach(&case, b"\xff\xd8 first photo", photo())
            .unwrap(),
        first
    );
    drop(phone);

    let mut phone = Replica::open(FileStore::open(dir.path()).unwrap()).unwrap();
    let queued: Vec<_> = phone.uploads().iter().map(|u| u.sha256.clone()).collect();
    assert_eq!(queued, [first.sha256.clone(), second.sha256.clone()]);
    let record: Case = phone.read(&case).unwrap();
    assert_eq!(record.attachments, [first.clone(), second]);
    assert_eq!(
        phone.file(&first.sha256).unwrap().as_deref(),
        Some(&b"\xff\xd8 first photo"[..])
    );
    // The case has not reached the server: the server would refuse files
    // no record it holds names.
    assert!(phone.uploads_ready().is_empty());

    phone.upload_done(&first.sha256).unwrap();
    drop(phone);
    let mut phone = Replica::open(FileStore::open(dir.path()).unwrap()).unwrap();
    assert_eq!(phone.uploads().len(), 1);
    // The bytes stay on the phone for it to show offline.
    assert!(phone.file(&first.sha256).unwrap().is_some());
}

#[test]
fn a_file_the_record_refuses_is_not_queued() {
    let mut phone = Replica::open(sync_core::MemoryStore::default()).unwrap();
    let case = phone.create(&report()).unwrap();
    // Attached in someone else's name: the policy refuses the edit.
    phone.set_principal(Some(sync_core::policy::Principal {
        user_id: "w2".into(),
        role: sync_core::policy::Role::GridWorker,
        area: ["g1".to_owned()].into(),
    }));
    let forged = Attachment {
        author: "w1".into(),
        ..photo()
    };
    assert!(phone.attach(&case, b"\xff\xd8 forged", forged).is_err());
    assert!(phone.uploads().is_empty());
    let record: Case = phone.read(&case).unwrap();
    assert!(record.attachments.is_empty());
}
