//! Supervisors' queries end to end: after phones sync concurrent edits,
//! every list, figure and export says exactly what the merged documents
//! say, within the caller's scope and sensitive rights.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use sync_core::automerge::Automerge;
use sync_core::doc;
use sync_core::policy::Role;
use sync_core::records::{Case, Household, Member, Residence, Sensitive, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind, workflow};
use tests::{Device, TestServer};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    gridsync_server::now_ms()
}

/// county c > townships t1, t2 > communities cm1, cm2 > grids g1, g2 (in
/// cm1) and g3 (in cm2, township t2).
async fn county() -> TestServer {
    let server = TestServer::start().await;
    for (id, parent, kind) in TREE {
        let parent_path = match parent {
            Some(p) => {
                server
                    .state
                    .engine
                    .storage
                    .org_unit(p)
                    .await
                    .unwrap()
                    .unwrap()
                    .path
            }
            None => "/".into(),
        };
        server
            .state
            .engine
            .storage
            .insert_org_unit(&gridsync_server::storage::OrgUnitRow {
                id: id.into(),
                parent_id: parent.map(Into::into),
                kind: kind.parse().unwrap(),
                name: format!("{id} 名"),
                path: format!("{parent_path}{id}/"),
                created_at: 0,
            })
            .await
            .unwrap();
    }
    for (user, role, unit) in [
        ("w1", "grid_worker", "g1"),
        ("w1b", "grid_worker", "g1"),
        ("w2", "grid_worker", "g2"),
        ("w3", "grid_worker", "g3"),
        ("staff", "community_staff", "cm1"),
        ("sup1", "supervisor", "t1"),
        ("sup2", "supervisor", "t2"),
        ("med", "mediator", "cm1"),
    ] {
        server.user(user, role, unit).await;
    }
    server
}

fn household(grid: &str, room: &str, names: &[(&str, Residence)], tags: &[&str]) -> Household {
    let mut h = Household {
        org_unit: grid.into(),
        ..Default::default()
    };
    h.address.building = "3栋".into();
    h.address.unit = "2单元".into();
    h.address.room = room.into();
    for (i, (name, residence)) in names.iter().enumerate() {
        let mut m = Member::new(format!("m{}", i + 1), *name);
        m.residence = *residence;
        m.phone = format!("1380000{i:04}");
        h.members.push(m);
    }
    h.head = "m1".into();
    for tag in tags {
        h.tags.insert((*tag).into(), true);
    }
    h
}

fn visit(household: &RecordId, grid: &str, worker: &str, at: i64, follow_up: bool) -> Visit {
    let mut v = Visit {
        household: household.to_string(),
        org_unit: grid.into(),
        worker: worker.into(),
        visited_at: at,
        follow_up,
        ..Default::default()
    };
    v.findings = "一切正常".into();
    v
}

fn case(grid: &str, reporter: &str, title: &str, ago: i64) -> Case {
    let at = now() - ago;
    let mut c = Case {
        org_unit: grid.into(),
        title: title.into(),
        reporter: reporter.into(),
        reported_at: at,
        ..Default::default()
    };
    let who = (reporter, "phone", Role::GridWorker);
    workflow::append(&mut c, "report", who, at, Default::default());
    c
}

struct World {
    server: TestServer,
    w1: Device<MemoryStore>,
    w1b: Device<MemoryStore>,
    /// The household both g1 phones edit at once.
    shared: RecordId,
}

