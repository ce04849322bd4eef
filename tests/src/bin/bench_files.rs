//! Attached files on loopback: upload throughput for a 200 KB and a 5 MB
//! photo, against the download of the same file through the same server
//! (the baseline: the same bytes over the same HTTP stack, without the
//! checks); the overhead of resuming an upload cut halfway; and what the
//! server keeps per photo.
//!
//! ```text
//! cargo run --release -p tests --bin bench_files -- [--runs N]
//! ```
//!
//! SQLite by default; PostgreSQL with `TEST_DATABASE_URL`. Prints one JSON
//! object.

use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sync_core::policy::Role;
use sync_core::records::{Attachment, Case};
use sync_core::workflow;
use tests::{Device, TestServer};

/// Benchmarks attached files: upload and download throughput, resuming,
/// storage per photo.
/// How long a cut upload's connection stays silent before it drops.
const PAUSE_MS: u64 = 200;

#[derive(Parser)]
struct Args {
    /// Photos uploaded per size and way of sending.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Bytes per part when sending in parts, as the field app does.
    #[arg(long, default_value_t = 256 * 1024)]
    part_bytes: usize,
}

/// A JPEG of about `target` bytes that compresses like a phone photo:
/// smooth shapes with sensor noise.
fn photo(target: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut side = 400u32;
    loop {
        let (w, h) = (side * 4 / 3, side);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let base = (
                (x * 255 / w) as i32,
                (y * 255 / h) as i32,
                ((x + y) % 256) as i32,
            );
            let n = |c: i32, rng: &mut rand::rngs::StdRng| {
                (c + rng.gen_range(-40..40)).clamp(0, 255) as u8
            };
            image::Rgb([
                n(base.0, &mut rng),
                n(base.1, &mut rng),
                n(base.2, &mut rng),
            ])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out, 85,
            ))
            .unwrap();
        let bytes = out.into_inner();
        if bytes.len() >= target {
            return bytes;
        }
        let grow = ((target as f64 / bytes.len() as f64).sqrt() * 1.02).max(1.05);
        side = (f64::from(side) * grow) as u32;
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

