//! The scope rule is written twice: in SQL, for the feed and the queries
//! (`in_scope!` and `area_units!` in the server's storage), and in Rust,
//! for the merge and the phones (`Principal::can_read`). For an org tree,
//! users of every role bound to random units of it, and documents of every
//! kind, both must name exactly the same documents for every user, on the
//! real database (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set);
//! and the feed's two ways of finding them must agree.

use std::collections::BTreeSet;

use gridsync_server::domain::OrgUnitKind;
use gridsync_server::storage::{DocWrite, NewChange, OrgUnitRow, Scope, UserRow};
use proptest::prelude::*;
use sync_core::RecordKind;
use sync_core::doc::DocMeta;
use sync_core::policy::{Principal, Role};
use tests::TestServer;

/// Each unit's parent, by index (`None`: the root). Units are listed
/// parents first.
const TREE: [Option<usize>; 8] = [
    None,
    Some(0),
    Some(0),
    Some(1),
    Some(1),
    Some(2),
    Some(3),
    Some(3),
];

const KINDS: [RecordKind; 4] = [
    RecordKind::Household,
    RecordKind::Case,
    RecordKind::Visit,
    RecordKind::Sensitive,
];

#[derive(Debug, Clone)]
struct User {
    role: Role,
    units: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Doc {
    kind: RecordKind,
    unit: usize,
    /// For cases: indices of users.
    reporter: Option<usize>,
    assignee: Option<usize>,
}

fn users() -> impl Strategy<Value = Vec<User>> {
    let user = (
        prop::sample::select(Role::ALL.to_vec()),
        prop::collection::vec(0..TREE.len(), 0..3),
    )
        .prop_map(|(role, units)| User { role, units });
    prop::collection::vec(user, 1..6)
}

fn docs() -> impl Strategy<Value = Vec<Doc>> {
    let doc = (
        prop::sample::select(KINDS.to_vec()),
        0..TREE.len(),
        prop::option::of(0..6usize),
        prop::option::of(0..6usize),
    )
        .prop_map(|(kind, unit, reporter, assignee)| {
            // Only cases name people (as the server stores them).
            let case = kind == RecordKind::Case;
            Doc {
                kind,
                unit,
                reporter: reporter.filter(|_| case),
                assignee: assignee.filter(|_| case),
            }
        });
    prop::collection::vec(doc, 0..24)
}

/// One generated county, its own ids under `tag`.
struct County<'a> {
    tag: &'a str,
}

impl County<'_> {
    fn unit(&self, i: usize) -> String {
        format!("{}.u{i}", self.tag)
    }

    fn path(&self, i: usize) -> String {
        let parent = TREE[i].map(|p| self.path(p)).unwrap_or_else(|| "/".into());
        format!("{parent}{}/", self.unit(i))
    }

    fn user(&self, i: usize) -> String {
        format!("{}-user{i}", self.tag)
    }

    /// The area as the rule defines it: every unit under a bound one.
    fn area(&self, bound: &[usize]) -> BTreeSet<String> {
        (0..TREE.len())
            .filter(|&u| {
                bound
                    .iter()
                    .any(|&b| self.path(u).starts_with(&self.path(b)))
            })
            .map(|u| self.unit(u))
            .collect()
    }
}

