//! Kill and restart: runs the real server binary over a fresh database
//! (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set), has many phones
//! edit and sync against it at once, and kills it with SIGKILL at random
//! moments. While it is down, every stored document must load and every
//! change any phone saw acknowledged must be stored; then it starts again.
//! At the end every phone syncs and must hold what the server holds.
//!
//! `cargo run -p tests --bin killloop -- [--kills N] [--devices N] [--grids N]
//!  [--up-ms MIN,MAX] [--max-docs N] [--seed S] [--server-env KEY=VALUE]...`;
//! a phone stops creating records once it holds `--max-docs` (60) and
//! only edits them, so that a long run stays the same size;
//! `GRIDSYNC_KILLS` sets the default number of kills (20). Needs the
//! `gridsync-under-test` binary beside this one (`cargo build -p tests`), or
//! `GRIDSYNC_BIN`. Exits non-zero if anything acknowledged was lost, a
//! document did not load, or a phone ended up different from the server.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tests::fleet::{self, Acked};
use tests::{ServerProcess, TestDb};

/// Kill and restart the server during concurrent syncs.
#[derive(clap::Parser)]
struct Args {
    /// How many times to kill the server.
    #[arg(long, env = "GRIDSYNC_KILLS", default_value_t = 20)]
    kills: usize,
    /// Phones syncing at once.
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// Grids the phones are spread over.
    #[arg(long, default_value_t = 4)]
    grids: usize,
    /// How long the server runs after each start, in ms: MIN,MAX.
    #[arg(long, value_parser = fleet::parse_range, default_value = "300,3000")]
    up_ms: (u64, u64),
    /// Records a phone creates before it only edits them.
    #[arg(long, default_value_t = 60)]
    max_docs: usize,
    /// Random seed (default: from the clock).
    #[arg(long, default_value_t = fleet::clock_seed())]
    seed: u64,
    /// An extra setting for the server, KEY=VALUE (repeatable).
    #[arg(long, value_parser = fleet::parse_env)]
    server_env: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = {
        let mut args = <Args as clap::Parser>::parse();
        args.grids = args.grids.clamp(1, args.devices.max(1));
        args
    };
    let bin = fleet::server_bin();
    let db = TestDb::new().await;
    println!(
        "killloop: seed {}, {} kills, {} phones in {} grids, {} database, server {bin}",
        args.seed,
        args.kills,
        args.devices,
        args.grids,
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let workers = fleet::setup(&db, args.grids, args.devices.div_ceil(args.grids)).await;
    let workers = &workers[..args.devices];
    let mut env = vec![(
        "GRIDSYNC_ACCESS_TOKEN_TTL_SECS".to_owned(),
        "86400".to_owned(),
    )];
    env.extend(args.server_env.iter().cloned());
    let mut server = ServerProcess::start_with(&bin, &db, &env);
    let base = Arc::new(RwLock::new(server.base.clone()));
    let devices = fleet::login_all(&server.base, workers).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::new()));
    let (ok, failed, refused) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let last_error = Arc::new(Mutex::new(None::<String>));
    let now = gridsync_server::now_ms();
    let mut tasks = Vec::new();
    for (i, (mut device, worker)) in devices.into_iter().zip(workers.iter().cloned()).enumerate() {
        let (stop, acked, base) = (stop.clone(), acked.clone(), base.clone());
        let last_error = last_error.clone();
        let (ok, failed, refused) = (ok.clone(), failed.clone(), refused.clone());
        let mut rng = StdRng::seed_from_u64(args.seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
        let max_docs = args.max_docs;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                fleet::step(&mut device, &worker.grid, &mut rng, now, max_docs);
                let current = base.read().expect("base").clone();
                device.reconnect(current);
                match device.try_sync().await {
                    Ok(report) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        refused.fetch_add(report.errors.len() as u64, Ordering::SeqCst);
                        fleet::note_acked(&mut acked.lock().expect("acked"), i, &device);
                    }
                    Err(e) => {
                        *last_error.lock().expect("error") = Some(format!("{e:?}"));
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..60))).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(50..250))).await;
            }
            device
        }));
    }

    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut lost_total = 0usize;
    let mut broken_total = 0usize;
    let mut last_ok = 0;
    let mut survived = 0;
    let mut checked_heads = 0;
    for k in 1..=args.kills {
        tokio::time::sleep(Duration::from_millis(
            rng.gen_range(args.up_ms.0..=args.up_ms.1),
        ))
        .await;
        server.kill();
        let synced = ok.load(Ordering::SeqCst);
        let check = fleet::check_stored(&db).await.expect("read the database");
        let acked_now = acked.lock().expect("acked").clone();
        let lost = fleet::lost(&acked_now, &check);
        checked_heads = acked_now.values().map(Vec::len).sum::<usize>();
        for l in lost.iter().take(5) {
            println!("  LOST: {l}");
        }
        for b in check.broken.iter().take(5) {
            println!("  BROKEN: {b}");
        }
        lost_total += lost.len();
        broken_total += check.broken.len();
        println!(
            "kill {k}/{}: {} syncs since the last kill; {} documents, {} changes stored; \
             {} acknowledged heads checked, {} lost, {} documents broken",
            args.kills,
            synced - last_ok,
            check.documents,
            check.changes,
            checked_heads,
            lost.len(),
            check.broken.len()
        );
        if synced == last_ok {
            // No phone got through while the server was up: say why.
            if let Some(e) = last_error.lock().expect("error").as_ref() {
                println!(
                    "  last failed sync: {}",
                    e.chars().take(300).collect::<String>()
                );
            }
        }
        last_ok = synced;
        server = ServerProcess::start_with(&bin, &db, &env);
        *base.write().expect("base") = server.base.clone();
        if lost.is_empty() && check.broken.is_empty() {
            survived += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut devices = Vec::new();
    for t in tasks {
        devices.push(t.await.expect("phone task"));
    }
    // Every phone syncs what it still holds, twice round: the second pass
    // brings each the others' last changes.
    let mut final_errors = 0;
    for _ in 0..2 {
        for device in &mut devices {
            device.reconnect(server.base.clone());
            match device.try_sync().await {
                Ok(report) => final_errors += report.errors.len(),
                Err(e) => {
                    println!("  final sync failed: {e:?}");
                    final_errors += 1;
                }
            }
        }
    }
    let pending: usize = devices
        .iter()
        .map(|d| d.replica.pending().values().map(Vec::len).sum::<usize>())
        .sum();
    let check = fleet::check_stored(&db).await.expect("read the database");
    let mut acked_end = Acked::new();
    for (i, d) in devices.iter().enumerate() {
        fleet::note_acked(&mut acked_end, i, d);
    }
    let lost_end = fleet::lost(&acked_end, &check);
    let (compared, differ) = fleet::compare(&devices, &check);
    for d in differ.iter().take(5) {
        println!("  DIFFERS: {d}");
    }
    drop(server);
    println!("== killloop summary (seed {})", args.seed);
    println!(
        "kills: {}, survived: {survived}, in {:.0} s",
        args.kills,
        started.elapsed().as_secs_f64()
    );
    println!(
        "syncs: {} answered, {} failed while the server was down or dying, {} documents refused",
        ok.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst)
    );
    println!(
        "stored at the end: {} documents, {} changes; acknowledged heads checked at the last kill: {checked_heads}",
        check.documents, check.changes
    );
    println!(
        "acknowledged changes lost: {} (at kills) + {} (at the end); documents that did not load: {}",
        lost_total,
        lost_end.len(),
        broken_total + check.broken.len()
    );
    println!(
        "convergence: {compared} phone documents compared, {} differ; {pending} changes still pending; {final_errors} errors in the final syncs",
        differ.len()
    );
    let good = lost_total == 0
        && lost_end.is_empty()
        && broken_total == 0
        && check.broken.is_empty()
        && differ.is_empty()
        && pending == 0
        && final_errors == 0
        && refused.load(Ordering::SeqCst) == 0;
    if good {
        std::process::ExitCode::SUCCESS
    } else {
        db.keep();
        println!("FAILED; the database is kept: {}", db.url);
        std::process::ExitCode::FAILURE
    }
}
