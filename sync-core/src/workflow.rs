//! The case workflow: a case's state is never a field two phones overwrite
//! but the fold of its event log, in one deterministic order, through the
//! state machine below. Every replica that holds the same events computes
//! the same state.
//!
//! Events are ordered by their hybrid logical clock, then device, then id.
//! An event that does not apply at its place in that order (a resolution
//! after the case was closed, an assignment recorded by a role that may not
//! assign) is kept and marked as not applied, with the reason; it is never
//! dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::records::{Case, CaseCategory, CaseEvent, HLC_RANGE};
use crate::role::Role;

/// Where a case stands (`workflow.md`). Open statuses: `reported`,
/// `accepted`, `triaged`, `assigned`, `handling`.
///
/// | status | |
/// |---|---|
/// | `reported` | 上报: reported (or escalated), waiting to be accepted |
/// | `accepted` | 受理: accepted at its current level, waiting for triage |
/// | `triaged` | 分流: classified as a big, small or private matter |
/// | `assigned` | 交办: assigned to a mediator, department or community |
/// | `handling` | 处置/调解: being handled |
/// | `resolved` | 办结: resolved |
/// | `followed_up` | 回访: followed up with the people concerned |
/// | `closed` | closed |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = CaseStatus))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 上报: reported, waiting to be accepted.
    Reported,
    /// 受理: accepted at its current level, waiting for triage.
    Accepted,
    /// 分流: classified as a big, small or private matter.
    Triaged,
    /// 交办: assigned to a mediator, department or community.
    Assigned,
    /// 处置/调解: being handled.
    Handling,
    /// 办结: resolved.
    Resolved,
    /// 回访: followed up with the people concerned.
    FollowedUp,
    /// Closed.
    Closed,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 8] = [
        Status::Reported,
        Status::Accepted,
        Status::Triaged,
        Status::Assigned,
        Status::Handling,
        Status::Resolved,
        Status::FollowedUp,
        Status::Closed,
    ];

    /// The name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Reported => "reported",
            Status::Accepted => "accepted",
            Status::Triaged => "triaged",
            Status::Assigned => "assigned",
            Status::Handling => "handling",
            Status::Resolved => "resolved",
            Status::FollowedUp => "followed_up",
            Status::Closed => "closed",
        }
    }

    /// Whether work on the case is still due.
    pub const fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::FollowedUp | Status::Closed)
    }
}

/// The levels a case may be handled at: 小事不出村、大事不出镇、矛盾不上交.
/// `grid` (网格), `community` (村/社区), `township` (乡镇/街道), `county`
/// (县/区). A case starts at `grid` and climbs one level per `escalate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = CaseLevel))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 网格
    Grid,
    /// 村/社区
    Community,
    /// 乡镇/街道
    Township,
    /// 县/区
    County,
}

impl Level {
    /// Every level, bottom up.
    pub const ALL: [Level; 4] = [
        Level::Grid,
        Level::Community,
        Level::Township,
        Level::County,
    ];

    /// The name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Grid => "grid",
            Level::Community => "community",
            Level::Township => "township",
            Level::County => "county",
        }
    }

    fn up(self) -> Option<Level> {
        match self {
            Level::Grid => Some(Level::Community),
            Level::Community => Some(Level::Township),
            Level::Township => Some(Level::County),
            Level::County => None,
        }
    }
}

/// The outcome of one event in the fold: one event of a case, as the fold
/// saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct EventOutcome {
    /// The event id.
    pub id: String,
    /// The event kind (`report`, `accept`, `classify`, `assign`, `return`,
    /// `escalate`, `mediate`, `resolve`, `follow_up`, `reopen`, `close`,
    /// `comment`, `supervise`; an event recorded by another client may carry
    /// any string).
    pub kind: String,
    /// Whether it changed the case. An event that does not apply at its
    /// place in the fold order, or whose recorded role may not record it, is
    /// kept and marked `false`.
    pub applied: bool,
    /// Why it did not apply. Present only when `applied` is `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A case's derived state, folded from its events in the order of their
