//! Which way each field may flow and who wins a conflict: the config's `direction` and
//! `conflict` keys per object, per-field overrides (`[object.fields.NAME]`), and HubSpot's
//! read-only / calculated properties, which are always `hubspot-to-postgres` whatever the
//! config says (issue 3 item 4).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::SkewRule;
use crate::model::Side;

/// A config value that is not one of the documented spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `conflict = "…"` is not a known policy.
    #[error(
        "unknown conflict policy {0:?}: expected last-write-wins, hubspot-wins, postgres-wins or manual"
    )]
    UnknownPolicy(String),
    /// `direction = "…"` is not a known direction.
    #[error(
        "unknown direction {0:?}: expected hubspot-to-postgres, postgres-to-hubspot or two-way"
    )]
    UnknownDirection(String),
}

/// How a field changed on both sides to different values is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConflictPolicy {
    /// The later write by source version wins, under the skew rule ([`crate::clock`]).
    #[serde(rename = "last-write-wins")]
    LastWriteWins,
    /// HubSpot's value wins.
    #[serde(rename = "hubspot-wins")]
    HubSpotWins,
    /// PostgreSQL's value wins.
    #[serde(rename = "postgres-wins")]
    PostgresWins,
    /// Nothing is written; both values go to the conflicts table for a person to decide.
    #[serde(rename = "manual")]
    Manual,
}

impl ConflictPolicy {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::LastWriteWins => "last-write-wins",
            ConflictPolicy::HubSpotWins => "hubspot-wins",
            ConflictPolicy::PostgresWins => "postgres-wins",
            ConflictPolicy::Manual => "manual",
        }
    }

    /// The policy under which `side` always wins: what `hubsync conflicts resolve ID --take
    /// SIDE` merges with.
    #[must_use]
    pub fn side_wins(side: Side) -> ConflictPolicy {
        match side {
            Side::HubSpot => ConflictPolicy::HubSpotWins,
            Side::Postgres => ConflictPolicy::PostgresWins,
        }
    }
}

impl FromStr for ConflictPolicy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ConflictPolicy::LastWriteWins,
            ConflictPolicy::HubSpotWins,
            ConflictPolicy::PostgresWins,
            ConflictPolicy::Manual,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| PolicyError::UnknownPolicy(s.to_owned()))
    }
}

impl std::fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way changes may flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// HubSpot is the source; PostgreSQL mirrors it.
    #[serde(rename = "hubspot-to-postgres")]
    HubSpotToPostgres,
    /// PostgreSQL is the source; HubSpot follows it.
    #[serde(rename = "postgres-to-hubspot")]
    PostgresToHubSpot,
    /// Changes flow both ways; conflicts go to the policy.
    #[serde(rename = "two-way")]
    TwoWay,
}

impl Direction {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::HubSpotToPostgres => "hubspot-to-postgres",
            Direction::PostgresToHubSpot => "postgres-to-hubspot",
            Direction::TwoWay => "two-way",
        }
    }

    /// True if a change made on `from` may be copied to the other side.
    #[must_use]
    pub fn allows_from(self, from: Side) -> bool {
        match self {
            Direction::TwoWay => true,
            Direction::HubSpotToPostgres => from == Side::HubSpot,
            Direction::PostgresToHubSpot => from == Side::Postgres,
        }
    }

    /// The only side allowed to change the field, for a one-way direction.
    #[must_use]
    pub fn source(self) -> Option<Side> {
        match self {
            Direction::TwoWay => None,
            Direction::HubSpotToPostgres => Some(Side::HubSpot),
            Direction::PostgresToHubSpot => Some(Side::Postgres),
        }
    }
}

impl FromStr for Direction {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Direction::HubSpotToPostgres,
            Direction::PostgresToHubSpot,
            Direction::TwoWay,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
        .ok_or_else(|| PolicyError::UnknownDirection(s.to_owned()))
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effective rule for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldRule {
    /// Which way the field may flow.
    pub direction: Direction,
    /// How a two-way conflict on it is resolved.
    pub policy: ConflictPolicy,
}

/// A per-field override from `[object.fields.NAME]`; unset keys inherit the object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct FieldOverride {
    /// `direction = "…"`, if set.
    pub direction: Option<Direction>,
    /// `conflict = "…"`, if set.
    pub policy: Option<ConflictPolicy>,
}

/// The rules of one object: the object's default, per-field overrides, and the HubSpot
/// properties that are read-only or calculated (from the property metadata:
/// `modificationMetadata.readOnlyValue` or `calculated`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldRules {
    object: Option<FieldRule>,
    overrides: BTreeMap<String, FieldOverride>,
    read_only: BTreeSet<String>,
    #[serde(default)]
    skew: Option<SkewRule>,
}

impl FieldRules {
    /// Rules with the object's `direction` and `conflict` and no overrides.
    #[must_use]
    pub fn new(object: FieldRule) -> FieldRules {
        FieldRules {
            object: Some(object),
            ..FieldRules::default()
        }
    }

    /// Adds (or replaces) the override for `field`.
    #[must_use]
    pub fn with_override(mut self, field: impl Into<String>, rule: FieldOverride) -> FieldRules {
        self.overrides.insert(field.into(), rule);
        self
    }