/// Phones in three grids record households, visits and cases; two phones
/// change the same member's phone number while offline.
async fn world() -> World {
    let server = county().await;
    let (mut w1, mut w1b) = (server.device("w1").await, server.device("w1b").await);
    let (mut w2, mut w3) = (server.device("w2").await, server.device("w3").await);
    let mut staff = server.device("staff").await;
    use Residence::*;
    let shared = w1
        .replica
        .create(&household(
            "g1",
            "401",
            &[("张三", Registered), ("李四", Floating)],
            &["elderly_alone"],
        ))
        .unwrap();
    let quiet = w1
        .replica
        .create(&household(
            "g1",
            "402",
            &[("王五", Resident)],
            &["low_income", "veteran"],
        ))
        .unwrap();
    let g2 = w2
        .replica
        .create(&household(
            "g2",
            "101",
            &[("赵六", Registered)],
            &["elderly_alone"],
        ))
        .unwrap();
    let g3 = w3
        .replica
        .create(&household("g3", "909", &[("钱七", Floating)], &[]))
        .unwrap();
    w1.replica
        .create(&visit(&shared, "g1", "usr_w1", now() - 2 * DAY, true))
        .unwrap();
    w2.replica
        .create(&visit(&g2, "g2", "usr_w2", now() - 40 * DAY, false))
        .unwrap();
    w3.replica
        .create(&visit(&g3, "g3", "usr_w3", now() - DAY, false))
        .unwrap();
    let settled = w1
        .replica
        .create(&case("g1", "usr_w1", "楼道堆物", 10 * DAY))
        .unwrap();
    w2.replica
        .create(&case("g2", "usr_w2", "邻里噪音", DAY))
        .unwrap();
    w3.replica
        .create(&case("g3", "usr_w3", "漏水纠纷", 2 * DAY))
        .unwrap();
    for phone in [&mut w1, &mut w2, &mut w3] {
        phone.sync().await;
    }
    // Community staff triage the g1 case to a mediator, who settles it.
    let med = server.device("med").await;
    for (desk, kind, data) in [
        (&staff, "accept", json!({})),
        (&staff, "classify", json!({ "class": "small" })),
        (&staff, "assign", json!({ "to": "usr_med" })),
        (&med, "mediate", json!({})),
        (&med, "resolve", json!({ "result": "mediated" })),
    ] {
        let path = format!("/v1/cases/{settled}/events");
        let body = json!({ "kind": kind, "data": data });
        let (status, answer) = desk.call(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 200, "{kind}: {answer}");
    }
    // Special-population details of one g1 household, by community staff.
    staff.sync().await;
    let mut details = Sensitive {
        household: quiet.to_string(),
        org_unit: "g1".into(),
        ..Default::default()
    };
    details
        .categories
        .insert("community_correction".into(), true);
    staff.replica.create(&details).unwrap();
    staff.sync().await;

    // Two phones change the same phone number offline, then both sync.
    w1b.sync().await;
    w1.replica
        .update::<Household>(&shared, |h| h.members[0].phone = "13911112222".into())
        .unwrap();
    w1b.replica
        .update::<Household>(&shared, |h| h.members[0].phone = "13933334444".into())
        .unwrap();
    w1.sync().await;
    w1b.sync().await;
    w1.sync().await;
    World {
        server,
        w1,
        w1b,
        shared,
    }
}

/// Every page of a list, following cursors with small pages.
async fn all_pages(device: &Device<MemoryStore>, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            None => format!("{path}{sep}limit=2"),
        };
        let (status, body) = device.call(Method::GET, &url, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        let page = body["items"].as_array().unwrap();
        assert!(page.len() <= 2);
        items.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The documents `user` may read, hydrated straight from storage.
async fn readable(server: &TestServer, user: &str) -> Vec<(RecordId, Automerge)> {
    let scope = server.scope_of(user).await;
    server
        .documents()
        .await
        .into_iter()
        .filter(|(id, _)| scope.contains(id))
        .collect()
}

/// What a household row must say, from the documents alone.
fn expected_households(docs: &[(RecordId, Automerge)], sensitive: bool) -> BTreeMap<String, Value> {
    let mut visits: BTreeMap<String, i64> = BTreeMap::new();
    let mut special: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, d) in docs {
        match id.kind() {
            RecordKind::Visit => {
                let v: Visit = doc::read(d).unwrap();
                let last = visits.entry(v.household).or_insert(i64::MIN);
                *last = (*last).max(v.visited_at);
            }
            RecordKind::Sensitive => {
                let s: Sensitive = doc::read(d).unwrap();
                let on = s.categories.iter().filter(|(_, on)| **on);
                special
                    .entry(s.household)
                    .or_default()
                    .extend(on.map(|(k, _)| k.clone()));
            }
            _ => {}
        }
    }
    docs.iter()
        .filter(|(id, _)| id.kind() == RecordKind::Household)
        .map(|(id, d)| {
            let h: Household = doc::read(d).unwrap();
            let id = id.to_string();
            let mut row = json!({
                "id": id,
                "org_unit": h.org_unit,
                "building": h.address.building,
                "unit": h.address.unit,
                "room": h.address.room,
                "head_name": h.member(&h.head).map(|m| m.name.clone()).unwrap_or_default(),
                "member_count": h.members.len(),
                "last_visited_at": visits.get(&id),
                "tags": h.tags.iter().filter(|(_, on)| **on).map(|(k, _)| k).collect::<Vec<_>>(),
            });
            if sensitive {
                row["special"] = json!(special.get(&id).cloned().unwrap_or_default());
            }
            (id, row)
        })
        .collect()
}

#[tokio::test]
async fn household_lists_say_what_the_merged_documents_say() {
    let world = world().await;
    let server = &world.server;
    for (user, sensitive) in [("sup1", false), ("staff", true), ("sup2", false)] {
        let device = server.device(user).await;
        let got = all_pages(&device, "/v1/households").await;
        let expected =
            expected_households(&readable(server, &format!("usr_{user}")).await, sensitive);
        let got: BTreeMap<String, Value> = got
            .into_iter()
            .map(|row| (row["id"].as_str().unwrap().to_owned(), row))
            .collect();
        assert_eq!(got, expected, "{user}");
    }
}