async fn check(server: &TestServer, users: &[User], docs: &[Doc]) -> Result<(), TestCaseError> {
    let tag = format!("p{}", gridsync_server::random_hex(4));
    let county = County { tag: &tag };
    let storage = &server.state.engine.storage;
    for (i, parent) in TREE.iter().enumerate() {
        let kind = match i {
            0 => OrgUnitKind::County,
            1 | 2 => OrgUnitKind::Township,
            _ => OrgUnitKind::Grid,
        };
        let unit = OrgUnitRow {
            id: county.unit(i),
            parent_id: parent.map(|p| county.unit(p)),
            kind,
            name: county.unit(i),
            path: county.path(i),
            created_at: 0,
        };
        storage.insert_org_unit(&unit).await.unwrap();
    }
    for (i, user) in users.iter().enumerate() {
        let row = UserRow {
            id: county.user(i),
            username: county.user(i),
            display_name: county.user(i),
            password_hash: String::new(),
            role: user.role.as_str().into(),
            scope_version: 0,
            created_at: 0,
        };
        let mut units: Vec<String> = user.units.iter().map(|&u| county.unit(u)).collect();
        units.sort();
        units.dedup();
        storage.insert_user(&row, &units).await.unwrap();
    }
    let person = |i: Option<usize>| i.filter(|&i| i < users.len()).map(|i| county.user(i));
    let mut tx = storage.begin(true).await.unwrap();
    let mut metas = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let id = format!("{tag}-doc{i}");
        let meta = DocMeta {
            org_unit: county.unit(doc.unit),
            reporter: person(doc.reporter),
            assignee: person(doc.assignee),
        };
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        tx.save(DocWrite {
            id: &id,
            kind: doc.kind.as_str(),
            org_unit: &meta.org_unit,
            reporter: meta.reporter.as_deref(),
            assignee: meta.assignee.as_deref(),
            snapshot: &[0],
            heads: &hash,
            changes: &[NewChange {
                hash,
                bytes: vec![0],
                actor: "00".into(),
            }],
            user_id: "test",
            device_id: "test",
            now: 0,
        })
        .await
        .unwrap();
        metas.push((id, doc.kind, meta));
    }
    tx.commit().await.unwrap();

    for (i, user) in users.iter().enumerate() {
        let user_id = county.user(i);
        let area = county.area(&user.units);
        let stored_area: BTreeSet<String> =
            storage.area(&user_id).await.unwrap().into_iter().collect();
        prop_assert_eq!(&stored_area, &area, "the area of {:?}", user);
        let principal = Principal {
            user_id: user_id.clone(),
            role: user.role,
            area,
        };
        let by_rust: BTreeSet<&str> = metas
            .iter()
            .filter(|(_, kind, meta)| principal.can_read(*kind, meta))
            .map(|(id, _, _)| id.as_str())
            .collect();
        // The feed finds the scope's documents two ways, by walking every
        // document since the cursor or by the scope's own index ranges:
        // both must keep the same ones, in the same order, from any cursor
        // and for any page size.
        let mut tx = storage.begin(false).await.unwrap();
        let scope = Scope::of(&user_id, user.role);
        let found_by = |narrow| Scope {
            narrow,
            ..scope.clone()
        };
        let feed = tx
            .feed(&found_by(false), "no-device", 0, 0, 10_000, (0, 0))
            .await
            .unwrap();
        let by_sql: BTreeSet<&str> = feed
            .iter()
            .filter_map(|d| metas.iter().find(|(id, _, _)| *id == d.id))
            .map(|(id, _, _)| id.as_str())
            .collect();
        prop_assert_eq!(by_sql, by_rust, "the scope of {:?}", user);
        let seqs: Vec<i64> = feed.iter().map(|d| d.seq).collect();
        for after in [0, seqs.get(seqs.len() / 2).copied().unwrap_or(0)] {
            for limit in [2, 10_000] {
                let rows = |rows: Vec<gridsync_server::storage::FeedDoc>| {
                    rows.into_iter().map(|d| (d.seq, d.id)).collect::<Vec<_>>()
                };
                let walked = tx
                    .feed(&found_by(false), "no-device", 0, after, limit, (0, 0))
                    .await
                    .unwrap();
                let ranged = tx
                    .feed(&found_by(true), "no-device", 0, after, limit, (0, 0))
                    .await
                    .unwrap();
                prop_assert_eq!(
                    rows(ranged),
                    rows(walked),
                    "the feed of {:?} after {} by {}",
                    user,
                    after,
                    limit
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_sql_and_the_rust_scope_rules_name_the_same_documents() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let config = ProptestConfig::with_cases(24);
    proptest!(config, |(users in users(), docs in docs())| {
        runtime.block_on(check(&server, &users, &docs))?;
    });
}
