//! The benchmark runner: starts a real server on loopback over a fresh
//! database, loads the synthetic county, drives simulated devices over real
//! HTTP, and prints each figure with its baseline from the same run.
//!
//! `cargo run --release -p tests --bin bench -- [--scale small|full]
//!  [--scenarios flat,S1,S2,S3,S4,S5] [--runs N] [--flat-n N] [--devices N]
//!  [--samples N] [--keep-database] [--json FILE]`; set `TEST_DATABASE_URL` to run on
//!  PostgreSQL.

#![forbid(unsafe_code)]

/// The server's allocator (`server/src/main.rs`), so that the server in
/// this process runs as it does in its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use gridsync_server::cli::progress_bar;
use gridsync_server::metrics;
use serde_json::{Value, json};
use sync_core::automerge::{AutoSerde, Automerge};
use sync_core::policy::Role;
use sync_core::records::{Case, Household, Member, Visit};
use sync_core::{MemoryStore, RecordId, doc, workflow};
use tests::county::{self, Grid, Scale};
use tests::{Device, TestDb, TestServer};

/// The benchmark workload (BENCHMARKS.md) against a real server on
/// loopback, over a fresh database: SQLite, or PostgreSQL when
/// `TEST_DATABASE_URL` is set.
#[derive(clap::Parser)]
#[command(name = "bench")]
struct Args {
    /// The synthetic county's size.
    #[arg(long = "scale", value_enum, default_value_t = ScaleName::Small)]
    scale_name: ScaleName,
    /// Which scenarios to run, in order: flat, S1, S2, S3, S4, S5.
    #[arg(long, value_delimiter = ',', default_value = "flat,S1,S2,S3",
        value_parser = ["flat", "S1", "S2", "S3", "S4", "S5"])]
    scenarios: Vec<String>,
    /// Runs of each scenario (S3: rushes of fresh phones one after another).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Documents in the flat workload.
    #[arg(long, default_value_t = 1000)]
    flat_n: usize,
    /// Phones in the S3 rush.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// Server instances on the one database in the S3 rush (in this
    /// process), the phones spread over them in turn.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// S4 requests per query and run.
    #[arg(long, default_value_t = 40)]
    samples: usize,
    /// Leave the loaded database in place, to look at its plans.
    #[arg(long)]
    keep_database: bool,
    /// Where to write the report as JSON.
    #[arg(long, default_value = "bench-report.json")]
    json: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScaleName {
    /// 1 township, 5 communities, 20 grids, 8,000 households.
    Small,
    /// The whole county of the benchmark plan.
    Full,
}

impl Args {
    fn scale(&self) -> Scale {
        match self.scale_name {
            ScaleName::Small => Scale::SMALL,
            ScaleName::Full => Scale::FULL,
        }
    }
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap().len()
}