/// What case and visit rows must say, from the documents alone.
fn expected_cases_and_visits(
    docs: &[(RecordId, Automerge)],
    deadlines: &workflow::Deadlines,
) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let (mut cases, mut visits) = (BTreeMap::new(), BTreeMap::new());
    for (id, d) in docs {
        match id.kind() {
            RecordKind::Case => {
                let c: Case = doc::read(d).unwrap();
                let s = workflow::fold(&c, deadlines);
                let row = json!({
                    "title": c.title, "org_unit": c.org_unit, "reporter": c.reporter,
                    "reported_at": s.reported_at, "status": s.status.as_str(),
                    "class": s.class, "level": s.level.as_str(), "assignee": s.assignee,
                    "due_at": s.due, "overdue": s.overdue_at(now()),
                    "resolved_at": s.resolved_at, "result": s.result,
                    "supervised": s.supervised,
                });
                cases.insert(id.to_string(), row);
            }
            RecordKind::Visit => {
                let v: Visit = doc::read(d).unwrap();
                let row = json!({
                    "household_id": v.household, "org_unit": v.org_unit, "worker": v.worker,
                    "visited_at": v.visited_at, "follow_up": v.follow_up,
                    "findings": v.findings.as_str(),
                });
                visits.insert(id.to_string(), row);
            }
            _ => {}
        }
    }
    (cases, visits)
}

/// The fields of each row that `expected` names.
fn project_rows(rows: Vec<Value>, expected: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    rows.into_iter()
        .map(|row| {
            let id = row["id"].as_str().unwrap().to_owned();
            let keys = expected.values().next().and_then(Value::as_object);
            let picked: serde_json::Map<String, Value> = keys
                .into_iter()
                .flat_map(|k| k.keys())
                .map(|k| (k.clone(), row[k].clone()))
                .collect();
            (id, Value::Object(picked))
        })
        .collect()
}

#[tokio::test]
async fn case_and_visit_lists_say_what_the_merged_documents_say() {
    let world = world().await;
    let server = &world.server;
    for user in ["sup1", "staff", "sup2", "w1", "med"] {
        let device = server.device(user).await;
        let docs = readable(server, &format!("usr_{user}")).await;
        let (cases, visits) =
            expected_cases_and_visits(&docs, &server.state.engine.config.deadlines);
        let got = project_rows(all_pages(&device, "/v1/cases").await, &cases);
        assert_eq!(got, cases, "{user}");
        let got = project_rows(all_pages(&device, "/v1/visits").await, &visits);
        assert_eq!(got, visits, "{user}");
    }
}

