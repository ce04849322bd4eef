//! The bulk loader stores what devices syncing the same documents over
//! HTTP store: the same documents (heads, records, snapshots), the same
//! changes, the same projection rows. What legitimately differs: feed
//! positions and times (`seq`, `received_at`, `updated_at`), and who the
//! changes are attributed to. The admin typing the county in has a random
//! user id in each database (compared by username), and the changes come
//! from each phone's own device over HTTP but from the loader's device in
//! a bulk load.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use sync_core::RecordId;
use sync_core::automerge::{ActorId, AutoSerde};
use sync_core::doc::AnyRecord;
use tests::TestServer;
use tests::county::{self, Grid, Scale};

/// Two grids of twenty households: small enough to sync in seconds.
const SCALE: Scale = Scale {
    townships: 1,
    communities: 1,
    grids: 2,
    households: 20,
};

/// Each projection table with the columns that must be equal, in order,
/// and the columns that may differ.
const TABLES: [(&str, &str, &[&str]); 7] = [
    (
        "proj_households",
        "id, org_unit, building, unit, room, head_id, head_name, member_count, search",
        &["updated_at"],
    ),
    (
        "proj_members",
        "household_id, position, member_id, name, id_number, sex, birth_date, relation, phone, residence",
        &[],
    ),
    ("proj_tags", "doc_id, household_id, tag, sensitive", &[]),
    (
        "proj_visits",
        "id, household_id, org_unit, worker, visited_at, follow_up, findings",
        &[],
    ),
    (
        "proj_cases",
        "id, org_unit, category, title, household_id, location, reporter, reported_at, status, \
         class, level, assignee, due_at, resolved_at, resolved_level, result, supervised, \
         not_applied",
        &[],
    ),
    (
        "proj_case_events",
        "case_id, position, event_id, kind, author, device, at, role, applied, reason",
        &[],
    ),
    ("proj_conflicts", "doc_id, path, shown, vals", &[]),
];

/// Every row of `sql`'s single text column, sorted.
async fn texts(server: &TestServer, sql: &str) -> Vec<String> {
    let mut rows: Vec<(String,)> = if server.db.is_postgres() {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    };
    rows.sort();
    rows.into_iter().map(|(r,)| r).collect()
}

/// How many columns `table` has.
async fn column_count(server: &TestServer, table: &str) -> usize {
    let sql = format!("SELECT * FROM {table} LIMIT 1");
    if server.db.is_postgres() {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let row = sqlx::query(&sql).fetch_one(&pool).await.unwrap();
        row.columns().len()
    } else {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        let row = sqlx::query(&sql).fetch_one(&pool).await.unwrap();
        row.columns().len()
    }
}

/// `columns` of each row as one text, NULL shown as `∅`.
fn joined(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("COALESCE(CAST({} AS TEXT), '∅')", c.trim()))
        .collect::<Vec<_>>()
        .join(" || '|' || ")
}

/// What each change is attributed to, as `doc_id|hash|actor|username|device`.
async fn changes(server: &TestServer) -> Vec<String> {
    let hash = if server.db.is_postgres() {
        "encode(c.hash, 'hex')"
    } else {
        "lower(hex(c.hash))"
    };
    let sql = format!(
        "SELECT c.doc_id || '|' || {hash} || '|' || c.actor || '|' || u.username || '|' || c.device_id
         FROM changes c JOIN users u ON u.id = c.user_id"
    );
    texts(server, &sql).await
}

