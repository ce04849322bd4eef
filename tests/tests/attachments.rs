//! Photos on records, end to end through the real server and database
//! (SQLite, or PostgreSQL with `TEST_DATABASE_URL`): attached offline,
//! uploaded after their record over a connection that drops, seen by those
//! who may read the record and by nobody else, refused whole when wrong,
//! stored once however often sent, swept when no record names them.

use std::time::Duration;

use reqwest::Method;
use sync_core::RecordId;
use sync_core::policy::Role;
use sync_core::records::{Attachment, Case, Household, Sensitive};
use sync_core::replica::sha256_hex;
use sync_core::workflow;
use tests::{Device, TestServer};

/// county c > township t > community cm (grids g1, g2), cm2 (grid g3).
async fn county(tweak: impl FnOnce(&mut gridsync_server::config::Config)) -> TestServer {
    let server = TestServer::start_with(tweak).await;
    server.small_county().await;
    server
        .users(&[
            ("w1", "grid_worker", "g1"),
            ("w2", "grid_worker", "g2"),
            ("w3", "grid_worker", "g3"),
            ("staff", "community_staff", "cm"),
            ("staff2", "community_staff", "cm"),
        ])
        .await;
    server
}

/// A JPEG of `w` × `h` pixels carrying an EXIF segment with a GPS
/// position, as phone cameras write them.
fn photo(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8).wrapping_add(seed), (y as u8) ^ seed, seed])
    });
    let mut plain = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut plain, image::ImageFormat::Jpeg)
        .unwrap();
    let plain = plain.into_inner();
    let exif = b"Exif\0\0GPSLatitude 31.2304 GPSLongitude 121.4737";
    let mut tagged = plain[..2].to_vec();
    tagged.extend([0xFF, 0xE1]);
    tagged.extend(((exif.len() + 2) as u16).to_be_bytes());
    tagged.extend(exif);
    tagged.extend(&plain[2..]);
    tagged
}

/// How long a cut upload's connection stays silent before it drops.
const PAUSE: Duration = Duration::from_millis(200);

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn reference(author: &str, name: &str) -> Attachment {
    Attachment {
        media_type: "image/jpeg".into(),
        name: name.into(),
        taken_at: 1_764_633_600_000,
        author: author.into(),
        device: "phone".into(),
        ..Default::default()
    }
}

/// A hazard reported by w1, not yet synced.
fn hazard(w1: &mut Device<sync_core::MemoryStore>) -> RecordId {
    let mut case = Case {
        org_unit: "g1".into(),
        title: "楼道堆放杂物，堵塞消防通道".into(),
        reporter: "usr_w1".into(),
        reported_at: 1_764_633_600_000,
        category: sync_core::records::CaseCategory::Hazard,
        ..Default::default()
    };
    let who = ("usr_w1", "w1-phone", Role::GridWorker);
    let at = case.reported_at;
    workflow::append(&mut case, "report", who, at, Default::default());
    w1.replica.create(&case).unwrap()
}

/// w1's phone with a hazard naming one photo (of `seed`), synced.
async fn one_photo(
    server: &TestServer,
    seed: u8,
) -> (
    Device<sync_core::MemoryStore>,
    RecordId,
    Vec<u8>,
    Attachment,
) {
    let mut w1 = server.device("w1").await;
    let case = hazard(&mut w1);
    let bytes = photo(400 + u32::from(seed), 300, seed);
    let kept = w1
        .replica
        .attach(&case, &bytes, reference("usr_w1", "a.jpg"))
        .unwrap();
    w1.sync().await;
    (w1, case, bytes, kept)
}