#[tokio::test]
async fn filters_narrow_within_scope() {
    let world = world().await;
    let server = &world.server;
    let sup1 = server.device("sup1").await;
    let rooms = |items: Vec<Value>| -> BTreeSet<String> {
        items
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i["org_unit"].as_str().unwrap(),
                    i["room"].as_str().unwrap()
                )
            })
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    let all = all_pages(&sup1, "/v1/households").await;
    assert_eq!(rooms(all), set(&["g1:401", "g1:402", "g2:101"]));
    // Another township's units are not the caller's to name: answered as
    // unknown ones.
    for path in [
        "/v1/households?org_unit=t2",
        "/v1/cases?org_unit=t2",
        "/v1/visits?org_unit=g3",
    ] {
        let (status, body) = sup1.call(Method::GET, path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }

    let tagged = all_pages(&sup1, "/v1/households?tag=elderly_alone").await;
    assert_eq!(rooms(tagged), set(&["g1:401", "g2:101"]));
    let in_g1 = all_pages(&sup1, "/v1/households?org_unit=g1&tag=elderly_alone").await;
    assert_eq!(rooms(in_g1), set(&["g1:401"]));
    let floating = all_pages(&sup1, "/v1/households?residence=Floating").await;
    assert_eq!(rooms(floating), set(&["g1:401"]));
    // Chinese free text, on names and the address.
    let named = all_pages(&sup1, "/v1/households?q=%E7%8E%8B%E4%BA%94").await; // 王五
    assert_eq!(rooms(named), set(&["g1:402"]));
    let by_address = all_pages(&sup1, "/v1/households?q=3%E6%A0%8B").await; // 3栋
    assert_eq!(by_address.len(), 3);
    // Not visited in the last 30 days: 402 never, 101 forty days ago.
    let since = now() - 30 * DAY;
    let unvisited = all_pages(&sup1, &format!("/v1/households?not_visited_since={since}")).await;
    assert_eq!(rooms(unvisited), set(&["g1:402", "g2:101"]));
    let sorted = all_pages(&sup1, "/v1/households?sort=-address").await;
    let order: Vec<&str> = sorted.iter().map(|i| i["room"].as_str().unwrap()).collect();
    assert_eq!(order, ["402", "401", "101"]);

    // A special-population category is for roles with sensitive rights.
    let (status, body) = sup1
        .call(Method::GET, "/v1/households?tag=community_correction", None)
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let staff = server.device("staff").await;
    let special = all_pages(&staff, "/v1/households?tag=community_correction").await;
    assert_eq!(rooms(special), set(&["g1:402"]));

    // Cases and visits.
    let cases = all_pages(&sup1, "/v1/cases?sort=-reported_at").await;
    let titles: Vec<&str> = cases.iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["邻里噪音", "楼道堆物"]);
    let reported = all_pages(&sup1, "/v1/cases?status=reported&org_unit=g2").await;
    assert_eq!(reported.len(), 1);
    let visits = all_pages(&sup1, "/v1/visits?worker=usr_w1").await;
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["follow_up"], true);
    let (status, days) = sup1.call(Method::GET, "/v1/visits/daily", None).await;
    assert_eq!(status, 200);
    let days = days.as_array().unwrap();
    assert_eq!(days.len(), 2, "{days:?}");
    assert!(days.iter().all(|d| d["visits"] == 1));

    // A mediator has no area: no households, only the cases they handle.
    let med = server.device("med").await;
    assert!(all_pages(&med, "/v1/households").await.is_empty());
    let handled = all_pages(&med, "/v1/cases").await;
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["result"], "mediated");
    assert_eq!(
        all_pages(&sup1, "/v1/cases?assignee=usr_med&class=small")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_query_values_are_refused_clearly() {
    let world = world().await;
    let sup1 = world.server.device("sup1").await;
    for (path, status, code) in [
        ("/v1/households?tag=nonsense", 422, "invalid_field"),
        ("/v1/households?sort=name", 422, "invalid_field"),
        ("/v1/households?limit=0", 422, "invalid_field"),
        ("/v1/households?limit=abc", 400, "bad_query"),
        ("/v1/households?cursor=%21%21", 422, "invalid_field"),
        ("/v1/households?org_unit=nowhere", 404, "not_found"),
        ("/v1/households?colour=red", 400, "bad_query"),
        ("/v1/cases?status=lost", 422, "invalid_field"),
        ("/v1/cases?format=pdf", 400, "bad_query"),
        (
            "/v1/stats/coverage?org_unit=t1&days=0",
            422,
            "invalid_field",
        ),
        ("/v1/records/hh_nope", 404, "not_found"),
    ] {
        let (got, body) = sup1.call(Method::GET, path, None).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A cursor from one sort does not page another.
    let (_, page) = sup1.call(Method::GET, "/v1/households?limit=1", None).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, _) = sup1
        .call(
            Method::GET,
            &format!("/v1/households?sort=address&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn concurrent_edits_show_as_a_conflict_until_someone_resolves_it() {
    let mut world = world().await;
    let server = &world.server;
    let shared = world.shared.to_string();
    let staff = server.device("staff").await;
    let (status, conflicts) = staff
        .call(
            Method::GET,
            &format!("/v1/records/{shared}/conflicts"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conflicts}");
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let conflict = &conflicts[0];
    assert_eq!(conflict["path"], "members/m1/phone");
    let values: BTreeSet<&str> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, BTreeSet::from(["13911112222", "13933334444"]));
    let writers: BTreeSet<&str> = conflict["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(writers, BTreeSet::from(["usr_w1", "usr_w1b"]));
    let shown = conflict["shown"].as_str().unwrap();
    let merged: Household = doc::read(&server.document(&world.shared).await.unwrap()).unwrap();
    assert_eq!(merged.members[0].phone, shown);

    // The history says who changed the phone number, from which device.
    let (_, history) = staff
        .call(Method::GET, &format!("/v1/records/{shared}/history"), None)
        .await;
    let phone_changes: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "members/m1/phone")
        })
        .collect();
    let by: BTreeSet<&str> = phone_changes
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert!(by.contains("usr_w1") && by.contains("usr_w1b"), "{history}");
    assert!(
        phone_changes
            .iter()
            .all(|e| e["device_id"].as_str().is_some())
    );

    // A supervisor only reads: refused, nothing stored, nothing held.
    let sup1 = server.device("sup1").await;
    let resolve = format!("/v1/records/{shared}/conflicts/resolve");
    let body = json!({ "path": "members/m1/phone", "value": "13911112222" });
    let (status, answer) = sup1.call(Method::POST, &resolve, Some(body.clone())).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(server.count("quarantine").await, 0);
    let (status, answer) = staff
        .call(
            Method::POST,
            &resolve,
            Some(json!({ "path": "address/room", "value": "1" })),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("not_applicable"))
    );

    // Staff resolve it: a change like any other, which phones receive.
    let (status, remaining) = staff.call(Method::POST, &resolve, Some(body)).await;
    assert_eq!(status, 200, "{remaining}");
    assert_eq!(remaining, json!([]));
    let (_, conflicts) = staff
        .call(
            Method::GET,
            &format!("/v1/records/{shared}/conflicts"),
            None,
        )
        .await;
    assert_eq!(conflicts, json!([]));
    world.w1b.sync().await;
    let on_phone: Household = world.w1b.replica.read(&world.shared).unwrap();
    assert_eq!(on_phone.members[0].phone, "13911112222");
    let (_, record) = world
        .w1
        .call(Method::GET, &format!("/v1/records/{shared}"), None)
        .await;
    assert_eq!(record["record"]["members"][0]["phone"], "13911112222");
    assert_eq!(record["kind"], "household");
}

