//! Many simulated phones against one `gridsync` process, for the
//! kill-and-restart runner (`src/bin/killloop.rs`) and the soak runner
//! (`src/bin/soak.rs`): accounts made straight in the database, logins,
//! a worker's day cut into small steps (the BENCH.md edit stream), and
//! checks of what the server stored against what the phones hold.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ChangeHash, ReadDoc};
use gridsync_server::AppState;
use gridsync_server::config::Config;
use gridsync_server::storage::{OrgUnitRow, UserRow};
use rand::Rng;
use rand::rngs::StdRng;
use sync_core::doc::AnyRecord;
use sync_core::policy::Role;
use sync_core::records::{Case, Household, Member, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind, workflow};

use crate::{Device, TestDb};

/// The county the fleet works in.
pub const COUNTY: &str = "fl";

/// One worker account: username and grid.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Username (password [`crate::PASSWORD`]).
    pub username: String,
    /// The grid they work.
    pub grid: String,
}

/// Creates (in `db`, before any server runs on it) the county, `grids`
/// grids under it and `per_grid` workers in each: several phones per grid,
/// so that some edits meet on the same records.
pub async fn setup(db: &TestDb, grids: usize, per_grid: usize) -> Vec<Worker> {
    let config = Config {
        data_dir: db.dir.path().to_owned(),
        database_url: Some(db.url.clone()),
        ..Config::default()
    };
    let state = AppState::open(config).await.expect("open the database");
    let unit = |id: String, parent: Option<&str>, kind: &str, path: String| OrgUnitRow {
        id: id.clone(),
        parent_id: parent.map(str::to_owned),
        kind: kind.parse().expect("an org unit kind"),
        name: id,
        path,
        created_at: 0,
    };
    state
        .engine
        .storage
        .insert_org_unit(&unit(COUNTY.into(), None, "county", format!("/{COUNTY}/")))
        .await
        .expect("county");
    // Every worker has the same password: hash it once.
    let hash = gridsync_server::http::auth::hash_password(crate::PASSWORD.into())
        .await
        .expect("hash");
    let mut workers = Vec::new();
    for g in 0..grids {
        let grid = format!("{COUNTY}.g{g}");
        let path = format!("/{COUNTY}/{grid}/");
        state
            .engine
            .storage
            .insert_org_unit(&unit(grid.clone(), Some(COUNTY), "grid", path))
            .await
            .expect("grid");
        for w in 0..per_grid {
            let username = format!("{grid}.w{w}");
            state
                .engine
                .storage
                .insert_user(
                    &UserRow {
                        id: format!("usr_{username}"),
                        username: username.clone(),
                        display_name: username.clone(),
                        password_hash: hash.clone(),
                        role: "grid_worker".into(),
                        scope_version: 0,
                        created_at: 0,
                    },
                    std::slice::from_ref(&grid),
                )
                .await
                .expect("user");
            workers.push(Worker {
                username,
                grid: grid.clone(),
            });
        }
    }
    workers
}

/// Logs every worker in at `base` on a phone of its own, a few at a time.
pub async fn login_all(base: &str, workers: &[Worker]) -> Vec<Device<MemoryStore>> {
    let mut devices = Vec::with_capacity(workers.len());
    for chunk in workers.chunks(8) {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, w) in chunk.iter().enumerate() {
            let base = base.to_owned();
            let username = w.username.clone();
            tasks.spawn(async move {
                let mut device = Device::login(&base, &username, MemoryStore::default()).await;
                device.set_request_timeout(std::time::Duration::from_secs(30));
                (i, device)
            });
        }
        let mut done: Vec<_> = tasks.join_all().await;
        done.sort_by_key(|(i, _)| *i);
        devices.extend(done.into_iter().map(|(_, d)| d));
    }
    devices
}

fn ids_of(device: &Device<MemoryStore>, kind: RecordKind) -> Vec<RecordId> {
    device
        .replica
        .ids()
        .filter(|id| id.kind() == kind)
        .cloned()
        .collect()
}