async fn put_parts(
    device: &Device<sync_core::MemoryStore>,
    sha256: &str,
    bytes: &[u8],
    from: usize,
    part: usize,
) -> u16 {
    let mut first = from;
    let mut status = 0;
    while first < bytes.len() {
        let end = (first + part).min(bytes.len());
        let response = reqwest::Client::new()
            .put(format!("{}/v1/attachments/{sha256}", device.base))
            .bearer_auth(&device.token)
            .header("content-type", "image/jpeg")
            .header(
                "content-range",
                format!("bytes {first}-{}/{}", end - 1, bytes.len()),
            )
            .body(bytes[first..end].to_vec())
            .send()
            .await
            .expect("upload");
        status = response.status().as_u16();
        first = end;
    }
    status
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = TestServer::start_with(|c| c.attachment_max_bytes = 25 * 1024 * 1024).await;
    server.org_unit("g1", None).await;
    server.user("w1", "grid_worker", "g1").await;
    let mut w1 = server.device("w1").await;
    let mut case = Case {
        org_unit: "g1".into(),
        title: "bench".into(),
        reporter: "usr_w1".into(),
        reported_at: 1,
        ..Default::default()
    };
    workflow::append(
        &mut case,
        "report",
        ("usr_w1", "d", Role::GridWorker),
        1,
        Default::default(),
    );
    let case = w1.replica.create(&case).unwrap();

    let mut report = serde_json::Map::new();
    report.insert(
        "backend".into(),
        json!(if server.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }),
    );
    let mut seed = 0;
    for (label, target) in [("200KB", 200 * 1024), ("5MB", 5 * 1024 * 1024)] {
        // Each way of sending gets photos of its own: a file the server
        // holds is not sent again.
        let mut batch = |n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|_| {
                    seed += 1;
                    photo(target, seed)
                })
                .collect()
        };
        let (whole, parts, resumed) = (batch(args.runs), batch(args.runs), batch(args.runs));
        for bytes in whole.iter().chain(&parts).chain(&resumed) {
            let reference = Attachment {
                media_type: "image/jpeg".into(),
                author: "usr_w1".into(),
                device: "d".into(),
                ..Default::default()
            };
            w1.replica.attach(&case, bytes, reference).unwrap();
        }
        w1.sync().await;
        let sha = |b: &[u8]| sync_core::replica::sha256_hex(b);
        let mb = |bytes: usize, d: f64| bytes as f64 / 1e6 / d;
        let size = whole[0].len();

        let mut up = Vec::new();
        for bytes in &whole {
            let started = Instant::now();
            let (status, _) = w1.put_part(&sha(bytes), "image/jpeg", bytes, 0).await;
            assert_eq!(status, 201);
            up.push(started.elapsed().as_secs_f64());
        }
        let mut up_parts = Vec::new();
        for bytes in &parts {
            let started = Instant::now();
            assert_eq!(
                put_parts(&w1, &sha(bytes), bytes, 0, args.part_bytes).await,
                201
            );
            up_parts.push(started.elapsed().as_secs_f64());
        }
        let mut up_resumed = Vec::new();
        let mut resent = 0usize;
        for bytes in &resumed {
            let sha = sha(bytes);
            let mut took = w1
                .cut_upload(&sha, bytes, Duration::from_millis(PAUSE_MS))
                .await;
            // The server stores what came once it sees the connection
            // end, a moment after the phone does: the phone asks until the
            // upload has moved (or a second has passed), and that counts.
            let started = Instant::now();
            let mut from = 0;
            while from == 0 && started.elapsed() < Duration::from_secs(1) {
                let (_, state) = w1
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/attachments/{sha}/upload"),
                        None,
                    )
                    .await;
                from = state["received"].as_u64().unwrap_or(0) as usize;
                if from == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            resent += bytes.len() / 2 - from.min(bytes.len() / 2);
            let (status, _) = w1.put_part(&sha, "image/jpeg", bytes, from).await;
            assert_eq!(status, 201);
            took += started.elapsed();
            up_resumed.push(took.as_secs_f64());
        }
        let mut down = Vec::new();
        let mut stored = 0;
        let mut thumbs = 0;
        for bytes in &whole {
            let started = Instant::now();
            let (status, _, body) = w1.fetch(&format!("/v1/attachments/{}", sha(bytes))).await;
            assert_eq!(status, 200);
            down.push(started.elapsed().as_secs_f64());
            let row = server
                .state
                .engine
                .storage
                .attachment(&sha(bytes))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.stored_size as usize, body.len());
            stored += row.stored_size;
            thumbs += row.thumb_size;
        }
        // The share of an upload that is the server's work on the whole
        // file: hash, type, decoding, re-encoding, thumbnail.
        let mut checks = Vec::new();
        for bytes in &whole {
            let started = Instant::now();
            let _ = sync_core::replica::sha256_hex(bytes);
            gridsync_server::engine::attachments::media::prepare(bytes, Some("image/jpeg"))
                .unwrap();
            checks.push(started.elapsed().as_secs_f64());
        }
        let checks = median(checks);
        let n = whole.len() as i64;
        let (up, up_parts, up_resumed, down) = (
            median(up),
            median(up_parts),
            median(up_resumed),
            median(down),
        );
        let original: usize = whole.iter().map(Vec::len).sum();
        report.insert(
            label.into(),
            json!({
                "file_bytes": size,
                "upload_ms": up * 1e3,
                "upload_mb_s": mb(size, up),
                "upload_in_parts_ms": up_parts * 1e3,
                "upload_in_parts_mb_s": mb(size, up_parts),
                "download_ms": down * 1e3,
                "download_mb_s": mb(size, down),
                "upload_vs_download": down / up,
                "checks_ms": checks * 1e3,
                "checks_share_of_upload": checks / up,
                "resumed_ms": up_resumed * 1e3,
                "resume_overhead": up_resumed / up,
                "bytes_sent_again": resent,
                "stored_bytes_per_photo": stored / n,
                "thumbnail_bytes_per_photo": thumbs / n,
                "stored_vs_original": (stored + thumbs) as f64 / original as f64,
            }),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(report)).unwrap()
    );
}