async fn upload_state(device: &Device<sync_core::MemoryStore>, sha256: &str) -> serde_json::Value {
    let (status, state) = device
        .call(
            Method::GET,
            &format!("/v1/attachments/{sha256}/upload"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{state}");
    state
}

#[tokio::test]
async fn photos_attached_offline_reach_the_community_and_nobody_else() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let case = hazard(&mut w1);
    let (first_bytes, second_bytes) = (photo(1200, 900, 1), photo(800, 600, 2));
    let first = w1
        .replica
        .attach(&case, &first_bytes, reference("usr_w1", "IMG_0001.jpg"))
        .unwrap();
    let second = w1
        .replica
        .attach(&case, &second_bytes, reference("usr_w1", "IMG_0002.jpg"))
        .unwrap();
    // Offline: nothing to send until the case is on the server.
    assert!(w1.replica.uploads_ready().is_empty());
    w1.sync().await;
    assert_eq!(w1.replica.uploads_ready().len(), 2);

    // The first upload drops halfway; the server keeps what came.
    w1.cut_upload(&first.sha256, &first_bytes, PAUSE).await;
    let mut received = 0;
    for _ in 0..100 {
        received = upload_state(&w1, &first.sha256).await["received"]
            .as_i64()
            .unwrap();
        if received > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        received > 0 && received as usize <= first_bytes.len() / 2,
        "{received}"
    );
    // Resuming from anywhere else is refused, with where to resume.
    let (status, body) = w1
        .put_part(
            &first.sha256,
            "image/jpeg",
            &first_bytes,
            received as usize + 1,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("upload_offset"))
    );
    // The phone's uploader resumes both from where the server stands.
    let done = w1.upload_files().await;
    assert_eq!(
        done,
        [(first.sha256.clone(), 201), (second.sha256.clone(), 201)]
    );
    assert!(w1.replica.uploads().is_empty());

    // A retry of a kept file stores nothing twice.
    let (status, body) = w1
        .put_part(&first.sha256, "image/jpeg", &first_bytes, 0)
        .await;
    assert_eq!((status, body["complete"].as_bool()), (200, Some(true)));
    assert_eq!(server.count("attachments").await, 2);
    assert_eq!(server.count("attachment_parts").await, 0);
    assert_eq!(server.count("attachment_uploads").await, 0);

    // Staff of the community see the photos, without their metadata, and
    // thumbnails.
    let staff = server.device("staff").await;
    let (status, media_type, kept) = staff
        .fetch(&format!("/v1/attachments/{}", first.sha256))
        .await;
    assert_eq!((status, media_type.as_str()), (200, "image/jpeg"));
    assert!(has(&first_bytes, b"GPSLatitude"));
    assert!(!has(&kept, b"GPSLatitude") && !has(&kept, b"Exif\0\0"));
    let shown = image::load_from_memory(&kept).unwrap();
    assert_eq!((shown.width(), shown.height()), (1200, 900));
    let (status, media_type, thumb) = staff
        .fetch(&format!("/v1/attachments/{}/thumbnail", second.sha256))
        .await;
    assert_eq!((status, media_type.as_str()), (200, "image/jpeg"));
    let thumb = image::load_from_memory(&thumb).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 240));

    // The case list counts them and links them, and so does its export.
    let (_, cases) = staff.call(Method::GET, "/v1/cases", None).await;
    let listed = &cases["items"][0];
    let links = [
        format!("/v1/attachments/{}", first.sha256),
        format!("/v1/attachments/{}", second.sha256),
    ];
    assert_eq!(listed["id"].as_str(), Some(case.to_string().as_str()));
    assert_eq!(listed["attachments"].as_i64(), Some(2));
    assert_eq!(listed["files"], serde_json::json!(links));
    let (status, _, csv) = staff.fetch("/v1/cases?format=csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(status, 200);
    assert!(csv.contains(&links.join(" ")), "{csv}");

    // A worker of another grid, and anyone asking for a file that does
    // not exist, get the same 404.
    let w3 = server.device("w3").await;
    let unknown = sha256_hex(b"no such photo");
    let (status, _, theirs) = w3.fetch(&format!("/v1/attachments/{}", first.sha256)).await;
    let (status_unknown, _, none) = staff.fetch(&format!("/v1/attachments/{unknown}")).await;
    assert_eq!((status, status_unknown), (404, 404));
    assert_eq!(theirs, none);
    let (status, _, _) = w3
        .fetch(&format!("/v1/attachments/{}/thumbnail", first.sha256))
        .await;
    assert_eq!(status, 404);
    // Nor may they upload it.
    let (status, body) = w3
        .put_part(&first.sha256, "image/jpeg", &first_bytes, 0)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_referenced"))
    );
}