/// One step of a worker's day on `device` (BENCH.md's edit stream, cut
/// small): mostly a visit with one to three edits of the visited
/// household, sometimes a new case or an event on a case. One edit in ten
/// goes to the grid's first household, which every phone of the grid
/// edits: the same field, another field or the same note. Once the phone
/// holds `max_docs` documents it only edits them. Returns the number of
/// local changes made.
pub fn step(
    device: &mut Device<MemoryStore>,
    grid: &str,
    rng: &mut StdRng,
    now: i64,
    max_docs: usize,
) -> usize {
    let full = device.replica.len() >= max_docs;
    let worker = device.user_id.clone();
    let mut households = ids_of(device, RecordKind::Household);
    households.sort();
    let mut made = 0;
    if households.len() < 3 {
        let mut h = Household {
            org_unit: grid.into(),
            head: "m1".into(),
            ..Default::default()
        };
        h.members
            .push(Member::new("m1", format!("户主{}", rng.gen_range(0..1000))));
        if device.replica.create(&h).is_ok() {
            made += 1;
        }
        return made;
    }
    let shared = rng.gen_bool(0.1);
    let hid = if shared {
        households[0].clone()
    } else {
        households[rng.gen_range(0..households.len())].clone()
    };
    match rng.gen_range(0..100) {
        0..80 if full => {
            for _ in 0..rng.gen_range(1..4) {
                let note = rng.gen_range(0..1000).to_string();
                let edited = device
                    .replica
                    .update::<Household>(&hid, |h| h.address.room = note);
                made += usize::from(edited.is_ok());
            }
        }
        0..70 => {
            let visit = Visit {
                attachments: Vec::new(),
                household: hid.to_string(),
                org_unit: grid.into(),
                worker: worker.clone(),
                visited_at: now,
                findings: "入户走访，情况正常。".into(),
                follow_up: rng.gen_bool(0.1),
                location: String::new(),
            };
            if device.replica.create(&visit).is_ok() {
                made += 1;
            }
            for _ in 0..rng.gen_range(1..4) {
                let what = rng.gen_range(0..3);
                let phone = format!("139{:08}", rng.gen_range(0..100_000_000));
                let room = format!("{}", rng.gen_range(100..999));
                let edited = device.replica.update::<Household>(&hid, |h| match what {
                    0 => h.notes.splice(0, 0, "已走访。"),
                    1 => h.members[0].phone = phone,
                    _ => h.address.room = room,
                });
                made += usize::from(edited.is_ok());
            }
        }
        70..80 => {
            let mut demo = gridsync_server::demo::Rng::new(rng.r#gen());
            let mut c = gridsync_server::demo::case(&mut demo, grid, &hid, &worker, now);
            c.events[0].role = "grid_worker".into();
            c.events[0].hlc = now << 16;
            made += usize::from(device.replica.create(&c).is_ok());
        }
        _ => {
            let cases = ids_of(device, RecordKind::Case);
            if cases.is_empty() {
                return made;
            }
            let cid = cases[rng.gen_range(0..cases.len())].clone();
            let who = (worker.as_str(), device.device_id.clone(), Role::GridWorker);
            let edited = device.replica.update::<Case>(&cid, |c| {
                let data = [("text".to_owned(), "已电话回访。".to_owned())].into();
                workflow::append(c, "comment", (who.0, who.1.as_str(), who.2), now, data);
            });
            made += usize::from(edited.is_ok());
        }
    }
    made
}

/// Every stored document: id and snapshot, read straight from the
/// database.
pub async fn stored(db: &TestDb) -> Result<Vec<(String, Vec<u8>)>, String> {
    let sql = "SELECT id, snapshot FROM documents";
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(&db.url)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string());
        pool.close().await;
        rows
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string());
        pool.close().await;
        rows
    }
}

/// What [`check_stored`] found.
#[derive(Debug, Default)]
pub struct StoredCheck {
    /// Documents stored.
    pub documents: usize,
    /// Changes in them.
    pub changes: usize,
    /// Documents whose snapshot does not load or whose record does not
    /// read, with why.
    pub broken: Vec<String>,
    /// The server's documents, loaded, by id.
    pub heads: BTreeMap<String, automerge::Automerge>,
}

