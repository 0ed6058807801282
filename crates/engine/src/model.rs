//! Domain types of two-way sync, shared by the merge, the two-way pipelines and the outbox
//! coalescer: the two sides, field values in HubSpot's canonical string form, per-side source versions,
//! observations of a side's current state, and the shadow copy (the last state both sides
//! agreed on). No I/O: the store and the HubSpot client convert to and from these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One of the two systems kept in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The HubSpot portal.
    HubSpot,
    /// The PostgreSQL database.
    Postgres,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn other(self) -> Side {
        match self {
            Side::HubSpot => Side::Postgres,
            Side::Postgres => Side::HubSpot,
        }
    }

    /// The name used in config, the CLI (`--take hubspot|postgres`) and the conflicts table.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Side::HubSpot => "hubspot",
            Side::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field's value in HubSpot's canonical string form; `None` is "no value" (SQL NULL,
/// HubSpot's empty string). The store converts SQL values into this form
/// (`hubsync_store::values`), so equal values compare equal as strings on both sides.
pub type FieldValue = Option<String>;

/// When and in which order a side made a change.
///
/// - HubSpot: `at_ms` is the property's timestamp (`propertiesWithHistory[].timestamp`, or a
///   webhook's `occurredAt`) in ms since the Unix epoch; `seq` is 0 (use [`Version::hubspot`]).
/// - PostgreSQL: `at_ms` is the commit (or capture) time in ms; `seq` is the commit order
///   (outbox id / txid, increasing per record in commit order; use [`Version::postgres`]).
///
/// Within one side versions are ordered by `(seq, at_ms)`, which for HubSpot (seq 0) is its
/// timestamp and for PostgreSQL its commit order, immune to the database clock stepping back.
/// Across sides only `at_ms` is comparable, under the skew rule of [`crate::clock::SkewRule`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Version {
    /// Commit order within the side (0 for HubSpot). Compared first within a side.
    pub seq: i64,
    /// Wall-clock time of the change at its source, ms since the Unix epoch.
    pub at_ms: i64,
}

impl Version {
    /// A HubSpot version: a property timestamp in ms.
    #[must_use]
    pub fn hubspot(at_ms: i64) -> Version {
        Version { seq: 0, at_ms }
    }

    /// A PostgreSQL version: commit time in ms and commit order.
    #[must_use]
    pub fn postgres(at_ms: i64, seq: i64) -> Version {
        Version { seq, at_ms }
    }
}

/// A side's current value of one field together with the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observed {
    /// The value, canonical form.
    pub value: FieldValue,
    /// The source version of the write that produced this value.
    pub version: Version,
}

impl Observed {
    /// Shorthand constructor.
    #[must_use]
    pub fn new(value: FieldValue, version: Version) -> Observed {
        Observed { value, version }
    }
}

/// One side's value of one field of one record, as seen by a reader (a batch read, a
/// re-read after a webhook, a coalesced outbox entry). Used where observations come as a
/// flat stream; [`SideRecord::from_observations`] groups them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Observation {
    /// Which side holds this value.
    pub side: Side,
    /// The property / column name.
    pub field: String,
    /// The value, canonical form.
    pub value: FieldValue,
    /// The source version of the write.
    pub version: Version,
}

/// A field conflict left open for a person to decide (`manual` policy): both sides' values
/// are kept here so a later merge that observes only one side still knows the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenConflict {
    /// HubSpot's value when the conflict was (last) seen.
    pub hubspot: Observed,
    /// PostgreSQL's value when the conflict was (last) seen.
    pub postgres: Observed,
    /// True if the two sides never agreed on a value before the conflict (the field was first
    /// seen on both sides with different values): there is no base to diff against, so the
    /// conflict stays open until the sides agree or a person or policy decides.
    #[serde(default)]
    pub no_base: bool,
}

/// The shadow copy of one field: the last value both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShadowField {
    /// The agreed value.
    pub value: FieldValue,
    /// The newest HubSpot version seen for this field (a value, an echo, an acknowledgement).
    pub hubspot_version: Option<Version>,
    /// The newest PostgreSQL version seen for this field.
    pub postgres_version: Option<Version>,
    /// When the agreement was reached (the merge's `now`, ms since the epoch).
    pub agreed_at_ms: i64,
    /// Which side the agreed value came from; `None` when both sides reached it independently.
    pub origin: Option<Side>,
    /// A `manual` conflict waiting for a decision, if any.
    pub conflict: Option<OpenConflict>,
}

impl ShadowField {
    /// A field with no agreed value yet and no versions seen, stamped `agreed_at_ms`.
    #[must_use]
    pub fn blank(agreed_at_ms: i64) -> ShadowField {
        ShadowField {
            value: None,
            hubspot_version: None,
            postgres_version: None,
            agreed_at_ms,
            origin: None,
            conflict: None,
        }
    }

