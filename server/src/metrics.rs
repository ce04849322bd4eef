//! Prometheus metrics, rendered at `GET /metrics` ([`crate::http::metrics`])
//! for an operator's scraper.
//!
//! Off unless `metrics_token` is configured: then the route requires that
//! token as a bearer token, and the process records into a Prometheus
//! recorder that the route renders (no listener of its own). Without it,
//! `/metrics` answers `404` and nothing is recorded.
//!
//! Every metric's name is a constant here; code elsewhere records through
//! the small functions below, which do nothing while metrics are off.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `route` (the matched path template, or
/// `unmatched`), `method` and `status`.
pub const HTTP_REQUESTS: &str = "gridsync_http_requests_total";
/// Seconds from a sync request's arrival to its answer (histogram).
pub const SYNC_ROUND_SECONDS: &str = "gridsync_sync_round_duration_seconds";
/// Documents written by merges (sync rounds, desk actions, approvals).
pub const DOCUMENTS_MERGED: &str = "gridsync_documents_merged_total";
/// Changes written by merges.
pub const CHANGES_MERGED: &str = "gridsync_changes_merged_total";
/// Counter: pushes merged a second time, inside the write transaction,
/// because another round wrote the document after it was read.
pub const MERGED_AGAIN: &str = "gridsync_documents_merged_again_total";
/// Sync rounds written by group commits (divided by [`GROUP_COMMITS`]:
/// the rounds per commit).
pub const ROUNDS_GROUPED: &str = "gridsync_sync_rounds_group_committed_total";
/// Group commits of sync rounds.
pub const GROUP_COMMITS: &str = "gridsync_sync_group_commits_total";
/// Group commits whose transaction failed; their writes were then tried
/// one by one.
pub const GROUP_COMMITS_FAILED: &str = "gridsync_sync_group_commits_failed_total";
/// Changes the policy refused and held in quarantine.
pub const CHANGES_QUARANTINED: &str = "gridsync_changes_quarantined_total";
/// Sign-ins refused for a wrong username or password.
pub const LOGIN_FAILURES: &str = "gridsync_login_failures_total";
/// Requests refused by a limit, by `reason` (`overloaded`, `event_streams`,
/// and the limits of other modules).
pub const RATE_LIMITED: &str = "gridsync_rate_limited_total";
/// Open `/v1/events` streams on this instance (gauge).
pub const EVENT_STREAMS: &str = "gridsync_event_streams_open";
/// Database connections the pool holds, busy or idle (gauge, at scrape).
pub const DB_POOL_CONNECTIONS: &str = "gridsync_db_pool_connections";
/// Database connections the pool holds idle (gauge, at scrape).
pub const DB_POOL_IDLE: &str = "gridsync_db_pool_idle_connections";
/// Most connections the pool opens (gauge, at scrape).
pub const DB_POOL_MAX: &str = "gridsync_db_pool_max_connections";

/// Upper bounds of the sync round histogram's buckets, in seconds.
const SYNC_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder, once [`install`]ed; `None` while metrics are off.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

/// Starts recording, once per process. If some other recorder was
/// installed first, `/metrics` shows only what it can (an empty page).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(SYNC_ROUND_SECONDS.into()), &SYNC_BUCKETS)
            .expect("bucket bounds are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route, method and status."
    );
    describe_histogram!(
        SYNC_ROUND_SECONDS,
        metrics::Unit::Seconds,
        "Sync rounds, from request to answer."
    );
    describe_counter!(DOCUMENTS_MERGED, "Documents written by merges.");
    describe_counter!(CHANGES_MERGED, "Changes written by merges.");
    describe_counter!(
        MERGED_AGAIN,
        "Pushes merged again under the write lock: another round wrote the document meanwhile."
    );
    describe_counter!(GROUP_COMMITS, "Group commits of sync rounds.");
    describe_counter!(ROUNDS_GROUPED, "Sync rounds written by group commits.");
    describe_counter!(
        GROUP_COMMITS_FAILED,
        "Group commits that failed, their writes then tried one by one."
    );
    describe_counter!(CHANGES_QUARANTINED, "Changes held in quarantine.");
    describe_counter!(LOGIN_FAILURES, "Sign-ins refused for bad credentials.");
    describe_counter!(RATE_LIMITED, "Requests refused by a limit, by reason.");
    describe_gauge!(EVENT_STREAMS, "Open /v1/events streams on this instance.");
    describe_gauge!(DB_POOL_CONNECTIONS, "Database connections open.");
    describe_gauge!(DB_POOL_IDLE, "Database connections open and idle.");
    describe_gauge!(DB_POOL_MAX, "Most database connections the pool opens.");
}

/// Keeps the recorder's histograms from growing between scrapes; runs
/// until the returned task is aborted. `None` while metrics are off.
pub fn spawn_upkeep() -> Option<tokio::task::JoinHandle<()>> {
    let handle = HANDLE.get()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    }))
}

/// Counts a request refused by a limit.
pub fn rate_limited(reason: &'static str) {
    metrics::counter!(RATE_LIMITED, "reason" => reason).increment(1);
}

/// Counts a document merged with `changes` new changes.
pub fn merged(changes: usize) {
    metrics::counter!(DOCUMENTS_MERGED).increment(1);
    metrics::counter!(CHANGES_MERGED).increment(changes as u64);
}

/// Counts a push merged again under the write lock.
pub fn merged_again() {
    metrics::counter!(MERGED_AGAIN).increment(1);
}

/// Counts a group commit of `rounds` sync rounds.
pub fn group_committed(rounds: usize) {
    metrics::counter!(GROUP_COMMITS).increment(1);
    metrics::counter!(ROUNDS_GROUPED).increment(rounds as u64);
}

/// Counts a group commit that failed, its writes to be tried one by one.
pub fn group_failed() {
    metrics::counter!(GROUP_COMMITS_FAILED).increment(1);
}

/// Counts changes put in quarantine.
pub fn quarantined(changes: usize) {
    metrics::counter!(CHANGES_QUARANTINED).increment(changes as u64);
}

/// Counts a sign-in refused for bad credentials.
pub fn login_failed() {
    metrics::counter!(LOGIN_FAILURES).increment(1);
}

/// Counts an event stream opened (`+1`) or closed (`-1`).
pub fn event_streams(delta: f64) {
    metrics::gauge!(EVENT_STREAMS).increment(delta);
}

/// The database pool, for its gauges.
#[derive(Clone)]
pub enum DbPool {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

impl DbPool {
    /// Sets the pool gauges to how the pool stands now.
    pub fn record(&self) {
        let (size, idle, max) = match self {
            DbPool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            DbPool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        metrics::gauge!(DB_POOL_CONNECTIONS).set(size);
        metrics::gauge!(DB_POOL_IDLE).set(idle as f64);
        metrics::gauge!(DB_POOL_MAX).set(max);
    }
}