#[tokio::test]
async fn sensitive_details_stay_with_roles_that_may_see_them() {
    let world = world().await;
    let server = &world.server;
    let (sup1, staff) = (server.device("sup1").await, server.device("staff").await);
    let rows = all_pages(&sup1, "/v1/households").await;
    assert!(rows.iter().all(|r| r.get("special").is_none()), "{rows:?}");
    let text = export(&sup1, "/v1/households?format=csv&lang=en").await;
    assert!(
        !text.contains("community_correction") && !text.contains("Special"),
        "{text}"
    );
    let text = export(&staff, "/v1/households?format=csv&lang=en").await;
    assert!(text.contains("community_correction") && text.contains("Special population"));
    // Ledgers and coverage count special categories only for staff.
    for (device, sees) in [(&sup1, false), (&staff, true)] {
        let (_, ledger) = device
            .call(Method::GET, "/v1/stats/ledger?org_unit=cm1&by=grid", None)
            .await;
        let shown = ledger.to_string().contains("community_correction");
        assert_eq!(shown, sees, "{ledger}");
        // And so does the ledger's file: a column only for staff.
        let text = export(device, "/v1/stats/ledger?org_unit=cm1&by=grid&format=csv").await;
        assert!(text.starts_with("\u{feff}单位,名称,户数,人数"), "{text}");
        assert_eq!(text.contains("社区矫正"), sees, "{text}");
        assert_eq!(
            text.trim_end().split("\r\n").count(),
            1 + ledger.as_array().unwrap().len(),
            "a row per unit"
        );
    }
    let hs: Vec<RecordId> = server
        .documents()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.kind() == RecordKind::Sensitive)
        .collect();
    let path = format!("/v1/records/{}", hs[0]);
    assert_eq!(sup1.call(Method::GET, &path, None).await.0, 404);
    assert_eq!(staff.call(Method::GET, &path, None).await.0, 200);
}

async fn export(device: &Device<MemoryStore>, path: &str) -> String {
    let (status, bytes) = raw(device, path).await;
    assert_eq!(status, 200);
    String::from_utf8(bytes).unwrap()
}

async fn raw(device: &Device<MemoryStore>, path: &str) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", device.base))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn exports_stream_every_row_with_headers_in_either_language() {
    let world = world().await;
    let sup1 = world.server.device("sup1").await;
    let text = export(&sup1, "/v1/households?format=csv").await;
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert!(
        lines[0].starts_with("\u{feff}户编号,网格,栋"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 1 + 3);
    assert!(text.contains("张三") && text.contains("王五"));
    let text = export(&sup1, "/v1/cases?format=csv&lang=en").await;
    assert!(text.starts_with("\u{feff}Case,Org unit,Category"));
    assert_eq!(text.trim_end().split("\r\n").count(), 1 + 2);
    // Compressed on the way, as browsers ask: the stream still ends cleanly.
    let response = reqwest::Client::new()
        .get(format!("{}/v1/households?format=csv", sup1.base))
        .bearer_auth(&sup1.token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let gz = response.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    assert_eq!(text.trim_end().split("\r\n").count(), 1 + 3);
    // The daily logs, whole.
    let text = export(&sup1, "/v1/visits/daily?format=csv&lang=en").await;
    assert!(text.starts_with("\u{feff}Worker,Date,Visits,Households visited,Follow-ups"));
    assert_eq!(text.trim_end().split("\r\n").count(), 1 + 2, "{text}");
    let (status, xlsx) = raw(&sup1, "/v1/visits/daily?format=xlsx").await;
    assert_eq!(status, 200);
    assert!(xlsx.starts_with(b"PK\x03\x04"));
    let (status, xlsx) = raw(&sup1, "/v1/visits?format=xlsx").await;
    assert_eq!(status, 200);
    assert!(xlsx.starts_with(b"PK\x03\x04"));
    assert!(
        xlsx.windows(4).any(|w| w == b"PK\x05\x06"),
        "ends with a zip directory"
    );
}

#[tokio::test]
async fn figures_fold_what_the_documents_hold() {
    let world = world().await;
    let server = &world.server;
    let sup1 = server.device("sup1").await;
    let (status, stats) = sup1
        .call(Method::GET, "/v1/stats/cases?org_unit=t1", None)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_status"]["reported"], 1);
    assert_eq!(stats["by_status"]["resolved"], 1);
    assert_eq!(stats["by_class"]["small"], 1);
    assert_eq!(stats["resolved_by_level"]["grid"], 1);
    assert_eq!(stats["mediation_success_rate"], 1.0);
    assert_eq!(stats["handling_rate"], 0.5);
    assert!(stats["median_time_to_resolve_ms"].as_i64().unwrap() >= 10 * DAY - 60_000);
    let (_, by_grid) = sup1
        .call(
            Method::GET,
            "/v1/stats/cases/by-unit?org_unit=t1&by=grid",
            None,
        )
        .await;
    let per: BTreeMap<&str, &Value> = by_grid
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["org_unit"].as_str().unwrap(), &u["total"]))
        .collect();
    assert_eq!(per, BTreeMap::from([("g1", &json!(1)), ("g2", &json!(1))]));

    let (_, coverage) = sup1
        .call(Method::GET, "/v1/stats/coverage?org_unit=t1&days=30", None)
        .await;
    assert_eq!(coverage["total"]["households"], 3);
    assert_eq!(coverage["total"]["visited"], 1);
    assert_eq!(
        coverage["total"]["by_tag"]["elderly_alone"]["households"],
        2
    );
    assert_eq!(coverage["total"]["by_tag"]["elderly_alone"]["visited"], 1);
    let g2 = coverage["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["org_unit"] == "g2")
        .unwrap();
    assert_eq!(
        (g2["households"].as_i64(), g2["visited"].as_i64()),
        (Some(1), Some(0))
    );

    let (_, ledger) = sup1
        .call(Method::GET, "/v1/stats/ledger?org_unit=t1", None)
        .await;
    let cm1 = &ledger.as_array().unwrap()[0];
    assert_eq!(cm1["org_unit"], "cm1");
    assert_eq!(cm1["households"], 3);
    assert_eq!(cm1["members"], 4);
    assert_eq!(cm1["by_residence"]["Floating"], 1);
    assert_eq!(cm1["visits"], 2);
    assert_eq!(cm1["cases"]["total"], 2);
}