    /// The newest version seen on `side`.
    #[must_use]
    pub fn version(&self, side: Side) -> Option<Version> {
        match side {
            Side::HubSpot => self.hubspot_version,
            Side::Postgres => self.postgres_version,
        }
    }

    /// Records that `side` is known to hold the shadow value at `version` (an echo, or the
    /// acknowledgement of hubsync's own write, e.g. the `updatedAt` HubSpot returns for a
    /// batch update). Keeps the newer version, so a late duplicate of an older value is
    /// recognised as stale and never flips the field back (lessons item 15).
    pub fn acknowledge(&mut self, side: Side, version: Version) {
        let slot = match side {
            Side::HubSpot => &mut self.hubspot_version,
            Side::Postgres => &mut self.postgres_version,
        };
        *slot = Some(slot.map_or(version, |v| v.max(version)));
    }
}

/// What one side currently says about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideRecord {
    /// The record exists; these fields were observed (a subset is fine: an unobserved field
    /// is assumed unchanged since the shadow).
    Live(BTreeMap<String, Observed>),
    /// The record was deleted (PostgreSQL `DELETE` or `archived_at` set) or archived in
    /// HubSpot, at this version.
    Archived(Version),
    /// The record was explicitly brought back (HubSpot `*.restore`, PostgreSQL `archived_at`
    /// cleared or the row inserted again) at this version, with the fields observed.
    Restored(Version, BTreeMap<String, Observed>),
}

impl SideRecord {
    /// Groups a flat stream of one side's observations into a live record, keeping for each
    /// field the newest version (equal versions: the greater value, so the result does not
    /// depend on the order the observations arrive in). Observations of the other side are
    /// skipped.
    #[must_use]
    pub fn from_observations<'a>(
        side: Side,
        observations: impl IntoIterator<Item = &'a Observation>,
    ) -> SideRecord {
        let mut fields: BTreeMap<String, Observed> = BTreeMap::new();
        for obs in observations.into_iter().filter(|o| o.side == side) {
            let candidate = Observed::new(obs.value.clone(), obs.version);
            match fields.get_mut(&obs.field) {
                Some(current) => {
                    let newer =
                        (candidate.version, &candidate.value) > (current.version, &current.value);
                    if newer {
                        *current = candidate;
                    }
                }
                None => {
                    fields.insert(obs.field.clone(), candidate);
                }
            }
        }
        SideRecord::Live(fields)
    }

    /// The version of an archive or restore, if this is one.
    #[must_use]
    pub fn lifecycle_version(&self) -> Option<Version> {
        match self {
            SideRecord::Archived(v) | SideRecord::Restored(v, _) => Some(*v),
            SideRecord::Live(_) => None,
        }
    }

    /// The observed fields, if the record is live or restored.
    #[must_use]
    pub fn fields(&self) -> Option<&BTreeMap<String, Observed>> {
        match self {
            SideRecord::Live(f) | SideRecord::Restored(_, f) => Some(f),
            SideRecord::Archived(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_commit_order_first() {
        assert!(Version::postgres(500, 2) > Version::postgres(900, 1));
        assert!(Version::hubspot(2) > Version::hubspot(1));
    }

    #[test]
    fn acknowledge_keeps_the_newest_version() {
        let mut f = ShadowField {
            value: Some("a".into()),
            hubspot_version: Some(Version::hubspot(10)),
            postgres_version: None,
            agreed_at_ms: 0,
            origin: None,
            conflict: None,
        };
        f.acknowledge(Side::HubSpot, Version::hubspot(5));
        assert_eq!(f.hubspot_version, Some(Version::hubspot(10)));
        f.acknowledge(Side::Postgres, Version::postgres(1, 7));
        assert_eq!(f.version(Side::Postgres), Some(Version::postgres(1, 7)));
    }

    #[test]
    fn grouping_keeps_newest_regardless_of_order() {
        let a = Observation {
            side: Side::HubSpot,
            field: "email".into(),
            value: Some("a@x".into()),
            version: Version::hubspot(1),
        };
        let b = Observation {
            value: Some("b@x".into()),
            version: Version::hubspot(2),
            ..a.clone()
        };
        let other = Observation {
            side: Side::Postgres,
            ..a.clone()
        };
        let one = SideRecord::from_observations(Side::HubSpot, [&a, &b, &other]);
        let two = SideRecord::from_observations(Side::HubSpot, [&b, &other, &a]);
        assert_eq!(one, two);
        let fields = one.fields().cloned().unwrap_or_default();
        assert_eq!(fields["email"].value.as_deref(), Some("b@x"));
    }
}
