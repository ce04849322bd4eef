//! Household ledgers imported from offices' spreadsheets, through the HTTP
//! API and the command line: a dry run reports every refused row and
//! stores nothing; the import stores only whole good households, which
//! reach the grid's phones; a second run stores nothing twice; only an
//! admin imports, and only into their own area.

use std::process::Command;

use serde_json::Value;
use sync_core::records::Household;
use tests::{PASSWORD, TestServer, login};

const BIN: &str = env!("CARGO_BIN_EXE_gridsync-under-test");

const LEDGER: &str = "\u{feff}户编号,网格,楼栋,单元,房号,姓名,身份证号,性别,出生日期,与户主关系,联系电话,户籍类型,标签
1,,1栋,1单元,101,张伟,110101199003074514,,,户主,13800138000,户籍,退役军人
1,,1栋,1单元,101,李娜,110101199205164526,女,,配偶,,户籍,
2,,1栋,1单元,102,王强,,男,1950-01-02,户主,,户籍,孤寡老人
3,g2,2栋,,201,赵敏,,女,,户主,,流动,
4,,1栋,1单元,103,钱七,110101199003074515,,,户主,,,
5,g9,1栋,1单元,104,孙八,,,,户主,,,
6,,1栋,1单元,105,,,,,户主,,,
7,,1栋,1单元,102,周九,,,,户主,,,
";

async fn county() -> TestServer {
    let server = TestServer::start().await;
    server.small_county().await;
    server
        .users(&[
            ("w1", "grid_worker", "g1"),
            ("adm_cm", "admin", "cm"),
            ("adm_cm2", "admin", "cm2"),
        ])
        .await;
    server
}

async fn import(server: &TestServer, token: &str, query: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/v1/admin/import/households?{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn codes(report: &Value) -> Vec<(u64, String)> {
    report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_ledger_with_bad_rows_imports_only_its_good_households_once() {
    let server = county().await;
    let admin = login(&server.url(""), "adm_cm", PASSWORD)
        .await
        .access_token;
    let before = server.count("documents").await;

    let (status, dry) = import(&server, &admin, "org_unit=g1", LEDGER).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true, "a dry run unless asked otherwise");
    let refused = vec![
        (6, "bad_id_number".to_owned()),
        (7, "unknown_org_unit".to_owned()),
        (8, "missing_field".to_owned()),
        (9, "duplicate_household".to_owned()),
    ];
    assert_eq!(codes(&dry), refused, "{dry}");
    assert_eq!(dry["households"], 3, "{dry}");
    assert_eq!(dry["members"], 4);
    assert_eq!(
        server.count("documents").await,
        before,
        "a dry run stores nothing"
    );

    let (status, done) = import(&server, &admin, "org_unit=g1&dry_run=false", LEDGER).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(codes(&done), refused);
    assert_eq!(
        done["imported"], dry["imported"],
        "the dry run said what would be"
    );
    assert_eq!(server.count("documents").await, before + 3);

    // The worker of g1 receives g1's two households, as records.
    let mut phone = server.device("w1").await;
    phone.sync().await;
    let mut held: Vec<Household> = phone
        .replica
        .ids()
        .cloned()
        .collect::<Vec<_>>()
        .iter()
        .map(|id| phone.replica.read::<Household>(id).unwrap())
        .collect();
    held.sort_by(|a, b| a.address.room.cmp(&b.address.room));
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].members.len(), 2);
    assert_eq!(held[0].head, "m1");
    assert_eq!(
        held[0].members[1].birth_date, "1992-05-16",
        "from the ID number"
    );
    assert!(held[1].has_tag(sync_core::records::Tag::ElderlyAlone));

    // Twice: nothing new.
    let (_, again) = import(&server, &admin, "org_unit=g1&dry_run=false", LEDGER).await;
    assert_eq!(again["households"], 0, "{again}");
    assert_eq!(again["already_imported"], 3);
    assert_eq!(server.count("documents").await, before + 3);
    let audit: Value = reqwest::Client::new()
        .get(server.url("/v1/admin/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let imports = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "import_households")
        .count();
    assert_eq!(imports, 1, "only the import that stored something: {audit}");
}

#[tokio::test]
async fn only_an_admin_imports_and_only_into_their_area() {
    let server = county().await;
    let worker = login(&server.url(""), "w1", PASSWORD).await.access_token;
    let (status, body) = import(&server, &worker, "org_unit=g1", LEDGER).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    let other = login(&server.url(""), "adm_cm2", PASSWORD)
        .await
        .access_token;
    let (status, body) = import(&server, &other, "org_unit=g1", LEDGER).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    // A grid of another area named in a row is as unknown as a missing one.
    let (status, report) = import(&server, &other, "org_unit=g3", LEDGER).await;
    assert_eq!(status, 200);
    assert!(
        codes(&report).contains(&(5, "unknown_org_unit".to_owned())),
        "{report}"
    );

    let admin = login(&server.url(""), "adm_cm", PASSWORD)
        .await
        .access_token;
    let (status, body) = import(&server, &admin, "org_unit=g1", "姓名\n张三\n").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_field")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("户编号"),
        "{body}"
    );
}

#[tokio::test]
async fn the_template_downloads_and_imports_from_the_command_line() {
    let server = county().await;
    let admin = login(&server.url(""), "adm_cm", PASSWORD)
        .await
        .access_token;
    let template = reqwest::Client::new()
        .get(server.url("/v1/admin/import/households/template?format=xlsx"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(template.status(), 200);
    let bytes = template.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an XLSX workbook");
    let file = server.state.engine.config.data_dir.join("ledger.xlsx");
    std::fs::write(&file, &bytes).unwrap();

    let run = |apply: bool| {
        let mut command = Command::new(BIN);
        command
            .args(["admin", "--database-url", &server.db.url])
            .args(["import", "--org-unit", "g1", "--as", "adm_cm"])
            .arg(&file);
        if apply {
            command.arg("--apply");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let dry = run(false);
    assert_eq!(
        (dry["dry_run"].clone(), dry["households"].clone()),
        (true.into(), 1.into())
    );
    let done = run(true);
    assert_eq!(done["households"], 1, "{done}");
    assert_eq!(done["refused"], Value::Array(vec![]));
    let mut phone = server.device("w1").await;
    phone.sync().await;
    assert_eq!(phone.replica.len(), 1);
}

#[tokio::test]
async fn an_address_a_worker_entered_already_is_a_duplicate() {
    let server = county().await;
    let mut phone = server.device("w1").await;
    let typed = Household {
        org_unit: "g1".into(),
        address: sync_core::records::Address {
            building: "9栋".into(),
            unit: String::new(),
            room: "901".into(),
        },
        ..Default::default()
    };
    phone.replica.create(&typed).unwrap();
    phone.sync().await;

    let admin = login(&server.url(""), "adm_cm", PASSWORD)
        .await
        .access_token;
    let ledger = "户编号,楼栋,单元,房号,姓名\n1,9栋,,901,吴十\n1,9栋,,901,郑一\n2,9栋,,902,冯二\n";
    let (status, report) = import(&server, &admin, "org_unit=g1&dry_run=false", ledger).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        codes(&report),
        [
            (2, "duplicate_household".to_owned()),
            (3, "duplicate_household".to_owned())
        ],
        "{report}"
    );
    assert_eq!(report["households"], 1);
}