#[tokio::test]
async fn a_sensitive_records_photo_reaches_only_the_roles_that_receive_it() {
    let server = county(|_| {}).await;
    let mut staff = server.device("staff").await;
    let household = staff
        .replica
        .create(&Household {
            org_unit: "g1".into(),
            ..Default::default()
        })
        .unwrap();
    let order = photo(600, 800, 7);
    let details = staff
        .replica
        .create(&Sensitive {
            household: household.to_string(),
            org_unit: "g1".into(),
            ..Default::default()
        })
        .unwrap();
    let scan = staff
        .replica
        .attach(&details, &order, reference("usr_staff", "矫正决定书.jpg"))
        .unwrap();
    staff.sync().await;
    assert_eq!(staff.upload_files().await, [(scan.sha256.clone(), 201)]);
    let path = format!("/v1/attachments/{}", scan.sha256);
    let staff2 = server.device("staff2").await;
    assert_eq!(staff2.fetch(&path).await.0, 200);
    // The grid's own worker receives the household, not the details, and
    // not their files.
    let w1 = server.device("w1").await;
    assert_eq!(w1.fetch(&path).await.0, 404);
    server.user("sup", "supervisor", "c").await;
    let sup = server.device("sup").await;
    assert_eq!(sup.fetch(&path).await.0, 404);
}

#[tokio::test]
async fn files_that_are_not_what_they_claim_are_refused_and_nothing_kept() {
    let server = county(|c| c.attachment_max_bytes = 300_000).await;
    let mut w1 = server.device("w1").await;
    let case = hazard(&mut w1);
    let good = photo(320, 240, 3);
    let page = b"<html><script>alert(1)</script></html>".to_vec();
    let big = vec![0xFFu8; 400_000];
    let good_ref = w1
        .replica
        .attach(&case, &good, reference("usr_w1", "a.jpg"))
        .unwrap();
    let page_ref = w1
        .replica
        .attach(&case, &page, reference("usr_w1", "b.jpg"))
        .unwrap();
    let big_ref = w1
        .replica
        .attach(&case, &big, reference("usr_w1", "c.jpg"))
        .unwrap();
    w1.sync().await;

    // Other bytes under a referenced hash.
    let (status, body) = w1
        .put_part(&good_ref.sha256, "image/jpeg", &photo(320, 240, 4), 0)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("hash_mismatch")),
        "{body}"
    );
    assert_eq!(upload_state(&w1, &good_ref.sha256).await["received"], 0);
    // A web page named .jpg: its bytes say what it is.
    let (status, body) = w1.put_part(&page_ref.sha256, "image/jpeg", &page, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
    // A photo sent as a PNG.
    let (status, body) = w1.put_part(&good_ref.sha256, "image/png", &good, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
    // Over the size limit: refused before a byte is read.
    let (status, body) = w1.put_part(&big_ref.sha256, "image/jpeg", &big, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("file_too_large")),
        "{body}"
    );
    // A name that is no hash.
    let (status, body) = w1.put_part("not-a-hash", "image/jpeg", &good, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_sha256")),
        "{body}"
    );
    // A file no record names.
    let stray = photo(64, 64, 9);
    let (status, body) = w1
        .put_part(&sha256_hex(&stray), "image/jpeg", &stray, 0)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_referenced")),
        "{body}"
    );
    for table in ["attachments", "attachment_parts", "attachment_uploads"] {
        assert_eq!(server.count(table).await, 0, "{table}");
    }
    // The good file still goes in afterwards.
    let (status, _) = w1.put_part(&good_ref.sha256, "image/jpeg", &good, 0).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_device_has_a_daily_limit() {
    let (a, b) = (photo(640, 480, 5), photo(640, 480, 6));
    let limit = (a.len() + b.len() / 2) as u64;
    let server = county(|c| c.attachment_daily_bytes_per_device = limit).await;
    let mut w1 = server.device("w1").await;
    let case = hazard(&mut w1);
    let a_ref = w1
        .replica
        .attach(&case, &a, reference("usr_w1", "a.jpg"))
        .unwrap();
    let b_ref = w1
        .replica
        .attach(&case, &b, reference("usr_w1", "b.jpg"))
        .unwrap();
    w1.sync().await;
    assert_eq!(w1.put_part(&a_ref.sha256, "image/jpeg", &a, 0).await.0, 201);
    let (status, body) = w1.put_part(&b_ref.sha256, "image/jpeg", &b, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("daily_limit")),
        "{body}"
    );
    assert_eq!(server.count("attachment_parts").await, 0);
}