/// Median and spread (min, max) of several measurements.
fn summary(mut xs: Vec<f64>) -> Value {
    xs.sort_by(f64::total_cmp);
    json!({ "median": xs[xs.len() / 2], "min": xs[0], "max": xs[xs.len() - 1], "runs": xs.len() })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The records as JSON, gzipped: the L3 baseline for bytes on the wire.
fn json_gzip_len(docs: &[&Automerge]) -> usize {
    let values: Vec<Value> = docs
        .iter()
        .map(|d| serde_json::to_value(AutoSerde::from(*d)).unwrap())
        .collect();
    gzip_len(&serde_json::to_vec(&values).unwrap())
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=sqlx::query=debug` logs every statement with its time.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = <Args as clap::Parser>::parse();
    let mut report = BTreeMap::new();
    report.insert(
        "scale".to_owned(),
        json!(match args.scale_name {
            ScaleName::Small => "small",
            ScaleName::Full => "full",
        }),
    );
    report.insert(
        "database".to_owned(),
        json!(if std::env::var(tests::DATABASE_ENV).is_ok() {
            "postgres"
        } else {
            "sqlite"
        }),
    );
    for scenario in &args.scenarios {
        let figures = match scenario.as_str() {
            "flat" => flat(&args).await,
            "S1" | "S2" | "S3" | "S4" | "S5" => county_scenario(&args, scenario).await,
            other => panic!("unknown scenario {other}"),
        };
        println!(
            "{scenario}: {}",
            serde_json::to_string_pretty(&figures).unwrap()
        );
        report.insert(scenario.clone(), figures);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
        eprintln!("report written to {path}");
    }
}

/// One device creates N small documents and pushes until acknowledged; a
/// fresh device fetches them all and checks each.
async fn flat(args: &Args) -> Value {
    let n = args.flat_n;
    let mut lines = Vec::new();
    for run in 0..args.runs {
        let server = TestServer::start().await;
        server.org_unit("bench", None).await;
        server.user("writer", "grid_worker", "bench").await;
        server.user("reader", "grid_worker", "bench").await;
        let t = Instant::now();
        let mut writer = server.device("writer").await;
        let connect_ms = ms(t.elapsed());
        let t = Instant::now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let mut h = Household {
                org_unit: "bench".into(),
                notes: format!("doc {i}").into(),
                ..Default::default()
            };
            h.address.room = i.to_string();
            h.tags.insert("bench".into(), true);
            h.tags.insert(format!("t{}", i % 7), true);
            ids.push(writer.replica.create(&h).unwrap());
        }
        let create_ms = ms(t.elapsed());
        let t = Instant::now();
        writer.sync().await;
        assert!(writer.replica.pending().is_empty());
        let push_ms = ms(t.elapsed());
        let mut reader = server.device("reader").await;
        let t = Instant::now();
        reader.sync().await;
        let fetch_ms = ms(t.elapsed());
        let verified = ids.iter().enumerate().all(|(i, id)| {
            reader.replica.read::<Household>(id).is_ok_and(|h| {
                h.notes.as_str() == format!("doc {i}")
                    && h.tags.contains_key(&format!("t{}", i % 7))
            })
        });
        let line = json!({
            "N": n, "connect_ms": connect_ms, "create_ms": create_ms,
            "push_until_server_acked_ms": push_ms, "docs_per_s_push": n as f64 / (push_ms / 1000.0),
            "fresh_client_fetch_all_ms": fetch_ms, "verified": verified,
        });
        eprintln!("flat run {}: {line}", run + 1);
        lines.push(line);
    }
    let pick = |k: &str| summary(lines.iter().map(|l| l[k].as_f64().unwrap()).collect());
    json!({
        "N": n,
        "push_until_server_acked_ms": pick("push_until_server_acked_ms"),
        "docs_per_s_push": pick("docs_per_s_push"),
        "fresh_client_fetch_all_ms": pick("fresh_client_fetch_all_ms"),
        "verified": lines.iter().all(|l| l["verified"] == true),
    })
}

/// A worker's day on `grid`: 20 visits each with 1–3 household edits, 1–2
/// new cases, 3 events on existing cases; one edit in ten on a record
/// another device edits too (here: the same household twice).
fn workday(device: &mut Device<MemoryStore>, grid: &Grid, seed: u64, now: i64) -> Vec<RecordId> {
    let mut rng = gridsync_server::demo::Rng::new(seed);
    let worker = format!("usr_{}", grid.worker);
    let mut touched = Vec::new();
    for v in 0..20 {
        let (hid, _) = &grid.households[rng.below(grid.households.len() as u64) as usize];
        let visit = Visit {
            attachments: Vec::new(),
            household: hid.to_string(),
            org_unit: grid.id.clone(),
            worker: worker.clone(),
            visited_at: now,
            findings: format!("第{v}次走访：家中情况良好。").into(),
            follow_up: false,
            location: String::new(),
        };
        touched.push(device.replica.create(&visit).unwrap());
        for e in 0..1 + rng.below(3) {
            device
                .replica
                .update::<Household>(hid, |h| match e {
                    0 => h.notes.splice(0, 0, "已走访。"),
                    1 => h.members[0].phone = format!("139{:08}", rng.below(100_000_000)),
                    _ => h
                        .members
                        .push(Member::new(format!("n{seed}-{v}"), "新生儿")),
                })
                .unwrap();
        }
        touched.push(hid.clone());
    }
    for _ in 0..1 + rng.below(2) {
        let (hid, _) = &grid.households[rng.below(grid.households.len() as u64) as usize];
        let mut c = gridsync_server::demo::case(&mut rng, &grid.id, hid, &worker, now);
        c.events[0].role = "grid_worker".into();
        c.events[0].hlc = now << 16;
        touched.push(device.replica.create(&c).unwrap());
    }
    for k in 0..3 {
        let (cid, _) = &grid.cases[(seed as usize + k) % grid.cases.len()];
        device
            .replica
            .update::<Case>(cid, |c| {
                let who = (worker.as_str(), device.device_id.as_str(), Role::GridWorker);
                let data = [("text".to_owned(), "已电话回访。".to_owned())].into();
                workflow::append(c, "comment", who, now, data);
            })
            .unwrap();
        touched.push(cid.clone());
    }
    touched
}

async fn county_scenario(args: &Args, scenario: &str) -> Value {
    let now = gridsync_server::now_ms();
    let grids = county::generate(args.scale(), 7, now);
    let total: usize = grids.iter().map(Grid::documents).sum();
    let server = TestServer::start_with(|c| c.sync_page_docs = 2000).await;
    let t = Instant::now();
    let mut bar = progress_bar("loading county");
    county::load(&server.state, &grids, 2000, |done| {
        bar(done as u64, total as u64)
    })
    .await;
    let load_s = t.elapsed().as_secs_f64();
    eprintln!("{total} documents loaded in {load_s:.1} s");
    if args.keep_database {
        server.db.keep();
        eprintln!("the database is kept: {}", server.db.url);
    }
    match scenario {
        "S1" => s1(args, &server, &grids[0]).await,
        "S2" => s2(args, &server, &grids[0], now).await,
        "S4" => s4(args, &server, &grids, now, load_s).await,
        "S5" => s5(&server, &grids[0], now).await,
        _ => s3(args, &server, &grids, now).await,
    }
}

/// A fresh phone's first sync of its grid.
async fn s1(args: &Args, server: &TestServer, grid: &Grid) -> Value {
    let (mut times, mut l1, mut bytes, mut requests, mut docs) = (vec![], vec![], 0, 0, 0);
    let mut l3 = 0;
    let mut bar = progress_bar("S1");
    for run in 0..args.runs {
        let mut phone = server.device(&grid.worker).await;
        let t = Instant::now();
        let body = phone.replica.sync_request().encode();
        let (_, reply) = phone.post_raw(body).await;
        let response = sync_core::protocol::SyncResponse::decode(&reply).unwrap();
        bytes = gzip_len(&reply);
        let more = response.more;
        phone.replica.apply_response(response).unwrap();
        requests = 1;
        if more {
            requests += phone.sync().await.rounds;
        }
        times.push(ms(t.elapsed()));
        docs = phone.replica.len();
        // L1: the same documents loaded and saved in process.
        let saved: Vec<Vec<u8>> = phone
            .replica
            .ids()
            .map(|id| phone.replica.document(id).unwrap().save())
            .collect();
        let t = Instant::now();
        for s in &saved {
            std::hint::black_box(doc::load(s).unwrap().save());
        }
        l1.push(ms(t.elapsed()));
        if run == 0 {
            let held: Vec<&Automerge> = phone
                .replica
                .ids()
                .map(|id| phone.replica.document(id).unwrap())
                .collect();
            l3 = json_gzip_len(&held);
        }
        bar(run as u64 + 1, args.runs as u64);
    }
    let t = summary(times.clone());
    let b = summary(l1.clone());
    json!({
        "documents": docs, "http_requests": requests,
        "bytes_down_gzip": bytes, "L3_json_gzip_bytes": l3, "bytes_ratio_to_L3": bytes as f64 / l3 as f64,
        "sync_ms": t, "L1_load_save_ms": b,
        "time_ratio_to_L1": t["median"].as_f64().unwrap() / b["median"].as_f64().unwrap(),
    })
}

/// End-of-day sync after a day offline.
async fn s2(args: &Args, server: &TestServer, grid: &Grid, now: i64) -> Value {
    let (mut times, mut up, mut l3s, mut requests) = (vec![], vec![], vec![], vec![]);
    let mut bar = progress_bar("S2");
    for run in 0..args.runs {
        let mut phone = server.device(&grid.worker).await;
        phone.sync().await;
        let touched = workday(&mut phone, grid, run as u64, now);
        let body = phone.replica.sync_request().encode();
        up.push(gzip_len(&body) as f64);
        let before = phone.requests;
        let t = Instant::now();
        phone.sync().await;
        times.push(ms(t.elapsed()));
        requests.push((phone.requests - before) as f64);
        // L3: the day's records and edited records as gzipped JSON.
        let docs: Vec<&Automerge> = touched
            .iter()
            .map(|id| phone.replica.document(id).unwrap())
            .collect();
        l3s.push(json_gzip_len(&docs) as f64);
        bar(run as u64 + 1, args.runs as u64);
    }
    let ratio = up[up.len() / 2] / l3s[l3s.len() / 2];
    json!({
        "http_requests": summary(requests), "bytes_up_gzip": summary(up),
        "L3_touched_records_json_gzip_bytes": summary(l3s), "bytes_up_ratio_to_L3": ratio,
        "sync_ms": summary(times),
    })
}

/// Morning rush: many devices sync a day's edits at once.
async fn s3(args: &Args, server: &TestServer, grids: &[Grid], now: i64) -> Value {
    let mut others = Vec::new();
    for _ in 1..args.instances.max(1) {
        others.push(server.another().await);
    }
    let servers: Vec<&TestServer> = std::iter::once(server).chain(&others).collect();
    let runs: Vec<Value> = {
        let mut runs = Vec::new();
        for run in 0..args.runs {
            runs.push(s3_run(args, &servers, grids, now, run).await);
        }
        runs
    };
    let each = |pointer: &str| -> Value {
        summary(
            runs.iter()
                .filter_map(|r| r.pointer(pointer)?.as_f64())
                .collect(),
        )
    };
    json!({
        "devices": args.devices,
        "instances": servers.len(),
        "changes": each("/changes"),
        "errors": runs.iter().filter_map(|r| r["errors"].as_u64()).sum::<u64>(),
        "rounds_told_busy": runs.iter().filter_map(|r| r["rounds_told_busy"].as_u64()).sum::<u64>(),
        "answer_bytes": each("/answer_bytes"),
        "answer_docs": each("/answer_docs"),
        "merged_again": each("/merged_again"),
        "group_commits": each("/group_commits"),
        "first_error": runs.iter().find_map(|r| r["first_error"].as_str()),
        "merged_changes_per_s": each("/merged_changes_per_s"),
        "L1_changes_per_s": each("/L1_changes_per_s"),
        "ratio_to_L1": each("/ratio_to_L1"),
        "cpu_us_per_change": each("/cpu_us_per_change"),
        "L1_cpu_us_per_change": each("/L1_cpu_us_per_change"),
        "cpu_ratio_to_L1": each("/cpu_ratio_to_L1"),
        "L2_changes_per_s": each("/L2_changes_per_s"),
        "ratio_to_L2": each("/ratio_to_L2"),
        "latency_ms": {
            "p50": each("/latency_ms/p50"),
            "p95": each("/latency_ms/p95"),
            "p99": each("/latency_ms/p99"),
        },
        "peak_rss_mib_process": peak_rss_mib(),
    })
}

/// How long a phone in the rush keeps trying a round the server answers
/// `503` (busy) before the round counts as an error.
const BUSY_FOR: Duration = Duration::from_secs(300);

/// One rush: fresh phones, each with a day's edits (seeded by run and
/// device), syncing at once over the state earlier runs left.
async fn s3_run(
    args: &Args,
    servers: &[&TestServer],
    grids: &[Grid],
    now: i64,
    run: usize,
) -> Value {
    let server = servers[0];
    let mut phones = Vec::new();
    let mut bar = progress_bar("S3 devices ready");
    for d in 0..args.devices {
        let grid = &grids[d % grids.len()];
        let mut phone = servers[d % servers.len()].device(&grid.worker).await;
        phone.sync().await;
        let seed = 1000 + (run * args.devices + d) as u64;
        workday(&mut phone, grid, seed, now);
        phones.push(phone);
        bar(d as u64 + 1, args.devices as u64);
    }
    let changes: usize = phones
        .iter()
        .map(|p| p.replica.pending().values().map(Vec::len).sum::<usize>())
        .sum();
    // L1: the same changes applied to the same stored documents and saved,
    // in process.
    let mut work = Vec::new();
    // Per phone: its documents' ids, stored snapshots and new change bytes.
    let mut rounds: Vec<L2Round> = Vec::new();
    for phone in &phones {
        let mut round = Vec::new();
        for (id, hashes) in phone.replica.pending() {
            let d = phone.replica.document(&id).unwrap();
            let changes: Vec<_> = hashes
                .iter()
                .map(|h| sync_core::automerge::ReadDoc::get_change_by_hash(d, h).unwrap())
                .collect();
            let stored = server
                .state
                .engine
                .storage
                .snapshot(&id.to_string())
                .await
                .unwrap();
            let stored = stored.unwrap_or_default();
            round.push((
                id.to_string(),
                stored.clone(),
                changes
                    .iter()
                    .map(|c| (c.hash().0, c.raw_bytes().to_vec()))
                    .collect(),
            ));
            work.push((stored, changes));
        }
        rounds.push(round);
    }
    let l1_cpu = process_cpu_s();
    let t = Instant::now();
    for (stored, changes) in &work {
        let mut d = if stored.is_empty() {
            doc::empty(sync_core::automerge::ActorId::random())
        } else {
            doc::load(stored).unwrap()
        };
        d.apply_changes(changes.iter().cloned()).unwrap();
        std::hint::black_box(d.save());
    }
    let l1 = t.elapsed();
    let l1_cpu = process_cpu_s() - l1_cpu;
    let l2 = l2_store(&server.db, &rounds).await;

    // Each phone's request is built before the rush and its answer applied
    // after it: the rush measures the server, not 200 simulated phones
    // sharing its cores.
    let bodies: Vec<Vec<u8>> = phones
        .iter()
        .map(|p| p.replica.sync_request().encode())
        .collect();
    let counted = RUSH_COUNTERS.map(counter);
    let cpu = process_cpu_s();
    eprintln!("S3: the rush starts");
    let t = Instant::now();
    let tasks: Vec<_> = phones
        .into_iter()
        .zip(bodies)
        .enumerate()
        .map(|(d, (phone, body))| {
            tokio::spawn(async move {
                let t = Instant::now();
                let mut busy = 0;
                // As the field app does: a server past its capacity
                // answers 503 with Retry-After, and the round is sent
                // again then, each phone a little apart from the others.
                // A round still refused after BUSY_FOR counts as an error.
                let (status, reply) = loop {
                    // A connection the server closed while shedding load
                    // is tried again the same way.
                    let (status, reply) =
                        phone.try_post_raw(body.clone()).await.unwrap_or_else(|e| {
                            eprintln!("S3: a round's connection failed ({e:?}); sent again");
                            (503, Vec::new())
                        });
                    if status == 503 && t.elapsed() < BUSY_FOR {
                        busy += 1;
                        let wait = gridsync_server::http::error::RETRY_AFTER_SECS * 1000;
                        let jitter = (d as u64 * 7919 + busy * 104_729) % wait;
                        tokio::time::sleep(Duration::from_millis(wait + jitter)).await;
                        continue;
                    }
                    break (status, reply);
                };
                (ms(t.elapsed()), status, reply, phone, busy)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let wall = t.elapsed();
    eprintln!("S3: the rush is over");
    let server_cpu = process_cpu_s() - cpu;
    let [merged_again, group_commits]: [f64; 2] =
        std::array::from_fn(|i| counter(RUSH_COUNTERS[i]) - counted[i]);
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut told_busy = 0;
    // What the rush's answers carried down: the other phones' work of the
    // same grid, as far as it was committed when each answer was read.
    let (mut bytes_down, mut docs_down) = (0, 0);
    for (latency, status, reply, mut phone, busy) in answers {
        latencies.push(latency);
        told_busy += usize::from(busy > 0);
        let mut error = (status != 200).then(|| format!("HTTP {status}"));
        if error.is_none() {
            bytes_down += reply.len();
            let response = sync_core::protocol::SyncResponse::decode(&reply).unwrap();
            docs_down += response.docs.len();
            error = response
                .errors
                .first()
                .map(|e| format!("{}: {}", e.code, e.message));
            phone.replica.apply_response(response).unwrap();
            // Whatever did not fit in the first answer.
            if let Err(e) = phone.try_sync().await {
                error.get_or_insert(format!("{e:?}"));
            }
        }
        if let Some(e) = error {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let merged_per_s = changes as f64 / wall.as_secs_f64();
    let l1_per_s = changes as f64 / l1.as_secs_f64();
    json!({
        "devices": args.devices, "changes": changes, "errors": errors, "first_error": first_error,
        "rounds_told_busy": told_busy, "answer_bytes": bytes_down, "answer_docs": docs_down,
        "merged_again": merged_again, "group_commits": group_commits,
        "merged_changes_per_s": merged_per_s, "L1_changes_per_s": l1_per_s,
        "ratio_to_L1": merged_per_s / l1_per_s,
        "cpu_us_per_change": server_cpu * 1e6 / changes as f64,
        "L1_cpu_us_per_change": l1_cpu * 1e6 / changes as f64,
        "cpu_ratio_to_L1": l1_cpu / server_cpu,
        "L2_changes_per_s": changes as f64 / l2.as_secs_f64(),
        "ratio_to_L2": merged_per_s / (changes as f64 / l2.as_secs_f64()),
        "latency_ms": { "p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95), "p99": percentile(&latencies, 0.99) },
    })
}

/// One phone's round for L2: `(document id, stored snapshot, new changes
/// as (hash, bytes))`.
type L2Round = Vec<(String, Vec<u8>, Vec<([u8; 32], Vec<u8>)>)>;

/// L2: the same bytes written to the same database without Automerge: for
/// each phone's round, one durable transaction appending its change bytes
/// (with their hashes) and replacing each document's snapshot, in tables
/// of the same shape as the server's. Returns the time for all rounds.
async fn l2_store(db: &TestDb, rounds: &[L2Round]) -> Duration {
    macro_rules! run {
        ($pool:expr, $serial:literal) => {{
            let pool = $pool;
            for ddl in [
                concat!(
                    "CREATE TABLE IF NOT EXISTS l2_changes (seq ",
                    $serial,
                    ", doc_id TEXT NOT NULL, hash BYTEA NOT NULL, bytes BYTEA NOT NULL,
                     received_at BIGINT NOT NULL, UNIQUE (doc_id, hash))"
                ),
                "CREATE TABLE IF NOT EXISTS l2_documents (id TEXT PRIMARY KEY, snapshot BYTEA NOT NULL,
                     updated_at BIGINT NOT NULL)",
            ] {
                sqlx::query(ddl).execute(&pool).await.unwrap();
            }
            let t = Instant::now();
            for round in rounds {
                let mut tx = pool.begin().await.unwrap();
                let rows: Vec<(&str, &([u8; 32], Vec<u8>))> = round
                    .iter()
                    .flat_map(|(id, _, changes)| changes.iter().map(move |c| (id.as_str(), c)))
                    .collect();
                for chunk in rows.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO l2_changes (doc_id, hash, bytes, received_at) ",
                    );
                    q.push_values(chunk, |mut row, (id, (hash, bytes))| {
                        row.push_bind(*id)
                            .push_bind(&hash[..])
                            .push_bind(bytes)
                            .push_bind(0i64);
                    });
                    q.build().execute(&mut *tx).await.unwrap();
                }
                for chunk in round.chunks(100) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO l2_documents (id, snapshot, updated_at) ",
                    );
                    q.push_values(chunk, |mut row, (id, snapshot, _)| {
                        row.push_bind(id).push_bind(snapshot).push_bind(0i64);
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot");
                    q.build().execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
            t.elapsed()
        }};
    }
    if db.is_postgres() {
        run!(
            sqlx::PgPool::connect(&db.url).await.unwrap(),
            "BIGSERIAL PRIMARY KEY"
        )
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        run!(
            sqlx::SqlitePool::connect_with(options).await.unwrap(),
            "INTEGER PRIMARY KEY AUTOINCREMENT"
        )
    }
}

/// Supervisor queries over real HTTP, each asked by a supervisor whose
/// area covers it, interleaved, `--samples` times per run after a warm-up:
/// p50/p95/p99 latency (request sent until the whole body is read).
async fn s4(args: &Args, server: &TestServer, grids: &[Grid], now: i64, load_s: f64) -> Value {
    const DAY: i64 = 86_400_000;
    const TARGET_P95_MS: f64 = 100.0;
    // One household edited over a year on its worker's phone, so that its
    // history is more than the change that created it.
    let grid = &grids[0];
    let (hid, _) = &grid.households[0];
    let mut phone = server.device(&grid.worker).await;
    phone.sync().await;
    for month in 0..12u64 {
        phone
            .replica
            .update::<Household>(hid, |h| {
                h.notes.splice(0, 0, "已走访。");
                h.members[0].phone = format!("139{month:08}");
            })
            .unwrap();
        phone.sync().await;
    }
    let base = server.url("");
    let token = |username: &str| {
        let base = base.clone();
        let username = username.to_owned();
        async move {
            tests::login(&base, &username, tests::PASSWORD)
                .await
                .access_token
        }
    };
    let [
        (county_sup, _),
        (township_sup, township),
        (community_sup, community),
    ] = county::SUPERVISORS;
    let since = now - 30 * DAY;
    let queries = [
        (
            "overdue_cases_in_township",
            township_sup,
            format!("/v1/cases?org_unit={township}&overdue=true&sort=due_at"),
        ),
        (
            "case_figures_by_grid_for_county",
            county_sup,
            format!(
                "/v1/stats/cases/by-unit?org_unit={}&by=grid",
                county::COUNTY
            ),
        ),
        (
            "tagged_households_not_visited_in_30_days_in_community",
            community_sup,
            format!(
                "/v1/households?org_unit={community}&tag=elderly_alone&not_visited_since={since}"
            ),
        ),
        (
            "record_history",
            community_sup,
            format!("/v1/records/{hid}/history"),
        ),
    ];
    let http = reqwest::Client::new();
    let mut tokens = BTreeMap::new();
    for (_, user, _) in &queries {
        if !tokens.contains_key(user) {
            tokens.insert(*user, token(user).await);
        }
    }
    let get = |path: &str, user: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth(&tokens[user])
            .send()
    };
    // What each answers, to show the answers are not trivial; then a
    // warm-up.
    let mut answers = Vec::new();
    for (name, user, path) in &queries {
        let response = get(path, user).await.unwrap();
        assert_eq!(response.status(), 200, "{name}: {path}");
        let body: Value = response.json().await.unwrap();
        let rows = match *name {
            "case_figures_by_grid_for_county" => json!({
                "units": body.as_array().map_or(0, Vec::len),
                "cases": body.as_array().map_or(0, |units| units
                    .iter()
                    .map(|u| u["total"].as_u64().unwrap_or(0))
                    .sum::<u64>()),
            }),
            "record_history" => json!({ "changes": body.as_array().map_or(0, Vec::len) }),
            _ => json!({
                "rows_on_first_page": body["items"].as_array().map_or(0, Vec::len),
                "more_pages": body.get("next_cursor").is_some(),
            }),
        };
        answers.push(rows);
        for _ in 0..3 {
            get(path, user).await.unwrap().bytes().await.unwrap();
        }
    }
    let samples = args.samples * args.runs;
    let mut latencies = vec![Vec::with_capacity(samples); queries.len()];
    let mut bar = progress_bar("S4 samples");
    for i in 0..samples {
        for (q, (_, user, path)) in queries.iter().enumerate() {
            let t = Instant::now();
            let response = get(path, user).await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
            latencies[q].push(ms(t.elapsed()));
        }
        bar(i as u64 + 1, samples as u64);
    }
    let mut figures = serde_json::Map::new();
    for (((name, user, path), mut lat), answer) in queries.iter().zip(latencies).zip(answers) {
        lat.sort_by(f64::total_cmp);
        let p95 = percentile(&lat, 0.95);
        figures.insert(
            (*name).to_owned(),
            json!({
                "path": path, "user": user, "answer": answer, "samples": lat.len(),
                "latency_ms": { "p50": percentile(&lat, 0.5), "p95": p95, "p99": percentile(&lat, 0.99) },
                "target_p95_ms": TARGET_P95_MS, "met": p95 < TARGET_P95_MS,
            }),
        );
    }
    json!({
        "households": grids.iter().map(|g| g.households.len()).sum::<usize>(),
        "cases": grids.iter().map(|g| g.cases.len()).sum::<usize>(),
        "documents": grids.iter().map(Grid::documents).sum::<usize>(),
        "bulk_load_and_analyze_s": load_s,
        "queries": figures,
    })
}