/// Loads every stored document and reads its record.
pub async fn check_stored(db: &TestDb) -> Result<StoredCheck, String> {
    let mut check = StoredCheck::default();
    for (id, snapshot) in stored(db).await? {
        check.documents += 1;
        let kind = match id.parse::<RecordId>() {
            Ok(rid) => rid.kind(),
            Err(e) => {
                check.broken.push(format!("{id}: {e}"));
                continue;
            }
        };
        match sync_core::doc::load(&snapshot) {
            Ok(doc) => {
                if let Err(e) = AnyRecord::read(kind, &doc) {
                    check.broken.push(format!("{id}: {e}"));
                }
                check.changes += doc.get_changes(&[]).len();
                check.heads.insert(id, doc);
            }
            Err(e) => check
                .broken
                .push(format!("{id}: the snapshot does not load: {e}")),
        }
    }
    Ok(check)
}

/// Heads each phone saw acknowledged, by phone and document: every change
/// in their history was acknowledged.
pub type Acked = BTreeMap<(usize, RecordId), Vec<ChangeHash>>;

/// Records the heads of every document `device` holds with nothing
/// pending: what the server has acknowledged to it.
pub fn note_acked(acked: &mut Acked, index: usize, device: &Device<MemoryStore>) {
    let pending = device.replica.pending();
    for id in device.replica.ids() {
        if pending.get(id).is_some_and(|p| !p.is_empty()) {
            continue;
        }
        if let Some(doc) = device.replica.document(id) {
            acked.insert((index, id.clone()), doc.get_heads());
        }
    }
}

/// Acknowledged heads missing from the server's documents.
pub fn lost(acked: &Acked, stored: &StoredCheck) -> Vec<String> {
    let mut lost = Vec::new();
    for ((device, id), heads) in acked {
        let doc = stored.heads.get(&id.to_string());
        for h in heads {
            if doc.is_none_or(|d| d.get_change_by_hash(h).is_none()) {
                lost.push(format!("phone {device}: change {h} of {id}"));
            }
        }
    }
    lost
}

/// Documents where a phone and the server differ (heads), as
/// `(documents compared, differences)`.
pub fn compare(devices: &[Device<MemoryStore>], stored: &StoredCheck) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut differ = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        for id in device.replica.ids() {
            compared += 1;
            let mine: BTreeSet<ChangeHash> = device
                .replica
                .document(id)
                .map(|d| d.get_heads().into_iter().collect())
                .unwrap_or_default();
            let theirs: BTreeSet<ChangeHash> = stored
                .heads
                .get(&id.to_string())
                .map(|d| d.get_heads().into_iter().collect())
                .unwrap_or_default();
            if mine != theirs {
                differ.push(format!("phone {i}: {id}"));
            }
        }
    }
    (compared, differ)
}

/// Resident memory of process `pid` (VmRSS), in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// Where the `gridsync-under-test` binary is: beside the running one
/// (`cargo build -p tests` builds both), unless `GRIDSYNC_BIN` says.
pub fn server_bin() -> String {
    if let Ok(bin) = std::env::var("GRIDSYNC_BIN") {
        return bin;
    }
    let me = std::env::current_exe().expect("own path");
    me.with_file_name("gridsync-under-test")
        .to_string_lossy()
        .into_owned()
}

/// A seed from the clock, for runs not given one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Reads `MIN,MAX` (a command-line range).
pub fn parse_range(value: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = value.split_once(',').ok_or("expected MIN,MAX")?;
    let lo = lo.trim().parse().map_err(|e| format!("MIN: {e}"))?;
    let hi = hi.trim().parse().map_err(|e| format!("MAX: {e}"))?;
    Ok((lo, hi))
}

/// Reads `KEY=VALUE` (a server setting given on the command line).
pub fn parse_env(value: &str) -> Result<(String, String), String> {
    let (k, v) = value.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_owned(), v.to_owned()))
}
