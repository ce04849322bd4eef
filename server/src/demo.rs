//! A small demo county for trying gridsync at once: one township, three
//! communities of two grids, fifty households per grid, some cases, visits
//! and special-population details, and one user per role. Generated
//! deterministically, and written through the same admin functions and
//! sync path that people and devices use.

use sync_core::policy::Role;
use sync_core::records::{
    Address, Case, CaseCategory, CaseEvent, Household, Member, Party, Relation, Residence,
    Sensitive, SensitiveCategory, Sex, Tag, Visit,
};
use sync_core::{MemoryStore, RecordId, RecordKind, Replica, workflow};

use crate::domain::{now_ms, random_hex};
use crate::http::AppState;
use crate::http::admin::{self, Actor, NewOrgUnit, NewUser};
use crate::http::auth::AuthDevice;
use crate::http::error::AppError;
use crate::storage::DeviceRow;

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "gridsync-demo";

/// The demo users: username, display name, role, org unit.
pub const DEMO_USERS: [(&str, &str, &str, &str); 6] = [
    ("admin", "系统管理员", "admin", "demo"),
    ("worker1", "网格员 李娜", "grid_worker", "demo.t1.c1.g1"),
    ("worker2", "网格员 王强", "grid_worker", "demo.t1.c1.g2"),
    ("mediator1", "调解员 陈明", "mediator", "demo.t1.c1"),
    ("staff1", "社区干部 赵敏", "community_staff", "demo.t1.c1"),
    ("supervisor1", "督导 周华", "supervisor", "demo.t1"),
];

/// Households per grid in the demo county.
pub const HOUSEHOLDS_PER_GRID: usize = 50;

/// The grid codes of the demo county.
pub fn grids() -> Vec<String> {
    (1..=3)
        .flat_map(|c| (1..=2).map(move |g| format!("demo.t1.c{c}.g{g}")))
        .collect()
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One item of a slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超",
];

fn name(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN))
}

/// A household of 1 to 6 members in `grid`, numbered `n`.
pub fn household(rng: &mut Rng, grid: &str, n: usize) -> Household {
    let size = 1 + rng.below(6) as usize;
    let members: Vec<Member> = (0..size)
        .map(|i| {
            let relation = match i {
                0 => Relation::Head,
                1 => Relation::Spouse,
                _ => *rng.pick(&[Relation::Child, Relation::Parent, Relation::Grandchild]),
            };
            let year = 1940 + rng.below(80);
            Member {
                id: format!("m{}", i + 1),
                name: name(rng),
                id_number: format!(
                    "3210{:02}{year}{:02}{:02}{:04}",
                    rng.below(99),
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(10_000)
                ),
                sex: if rng.chance(50) {
                    Sex::Male
                } else {
                    Sex::Female
                },
                birth_date: format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
                relation,
                phone: format!("1{:010}", rng.next_u64() % 10_000_000_000),
                residence: *rng.pick(&[
                    Residence::Registered,
                    Residence::Registered,
                    Residence::Resident,
                    Residence::Floating,
                ]),
            }
        })
        .collect();
    let mut h = Household {
        org_unit: grid.to_owned(),
        address: Address {
            building: format!("{}栋", 1 + n / 12),
            unit: format!("{}单元", 1 + (n / 4) % 3),
            room: format!("{}0{}", 1 + (n % 12) / 2, 1 + n % 2),
        },
        head: members[0].id.clone(),
        members,
        ..Default::default()
    };
    for (tag, percent) in [
        (Tag::ElderlyAlone, 8),
        (Tag::LeftBehindChild, 3),
        (Tag::Disabled, 2),
        (Tag::LowIncome, 4),
        (Tag::Veteran, 2),
    ] {
        if rng.chance(percent) {
            h.set_tag(tag, true);
        }
    }
    h
}

/// A reported case about `household` in `grid`.
pub fn case(rng: &mut Rng, grid: &str, household: &RecordId, reporter: &str, at: i64) -> Case {
    let category = *rng.pick(&[
        CaseCategory::Neighbour,
        CaseCategory::Family,
        CaseCategory::Property,
        CaseCategory::Labour,
        CaseCategory::Hazard,
        CaseCategory::Request,
    ]);
    let title = match category {
        CaseCategory::Neighbour => "邻里噪音纠纷",
        CaseCategory::Family => "家庭赡养纠纷",
        CaseCategory::Property => "物业漏水纠纷",
        CaseCategory::Labour => "拖欠工资",
        CaseCategory::Hazard => "楼道堆放杂物",
        _ => "路灯损坏报修",
    };
    Case {
        attachments: Vec::new(),
        org_unit: grid.to_owned(),
        category,
        title: title.to_owned(),
        description: format!("{title}，需尽快处理。").into(),
        parties: vec![Party {
            id: "p1".into(),
            name: name(rng),
            phone: String::new(),
            role: "applicant".into(),
        }],
        household: household.to_string(),
        location: String::new(),
        reporter: reporter.to_owned(),
        reported_at: at,
        events: vec![CaseEvent {
            attachments: Vec::new(),
            id: format!("e{}", rng.next_u64()),
            kind: "report".into(),
            author: reporter.to_owned(),
            device: "demo".into(),
            at,
            role: "grid_worker".into(),
            hlc: at << 16,
            data: Default::default(),
        }],
    }
}