/// hybrid logical clock, then device, then id (`workflow.md`). Times are
/// milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CaseState {
    /// Where the case stands.
    pub status: Status,
    /// The level handling it.
    pub level: Level,
    /// `big`, `small` or `private` (三事分流), once triaged; `null` before,
    /// and again after an escalation.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub class: Option<String>,
    /// Who handles it now (user id), from the last `assign` that applied;
    /// `null` before, and after a `return` or `escalate`.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub assignee: Option<String>,
    /// How it was resolved: `mediated`, `referred` or `withdrawn`; `null`
    /// while unresolved and after a `reopen`.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub result: Option<String>,
    /// The level it was resolved at; `null` while unresolved and after a
    /// `reopen`.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub resolved_level: Option<Level>,
    /// When it was reported: the clock of the `report` event (the case's
    /// `reported_at` when that event carries no clock).
    pub reported_at: i64,
    /// When it was (last) resolved; `null` while unresolved and after a
    /// `reopen`.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub resolved_at: Option<i64>,
    /// When the current step is due, while the case is open: acceptance
    /// while `reported`, resolution after that. `null` once resolved,
    /// followed up or closed.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub due: Option<i64>,
    /// Whether supervision (督办) has been raised.
    pub supervised: bool,
    /// Every event, in fold order, applied or not.
    pub events: Vec<EventOutcome>,
}

impl CaseState {
    /// Whether the case is overdue at `now` (milliseconds).
    pub fn overdue_at(&self, now: i64) -> bool {
        self.due.is_some_and(|due| due < now)
    }

    /// Events kept but not applied.
    pub fn not_applied(&self) -> impl Iterator<Item = &EventOutcome> {
        self.events.iter().filter(|e| !e.applied)
    }
}

/// Time limits, in milliseconds: to accept a reported case, and to resolve
/// an accepted one, per level, with per-category overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Deadlines {
    /// From report (or escalation) to acceptance.
    pub accept_ms: i64,
    /// From acceptance to resolution, per level name.
    pub resolve_ms: BTreeMap<String, i64>,
    /// From acceptance to resolution for some categories (by variant name
    /// as stored, e.g. `Hazard`), whatever the level.
    pub resolve_by_category_ms: BTreeMap<String, i64>,
}

const DAY: i64 = 86_400_000;

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            accept_ms: DAY,
            resolve_ms: [
                ("grid", 7 * DAY),
                ("community", 15 * DAY),
                ("township", 30 * DAY),
                ("county", 60 * DAY),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            resolve_by_category_ms: [("Hazard".to_owned(), 3 * DAY)].into(),
        }
    }
}

impl Deadlines {
    fn resolve_within(&self, category: CaseCategory, level: Level) -> i64 {
        let by_category = self.resolve_by_category_ms.get(&format!("{category:?}"));
        by_category
            .or_else(|| self.resolve_ms.get(level.as_str()))
            .copied()
            .unwrap_or(30 * DAY)
    }
}

/// The physical part of a hybrid logical clock value.
pub const fn hlc_millis(hlc: i64) -> i64 {
    hlc >> 16
}

/// The clock for a new event on `case` at wall-clock `now_ms`: later than
/// every event already in the case (so an event is always ordered after
/// what its author saw), and close to real time.
///
/// Clocks come from other devices: the arithmetic saturates rather than
/// overflow on any value, and the result is always in [`HLC_RANGE`], so
/// that the new event is valid. (An event already at the very end of that
/// range, which no real clock reaches before the year 3000, is followed by
/// events on the same clock, ordered by device and id.)
pub fn next_hlc(case: &Case, now_ms: i64) -> i64 {
    let seen = case.events.iter().map(|e| e.hlc).max().unwrap_or(0);
    now_ms
        .saturating_mul(1 << 16)
        .max(seen.saturating_add(1))
        .clamp(HLC_RANGE.start, HLC_RANGE.end - 1)
}

/// Appends an event by `author` on `device` acting as `role`.
pub fn append(
    case: &mut Case,
    kind: &str,
    (author, device, role): (&str, &str, Role),
    now_ms: i64,
    data: BTreeMap<String, String>,
) -> String {
    let hlc = next_hlc(case, now_ms);
    // Unique whatever devices call themselves: two phones may append at
    // the same clock value.
    let mut salt = [0u8; 4];
    getrandom::fill(&mut salt).expect("the operating system has no random source");
    let id = format!("ev_{hlc:x}_{}", hex::encode(salt));
    case.events.push(CaseEvent {
        attachments: Vec::new(),
        id: id.clone(),
        kind: kind.into(),
        author: author.into(),
        device: device.into(),
        at: now_ms,
        role: role.as_str().into(),
        hlc,
        data,
    });
    id
}

