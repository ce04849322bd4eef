//! Serves one grid of the benchmark county (400 households with their
//! visits, cases and special-population details) on a fresh database, for
//! the field app's browser benchmark (`apps/tests/bench.mjs`).
//!
//! Prints one JSON line, `{"url", "username", "password"}` (the grid's
//! worker), once the grid is loaded, then serves until its standard input
//! closes. The database is SQLite unless `TEST_DATABASE_URL` names a
//! PostgreSQL one.

#![forbid(unsafe_code)]

use std::io::Read;

use clap::Parser;
use tests::TestServer;
use tests::county::{self, Scale};

/// Serves one benchmark grid for the field app's benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Households in the grid.
    #[arg(long, default_value_t = 400)]
    households: usize,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = TestServer::start().await;
    let scale = Scale {
        townships: 1,
        communities: 1,
        grids: 1,
        households: args.households,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let grids = county::generate(scale, args.seed, now);
    county::load(&server.state, &grids, 200, |_| {}).await;
    let line = serde_json::json!({
        "url": server.url(""),
        "username": grids[0].worker,
        "password": tests::PASSWORD,
    });
    println!("{line}");
    // Serve until whoever started us closes our standard input.
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
        .await
        .expect("stdin reader")
        .ok();
    server.stop().await;
}