/// A year of edits on one grid: what it costs to store.
async fn s5(server: &TestServer, grid: &Grid, now: i64) -> Value {
    let county_households = count_households(server).await;
    let mut phone = server.device(&grid.worker).await;
    phone.sync().await;
    let mut bar = progress_bar("S5 months");
    for month in 0..12u64 {
        // Each household visited once a month: a visit and 1 to 3 edits.
        let mut rng = gridsync_server::demo::Rng::new(month);
        let at = now - (11 - month as i64) * 30 * 86_400_000;
        for (v, (hid, _)) in grid.households.iter().enumerate() {
            let visit = Visit {
                attachments: Vec::new(),
                household: hid.to_string(),
                org_unit: grid.id.clone(),
                worker: format!("usr_{}", grid.worker),
                visited_at: at,
                findings: "入户走访，情况正常。".into(),
                follow_up: false,
                location: String::new(),
            };
            phone.replica.create(&visit).unwrap();
            for e in 0..1 + rng.below(3) {
                phone
                    .replica
                    .update::<Household>(hid, |h| match e {
                        0 => h.notes.splice(0, 0, "已走访。"),
                        1 => h.members[0].phone = format!("139{:08}", rng.below(100_000_000)),
                        _ => h.address.room = format!("{}", v + month as usize),
                    })
                    .unwrap();
            }
        }
        phone.sync().await;
        bar(month + 1, 12);
    }
    // L3: each household's final record as gzipped JSON.
    let l3: usize = grid
        .households
        .iter()
        .map(|(id, _)| json_gzip_len(&[phone.replica.document(id).unwrap()]))
        .sum();
    let l3_per = l3 as f64 / grid.households.len() as f64;
    // The grid's cases, as loaded with their event logs (not edited here).
    let l3_case: usize = grid
        .cases
        .iter()
        .map(|(id, _)| json_gzip_len(&[phone.replica.document(id).unwrap()]))
        .sum();
    let l3_case_per = l3_case as f64 / grid.cases.len() as f64;
    let before = s5_storage(server, grid, "household", l3_per, county_households).await;
    let cases_before = s5_storage(server, grid, "case", l3_case_per, county_households).await;
    // The edits are dated across the year by the phone's clock, but the
    // server received them all just now: compact with a cutoff of now
    // (retention 0), what a 30-day retention leaves of changes received
    // more than 30 days ago.
    let t = Instant::now();
    let report = gridsync_server::engine::compaction::compact(
        server.state.engine.storage.as_ref(),
        gridsync_server::now_ms() + 1,
        gridsync_server::engine::compaction::BATCH,
    )
    .await
    .unwrap();
    let compact_ms = ms(t.elapsed());
    let after = s5_storage(server, grid, "household", l3_per, county_households).await;
    let cases_after = s5_storage(server, grid, "case", l3_case_per, county_households).await;
    json!({
        "L3_json_gzip_bytes_per_household": l3_per,
        "before_compaction": before,
        "after_compaction": after,
        "L3_json_gzip_bytes_per_case": l3_case_per,
        "cases_before_compaction": cases_before,
        "cases_after_compaction": cases_after,
        "compaction": {
            "removed": report.removed,
            "batches": report.batches,
            "ms": compact_ms,
        },
    })
}