fn get<'a>(e: &'a CaseEvent, key: &str) -> Option<&'a str> {
    e.data
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Folds a case's events into its state.
pub fn fold(case: &Case, deadlines: &Deadlines) -> CaseState {
    let mut order: Vec<&CaseEvent> = case.events.iter().collect();
    order.sort_by(|a, b| (a.hlc, &a.device, &a.id).cmp(&(b.hlc, &b.device, &b.id)));
    let mut s = CaseState {
        status: Status::Reported,
        level: Level::Grid,
        class: None,
        assignee: None,
        result: None,
        resolved_level: None,
        reported_at: case.reported_at,
        resolved_at: None,
        due: None,
        supervised: false,
        events: Vec::with_capacity(order.len()),
    };
    let mut reported = false;
    // When the current level started work (acceptance or escalation).
    let mut step_started = case.reported_at;
    for (i, e) in order.into_iter().enumerate() {
        let outcome = apply(&mut s, e, i == 0, &mut reported, &mut step_started, case);
        s.events.push(EventOutcome {
            id: e.id.clone(),
            kind: e.kind.clone(),
            applied: outcome.is_ok(),
            reason: outcome.err(),
        });
    }
    // Times and deadlines come from documents and configuration: a valid
    // case keeps its times in `TIME_RANGE`, and the sums saturate rather
    // than overflow on any other.
    s.due = match s.status {
        Status::Reported => Some(step_started.saturating_add(deadlines.accept_ms)),
        status if status.is_open() => {
            Some(step_started.saturating_add(deadlines.resolve_within(case.category, s.level)))
        }
        _ => None,
    };
    s
}

fn apply(
    s: &mut CaseState,
    e: &CaseEvent,
    first: bool,
    reported: &mut bool,
    step_started: &mut i64,
    case: &Case,
) -> Result<(), String> {
    use Status::*;
    let at = hlc_millis(e.hlc);
    if !e.role.is_empty() {
        match e.role.parse::<Role>() {
            Ok(role) if role.may_record(&e.kind) => {}
            Ok(role) => return Err(format!("a {role} may not record {:?}", e.kind)),
            Err(err) => return Err(err.to_string()),
        }
    }
    let status = s.status;
    let wrong_status = || format!("{:?} does not apply to a {} case", e.kind, status.as_str());
    match e.kind.as_str() {
        "report" => {
            if !first || *reported {
                return Err("the case was already reported".into());
            }
            *reported = true;
            s.reported_at = if at > 0 { at } else { case.reported_at };
            *step_started = s.reported_at;
        }
        "comment" => {}
        "accept" => {
            if status != Reported {
                return Err(wrong_status());
            }
            s.status = Accepted;
            *step_started = at;
        }
        "classify" => {
            if !matches!(status, Accepted | Triaged) {
                return Err(wrong_status());
            }
            let class = get(e, "class").ok_or("classify needs data.class")?;
            if !matches!(class, "big" | "small" | "private") {
                return Err(format!("unknown class {class:?}"));
            }
            s.class = Some(class.into());
            s.status = Triaged;
        }
        "assign" => {
            if !matches!(status, Triaged | Assigned | Handling) {
                return Err(wrong_status());
            }
            s.assignee = Some(get(e, "to").ok_or("assign needs data.to")?.into());
            s.status = Assigned;
        }
        "return" => {
            if !matches!(status, Assigned | Handling) {
                return Err(wrong_status());
            }
            if s.assignee.as_deref() != Some(e.author.as_str()) {
                return Err("only the assignee returns a case".into());
            }
            s.assignee = None;
            s.status = Triaged;
        }
        "escalate" => {
            if !status.is_open() {
                return Err(wrong_status());
            }
            s.level = s
                .level
                .up()
                .ok_or("a county case cannot be escalated further")?;
            s.assignee = None;
            s.class = None;
            s.status = Reported;
            *step_started = at;
        }
        "mediate" => {
            if !matches!(status, Assigned | Handling) {
                return Err(wrong_status());
            }
            s.status = Handling;
        }
        "resolve" => {
            if !matches!(status, Accepted | Triaged | Assigned | Handling) {
                return Err(wrong_status());
            }
            let result = get(e, "result").ok_or("resolve needs data.result")?;
            if !matches!(result, "mediated" | "referred" | "withdrawn") {
                return Err(format!("unknown result {result:?}"));
            }
            s.result = Some(result.into());
            s.resolved_level = Some(s.level);
            s.resolved_at = Some(at);
            s.status = Resolved;
        }
        "follow_up" => {
            if status != Resolved {
                return Err(wrong_status());
            }
            s.status = FollowedUp;
        }
        "reopen" => {
            if status.is_open() {
                return Err(wrong_status());
            }
            s.result = None;
            s.resolved_at = None;
            s.resolved_level = None;
            s.status = if s.assignee.is_some() {
                Handling
            } else {
                Accepted
            };
            *step_started = at;
        }
        "close" => {
            if !matches!(status, Resolved | FollowedUp) {
                return Err(wrong_status());
            }
            s.status = Closed;
        }
        // Whether the case is overdue is checked where the deadlines are
        // known (the server, before it records the event); the fold must
        // not depend on configuration a phone may not have.
        "supervise" => {
            if !status.is_open() {
                return Err(wrong_status());
            }
            s.supervised = true;
        }
        other => return Err(format!("unknown event kind {other:?}")),
    }
    Ok(())
}

