//! The group commit: rounds waiting to write are written together in one
//! transaction. When that transaction fails, each round is written again
//! alone, so one round's failure is not another's and nothing the others
//! pushed is lost.
//!
//! The failure is made on the real database: a trigger refuses to store
//! one phone's document. Rounds group when they queue while another group
//! writes, so the phones sync together until the server has counted a
//! failed group (its own test binary: the metrics are the process's).

use sync_core::RecordId;
use sync_core::records::{Household, Member};
use tests::TestServer;

const GRID: &str = "demo.t1.c1.g1";
const METRICS_TOKEN: &str = "metrics-token-for-the-test";
const PHONES: usize = 8;

fn household(note: String) -> Household {
    let mut h = Household {
        org_unit: GRID.into(),
        notes: note.into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", "张伟"));
    h.head = "m1".into();
    h
}

/// Refuses to store the document `id`, until `allow`.
fn refuse_sql(server: &TestServer, id: &RecordId) -> String {
    if server.db.is_postgres() {
        format!(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$
             BEGIN
                 IF NEW.id = '{id}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse BEFORE INSERT ON documents
                 FOR EACH ROW EXECUTE FUNCTION refuse();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON documents WHEN NEW.id = '{id}'
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;"
        )
    }
}

fn allow_sql(server: &TestServer) -> &'static str {
    if server.db.is_postgres() {
        "DROP TRIGGER refuse ON documents; DROP FUNCTION refuse();"
    } else {
        "DROP TRIGGER refuse;"
    }
}

async fn failed_groups(server: &TestServer) -> u64 {
    let body = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix("gridsync_sync_group_commits_failed_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn a_round_that_cannot_be_written_fails_alone_and_the_rest_of_its_group_is_written() {
    let server = TestServer::start_with(|c| c.metrics_token = Some(METRICS_TOKEN.into())).await;
    let mut phones = Vec::new();
    for i in 0..PHONES {
        server.user(&format!("w{i}"), "grid_worker", GRID).await;
        phones.push(server.device(&format!("w{i}")).await);
    }
    let refused = phones[0]
        .replica
        .create(&household("存不进去的一户".into()))
        .unwrap();
    server.execute(&refuse_sql(&server, &refused)).await;

    let mut pushed = Vec::new();
    for attempt in 0..30 {
        for (i, phone) in phones.iter_mut().enumerate().skip(1) {
            let id = phone
                .replica
                .create(&household(format!("第{attempt}轮，第{i}台")))
                .unwrap();
            pushed.push(id);
        }
        let rounds = phones.iter_mut().map(|phone| phone.try_sync());
        let outcomes = futures_util::future::join_all(rounds).await;
        for (i, outcome) in outcomes.iter().enumerate() {
            match i {
                0 => assert!(outcome.is_err(), "the refused document was acknowledged"),
                _ => assert!(outcome.is_ok(), "phone {i}: {:?}", outcome.as_ref().err()),
            }
        }
        if failed_groups(&server).await > 0 {
            break;
        }
    }
    assert!(
        failed_groups(&server).await > 0,
        "the refused round never shared a group with another"
    );

    // Everything the other phones pushed is stored, and they have nothing
    // left to send.
    for id in &pushed {
        assert!(server.document(id).await.is_some(), "{id} was lost");
    }
    for phone in &phones[1..] {
        assert!(phone.replica.pending().is_empty());
    }
    // The refused phone kept its work, and delivers it once the database
    // takes it.
    assert!(server.document(&refused).await.is_none());
    assert!(!phones[0].replica.pending().is_empty());
    server.execute(allow_sql(&server)).await;
    phones[0].sync().await;
    assert!(server.document(&refused).await.is_some());
    assert!(phones[0].replica.pending().is_empty());
}

/// What a group wrote reaches the database file itself soon after, not
/// only SQLite's write-ahead log: the log is copied beside the writers
/// after each write transaction, instead of by a commit holding the write
/// lock (SQLite only; PostgreSQL checkpoints on its own).
#[tokio::test]
async fn what_a_round_wrote_is_copied_from_the_log_into_the_database_file() {
    let server = TestServer::start().await;
    if server.db.is_postgres() {
        return;
    }
    server.user("w0", "grid_worker", GRID).await;
    let mut phone = server.device("w0").await;
    let id = phone
        .replica
        .create(&household("写进库文件的一户".into()))
        .unwrap();
    phone.sync().await;

    let file = server.db.url.strip_prefix("sqlite://").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("without-its-log.db");
    for _ in 0..100 {
        // A copy of the database file without its log: what it holds was
        // checkpointed. A copy taken mid-checkpoint may not open; it is
        // taken again.
        std::fs::copy(file, &alone).unwrap();
        let _ = std::fs::remove_file(dir.path().join("without-its-log.db-wal"));
        let found = async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", alone.display())).await?;
            let row: Option<(String,)> = sqlx::query_as("SELECT id FROM documents WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&pool)
                .await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(row.is_some())
        };
        if found.await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the round's document stayed in the log, not in the database file");
}
