//! The case workflow end to end: phones offline and desks online act on the
//! same cases, and everyone ends up with the same, explainable state.

use reqwest::Method;
use serde_json::{Value, json};
use sync_core::policy::Role;
use sync_core::records::Case;
use sync_core::workflow;
use sync_core::{MemoryStore, RecordId};
use tests::{Device, TestServer};

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    gridsync_server::now_ms()
}

/// county c > township t > community cm > grid g1, one user per role.
async fn county(tweak: impl FnOnce(&mut gridsync_server::config::Config)) -> TestServer {
    let server = TestServer::start_with(tweak).await;
    server.org_unit("c", None).await;
    server.org_unit("t", Some("c")).await;
    server.org_unit("cm", Some("t")).await;
    server.org_unit("g1", Some("cm")).await;
    for (user, role, unit) in [
        ("w1", "grid_worker", "g1"),
        ("staff", "community_staff", "cm"),
        ("centre", "centre_staff", "t"),
        ("med", "mediator", "cm"),
        ("dept", "department", "t"),
    ] {
        server.user(user, role, unit).await;
    }
    server
}

/// A case reported from w1's phone `ago` milliseconds before now.
async fn report(w1: &mut Device<MemoryStore>, ago: i64) -> RecordId {
    let at = now() - ago;
    let mut case = Case {
        org_unit: "g1".into(),
        title: "邻里噪音纠纷".into(),
        reporter: "usr_w1".into(),
        reported_at: at,
        ..Default::default()
    };
    let who = ("usr_w1", "w1-phone", Role::GridWorker);
    workflow::append(&mut case, "report", who, at, Default::default());
    let id = w1.replica.create(&case).unwrap();
    w1.sync().await;
    id
}

async fn act(desk: &Device<MemoryStore>, case: &RecordId, kind: &str, data: Value) -> (u16, Value) {
    desk.call(
        Method::POST,
        &format!("/v1/cases/{case}/events"),
        Some(json!({ "kind": kind, "data": data })),
    )
    .await
}

async fn state(desk: &Device<MemoryStore>, case: &RecordId) -> Value {
    let (status, body) = desk
        .call(Method::GET, &format!("/v1/cases/{case}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["state"].clone()
}

#[tokio::test]
async fn a_worker_resolves_offline_while_the_township_escalates_online() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let case = report(&mut w1, 3 * HOUR).await;
    let staff = server.device("staff").await;
    assert_eq!(act(&staff, &case, "accept", json!({})).await.0, 200);
    w1.sync().await;

    // Offline, an hour ago by the phone's clock, the worker settles it.
    w1.replica
        .update::<Case>(&case, |c| {
            let who = ("usr_w1", "w1-phone", Role::GridWorker);
            let data = [("result".to_owned(), "mediated".to_owned())].into();
            workflow::append(c, "resolve", who, now() - HOUR, data);
        })
        .unwrap();
    // Meanwhile the township, online, escalates it.
    let centre = server.device("centre").await;
    let (status, body) = act(&centre, &case, "escalate", json!({ "reason": "涉及多方" })).await;
    assert_eq!(status, 200, "{body}");

    w1.sync().await;
    let on_phone = workflow::fold(
        &w1.replica.read::<Case>(&case).unwrap(),
        &Default::default(),
    );
    let at_desk = state(&centre, &case).await;
    assert_eq!(at_desk["status"], on_phone.status.as_str());
    assert_eq!(on_phone.status, workflow::Status::Resolved);
    let refused: Vec<_> = on_phone.not_applied().collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].kind, "escalate");
    assert!(refused[0].reason.as_deref().unwrap().contains("resolved"));
    let marks = at_desk["events"].as_array().unwrap();
    assert!(
        marks
            .iter()
            .any(|e| e["kind"] == "escalate" && e["applied"] == false && e["reason"].is_string())
    );
}

