//! Soak: hundreds of simulated phones run the BENCH.md edit stream against
//! one server process for a bounded time. Afterwards every phone must hold
//! exactly what the server holds, with no error on the way; the server's
//! resident memory is sampled throughout and its growth after warm-up
//! reported.
//!
//! `cargo run --release -p tests --bin soak -- [--devices N] [--secs N]
//!  [--per-grid N] [--think-ms MIN,MAX] [--sample-secs N] [--seed S]
//!  [--server-env KEY=VALUE]...`; defaults: 300 phones, 120 s, 10 phones per
//! grid, 1–4 s between a phone's steps. `GRIDSYNC_SOAK_SECS` and
//! `GRIDSYNC_SOAK_DEVICES` set the defaults. Runs on PostgreSQL when
//! `TEST_DATABASE_URL` is set. Needs `gridsync-under-test` beside this
//! binary, or `GRIDSYNC_BIN`.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tests::fleet;
use tests::{ServerProcess, TestDb};

/// Hundreds of phones on the edit stream against one server.
#[derive(clap::Parser)]
struct Args {
    /// Phones.
    #[arg(long, env = "GRIDSYNC_SOAK_DEVICES", default_value_t = 300)]
    devices: usize,
    /// Seconds of edit stream.
    #[arg(long, env = "GRIDSYNC_SOAK_SECS", default_value_t = 120)]
    secs: u64,
    /// Phones per grid.
    #[arg(long, default_value_t = 10)]
    per_grid: usize,
    /// A phone's pause between edits, in ms: MIN,MAX.
    #[arg(long, value_parser = fleet::parse_range, default_value = "1000,4000")]
    think_ms: (u64, u64),
    /// Seconds between two samples of the server's memory.
    #[arg(long, default_value_t = 5)]
    sample_secs: u64,
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
        args.per_grid = args.per_grid.max(1);
        args
    };
    let bin = fleet::server_bin();
    let db = TestDb::new().await;
    let grids = args.devices.div_ceil(args.per_grid);
    println!(
        "soak: seed {}, {} phones in {grids} grids for {} s, {} database, server {bin}",
        args.seed,
        args.devices,
        args.secs,
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let workers = fleet::setup(&db, grids, args.per_grid).await;
    let workers = &workers[..args.devices];
    let mut env = vec![(
        "GRIDSYNC_ACCESS_TOKEN_TTL_SECS".to_owned(),
        "86400".to_owned(),
    )];
    env.extend(args.server_env.iter().cloned());
    let server = ServerProcess::start_with(&bin, &db, &env);
    let pid = server.pid();
    let t = Instant::now();
    let devices = fleet::login_all(&server.base, workers).await;
    println!(
        "{} phones signed in in {:.1} s; server RSS {:.1} MiB",
        devices.len(),
        t.elapsed().as_secs_f64(),
        fleet::rss_mib(pid).unwrap_or(0.0)
    );

    let samples = Arc::new(Mutex::new(Vec::<(f64, f64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sampler = {
        let (samples, stop) = (samples.clone(), stop.clone());
        let every = Duration::from_secs(args.sample_secs.max(1));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if let Some(rss) = fleet::rss_mib(pid) {
                    let at = started.elapsed().as_secs_f64();
                    println!("t={at:>6.1} s  server RSS {rss:>7.1} MiB");
                    samples.lock().expect("samples").push((at, rss));
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let (syncs, changes, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let first_error = Arc::new(Mutex::new(None::<String>));
    let deadline = started + Duration::from_secs(args.secs);
    let now = gridsync_server::now_ms();
    let mut tasks = Vec::new();
    for (i, (mut device, worker)) in devices.into_iter().zip(workers.iter().cloned()).enumerate() {
        let (syncs, changes, errors) = (syncs.clone(), changes.clone(), errors.clone());
        let first_error = first_error.clone();
        let mut rng = StdRng::seed_from_u64(args.seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
        let think = args.think_ms;
        tasks.push(tokio::spawn(async move {
            // Phones do not all start at once.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=think.1))).await;
            while Instant::now() < deadline {
                let made = fleet::step(&mut device, &worker.grid, &mut rng, now, usize::MAX);
                changes.fetch_add(made as u64, Ordering::SeqCst);
                let error = match device.try_sync().await {
                    Ok(report) => report
                        .errors
                        .first()
                        .map(|e| format!("{}: {} {}", e.id, e.code, e.message)),
                    Err(e) => Some(format!("{e:?}")),
                };
                syncs.fetch_add(1, Ordering::SeqCst);
                if let Some(e) = error {
                    errors.fetch_add(1, Ordering::SeqCst);
                    first_error.lock().expect("error").get_or_insert(e);
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(think.0..=think.1))).await;
            }
            device
        }));
    }
    let mut devices = Vec::new();
    for t in tasks {
        devices.push(t.await.expect("phone task"));
    }
    let edit_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    // Every phone syncs twice round: the second pass brings each the
    // others' last changes.
    let mut final_errors = 0;
    for _ in 0..2 {
        for device in &mut devices {
            match device.try_sync().await {
                Ok(report) => final_errors += report.errors.len(),
                Err(e) => {
                    final_errors += 1;
                    first_error
                        .lock()
                        .expect("error")
                        .get_or_insert(format!("{e:?}"));
                }
            }
        }
    }
    let rss_end = fleet::rss_mib(pid).unwrap_or(0.0);
    let check = fleet::check_stored(&db).await.expect("read the database");
    let (compared, differ) = fleet::compare(&devices, &check);
    let rejected: usize = devices.iter().map(|d| d.replica.rejected().len()).sum();
    drop(server);

    let samples = samples.lock().expect("samples").clone();
    // Warmed up: the first sample after a quarter of the run, when every
    // phone has synced several times.
    let warm = samples
        .iter()
        .find(|(at, _)| *at >= edit_secs / 4.0)
        .or(samples.first())
        .map_or(0.0, |s| s.1);
    let last = samples.last().map_or(0.0, |s| s.1);
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let errors = errors.load(Ordering::SeqCst);
    println!("== soak summary (seed {})", args.seed);
    println!(
        "phones: {}, edit stream: {edit_secs:.0} s, syncs: {}, local changes: {}",
        devices.len(),
        syncs.load(Ordering::SeqCst),
        changes.load(Ordering::SeqCst)
    );
    println!(
        "errors: {errors} during the run, {final_errors} in the final syncs, {rejected} changes rejected{}",
        first_error
            .lock()
            .expect("error")
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "stored: {} documents, {} changes, {} that do not load; {compared} phone documents compared, {} differ from the server",
        check.documents,
        check.changes,
        check.broken.len(),
        differ.len()
    );
    println!(
        "server RSS: {warm:.1} MiB warmed up (t ≥ {:.0} s), {last:.1} MiB at the end of the stream, \
         {rss_end:.1} MiB after the final syncs, peak {peak:.1} MiB; growth after warm-up {:+.1} MiB",
        edit_secs / 4.0,
        last - warm
    );
    if errors == 0
        && final_errors == 0
        && rejected == 0
        && differ.is_empty()
        && check.broken.is_empty()
    {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