    /// Sets the clock-skew rule `last-write-wins` orders the two sides' writes by (default
    /// [`SkewRule::default`]: a 1 s window, HubSpot wins ties).
    #[must_use]
    pub fn with_skew(mut self, skew: SkewRule) -> FieldRules {
        self.skew = Some(skew);
        self
    }

    /// The clock-skew rule of `last-write-wins`.
    #[must_use]
    pub fn skew(&self) -> SkewRule {
        self.skew.unwrap_or_default()
    }

    /// The override configured for `field`, if any.
    #[must_use]
    pub fn override_for(&self, field: &str) -> Option<FieldOverride> {
        self.overrides.get(field).copied()
    }

    /// Marks HubSpot properties as read-only/calculated: forced to `hubspot-to-postgres`.
    #[must_use]
    pub fn with_read_only<S: Into<String>>(
        mut self,
        fields: impl IntoIterator<Item = S>,
    ) -> FieldRules {
        self.read_only.extend(fields.into_iter().map(Into::into));
        self
    }

    /// The object-level rule (record creates and deletes follow its direction). A
    /// default-constructed `FieldRules` is `two-way` / `last-write-wins`.
    #[must_use]
    pub fn object(&self) -> FieldRule {
        self.object.unwrap_or(FieldRule {
            direction: Direction::TwoWay,
            policy: ConflictPolicy::LastWriteWins,
        })
    }

    /// True if `field` is a HubSpot read-only or calculated property.
    #[must_use]
    pub fn is_read_only(&self, field: &str) -> bool {
        self.read_only.contains(field)
    }

    /// The effective rule for `field`: the override's keys over the object's, and
    /// `hubspot-to-postgres` for read-only properties whatever was configured.
    #[must_use]
    pub fn resolve(&self, field: &str) -> FieldRule {
        let object = self.object();
        let over = self.overrides.get(field).copied().unwrap_or_default();
        let direction = if self.is_read_only(field) {
            Direction::HubSpotToPostgres
        } else {
            over.direction.unwrap_or(object.direction)
        };
        FieldRule {
            direction,
            policy: over.policy.unwrap_or(object.policy),
        }
    }

    /// Configured overrides that ask to write a read-only property to HubSpot; `hubsync
    /// check` can warn about them (they are forced to `hubspot-to-postgres`).
    pub fn ignored_overrides(&self) -> impl Iterator<Item = &str> {
        self.overrides
            .iter()
            .filter(|(name, o)| {
                self.is_read_only(name)
                    && o.direction.is_some_and(|d| d.allows_from(Side::Postgres))
            })
            .map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_spellings_round_trip() {
        for s in ["last-write-wins", "hubspot-wins", "postgres-wins", "manual"] {
            assert_eq!(
                s.parse::<ConflictPolicy>().map(|p| p.to_string()),
                Ok(s.to_owned())
            );
        }
        for s in ["hubspot-to-postgres", "postgres-to-hubspot", "two-way"] {
            assert_eq!(
                s.parse::<Direction>().map(|d| d.to_string()),
                Ok(s.to_owned())
            );
        }
        assert!(matches!(
            "lww".parse::<ConflictPolicy>(),
            Err(PolicyError::UnknownPolicy(_))
        ));
        assert!(matches!(
            "both".parse::<Direction>(),
            Err(PolicyError::UnknownDirection(_))
        ));
    }

    #[test]
    fn serde_uses_config_spellings() {
        let p: ConflictPolicy =
            serde_json::from_str("\"hubspot-wins\"").unwrap_or(ConflictPolicy::Manual);
        assert_eq!(p, ConflictPolicy::HubSpotWins);
        let d: Result<Direction, _> = serde_json::from_str("\"two-way\"");
        assert_eq!(d.ok(), Some(Direction::TwoWay));
    }

    #[test]
    fn overrides_and_read_only_resolve() {
        let rules = FieldRules::new(FieldRule {
            direction: Direction::TwoWay,
            policy: ConflictPolicy::LastWriteWins,
        })
        .with_override(
            "lifecyclestage",
            FieldOverride {
                policy: Some(ConflictPolicy::HubSpotWins),
                direction: None,
            },
        )
        .with_override(
            "hs_lead_status",
            FieldOverride {
                direction: Some(Direction::TwoWay),
                policy: None,
            },
        )
        .with_read_only(["createdate", "hs_lead_status"]);
        assert_eq!(
            rules.resolve("lifecyclestage"),
            FieldRule {
                direction: Direction::TwoWay,
                policy: ConflictPolicy::HubSpotWins
            }
        );
        assert_eq!(rules.resolve("email"), rules.object());
        assert_eq!(
            rules.resolve("createdate").direction,
            Direction::HubSpotToPostgres
        );
        assert_eq!(
            rules.resolve("hs_lead_status").direction,
            Direction::HubSpotToPostgres
        );
        assert_eq!(
            rules.ignored_overrides().collect::<Vec<_>>(),
            vec!["hs_lead_status"]
        );
    }

    #[test]
    fn direction_allows() {
        assert!(Direction::TwoWay.allows_from(Side::Postgres));
        assert!(!Direction::HubSpotToPostgres.allows_from(Side::Postgres));
        assert!(!Direction::PostgresToHubSpot.allows_from(Side::HubSpot));
        assert_eq!(Direction::PostgresToHubSpot.source(), Some(Side::Postgres));
    }
}
