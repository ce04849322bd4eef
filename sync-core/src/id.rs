//! Record identifiers: globally unique, stable for the life of a record, and
//! self-describing, so that any log line, URL or database row says which kind
//! of record it names.

use std::fmt;
use std::str::FromStr;

/// The kinds of record gridsync keeps, one Automerge document each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// A household (户): address, members, tags, notes.
    Household,
    /// A case (事件): dispute, hazard or request, with its event log.
    Case,
    /// One visit (走访) by a worker to a household.
    Visit,
    /// A household's special-population details (特殊人群), kept apart so
    /// that only roles allowed to see them receive them.
    Sensitive,
}

impl RecordKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Household,
        RecordKind::Case,
        RecordKind::Visit,
        RecordKind::Sensitive,
    ];

    /// The prefix that starts every id of this kind.
    pub const fn prefix(self) -> &'static str {
        match self {
            RecordKind::Household => "hh",
            RecordKind::Case => "cs",
            RecordKind::Visit => "vs",
            RecordKind::Sensitive => "hs",
        }
    }

    /// The name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Household => "household",
            RecordKind::Case => "case",
            RecordKind::Visit => "visit",
            RecordKind::Sensitive => "sensitive",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record id such as `hh_0f3a…` (a kind prefix, `_`, 32 lowercase hex
/// digits of a random 128-bit value).
///
/// The only constructors check the format, so a `RecordId` in hand is always
/// well formed and its kind is always known.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    kind: RecordKind,
    value: u128,
}

/// Why a string is not a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid record id {input:?}: expected <hh|cs|vs|hs>_<32 lowercase hex digits>")]
pub struct InvalidRecordId {
    input: String,
}

impl RecordId {
    /// A fresh random id of the given kind.
    pub fn new(kind: RecordKind) -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system has no random source");
        Self::from_parts(kind, u128::from_be_bytes(bytes))
    }

    /// An id from a known value: for deterministic test and benchmark data.
    pub const fn from_parts(kind: RecordKind, value: u128) -> Self {
        Self { kind, value }
    }

    /// The kind of record this id names.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{:032x}", self.kind.prefix(), self.value)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RecordId {
    type Err = InvalidRecordId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidRecordId {
            input: s.chars().take(80).collect(),
        };
        let (prefix, hex) = s.split_once('_').ok_or_else(invalid)?;
        let kind = RecordKind::from_prefix(prefix).ok_or_else(invalid)?;
        let well_formed = hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(invalid());
        }
        let value = u128::from_str_radix(hex, 16).map_err(|_| invalid())?;
        Ok(Self { kind, value })
    }
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RecordId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for kind in RecordKind::ALL {
            let id = RecordId::new(kind);
            let text = id.to_string();
            assert!(text.starts_with(kind.prefix()));
            assert_eq!(text.len(), 3 + 32);
            assert_eq!(text.parse::<RecordId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "hh",
            "hh_",
            "xx_0123456789abcdef0123456789abcdef",
            "hh_0123456789ABCDEF0123456789abcdef",
            "hh_0123456789abcdef0123456789abcde",
            "hh_0123456789abcdef0123456789abcdef0",
            "hh_+123456789abcdef0123456789abcdef",
            "hh-0123456789abcdef0123456789abcdef",
        ] {
            assert!(bad.parse::<RecordId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(
            RecordId::new(RecordKind::Case),
            RecordId::new(RecordKind::Case)
        );
    }
}