#[tokio::test]
async fn reindex_rebuilds_the_same_rows_from_the_documents() {
    let world = world().await;
    let server = &world.server;
    let staff = server.device("staff").await;
    let before = all_pages(&staff, "/v1/households").await;
    let cases_before = all_pages(&staff, "/v1/cases").await;
    assert_eq!(ids(&before).len(), 3);
    server.wipe_projections().await;
    assert!(all_pages(&staff, "/v1/households").await.is_empty());
    let n = gridsync_server::engine::reindex::reindex(
        &*server.state.engine.storage,
        &server.state.engine.config.deadlines,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(n as i64, server.count("documents").await);
    assert_eq!(all_pages(&staff, "/v1/households").await, before);
    assert_eq!(all_pages(&staff, "/v1/cases").await, cases_before);
}

#[tokio::test]
async fn due_times_follow_the_deadlines_the_server_starts_with() {
    let world = world().await;
    let overdue = |server: &TestServer| {
        let url = server.url("");
        async move {
            let sup1 = Device::login(&url, "sup1", MemoryStore::default()).await;
            ids(&all_pages(&sup1, "/v1/cases?overdue=true").await)
        }
    };
    // The g2 case was reported a day ago and nobody accepted it: late by
    // the default one day, not by five.
    assert_eq!(overdue(&world.server).await.len(), 1);
    let patient = TestServer::start_on(world.server.db.clone(), |c| {
        c.deadlines.accept_ms = 5 * DAY;
    })
    .await;
    assert_eq!(overdue(&patient).await.len(), 0);
}

/// The org tree of [`county`]: each unit with its parent and kind.
const TREE: [(&str, Option<&str>, &str); 8] = [
    ("c", None, "county"),
    ("t1", Some("c"), "township"),
    ("t2", Some("c"), "township"),
    ("cm1", Some("t1"), "community"),
    ("cm2", Some("t2"), "community"),
    ("g1", Some("cm1"), "grid"),
    ("g2", Some("cm1"), "grid"),
    ("g3", Some("cm2"), "grid"),
];

/// `unit` and its ancestors, nearest first.
fn lineage(unit: &str) -> Vec<&'static str> {
    let mut line = Vec::new();
    let mut at = TREE.iter().find(|(id, ..)| *id == unit);
    while let Some((id, parent, _)) = at {
        line.push(*id);
        at = parent.and_then(|p| TREE.iter().find(|(id, ..)| *id == p));
    }
    line
}