#[tokio::test]
async fn a_department_declines_a_dispatched_case_and_it_returns_to_the_centre() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let case = report(&mut w1, HOUR).await;
    let centre = server.device("centre").await;
    for (kind, data) in [
        ("accept", json!({})),
        ("classify", json!({ "class": "big" })),
        ("assign", json!({ "to": "usr_dept" })),
    ] {
        let (status, body) = act(&centre, &case, kind, data).await;
        assert_eq!(status, 200, "{kind}: {body}");
    }
    let mut dept = server.device("dept").await;
    dept.sync().await;
    assert!(
        dept.replica.document(&case).is_some(),
        "dispatched to the department"
    );
    assert_eq!(state(&dept, &case).await["assignee"], "usr_dept");

    let (status, body) = act(
        &dept,
        &case,
        "return",
        json!({ "reason": "不属本部门职责" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let back = state(&centre, &case).await;
    assert_eq!(back["status"], "triaged");
    assert!(back["assignee"].is_null());
    dept.sync().await;
    assert!(
        dept.replica.document(&case).is_none(),
        "the department's phone drops it"
    );
    let (status, _) = dept
        .call(Method::GET, &format!("/v1/cases/{case}"), None)
        .await;
    assert_eq!(status, 404);

    // Refused at the desk: an event that does not apply, or a role that may
    // not record it.
    let (status, body) = act(&centre, &case, "close", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_applicable"))
    );
    let staff_worker = server.device("w1").await;
    let (status, body) = act(&staff_worker, &case, "assign", json!({ "to": "usr_med" })).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
}

#[tokio::test]
async fn a_case_is_closed_reopened_on_a_follow_up_visit_and_resolved_again() {
    let server = county(|_| {}).await;
    let mut w1 = server.device("w1").await;
    let case = report(&mut w1, HOUR).await;
    let staff = server.device("staff").await;
    let med = server.device("med").await;
    let steps: Vec<(&Device<MemoryStore>, &str, Value)> = vec![
        (&staff, "accept", json!({})),
        (&staff, "classify", json!({ "class": "small" })),
        (&staff, "assign", json!({ "to": "usr_med" })),
        (&med, "mediate", json!({ "outcome": "agreement" })),
        (&med, "resolve", json!({ "result": "mediated" })),
        (&staff, "follow_up", json!({ "satisfaction": "2" })),
        (&staff, "close", json!({})),
        (&staff, "reopen", json!({ "reason": "回访不满意" })),
        (&med, "resolve", json!({ "result": "mediated" })),
    ];
    for (desk, kind, data) in steps {
        let (status, body) = act(desk, &case, kind, data).await;
        assert_eq!(status, 200, "{kind}: {body}");
    }
    let s = state(&staff, &case).await;
    assert_eq!(s["status"], "resolved");
    assert_eq!(s["resolved_level"], "grid");
    assert!(
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["applied"] == true)
    );
    w1.sync().await;
    let on_phone = workflow::fold(
        &w1.replica.read::<Case>(&case).unwrap(),
        &Default::default(),
    );
    assert_eq!(on_phone.status.as_str(), "resolved");
    assert_eq!(on_phone.events.len(), 10);
}

#[tokio::test]
async fn an_overdue_case_appears_in_supervision_and_leaves_it_when_resolved() {
    let server = county(|c| c.deadlines.accept_ms = HOUR).await;
    let mut w1 = server.device("w1").await;
    let late = report(&mut w1, 3 * HOUR).await;
    let fresh = report(&mut w1, 0).await;
    let centre = server.device("centre").await;

    let overdue = |body: Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = centre
        .call(Method::GET, "/v1/cases/overdue?org_unit=t", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(overdue(body), vec![late.to_string()]);

    // Supervision is raised on the overdue case, not on the fresh one.
    assert_eq!(
        act(&centre, &late, "supervise", json!({ "note": "请加快" }))
            .await
            .0,
        200
    );
    assert_eq!(act(&centre, &fresh, "supervise", json!({})).await.0, 409);
    assert_eq!(state(&centre, &late).await["supervised"], true);

    assert_eq!(act(&centre, &late, "accept", json!({})).await.0, 200);
    let resolved = act(&centre, &late, "resolve", json!({ "result": "withdrawn" })).await;
    assert_eq!(resolved.0, 200);
    let (_, body) = centre
        .call(Method::GET, "/v1/cases/overdue?org_unit=t", None)
        .await;
    assert!(overdue(body).is_empty());

    // The figures for the township, from the same events.
    let (status, stats) = centre
        .call(Method::GET, "/v1/stats/cases?org_unit=t", None)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["by_status"]["resolved"], 1);
    assert_eq!(stats["by_status"]["reported"], 1);
    assert_eq!(stats["resolved_by_level"]["grid"], 1);
    assert_eq!(stats["handling_rate"], 0.5);
    assert!(stats["mediation_success_rate"].is_null());
    let (status, body) = centre
        .call(Method::GET, "/v1/stats/cases?org_unit=nowhere", None)
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = centre.call(Method::GET, "/v1/stats/cases", None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
}
