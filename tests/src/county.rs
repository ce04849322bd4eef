//! The synthetic county of the benchmark workload, generated
//! deterministically from a seed: org units, one worker per grid, and each
//! grid's households (with special-population details for some), a year's
//! cases and the last month's visits. Loaded through the same admin
//! functions and sync rounds that people and devices use.

use gridsync_server::AppState;
use gridsync_server::admin::{self, Actor, NewOrgUnit, NewUser};
use gridsync_server::demo::{Rng, case, household};
use sync_core::records::{Case, Household, Sensitive, SensitiveCategory, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind, Replica};

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
    /// 400,000 households: hours.
    pub const FULL: Scale = Scale {
        townships: 10,
        communities: 10,
        grids: 10,
        households: 400,
    };
}

/// One grid's records.
pub struct Grid {
    /// Org unit id.
    pub id: String,
    /// Its worker's username (password [`crate::PASSWORD`]).
    pub worker: String,
    /// Households.
    pub households: Vec<(RecordId, Household)>,
    /// Special-population details.
    pub sensitive: Vec<(RecordId, Sensitive)>,
    /// Cases of the last year.
    pub cases: Vec<(RecordId, Case)>,
    /// Visits of the last month.
    pub visits: Vec<(RecordId, Visit)>,
}

impl Grid {
    /// How many documents the grid holds.
    pub fn documents(&self) -> usize {
        self.households.len() + self.sensitive.len() + self.cases.len() + self.visits.len()
    }
}

const DAY: i64 = 86_400_000;

/// Generates the county's grids; `now` anchors dates.
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
                let id = format!("b.t{t}.c{c}.g{g}");
                let worker = format!("w.t{t}.c{c}.g{g}");
                let worker_id = format!("usr_{worker}");
                let mut grid = Grid {
                    id: id.clone(),
                    worker,
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
                        let at = now - rng.below(365) as i64 * DAY;
                        grid.cases.push((
                            next(RecordKind::Case),
                            case(&mut rng, &id, &hid, &worker_id, at),
                        ));
                    }
                    grid.visits.push((
                        next(RecordKind::Visit),
                        Visit {
                            household: hid.to_string(),
                            org_unit: id.clone(),
                            worker: worker_id.clone(),
                            visited_at: now - rng.below(30) as i64 * DAY,
                            findings: "入户走访，情况正常。".into(),
                            follow_up: rng.chance(10),
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

/// Creates the org units and users, and pushes every record through sync
/// rounds of an admin device, `batch` documents a round.
pub async fn load(state: &AppState, grids: &[Grid], batch: usize, mut progress: impl FnMut(usize)) {
    let cli = Actor::cli();
    let unit = |id: &str, parent: Option<&str>, kind: &str| NewOrgUnit {
        id: id.into(),
        parent: parent.map(str::to_owned),
        kind: kind.into(),
        name: id.into(),
    };
    admin::create_org_unit(state, &cli, unit("b", None, "county"))
        .await
        .unwrap();
    let mut made = std::collections::BTreeSet::new();
    for grid in grids {
        let parts: Vec<&str> = grid.id.split('.').collect();
        let township = parts[..2].join(".");
        let community = parts[..3].join(".");
        for (id, parent, kind) in [
            (township.as_str(), "b", "township"),
            (community.as_str(), township.as_str(), "community"),
            (grid.id.as_str(), community.as_str(), "grid"),
        ] {
            if made.insert(id.to_owned()) {
                admin::create_org_unit(state, &cli, unit(id, Some(parent), kind))
                    .await
                    .unwrap();
            }
        }
        let hash = gridsync_server::auth::hash_password(crate::PASSWORD.into())
            .await
            .unwrap();
        state
            .storage
            .insert_user(
                &gridsync_server::storage::UserRow {
                    id: format!("usr_{}", grid.worker),
                    username: grid.worker.clone(),
                    display_name: grid.worker.clone(),
                    password_hash: hash,
                    role: "grid_worker".into(),
                    scope_version: 0,
                    created_at: 0,
                },
                std::slice::from_ref(&grid.id),
            )
            .await
            .unwrap();
    }
    let admin = NewUser {
        username: "bench-admin".into(),
        display_name: None,
        password: crate::PASSWORD.into(),
        role: "admin".into(),
        org_units: vec!["b".into()],
    };
    let admin_id = admin::create_user(state, &cli, admin).await.unwrap().id;
    let device = gridsync_server::storage::DeviceRow {
        id: "dev_bench_loader".into(),
        user_id: admin_id.clone(),
        name: "bench loader".into(),
        created_at: 0,
        revoked_at: None,
    };
    state
        .storage
        .insert_device(&device, "bench-loader")
        .await
        .unwrap();
    let loader = gridsync_server::auth::AuthDevice {
        user_id: admin_id,
        device_id: device.id,
        role: sync_core::policy::Role::Admin,
        scope_version: 0,
    };
    let mut replica = Replica::open(MemoryStore::default()).unwrap();
    let mut pending = 0;
    let mut done = 0;
    for grid in grids {
        for (id, h) in &grid.households {
            replica.create_with_id(id.clone(), h).unwrap();
        }
        for (id, s) in &grid.sensitive {
            replica.create_with_id(id.clone(), s).unwrap();
        }
        for (id, c) in &grid.cases {
            replica.create_with_id(id.clone(), c).unwrap();
        }
        for (id, v) in &grid.visits {
            replica.create_with_id(id.clone(), v).unwrap();
        }
        pending += grid.documents();
        if pending >= batch {
            flush(state, &loader, &mut replica).await;
            done += pending;
            pending = 0;
            progress(done);
        }
    }
    flush(state, &loader, &mut replica).await;
    progress(done + pending);
}

async fn flush(
    state: &AppState,
    loader: &gridsync_server::auth::AuthDevice,
    replica: &mut Replica<MemoryStore>,
) {
    let response = gridsync_server::sync::round(state, loader, replica.sync_request())
        .await
        .unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors.first());
    // The loader does not keep what it pushed.
    *replica = Replica::open(MemoryStore::default()).unwrap();
}