/// The figures `GET /v1/stats/cases` gives for these case rows (as
/// `/v1/cases` lists them), folded here without the server.
fn expected_figures(cases: &[&Value]) -> Value {
    let mut counts: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut handled, mut mediated, mut referred, mut overdue) = (0, 0, 0, 0);
    for c in cases {
        let mut count = |map: &'static str, key: &Value| {
            if let Some(key) = key.as_str() {
                *counts
                    .entry(map)
                    .or_default()
                    .entry(key.into())
                    .or_default() += 1;
            }
        };
        count("by_category", &c["category"]);
        count("by_status", &c["status"]);
        count("resolved_by_level", &c["resolved_level"]);
        match &c["class"] {
            Value::Null => count("by_class", &json!("unclassified")),
            class => count("by_class", class),
        }
        let open = ["reported", "accepted", "triaged", "assigned", "handling"];
        handled += usize::from(!open.contains(&c["status"].as_str().unwrap()));
        mediated += usize::from(c["result"] == "mediated");
        referred += usize::from(c["result"] == "referred");
        overdue += usize::from(c["overdue"] == true);
    }
    let rate = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    let map = |name: &str| json!(counts.get(name).cloned().unwrap_or_default());
    json!({
        "total": cases.len(), "by_category": map("by_category"), "by_class": map("by_class"),
        "by_status": map("by_status"), "resolved_by_level": map("resolved_by_level"),
        "handling_rate": rate(handled, cases.len()),
        "mediation_success_rate": rate(mediated, mediated + referred), "overdue": overdue,
    })
}

/// What `by-unit` must answer for `root` grouped `by`, from the case rows
/// the caller may see, reported in `period` if given.
fn expected_by_unit(
    cases: &[Value],
    root: &str,
    by: &str,
    period: Option<(i64, i64)>,
) -> BTreeMap<String, Value> {
    let groups = TREE.iter().filter(|(id, parent, kind)| {
        *id != root
            && lineage(id).contains(&root)
            && match by {
                "children" => *parent == Some(root),
                _ => *kind == by,
            }
    });
    groups
        .map(|(group, ..)| {
            let in_group: Vec<&Value> = cases
                .iter()
                .filter(|c| lineage(c["org_unit"].as_str().unwrap()).contains(group))
                .filter(|c| {
                    let at = c["reported_at"].as_i64().unwrap();
                    period.is_none_or(|(from, to)| from <= at && at < to)
                })
                .collect();
            let mut figures = expected_figures(&in_group);
            figures["median_time_to_resolve_ms"] = Value::Null;
            ((*group).to_owned(), figures)
        })
        .collect()
}

/// The figures of a `by-unit` answer, by unit, with the fields
/// [`expected_figures`] names.
fn by_unit_figures(answer: &Value) -> BTreeMap<String, Value> {
    let keys = [
        "total",
        "by_category",
        "by_class",
        "by_status",
        "resolved_by_level",
        "handling_rate",
        "mediation_success_rate",
        "overdue",
        "median_time_to_resolve_ms",
    ];
    answer
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|u| {
            let picked: serde_json::Map<String, Value> = keys
                .iter()
                .map(|k| ((*k).to_owned(), u[*k].clone()))
                .collect();
            (
                u["org_unit"].as_str().unwrap().to_owned(),
                Value::Object(picked),
            )
        })
        .collect()
}