/// S5's storage figures for `grid`'s records of `kind`: snapshots, the whole rows
/// of their change log (every column: SQLite the columns' lengths plus 8
/// bytes for each integer; PostgreSQL `pg_column_size` of the row), and
/// the whole database (per household of the county: compaction also
/// removes the bulk-loaded county's rows, so growth per grid household
/// would not mean anything).
async fn s5_storage(
    server: &TestServer,
    grid: &Grid,
    kind: &str,
    l3_per: f64,
    county_households: i64,
) -> Value {
    let pg = server.db.is_postgres();
    // The grid's ids are generated: safe to inline.
    let sql_snapshots = format!(
        "SELECT COALESCE(SUM(LENGTH(snapshot)), 0), COUNT(*) FROM documents
         WHERE kind = '{kind}' AND org_unit = '{}'",
        grid.id
    );
    let row_size = if pg {
        "pg_column_size(c.*)"
    } else {
        "LENGTH(c.doc_id) + LENGTH(c.hash) + LENGTH(c.bytes) + LENGTH(c.actor) \
         + LENGTH(c.user_id) + LENGTH(c.device_id) + 16"
    };
    let sql_changes = format!(
        "SELECT CAST(COALESCE(SUM({row_size}), 0) AS BIGINT), COUNT(*)
         FROM changes c JOIN documents d ON d.id = c.doc_id
         WHERE d.kind = '{kind}' AND d.org_unit = '{}'",
        grid.id
    );
    let (sql_snapshots, sql_changes) = if pg {
        (
            sql_snapshots.replace("LENGTH", "OCTET_LENGTH"),
            sql_changes.clone(),
        )
    } else {
        (sql_snapshots, sql_changes)
    };
    let (snapshots, records) = query_pair(server, &sql_snapshots).await;
    let (change_rows, change_count) = query_pair(server, &sql_changes).await;
    let (db_bytes, db_free) = database_bytes(server).await;
    let per = |n: i64| n as f64 / records as f64;
    let stored = per(snapshots + change_rows);
    json!({
        "records": records,
        "stored_bytes_per_record": stored,
        "of_which_snapshot": per(snapshots),
        "of_which_change_rows": per(change_rows),
        "change_rows": change_count,
        "ratio_to_L3": stored / l3_per,
        "snapshot_ratio_to_L3": per(snapshots) / l3_per,
        "database_bytes": db_bytes,
        "database_free_bytes": db_free,
        "database_bytes_in_use_per_county_household":
            (db_bytes - db_free) as f64 / county_households as f64,
    })
}