/// The state machine as a Markdown table: for each event, the statuses it
/// applies in and the status it leads to, computed by running [`fold`] on
/// sample cases so that the table cannot drift from the code.
pub fn transition_markdown() -> String {
    // `report` only starts a case; `supervise` is covered below the table.
    let kinds = crate::role::EVENT_KINDS
        .into_iter()
        .filter(|k| !matches!(*k, "report" | "supervise"));
    let mut out =
        String::from("| event | applies when the case is | leads to |\n| --- | --- | --- |\n");
    for kind in kinds {
        let mut from = Vec::new();
        let mut to = std::collections::BTreeSet::new();
        let mut unchanged = true;
        for status in Status::ALL {
            if let Some(next) = try_event(status, kind) {
                from.push(status.as_str());
                to.insert(next.as_str());
                unchanged &= next == status;
            }
        }
        let to = if unchanged {
            "(unchanged)".to_owned()
        } else {
            to.into_iter().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!("| `{kind}` | {} | {to} |\n", from.join(", ")));
    }
    out
}

/// The status after `kind` on a sample case in `status`, if it applies.
fn try_event(status: Status, kind: &str) -> Option<Status> {
    let path: &[(&str, &str)] = match status {
        Status::Reported => &[],
        Status::Accepted => &[("accept", "")],
        Status::Triaged => &[("accept", ""), ("classify", "class=small")],
        Status::Assigned => &[
            ("accept", ""),
            ("classify", "class=small"),
            ("assign", "to=h"),
        ],
        Status::Handling => &[
            ("accept", ""),
            ("classify", "class=small"),
            ("assign", "to=h"),
            ("mediate", ""),
        ],
        Status::Resolved => &[("accept", ""), ("resolve", "result=mediated")],
        Status::FollowedUp => &[
            ("accept", ""),
            ("resolve", "result=mediated"),
            ("follow_up", ""),
        ],
        Status::Closed => &[
            ("accept", ""),
            ("resolve", "result=mediated"),
            ("close", ""),
        ],
    };
    let sample = |kind: &str, data: &str, n: i64, author: &str| CaseEvent {
        attachments: Vec::new(),
        id: format!("e{n}"),
        kind: kind.into(),
        author: author.into(),
        device: "d".into(),
        at: 0,
        role: String::new(),
        hlc: n,
        data: data
            .split_once('=')
            .map(|(k, v)| [(k.to_owned(), v.to_owned())].into())
            .unwrap_or_default(),
    };
    let mut case = Case {
        events: vec![sample("report", "", 0, "r")],
        ..Case::default()
    };
    for (n, (kind, data)) in path.iter().enumerate() {
        case.events.push(sample(kind, data, n as i64 + 1, "s"));
    }
    let data = match kind {
        "classify" => "class=big",
        "assign" => "to=h",
        "resolve" => "result=mediated",
        _ => "",
    };
    let author = if kind == "return" { "h" } else { "s" };
    case.events.push(sample(kind, data, 100, author));
    let state = fold(&case, &Deadlines::default());
    debug_assert_eq!(
        state.events[..state.events.len() - 1]
            .iter()
            .filter(|e| !e.applied)
            .count(),
        0,
        "sample path to {status:?} must apply"
    );
    state
        .events
        .last()
        .filter(|e| e.applied)
        .map(|_| state.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, kind: &str, hlc: i64, data: &[(&str, &str)]) -> CaseEvent {
        CaseEvent {
            attachments: Vec::new(),
            id: id.into(),
            kind: kind.into(),
            author: "staff".into(),
            device: "d1".into(),
            at: 0,
            role: String::new(),
            hlc,
            data: data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn case(events: Vec<CaseEvent>) -> Case {
        Case {
            events,
            ..Case::default()
        }
    }

    #[test]
    fn a_case_goes_from_report_to_close() {
        let c = case(vec![
            ev("1", "report", 1, &[]),
            ev("2", "accept", 2, &[]),
            ev("3", "classify", 3, &[("class", "small")]),
            ev("4", "assign", 4, &[("to", "med")]),
            ev("5", "mediate", 5, &[("outcome", "success")]),
            ev("6", "resolve", 6, &[("result", "mediated")]),
            ev("7", "follow_up", 7, &[("satisfaction", "5")]),
            ev("8", "close", 8, &[]),
        ]);
        let s = fold(&c, &Deadlines::default());
        assert_eq!(s.status, Status::Closed);
        assert_eq!(s.result.as_deref(), Some("mediated"));
        assert_eq!(s.resolved_level, Some(Level::Grid));
        assert!(s.events.iter().all(|e| e.applied));
        assert_eq!(s.due, None);
    }

    #[test]
    fn an_event_out_of_place_is_kept_and_marked() {
        let c = case(vec![
            ev("1", "report", 1, &[]),
            ev("2", "accept", 2, &[]),
            ev("3", "resolve", 3, &[("result", "withdrawn")]),
            ev("4", "close", 4, &[]),
            ev("5", "resolve", 5, &[("result", "mediated")]),
        ]);
        let s = fold(&c, &Deadlines::default());
        assert_eq!(s.status, Status::Closed);
        let not: Vec<_> = s.not_applied().map(|e| e.id.as_str()).collect();
        assert_eq!(not, vec!["5"]);
        assert!(s.events[4].reason.as_deref().unwrap().contains("closed"));
    }

    #[test]
    fn order_is_by_clock_not_by_list_position() {
        let a = case(vec![
            ev("1", "report", 1, &[]),
            ev("3", "close", 30, &[]),
            ev("2", "accept", 2, &[]),
            ev("4", "resolve", 20, &[("result", "mediated")]),
        ]);
        let s = fold(&a, &Deadlines::default());
        assert_eq!(s.status, Status::Closed);
        assert!(s.events.iter().all(|e| e.applied));
    }

    #[test]
    fn a_role_that_may_not_assign_does_not_assign() {
        let mut assign = ev("4", "assign", 4, &[("to", "med")]);
        assign.role = "grid_worker".into();
        let c = case(vec![
            ev("1", "report", 1, &[]),
            ev("2", "accept", 2, &[]),
            ev("3", "classify", 3, &[("class", "big")]),
            assign,
        ]);
        let s = fold(&c, &Deadlines::default());
        assert_eq!(s.status, Status::Triaged);
        assert!(
            s.events[3]
                .reason
                .as_deref()
                .unwrap()
                .contains("grid_worker")
        );
    }

    #[test]
    fn deadlines_make_cases_overdue_and_resolution_ends_it() {
        let d = Deadlines::default();
        let hlc = |ms: i64| ms << 16;
        let mut c = case(vec![ev("1", "report", hlc(1_000), &[])]);
        c.reported_at = 1_000;
        let s = fold(&c, &d);
        assert_eq!(s.due, Some(1_000 + DAY));
        assert!(!s.overdue_at(1_000 + DAY));
        assert!(s.overdue_at(1_001 + DAY));
        c.events.push(ev("2", "accept", hlc(2_000), &[]));
        let s = fold(&c, &d);
        assert_eq!(s.due, Some(2_000 + 7 * DAY));
        c.events
            .push(ev("3", "supervise", hlc(3_000 + 8 * DAY), &[]));
        assert!(fold(&c, &d).supervised);
        c.events.push(ev(
            "4",
            "resolve",
            hlc(4_000 + 8 * DAY),
            &[("result", "mediated")],
        ));
        let s = fold(&c, &d);
        assert_eq!(s.due, None);
        assert!(!s.overdue_at(i64::MAX));
    }

    #[test]
    fn escalation_climbs_one_level_at_a_time_and_stops_at_the_county() {
        let mut events = vec![ev("0", "report", 1, &[])];
        for n in 1..=4 {
            events.push(ev(
                &format!("e{n}"),
                "escalate",
                n + 1,
                &[("reason", "复杂")],
            ));
        }
        let s = fold(&case(events), &Deadlines::default());
        assert_eq!(s.level, Level::County);
        assert_eq!(s.not_applied().count(), 1);
    }
}
