//! The synthetic county of the benchmark workload, generated
//! deterministically from a seed: org units, one worker per grid, and each
//! grid's households (with special-population details for some), a year's
//! cases with their workflow, and the visits of the last weeks.
//!
//! Every grid's records are typed in on a phone of their own (a
//! [`Replica`] with an actor id and a clock derived from the seed), so the
//! same seed gives the same Automerge changes byte for byte. [`load`]
//! creates the org units and users through the admin functions and stores
//! the phones' documents with the bulk loader ([`gridsync_server::engine::bulk`]),
//! which writes exactly what those phones syncing the same documents would
//! have written (see `tests/tests/bulk.rs`).

use std::collections::BTreeMap;

use gridsync_server::AppState;
use gridsync_server::demo::{Rng, household};
use gridsync_server::engine::bulk::{self, BulkDoc};
use gridsync_server::http::admin::{self, Actor, NewOrgUnit, NewUser};
use sync_core::automerge::ActorId;
use sync_core::records::{Case, CaseEvent, Household, Sensitive, SensitiveCategory, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind, Replica, ReplicaStore};

/// How big a county.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Townships.
    pub townships: usize,
    /// Communities per township.
    pub communities: usize,
    /// Grids per community.
    pub grids: usize,
    /// Households per grid.
    pub households: usize,
}

impl Scale {
    /// 8,000 households: minutes.
    pub const SMALL: Scale = Scale {
        townships: 1,
        communities: 5,
        grids: 4,
        households: 400,
    };
    /// 400,000 households.
    pub const FULL: Scale = Scale {
        townships: 10,
        communities: 10,
        grids: 10,
        households: 400,
    };
}

/// The county's root org unit.
pub const COUNTY: &str = "b";

/// The username of the admin whose devices type the records in.
pub const ADMIN: &str = "bench-admin";

/// Supervisors [`setup`] creates, as (username, org unit): one for the
/// county, one for the first township, one for its first community.
pub const SUPERVISORS: [(&str, &str); 3] = [
    ("sup.b", "b"),
    ("sup.b.t1", "b.t1"),
    ("sup.b.t1.c1", "b.t1.c1"),
];

/// One grid's records.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Org unit id.
    pub id: String,
    /// Its worker's username (password [`crate::PASSWORD`]).
    pub worker: String,
    /// The actor id of the phone its records were typed in on.
    pub actor: [u8; 16],
    /// Households.
    pub households: Vec<(RecordId, Household)>,
    /// Special-population details.
    pub sensitive: Vec<(RecordId, Sensitive)>,
    /// Cases of the last year.
    pub cases: Vec<(RecordId, Case)>,
    /// Visits of the last weeks.
    pub visits: Vec<(RecordId, Visit)>,
}

/// The clock of the phones that type the county in (2025-01-01 UTC): the
/// time Automerge records in each change, fixed so that changes are the
/// same run after run. Record fields carry their own times.
const TYPED_IN_AT: i64 = 1_735_689_600_000;

fn typed_in_at() -> i64 {
    TYPED_IN_AT
}

impl Grid {
    /// How many documents the grid holds.
    pub fn documents(&self) -> usize {
        self.households.len() + self.sensitive.len() + self.cases.len() + self.visits.len()
    }

    /// The township and community the grid belongs to.
    pub fn parents(&self) -> (String, String) {
        let parts: Vec<&str> = self.id.split('.').collect();
        (parts[..2].join("."), parts[..3].join("."))
    }

    /// The phone the grid's records were typed in on: every record created
    /// in a replica with the grid's actor id and a fixed clock, nothing
    /// synced yet.
    pub fn replica(&self) -> Replica<MemoryStore> {
        let mut store = MemoryStore::default();
        store
            .put_actor(&ActorId::from(self.actor))
            .expect("memory store");
        let mut replica = Replica::open(store).expect("replica");
        replica.set_clock(typed_in_at);
        for (id, h) in &self.households {
            replica.create_with_id(id.clone(), h).unwrap();
        }
        for (id, s) in &self.sensitive {
            replica.create_with_id(id.clone(), s).unwrap();
        }
        for (id, c) in &self.cases {
            replica.create_with_id(id.clone(), c).unwrap();
        }
        for (id, v) in &self.visits {
            replica.create_with_id(id.clone(), v).unwrap();
        }
        replica
    }
}

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

