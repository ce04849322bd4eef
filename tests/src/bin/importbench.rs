//! Times the import of a household ledger of the small county (20 grids of
//! 400 households, about 28,000 people) into a fresh database: the dry run,
//! the import, and the same ledger again (nothing to store). Prints the
//! figures as JSON. SQLite unless `TEST_DATABASE_URL` names PostgreSQL.
//!
//! `--write FILE` also writes the ledger as CSV, for `gridsync admin
//! import` by hand.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use gridsync_server::demo::{self, Rng};
use gridsync_server::http::import::{self, Importer, id_check_digit};
use serde_json::json;
use sync_core::records::{Relation, Residence, Sex};
use tests::TestServer;
use tests::county::{self, Scale};

/// Times a ledger import of the small county.
#[derive(Debug, Parser)]
struct Args {
    /// Households per grid (20 grids).
    #[arg(long, default_value_t = 400)]
    households: usize,
    /// Also write the ledger here, as CSV.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let scale = Scale {
        households: args.households,
        ..Scale::SMALL
    };
    let grids = county::generate(scale, 1, 0);
    let server = TestServer::start().await;
    county::setup(&server.state, &grids).await;

    let mut rng = Rng::new(7);
    let mut csv = String::from(
        "户编号,网格,楼栋,单元,房号,姓名,身份证号,性别,出生日期,与户主关系,联系电话,户籍类型\n",
    );
    let mut people = 0;
    for grid in &grids {
        for n in 0..scale.households {
            let h = demo::household(&mut rng, &grid.id, n);
            for m in &h.members {
                // The generated numbers carry no check digit: give them one.
                let first17 = &m.id_number[..17];
                let id_number = format!("{first17}{}", id_check_digit(first17));
                let sex = match m.sex {
                    Sex::Male => "男",
                    Sex::Female => "女",
                    Sex::Unknown => "",
                };
                let relation = match m.relation {
                    Relation::Head => "户主",
                    Relation::Spouse => "配偶",
                    Relation::Child => "子女",
                    Relation::Parent => "父母",
                    Relation::Grandchild => "孙子女",
                    Relation::Sibling => "兄弟姐妹",
                    Relation::Other => "其他",
                };
                let residence = match m.residence {
                    Residence::Registered => "户籍",
                    Residence::Floating => "流动",
                    Residence::Resident => "常住",
                };
                let a = &h.address;
                csv.push_str(&format!(
                    "{}-{n},{},{},{},{},{},{id_number},{sex},,{relation},{},{residence}\n",
                    grid.id, grid.id, a.building, a.unit, a.room, m.name, m.phone
                ));
                people += 1;
            }
        }
    }
    if let Some(path) = &args.write {
        std::fs::write(path, &csv).expect("write the ledger");
    }
    let importer = Importer::command_line(&server.state, county::ADMIN)
        .await
        .expect("the county's admin");
    let first = &grids[0].id;
    let mut figures = serde_json::Map::new();
    for (step, dry_run) in [("dry_run", true), ("import", false), ("again", false)] {
        let started = Instant::now();
        let report = import::import(
            &server.state,
            &importer,
            first,
            csv.as_bytes(),
            dry_run,
            |_, _| {},
        )
        .await
        .expect("import");
        let secs = started.elapsed().as_secs_f64();
        assert!(report.refused.is_empty(), "{:?}", &report.refused[..1]);
        figures.insert(
            step.into(),
            json!({
                "secs": (secs * 100.0).round() / 100.0,
                "households": report.households,
                "already_imported": report.already_imported,
                "rows_per_sec": (report.rows as f64 / secs).round(),
            }),
        );
    }
    let database = if server.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let line = json!({
        "database": database,
        "households": scale.households * grids.len(),
        "people": people,
        "ledger_bytes": csv.len(),
        "steps": figures,
    });
    println!("{line}");
    server.stop().await;
}