/// Every change's bytes, as `doc_id` and hex.
async fn change_bytes(server: &TestServer) -> Vec<String> {
    let sql = if server.db.is_postgres() {
        "SELECT doc_id || encode(bytes, 'hex') FROM changes"
    } else {
        "SELECT doc_id || hex(bytes) FROM changes"
    };
    texts(server, sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_load_stores_what_syncing_devices_store() {
    let now = gridsync_server::now_ms();
    let grids = county::generate(SCALE, 11, now);

    // The generator is deterministic down to the Automerge changes.
    let again = county::generate(SCALE, 11, now);
    for (a, b) in grids.iter().zip(&again) {
        let (a, b) = (a.replica(), b.replica());
        let ids: Vec<&RecordId> = a.ids().collect();
        assert_eq!(ids, b.ids().collect::<Vec<_>>());
        for id in ids {
            let (x, y) = (a.document(id).unwrap(), b.document(id).unwrap());
            assert_eq!(x.get_heads(), y.get_heads(), "{id}");
            assert_eq!(x.save(), y.save(), "{id}");
        }
    }

    // Once through phones syncing over HTTP, one per grid, as the admin.
    let synced = TestServer::start().await;
    county::setup(&synced.state, &grids).await;
    let mut phone_devices = BTreeMap::new();
    for grid in &grids {
        let store = grid.replica().store().clone();
        let mut phone = synced.device_with_store(county::ADMIN, store).await;
        phone.sync().await;
        assert!(phone.replica.pending().is_empty(), "{} pushed all", grid.id);
        assert!(phone.replica.rejected().is_empty(), "{} refused", grid.id);
        let actor = ActorId::from(grid.actor).to_hex_string();
        phone_devices.insert(actor, phone.device_id.clone());
    }

    // Once through the bulk loader, a few transactions per grid.
    let loaded = TestServer::start().await;
    county::load(&loaded.state, &grids, 25, |_| {}).await;

    // Documents: the same ids, heads, records and snapshots.
    let expected: usize = grids.iter().map(Grid::documents).sum();
    let a: BTreeMap<_, _> = synced.documents().await.into_iter().collect();
    let b: BTreeMap<_, _> = loaded.documents().await.into_iter().collect();
    assert_eq!(a.len(), expected);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (id, x) in &a {
        let y = &b[id];
        assert_eq!(x.get_heads(), y.get_heads(), "heads of {id}");
        let (rx, ry) = (
            AnyRecord::read(id.kind(), x).unwrap(),
            AnyRecord::read(id.kind(), y).unwrap(),
        );
        assert_eq!(format!("{rx:?}"), format!("{ry:?}"), "record {id}");
        assert_eq!(
            serde_json::to_value(AutoSerde::from(x)).unwrap(),
            serde_json::to_value(AutoSerde::from(y)).unwrap(),
            "JSON of {id}"
        );
        assert_eq!(x.save(), y.save(), "saved {id}");
    }
    let docs_sql = format!(
        "SELECT {} FROM documents",
        joined("id, kind, org_unit, reporter, assignee, snapshot, heads, change_count")
    );
    let docs_sql = if synced.db.is_postgres() {
        docs_sql
            .replace("CAST(snapshot AS TEXT)", "encode(snapshot, 'hex')")
            .replace("CAST(heads AS TEXT)", "encode(heads, 'hex')")
    } else {
        docs_sql
            .replace("CAST(snapshot AS TEXT)", "hex(snapshot)")
            .replace("CAST(heads AS TEXT)", "hex(heads)")
    };
    assert_eq!(
        texts(&synced, &docs_sql).await,
        texts(&loaded, &docs_sql).await
    );

    // Changes: the same per document, each by the same actor and user, from
    // the phone's device or from the loader's.
    let (ca, cb) = (changes(&synced).await, changes(&loaded).await);
    assert_eq!(ca.len(), expected, "one change per typed-in record");
    let strip = |rows: &[String]| -> BTreeSet<String> {
        rows.iter()
            .map(|r| r.rsplit_once('|').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(strip(&ca), strip(&cb));
    for row in &ca {
        let parts: Vec<&str> = row.split('|').collect();
        assert_eq!(parts[3], county::ADMIN);
        assert_eq!(parts[4], phone_devices[parts[2]], "{row}");
    }
    for row in &cb {
        assert!(row.ends_with(&format!("|{}|{}", county::ADMIN, county::LOADER_DEVICE)));
    }
    assert_eq!(change_bytes(&synced).await, change_bytes(&loaded).await);

    // Every projection row.
    for (table, columns, ignored) in TABLES {
        let sql = format!("SELECT {} FROM {table}", joined(columns));
        let (ra, rb) = (texts(&synced, &sql).await, texts(&loaded, &sql).await);
        assert_eq!(ra, rb, "{table}");
        if table != "proj_conflicts" {
            assert!(!ra.is_empty(), "{table} has rows");
            let compared = columns.split(',').count() + ignored.len();
            assert_eq!(
                column_count(&synced, table).await,
                compared,
                "{table}: every column"
            );
        }
    }
}