/// The demo org tree: (id, parent, kind, name).
fn org_tree() -> Vec<(String, Option<String>, &'static str, String)> {
    let mut units = vec![
        ("demo".to_owned(), None, "county", "示范县".to_owned()),
        (
            "demo.t1".to_owned(),
            Some("demo".to_owned()),
            "township",
            "城关街道".to_owned(),
        ),
    ];
    for c in 1..=3 {
        let community = format!("demo.t1.c{c}");
        units.push((
            community.clone(),
            Some("demo.t1".into()),
            "community",
            format!("第{c}社区"),
        ));
        for g in 1..=2 {
            units.push((
                format!("{community}.g{g}"),
                Some(community.clone()),
                "grid",
                format!("第{c}社区第{g}网格"),
            ));
        }
    }
    units
}

/// Seeds the demo county and users unless users exist already.
pub async fn seed(state: &AppState) -> Result<bool, AppError> {
    if state
        .engine
        .storage
        .user_by_username("admin")
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let actor = Actor::cli();
    for (id, parent, kind, name) in org_tree() {
        let unit = NewOrgUnit {
            id,
            parent,
            kind: kind.into(),
            name,
        };
        admin::create_org_unit(state, &actor, unit).await?;
    }
    let mut user_ids = Vec::new();
    for (username, display_name, role, org_unit) in DEMO_USERS {
        let user = NewUser {
            username: username.into(),
            display_name: Some(display_name.into()),
            password: DEMO_PASSWORD.into(),
            role: role.into(),
            org_units: vec![org_unit.into()],
        };
        user_ids.push(admin::create_user(state, &actor, user).await?.id);
    }
    let (admin_id, worker_ids, mediator_id, staff_id) = (
        &user_ids[0],
        [&user_ids[1], &user_ids[2]],
        &user_ids[3],
        &user_ids[4],
    );

    let mut rng = Rng::new(2024);
    let mut replica = Replica::open(MemoryStore::default()).map_err(AppError::internal)?;
    let now = now_ms();
    let day = 86_400_000;
    let mut serial = 0u128;
    let mut next_id = |kind| {
        serial += 1;
        RecordId::from_parts(kind, 0xde30_0000_0000_0000_0000_0000_0000_0000 | serial)
    };
    for (g, grid) in grids().into_iter().enumerate() {
        let worker = worker_ids[g % 2];
        for n in 0..HOUSEHOLDS_PER_GRID {
            let h = household(&mut rng, &grid, n);
            let id = next_id(RecordKind::Household);
            replica
                .create_with_id(id.clone(), &h)
                .map_err(AppError::internal)?;
            if n == 0 || rng.chance(2) {
                let mut details = Sensitive {
                    household: id.to_string(),
                    org_unit: grid.clone(),
                    notes: "按月走访，情况稳定。".into(),
                    ..Default::default()
                };
                details
                    .categories
                    .insert(SensitiveCategory::ReleasedFromPrison.as_str().into(), true);
                replica
                    .create_with_id(next_id(RecordKind::Sensitive), &details)
                    .map_err(AppError::internal)?;
            }
            if rng.chance(60) {
                let visit = Visit {
                    attachments: Vec::new(),
                    household: id.to_string(),
                    org_unit: grid.clone(),
                    worker: worker.clone(),
                    visited_at: now - rng.below(40) as i64 * day,
                    findings: "入户走访，情况正常。".into(),
                    follow_up: rng.chance(10),
                    location: String::new(),
                };
                replica
                    .create_with_id(next_id(RecordKind::Visit), &visit)
                    .map_err(AppError::internal)?;
            }
            if rng.chance(12) {
                let at = now - rng.below(60) as i64 * day;
                let mut c = case(&mut rng, &grid, &id, worker, at);
                if rng.chance(50) {
                    let staff = (staff_id.as_str(), "demo", Role::CommunityStaff);
                    let data = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into();
                    workflow::append(&mut c, "accept", staff, at + day / 4, Default::default());
                    workflow::append(
                        &mut c,
                        "classify",
                        staff,
                        at + day / 2,
                        data("class", "small"),
                    );
                    workflow::append(&mut c, "assign", staff, at + day, data("to", mediator_id));
                    if rng.chance(50) {
                        let mediator = (mediator_id.as_str(), "demo", Role::Mediator);
                        let result = data("result", "mediated");
                        workflow::append(&mut c, "resolve", mediator, at + 3 * day, result);
                    }
                }
                replica
                    .create_with_id(next_id(RecordKind::Case), &c)
                    .map_err(AppError::internal)?;
            }
        }
    }
    let device = DeviceRow {
        id: "dev_demo_seed".into(),
        user_id: admin_id.clone(),
        name: "demo seed".into(),
        created_at: now,
        revoked_at: Some(now),
    };
    state
        .engine
        .storage
        .insert_device(&device, &random_hex(32))
        .await?;
    let seeder = AuthDevice {
        user_id: admin_id.clone(),
        device_id: device.id,
        role: Role::Admin,
        scope_version: 0,
    };
    // A request carries at most the replica's cap of documents: as many
    // rounds as it takes, each applied, until nothing is left to send.
    while !replica.pending().is_empty() {
        let response =
            crate::engine::sync::round(&state.engine, &seeder, replica.sync_request()).await?;
        if let Some(e) = response.errors.first() {
            return Err(AppError::internal(format!(
                "demo seed refused: {} {}",
                e.code, e.message
            )));
        }
        replica
            .apply_response(response)
            .map_err(AppError::internal)?;
    }
    tracing::info!(
        documents = replica.len(),
        users = DEMO_USERS.len(),
        "demo county seeded"
    );
    Ok(true)
}
