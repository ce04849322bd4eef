//! Roles and the kinds of case event: the names every other module
//! speaks of, with nothing below them (the policy decides what a role may
//! do; the workflow, when an event applies).

use std::fmt;
use std::str::FromStr;

/// A user's role (see `permissions.md`). Every role but `mediator` and
/// `department` works over an area: the subtrees of the org units the user
/// is bound to.
///
/// | role | |
/// |---|---|
/// | `grid_worker` | 网格员: keeps the households of their area, records visits, reports cases |
/// | `mediator` | 调解员: handles the cases assigned to them |
/// | `community_staff` | 社区/村干部: manages everything in their area, special-population details included |
/// | `centre_staff` | 综治中心: the same, at township or county level |
/// | `department` | 职能部门: handles the cases dispatched to it |
/// | `supervisor` | 领导/督导: reads their area, except special-population details; never writes |
/// | `admin` | 管理员: everything in their area; the org units, users, devices and quarantined changes of their area |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "utoipa",
    derive(utoipa::ToSchema),
    schema(rename_all = "snake_case")
)]
pub enum Role {
    /// 网格员: visits households, keeps records, reports cases.
    GridWorker,
    /// 调解员: handles the cases assigned to them.
    Mediator,
    /// 社区/村干部: triage and management at community level.
    CommunityStaff,
    /// 综治中心: township or county governance centre.
    CentreStaff,
    /// 职能部门: handles the cases dispatched to it.
    Department,
    /// 领导/督导: reads, never writes.
    Supervisor,
    /// 管理员: org units, users, devices; and every record.
    Admin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 7] = [
        Role::GridWorker,
        Role::Mediator,
        Role::CommunityStaff,
        Role::CentreStaff,
        Role::Department,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The name used in tokens, the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::Mediator => "mediator",
            Role::CommunityStaff => "community_staff",
            Role::CentreStaff => "centre_staff",
            Role::Department => "department",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether the role sees everything in its area (rather than only the
    /// cases it reported or handles).
    pub const fn has_area(self) -> bool {
        !matches!(self, Role::Mediator | Role::Department)
    }

    /// Whether the role receives special-population details.
    pub const fn sees_sensitive(self) -> bool {
        matches!(self, Role::CommunityStaff | Role::CentreStaff | Role::Admin)
    }

    /// Staff who manage records of others: move households, edit any case.
    pub const fn is_staff(self) -> bool {
        matches!(self, Role::CommunityStaff | Role::CentreStaff | Role::Admin)
    }

    /// Whether the role may append an event of this kind to a case it can
    /// see. The case workflow refines when an event applies; this decides
    /// who may record it at all.
    pub fn may_record(self, event_kind: &str) -> bool {
        match self {
            Role::GridWorker => matches!(
                event_kind,
                "report" | "comment" | "follow_up" | "mediate" | "resolve"
            ),
            Role::Mediator => matches!(event_kind, "comment" | "mediate" | "resolve" | "return"),
            Role::Department => matches!(event_kind, "comment" | "mediate" | "resolve" | "return"),
            Role::CommunityStaff | Role::CentreStaff | Role::Admin => {
                EVENT_KINDS.contains(&event_kind)
            }
            Role::Supervisor => false,
        }
    }
}

/// The kinds of case event.
pub const EVENT_KINDS: [&str; 13] = [
    "report",
    "accept",
    "classify",
    "assign",
    "escalate",
    "return",
    "mediate",
    "resolve",
    "reopen",
    "follow_up",
    "close",
    "comment",
    "supervise",
];

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}
