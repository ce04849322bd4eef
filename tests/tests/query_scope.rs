//! Queries name org units only within the caller's area: a unit outside it
//! is answered as one that does not exist, and figures per unit never list
//! units the caller may not see. Exports defuse every cell a spreadsheet
//! would run as a formula.

use reqwest::Method;
use sync_core::policy::Role;
use sync_core::records::Case;
use sync_core::workflow;
use tests::TestServer;

/// county c > townships t1 (community cm1: grids g1, g2) and t2
/// (community cm2: grid g3).
async fn county() -> TestServer {
    let server = TestServer::start().await;
    server.org_unit("c", None).await;
    for (id, parent) in [
        ("t1", "c"),
        ("t2", "c"),
        ("cm1", "t1"),
        ("cm2", "t2"),
        ("g1", "cm1"),
        ("g2", "cm1"),
        ("g3", "cm2"),
    ] {
        server.org_unit(id, Some(parent)).await;
    }
    for (user, role, unit) in [
        ("w1", "grid_worker", "g1"),
        ("sup1", "supervisor", "t1"),
        ("med", "mediator", "cm1"),
    ] {
        server.user(user, role, unit).await;
    }
    server
}

#[tokio::test]
async fn an_org_unit_outside_the_callers_area_is_not_found() {
    let server = county().await;
    let sup1 = server.device("sup1").await;
    let (_, unknown) = sup1
        .call(Method::GET, "/v1/cases?org_unit=nowhere", None)
        .await;
    let queries = [
        "/v1/households?org_unit={}",
        "/v1/households?org_unit={}&format=csv",
        "/v1/cases?org_unit={}",
        "/v1/cases?org_unit={}&format=xlsx",
        "/v1/visits?org_unit={}",
        "/v1/visits/daily?org_unit={}",
        "/v1/cases/overdue?org_unit={}",
        "/v1/stats/cases?org_unit={}",
        "/v1/stats/cases/by-unit?org_unit={}",
        "/v1/stats/coverage?org_unit={}",
        "/v1/stats/ledger?org_unit={}",
    ];
    for query in queries {
        for unit in ["t2", "g3", "c"] {
            let path = query.replace("{}", unit);
            let (status, body) = sup1.call(Method::GET, &path, None).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body, unknown, "{path}: answered unlike an unknown unit");
        }
        for unit in ["t1", "g2"] {
            let path = query.replace("{}", unit);
            let (status, body) = sup1.call(Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    // A mediator's area is the subtree of their units, as for everyone.
    let med = server.device("med").await;
    let (status, _) = med
        .call(Method::GET, "/v1/stats/cases?org_unit=t1", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = med
        .call(Method::GET, "/v1/stats/cases?org_unit=cm1", None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn figures_per_unit_name_only_units_of_the_callers_area() {
    let server = county().await;
    let w1 = server.device("w1").await;
    for by in ["children", "grid", "community", "township"] {
        let path = format!("/v1/stats/cases/by-unit?org_unit=c&by={by}");
        let (status, body) = w1.call(Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        let text = body.to_string();
        for unit in ["t1", "t2", "cm2", "g3"] {
            assert!(!text.contains(unit), "{path} names {unit}: {text}");
        }
    }
    let sup1 = server.device("sup1").await;
    let (status, body) = sup1
        .call(Method::GET, "/v1/stats/cases/by-unit?org_unit=cm1", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let units: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["org_unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["g1", "g2"]);
}

#[tokio::test]
async fn csv_exports_defuse_formulas_behind_a_tab_or_carriage_return() {
    let server = county().await;
    let mut w1 = server.device("w1").await;
    let titles = ["\t=1+2", "\r=3+4", "=5+6", "\t@SUM(A1)", "普通标题"];
    for title in titles {
        let at = gridsync_server::now_ms();
        let mut case = Case {
            org_unit: "g1".into(),
            title: title.into(),
            reporter: w1.user_id.clone(),
            reported_at: at,
            ..Default::default()
        };
        let who = (w1.user_id.as_str(), "phone", Role::GridWorker);
        workflow::append(&mut case, "report", who, at, Default::default());
        w1.replica.create(&case).unwrap();
    }
    assert_eq!(w1.sync().await.errors, vec![]);

    let sup1 = server.device("sup1").await;
    let response = reqwest::Client::new()
        .get(server.url("/v1/cases?format=csv&lang=en"))
        .bearer_auth(&sup1.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    for guarded in ["\"'\t=1+2\"", "\"'\r=3+4\"", "\"'=5+6\"", "\"'\t@SUM(A1)\""] {
        assert!(csv.contains(guarded), "{guarded:?} not defused in {csv:?}");
    }
    assert!(csv.contains(",普通标题,"), "{csv:?}");
}