/// The server's counters S3 reports for each rush: documents merged again
/// under the write lock, and group commits.
const RUSH_COUNTERS: [&str; 2] = [metrics::MERGED_AGAIN, metrics::GROUP_COMMITS];

/// A counter of the server's metrics, summed over its labels. The first
/// call installs the recorder, so the counters start with the first rush.
fn counter(name: &str) -> f64 {
    let text = metrics::install().render();
    text.lines()
        .filter(|line| {
            // The name itself, then its labels or its value: not a longer
            // name that starts with it.
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// CPU time this process has used, user and system, in seconds (from
/// `/proc/self/stat`, in clock ticks of 10 ms).
fn process_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

async fn query_pair(server: &TestServer, sql: &str) -> (i64, i64) {
    if server.db.is_postgres() {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&pool).await.unwrap()
    }
}

async fn count_households(server: &TestServer) -> i64 {
    query_pair(
        server,
        "SELECT COUNT(*), CAST(0 AS BIGINT) FROM documents WHERE kind = 'household'",
    )
    .await
    .0
}

/// The database's size and, for SQLite, how much of it is free pages
/// (reused before the file grows). SQLite's log is checkpointed first, so
/// that the main file holds everything; PostgreSQL counts its whole
/// database (tables, indexes, free space not yet vacuumed).
async fn database_bytes(server: &TestServer) -> (i64, i64) {
    if server.db.is_postgres() {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
            .fetch_one(&pool)
            .await
            .unwrap();
        (size, 0)
    } else {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        let one = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
                n
            }
        };
        let page = one("PRAGMA page_size").await;
        (
            one("PRAGMA page_count").await * page,
            one("PRAGMA freelist_count").await * page,
        )
    }
}

/// Peak resident memory of this process (server and simulated devices).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