/// Generates the county's grids; `now` anchors dates.
///
/// Cases follow the workflow: about 45% are handled at grid level, 25% at
/// community, 25% at township and 5% at county level (escalated there
/// first); 90% are resolved (mostly mediated, some referred or
/// withdrawn), 5% are open within their deadline and 5% are open past it
/// (overdue). One visit per household, in the last 40 days, so that about a
/// quarter of households were not visited in the last 30.
pub fn generate(scale: Scale, seed: u64, now: i64) -> Vec<Grid> {
    let mut rng = Rng::new(seed);
    let mut serial = 0u128;
    let mut next = |kind| {
        serial += 1;
        RecordId::from_parts(kind, (u128::from(seed) << 64) | serial)
    };
    let mut grids = Vec::new();
    for t in 1..=scale.townships {
        for c in 1..=scale.communities {
            for g in 1..=scale.grids {
                let id = format!("{COUNTY}.t{t}.c{c}.g{g}");
                let worker = format!("w.t{t}.c{c}.g{g}");
                let worker_id = format!("usr_{worker}");
                let mut actor = [0u8; 16];
                actor[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
                actor[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
                let mut grid = Grid {
                    id: id.clone(),
                    worker,
                    actor,
                    households: Vec::new(),
                    sensitive: Vec::new(),
                    cases: Vec::new(),
                    visits: Vec::new(),
                };
                for n in 0..scale.households {
                    let hid = next(RecordKind::Household);
                    let h = household(&mut rng, &id, n);
                    if rng.chance(1) {
                        let mut s = Sensitive {
                            household: hid.to_string(),
                            org_unit: id.clone(),
                            notes: "定期走访，情况稳定。".into(),
                            ..Default::default()
                        };
                        s.categories
                            .insert(SensitiveCategory::CommunityCorrection.as_str().into(), true);
                        grid.sensitive.push((next(RecordKind::Sensitive), s));
                    }
                    if n % 4 == 0 {
                        let people = Staff::of(t, c, &worker_id);
                        grid.cases.push((
                            next(RecordKind::Case),
                            county_case(&mut rng, &id, &hid, &people, now),
                        ));
                    }
                    grid.visits.push((
                        next(RecordKind::Visit),
                        Visit {
                            attachments: Vec::new(),
                            household: hid.to_string(),
                            org_unit: id.clone(),
                            worker: worker_id.clone(),
                            visited_at: now
                                - rng.below(40) as i64 * DAY
                                - rng.below(10) as i64 * HOUR,
                            findings: "入户走访，情况正常。".into(),
                            follow_up: rng.chance(10),
                            location: String::new(),
                        },
                    ));
                    grid.households.push((hid, h));
                }
                grids.push(grid);
            }
        }
    }
    grids
}

/// Who works a grid's cases (user ids; only the worker has an account).
struct Staff {
    worker: String,
    community: String,
    mediator: String,
    township: String,
    county: String,
}

impl Staff {
    fn of(t: usize, c: usize, worker: &str) -> Self {
        Self {
            worker: worker.to_owned(),
            community: format!("usr_staff.t{t}.c{c}"),
            mediator: format!("usr_med.t{t}.c{c}"),
            township: format!("usr_centre.t{t}"),
            county: "usr_centre.b".into(),
        }
    }
}

/// A case about `household` in `grid` with a plausible event log: reported
/// by the worker, escalated to the level that handles it, accepted,
/// classified, assigned to a mediator and (mostly) resolved.
fn county_case(rng: &mut Rng, grid: &str, household: &RecordId, who: &Staff, now: i64) -> Case {
    let level = match rng.below(100) {
        0..45 => 0,
        45..70 => 1,
        70..95 => 2,
        _ => 3,
    };
    let state = rng.below(100);
    // Open and overdue, open within the deadline, or resolved.
    let (overdue, open) = (state < 5, state < 10);
    let at = if overdue {
        now - (90 + rng.below(270) as i64) * DAY
    } else if open {
        now - 2 * DAY + rng.below(12) as i64 * HOUR
    } else {
        now - (10 + rng.below(355) as i64) * DAY
    };
    let mut case = gridsync_server::demo::case(rng, grid, household, &who.worker, at);
    let mut t = at;
    let mut event = |case: &mut Case,
                     rng: &mut Rng,
                     kind: &str,
                     (author, role): (&str, &str),
                     data: &[(&str, &str)]| {
        t += HOUR + rng.below(4) as i64 * HOUR;
        case.events.push(CaseEvent {
            attachments: Vec::new(),
            id: format!("e{:016x}", rng.next_u64()),
            kind: kind.into(),
            author: author.into(),
            device: format!("dev_{author}"),
            at: t,
            role: role.into(),
            hlc: t << 16,
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        });
    };
    let handler = move |level: usize| match level {
        0 | 1 => (who.community.as_str(), "community_staff"),
        2 => (who.township.as_str(), "centre_staff"),
        _ => (who.county.as_str(), "centre_staff"),
    };
    for from in 0..level {
        event(&mut case, rng, "escalate", handler(from), &[]);
    }
    let staff = handler(level);
    event(&mut case, rng, "accept", staff, &[]);
    let class = *rng.pick(&["small", "small", "small", "big", "big", "private"]);
    event(&mut case, rng, "classify", staff, &[("class", class)]);
    event(
        &mut case,
        rng,
        "assign",
        staff,
        &[("to", who.mediator.as_str())],
    );
    let mediator = (who.mediator.as_str(), "mediator");
    event(&mut case, rng, "mediate", mediator, &[]);
    if open {
        return case;
    }
    let result = match rng.below(100) {
        0..85 => "mediated",
        85..95 => "referred",
        _ => "withdrawn",
    };
    event(&mut case, rng, "resolve", mediator, &[("result", result)]);
    if rng.chance(50) {
        event(
            &mut case,
            rng,
            "follow_up",
            (who.worker.as_str(), "grid_worker"),
            &[],
        );
        if rng.chance(50) {
            event(&mut case, rng, "close", staff, &[]);
        }
    }
    case
}

/// Creates the county's org units, one worker per grid, the supervisors of
/// [`SUPERVISORS`] and the admin [`ADMIN`], through the admin functions;
/// returns the admin's user id.
pub async fn setup(state: &AppState, grids: &[Grid]) -> String {
    let cli = Actor::cli();
    let unit = |id: &str, parent: Option<&str>, kind: &str| NewOrgUnit {
        id: id.into(),
        parent: parent.map(str::to_owned),
        kind: kind.into(),
        name: id.into(),
    };
    admin::create_org_unit(state, &cli, unit(COUNTY, None, "county"))
        .await
        .unwrap();
    let mut made = std::collections::BTreeSet::new();
    // Every worker has the same password: hash it once.
    let hash = gridsync_server::http::auth::hash_password(crate::PASSWORD.into())
        .await
        .unwrap();
    for grid in grids {
        let (township, community) = grid.parents();
        for (id, parent, kind) in [
            (township.as_str(), COUNTY, "township"),
            (community.as_str(), township.as_str(), "community"),
            (grid.id.as_str(), community.as_str(), "grid"),
        ] {
            if made.insert(id.to_owned()) {
                admin::create_org_unit(state, &cli, unit(id, Some(parent), kind))
                    .await
                    .unwrap();
            }
        }
        state
            .engine
            .storage
            .insert_user(
                &gridsync_server::storage::UserRow {
                    id: format!("usr_{}", grid.worker),
                    username: grid.worker.clone(),
                    display_name: grid.worker.clone(),
                    password_hash: hash.clone(),
                    role: "grid_worker".into(),
                    scope_version: 0,
                    created_at: 0,
                },
                std::slice::from_ref(&grid.id),
            )
            .await
            .unwrap();
    }
    for (username, org_unit) in SUPERVISORS {
        if state
            .engine
            .storage
            .org_unit(org_unit)
            .await
            .unwrap()
            .is_none()
        {
            continue;
        }
        let supervisor = NewUser {
            username: username.into(),
            display_name: None,
            password: crate::PASSWORD.into(),
            role: "supervisor".into(),
            org_units: vec![org_unit.into()],
        };
        admin::create_user(state, &cli, supervisor).await.unwrap();
    }
    let admin = NewUser {
        username: ADMIN.into(),
        display_name: None,
        password: crate::PASSWORD.into(),
        role: "admin".into(),
        org_units: vec![COUNTY.into()],
    };
    admin::create_user(state, &cli, admin).await.unwrap().id
}

/// The device the bulk loader attributes the county's changes to.
pub const LOADER_DEVICE: &str = "dev_bench_loader";

/// Sets the county up ([`setup`]) and stores every grid's phone documents
/// with the bulk loader, attributed to the admin on [`LOADER_DEVICE`] (to
/// which the phones' actor ids are registered), at most `batch` documents
/// a transaction. The next grid's documents are built while one grid's
/// are stored. `progress(documents stored)` after each grid; the planner's
/// statistics are refreshed at the end.
pub async fn load(state: &AppState, grids: &[Grid], batch: usize, mut progress: impl FnMut(usize)) {
    let admin_id = setup(state, grids).await;
    let device = gridsync_server::storage::DeviceRow {
        id: LOADER_DEVICE.into(),
        user_id: admin_id.clone(),
        name: "bench loader".into(),
        created_at: 0,
        revoked_at: None,
    };
    state
        .engine
        .storage
        .insert_device(&device, "bench-loader")
        .await
        .unwrap();
    let build = |grid: &Grid| {
        let grid = grid.clone();
        let admin_id = admin_id.clone();
        tokio::task::spawn_blocking(move || {
            let replica = grid.replica();
            replica
                .ids()
                .map(|id| BulkDoc {
                    id: id.clone(),
                    doc: replica.document(id).expect("held").clone(),
                    user_id: admin_id.clone(),
                    device_id: LOADER_DEVICE.into(),
                })
                .collect::<Vec<_>>()
        })
    };
    let mut next = grids.first().map(build);
    let mut done = 0;
    for (i, grid) in grids.iter().enumerate() {
        let docs = next.take().expect("built").await.expect("build task");
        next = grids.get(i + 1).map(build);
        let actor = ActorId::from(grid.actor).to_hex_string();
        state
            .engine
            .storage
            .register_actor(&actor, LOADER_DEVICE, &admin_id, 0)
            .await
            .unwrap();
        done += bulk::store_documents(&state.engine, docs, batch)
            .await
            .unwrap()
            .documents;
        progress(done);
    }
    bulk::analyze(&state.engine).await.unwrap();
}