/// Checks every caller's case figures, all-time (from the kept tally) and
/// for a period (counted case by case), grouped every way, against the
/// case rows the same caller lists (which say what the documents say).
async fn figures_agree_with_the_lists(server: &TestServer, users: &[&str]) {
    let period = (now() - 5 * DAY, now() + DAY);
    for user in users {
        let device = server.device(user).await;
        let cases = all_pages(&device, "/v1/cases").await;
        let (_, me) = device.call(Method::GET, "/v1/me", None).await;
        let area: Vec<&str> = me["area"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        for root in ["c", "t1", "t2", "cm1", "g1"] {
            if !area.contains(&root) {
                // A unit outside the caller's area is not theirs to name.
                for url in [
                    format!("/v1/stats/cases/by-unit?org_unit={root}"),
                    format!("/v1/stats/cases?org_unit={root}"),
                ] {
                    let (status, _) = device.call(Method::GET, &url, None).await;
                    assert_eq!(status, 404, "{user} {url}");
                }
                continue;
            }
            for by in ["children", "grid", "community", "township"] {
                for period in [None, Some(period)] {
                    let mut url = format!("/v1/stats/cases/by-unit?org_unit={root}&by={by}");
                    if let Some((from, to)) = period {
                        url.push_str(&format!("&from={from}&to={to}"));
                    }
                    let (status, answer) = device.call(Method::GET, &url, None).await;
                    assert_eq!(status, 200, "{user} {url}: {answer}");
                    assert_eq!(
                        by_unit_figures(&answer),
                        expected_by_unit(&cases, root, by, period),
                        "{user} {url}"
                    );
                }
            }
            let under: Vec<&Value> = cases
                .iter()
                .filter(|c| lineage(c["org_unit"].as_str().unwrap()).contains(&root))
                .collect();
            let url = format!("/v1/stats/cases?org_unit={root}");
            let (status, mut stats) = device.call(Method::GET, &url, None).await;
            assert_eq!(status, 200, "{user} {url}: {stats}");
            let mut took: Vec<i64> = under
                .iter()
                .filter_map(|c| Some(c["resolved_at"].as_i64()? - c["reported_at"].as_i64()?))
                .collect();
            took.sort();
            let median = took.get(took.len() / 2).copied();
            assert_eq!(
                stats["median_time_to_resolve_ms"].as_i64(),
                median,
                "{user} {url}"
            );
            stats
                .as_object_mut()
                .unwrap()
                .remove("median_time_to_resolve_ms");
            assert_eq!(stats, expected_figures(&under), "{user} {url}");
        }
    }
}

#[tokio::test]
async fn case_figures_per_unit_say_what_each_caller_lists() {
    let world = world().await;
    let server = &world.server;
    server.user("boss", "supervisor", "c").await;
    let users = ["boss", "sup1", "sup2", "staff", "w1", "w3", "med"];
    figures_agree_with_the_lists(server, &users).await;
    // The kept counts are rebuilt with the rows they count.
    server.wipe_projections().await;
    let boss = server.device("boss").await;
    let (_, empty) = boss
        .call(Method::GET, "/v1/stats/cases/by-unit?org_unit=c", None)
        .await;
    assert!(
        by_unit_figures(&empty).values().all(|u| u["total"] == 0),
        "{empty}"
    );
    gridsync_server::engine::reindex::reindex(
        &*server.state.engine.storage,
        &server.state.engine.config.deadlines,
        |_, _| {},
    )
    .await
    .unwrap();
    figures_agree_with_the_lists(server, &users).await;
}

/// One case for the property below: where, what, when, and how far the
/// community's staff and mediator take it.
#[derive(Debug, Clone)]
struct Made {
    grid: usize,
    category: usize,
    days_ago: i64,
    steps: usize,
    class: usize,
    result: usize,
}

fn made() -> impl proptest::strategy::Strategy<Value = Made> {
    use proptest::prelude::*;
    (
        0usize..3,
        0usize..4,
        0i64..20,
        0usize..=5,
        0usize..3,
        0usize..3,
    )
        .prop_map(|(grid, category, days_ago, steps, class, result)| Made {
            grid,
            category,
            days_ago,
            steps,
            class,
            result,
        })
}

/// Takes each case of `cases` through its first `steps` workflow events.
async fn work_on(
    staff: &Device<MemoryStore>,
    med: &Device<MemoryStore>,
    cases: &[(RecordId, Made)],
) {
    for (id, m) in cases {
        let class = ["big", "small", "private"][m.class];
        let result = ["mediated", "referred", "withdrawn"][m.result];
        let steps = [
            (staff, "accept", json!({})),
            (staff, "classify", json!({ "class": class })),
            (staff, "assign", json!({ "to": "usr_med" })),
            (med, "mediate", json!({})),
            (med, "resolve", json!({ "result": result })),
        ];
        for (desk, kind, data) in steps.into_iter().take(m.steps) {
            let path = format!("/v1/cases/{id}/events");
            let body = json!({ "kind": kind, "data": data });
            let (status, answer) = desk.call(Method::POST, &path, Some(body)).await;
            assert_eq!(status, 200, "{kind}: {answer}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4))]

    /// However cases are reported in the three grids and taken through
    /// their workflow by merges running side by side, the all-time figures
    /// (kept per unit) and the figures for a period (counted case by case)
    /// say what each caller lists, before and after a reindex.
    #[test]
    fn kept_case_figures_follow_concurrent_merges(
        cases in proptest::collection::vec(made(), 1..8),
    ) {
        use sync_core::records::CaseCategory;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = county().await;
            server.user("boss", "supervisor", "c").await;
            let mut phones = [
                server.device("w1").await,
                server.device("w2").await,
                server.device("w3").await,
            ];
            let categories = [
                CaseCategory::Labour,
                CaseCategory::Traffic,
                CaseCategory::Medical,
                CaseCategory::School,
            ];
            let mut made = Vec::new();
            for m in &cases {
                let grid = ["g1", "g2", "g3"][m.grid];
                let reporter = ["usr_w1", "usr_w2", "usr_w3"][m.grid];
                let mut c = case(grid, reporter, "纠纷", m.days_ago * DAY + 60_000);
                c.category = categories[m.category];
                let id = phones[m.grid].replica.create(&c).unwrap();
                // Only the community of g1 and g2 has staff to take it on.
                if m.grid < 2 {
                    made.push((id, m.clone()));
                }
            }
            let [w1, w2, w3] = &mut phones;
            tokio::join!(w1.sync(), w2.sync(), w3.sync());
            let users = ["boss", "sup1", "staff", "med", "w3"];
            figures_agree_with_the_lists(&server, &users).await;
            let (staff, med) = (server.device("staff").await, server.device("med").await);
            let (first, second) = made.split_at(made.len() / 2);
            tokio::join!(work_on(&staff, &med, first), work_on(&staff, &med, second));
            figures_agree_with_the_lists(&server, &users).await;
            gridsync_server::engine::reindex::reindex(&*server.state.engine.storage, &server.state.engine.config.deadlines, |_, _| {})
                .await
                .unwrap();
            figures_agree_with_the_lists(&server, &users).await;
        });
    }
}