#[tokio::test]
async fn files_no_record_names_are_swept_after_the_retention() {
    let server = county(|c| c.attachment_retention_days = 0).await;
    let (mut w1, case, _, kept) = one_photo(&server, 8).await;
    assert_eq!(w1.upload_files().await, [(kept.sha256.clone(), 201)]);
    let dir = server.state.engine.config.attachment_dir();
    let stored = dir.join("files").join(&kept.sha256);
    assert!(stored.exists());
    let files = &server.state.engine.files;
    // Named: kept, however old.
    let later = gridsync_server::now_ms() + 1000;
    assert_eq!(files.sweep(later, 0).await.unwrap().files, 0);
    // The worker takes the wrong photo off the case.
    w1.replica
        .update::<Case>(&case, |c| c.attachments.clear())
        .unwrap();
    w1.sync().await;
    let path = format!("/v1/attachments/{}", kept.sha256);
    assert_eq!(w1.fetch(&path).await.0, 404);
    // The first sweep marks it unnamed; one past the retention deletes it.
    assert_eq!(files.sweep(later, 0).await.unwrap().files, 0);
    assert_eq!(files.sweep(later + 1, 0).await.unwrap().files, 1);
    assert!(!stored.exists());
    assert!(!dir.join("thumbs").join(&kept.sha256).exists());
    assert_eq!(server.count("attachments").await, 0);
}

/// The blob store in the database: what several instances share without
/// object storage.
#[tokio::test]
async fn files_kept_in_the_database_are_served_by_every_instance() {
    use gridsync_server::config::AttachmentStore;
    let server = county(|c| c.attachment_store = AttachmentStore::Database).await;
    let other = TestServer::start_on(server.db.clone(), |c| {
        c.attachment_store = AttachmentStore::Database;
    })
    .await;
    let (mut w1, _, bytes, kept) = one_photo(&server, 10).await;
    // Half on one instance, the rest on the other.
    w1.cut_upload(&kept.sha256, &bytes, PAUSE).await;
    w1.reconnect(other.url(""));
    assert_eq!(w1.upload_files().await, [(kept.sha256.clone(), 201)]);
    let staff = server.device("staff").await;
    let (status, media_type, _) = staff
        .fetch(&format!("/v1/attachments/{}", kept.sha256))
        .await;
    assert_eq!((status, media_type.as_str()), (200, "image/jpeg"));
    assert_eq!(
        server.count("attachment_blobs").await,
        2,
        "the file and its thumbnail"
    );
}

/// S3-compatible object storage, when a server is given: `TEST_S3_ENDPOINT`
/// (with `TEST_S3_BUCKET`, and credentials in `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`); `.ci/run` starts one.
#[tokio::test]
async fn files_kept_in_s3_compatible_storage() {
    use gridsync_server::config::AttachmentStore;
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        eprintln!("TEST_S3_ENDPOINT is not set: S3 storage not tested");
        return;
    };
    let bucket = std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "gridsync-test".into());
    let server = county(|c| {
        c.attachment_store = AttachmentStore::S3;
        c.s3_endpoint = Some(endpoint);
        c.s3_bucket = Some(bucket);
    })
    .await;
    let (mut w1, case, bytes, kept) = one_photo(&server, 11).await;
    w1.cut_upload(&kept.sha256, &bytes, PAUSE).await;
    assert_eq!(w1.upload_files().await, [(kept.sha256.clone(), 201)]);
    let staff = server.device("staff").await;
    let (status, _, body) = staff
        .fetch(&format!("/v1/attachments/{}", kept.sha256))
        .await;
    assert_eq!(status, 200);
    assert!(!has(&body, b"GPSLatitude"));
    let (status, _, _) = staff
        .fetch(&format!("/v1/attachments/{}/thumbnail", kept.sha256))
        .await;
    assert_eq!(status, 200);
    // Swept from the bucket once no record names it.
    w1.replica
        .update::<Case>(&case, |c| c.attachments.clear())
        .unwrap();
    w1.sync().await;
    let files = &server.state.engine.files;
    let later = gridsync_server::now_ms() + 1000;
    files.sweep(later, 0).await.unwrap();
    assert_eq!(files.sweep(later + 1, 0).await.unwrap().files, 1);
}
