//! The bottom layer: the names and small values every other layer of the
//! server shares (the kinds of org unit, where a quarantined change
//! stands, the clock and random ids), with nothing of the server below
//! them. Records themselves, roles and the policy live in `sync-core`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The level of an org unit. The server does not enforce an order of
/// levels in the tree.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum OrgUnitKind {
    /// 县: the whole tree of a deployment, usually.
    County,
    /// 乡镇/街道.
    Township,
    /// 社区/村.
    Community,
    /// 网格: a few hundred households, one or two grid workers.
    Grid,
}

impl OrgUnitKind {
    /// Every level, from the top.
    pub const ALL: [OrgUnitKind; 4] = [
        OrgUnitKind::County,
        OrgUnitKind::Township,
        OrgUnitKind::Community,
        OrgUnitKind::Grid,
    ];

    /// The name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrgUnitKind::County => "county",
            OrgUnitKind::Township => "township",
            OrgUnitKind::Community => "community",
            OrgUnitKind::Grid => "grid",
        }
    }
}

/// Where a quarantined change stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum QuarantineStatus {
    /// Waiting for an admin's decision.
    Pending,
    /// Merged into the shared history.
    Approved,
    /// Dropped for good.
    Discarded,
}

impl QuarantineStatus {
    /// Every status.
    pub const ALL: [QuarantineStatus; 3] = [
        QuarantineStatus::Pending,
        QuarantineStatus::Approved,
        QuarantineStatus::Discarded,
    ];

    /// The name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            QuarantineStatus::Pending => "pending",
            QuarantineStatus::Approved => "approved",
            QuarantineStatus::Discarded => "discarded",
        }
    }
}

/// A name that is none of an enum's values; says which are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {expected}")]
pub struct UnknownName {
    /// The values, for people.
    pub expected: String,
}

macro_rules! named {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        expected: <$t>::ALL.map(<$t>::as_str).join(", "),
                    })
            }
        }
    };
}
named!(OrgUnitKind);
named!(QuarantineStatus);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `n` random bytes from the OS, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// The authenticated user and device behind a request, as the database
/// says now (a role changed since the token was issued counts at once).
#[derive(Debug, Clone)]
pub struct AuthDevice {
    /// User id.
    pub user_id: String,
    /// Device id.
    pub device_id: String,
    /// The user's role.
    pub role: sync_core::policy::Role,
    /// The user's scope version.
    pub scope_version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_say_what_is_expected() {
        for kind in OrgUnitKind::ALL {
            assert_eq!(kind.as_str().parse::<OrgUnitKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for status in QuarantineStatus::ALL {
            assert_eq!(status.as_str().parse::<QuarantineStatus>(), Ok(status));
        }
        assert_eq!(
            "village".parse::<OrgUnitKind>().unwrap_err().to_string(),
            "must be one of county, township, community, grid"
        );
    }
}
