//! Engine-side typed settings of a sync: which objects, in which direction, with which
//! properties, and the knobs of the HubSpot → PostgreSQL pipelines (page sizes, lookback,
//! sweep intervals, hard delete).
//!
//! The binary validates its configuration file and converts it into these; the engine never
//! sees raw strings for durations or directions.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::Side;
pub use crate::policy::Direction;

/// Whether `direction` copies HubSpot's records into PostgreSQL. A `postgres-to-hubspot`
/// object still gets its table (it is the source), but nothing is read into it.
pub fn reads_hubspot(direction: Direction) -> bool {
    direction.allows_from(Side::HubSpot)
}

/// Which properties of an object are synced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PropertySelection {
    /// Every property HubSpot defines (new ones join on the next pass).
    #[default]
    All,
    /// Only these: no other property value is ever requested from HubSpot (data
    /// minimisation).
    Only(BTreeSet<String>),
    /// Every property except these (`properties = "all"` with properties excluded at run
    /// time, [`crate::overrides`]).
    AllExcept(BTreeSet<String>),
}

impl PropertySelection {
    /// Whether `property` is synced.
    pub fn allows(&self, property: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(property),
            Self::AllExcept(names) => !names.contains(property),
        }
    }
}

/// Settings of one synced object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSettings {
    /// The object as HubSpot names it (`contacts`, `companies`, a custom object's name).
    pub name: String,
    /// Which way it syncs.
    pub direction: Direction,
    /// Which properties leave HubSpot.
    pub properties: PropertySelection,
    /// Delete rows of records deleted in HubSpot instead of setting `archived_at`.
    pub hard_delete: bool,
    /// Records per list page during backfill (HubSpot's maximum is 100).
    pub list_page_size: u32,
    /// Ids per v4 association batch read (HubSpot's maximum is 1,000).
    pub association_batch: usize,
    /// Backfill batches written at the same time, each on its own connection (commits
    /// stay in batch order; 1: one transaction after the other). Capped by the pool.
    pub backfill_writers: usize,
    /// How far behind the high-water mark each incremental search starts again, to catch
    /// records the search index shows late (lessons.md 10).
    pub lookback: Duration,
    /// Margin kept between the high-water mark and the pass's start, so that updates in
    /// flight at HubSpot when the pass began are read next time (lessons.md 11).
    pub clock_skew: Duration,
    /// How often the archived listing is swept for deletes (lessons.md 7). Zero: every pass.
    pub archived_sweep_every: Duration,
    /// How often every association of the object is re-read, since association changes do
    /// not bump modified dates (lessons.md 8). Zero: every pass.
    pub association_sweep_every: Duration,
    /// How often the full id set is compared with HubSpot's to find records that vanished
    /// without appearing in the archived listing (purged, GDPR-deleted). Zero: every pass.
    pub id_reconcile_every: Duration,
    /// Per-field direction and conflict policy for two-way objects (`conflict = …`,
    /// `[object.fields.NAME]`); used by [`crate::two_way`].
    pub rules: crate::policy::FieldRules,
}

impl ObjectSettings {
    /// Defaults for `name`: read from HubSpot, all properties, soft deletes, 100 records per
    /// page, 1,000 ids per association read, 2 backfill writers, 2 min lookback, 1 s skew margin, archived sweep
    /// every 5 min, association sweep every hour, id reconciliation daily.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            direction: Direction::HubSpotToPostgres,
            properties: PropertySelection::All,
            hard_delete: false,
            list_page_size: 100,
            association_batch: 1_000,
            backfill_writers: 2,
            lookback: Duration::from_secs(120),
            clock_skew: Duration::from_secs(1),
            archived_sweep_every: Duration::from_secs(300),
            association_sweep_every: Duration::from_secs(3_600),
            id_reconcile_every: Duration::from_secs(86_400),
            rules: crate::policy::FieldRules::default(),
        }
    }
}

/// Settings of a whole sync: the target schema and the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Schema of the synced tables (`hubspot`).
    pub schema: String,
    /// The objects, in configuration order (the engine orders parents first itself).
    pub objects: Vec<ObjectSettings>,
    /// Who takes leases on units of work (host and process id, by default).
    pub holder: String,
    /// How long a lease on one unit of work lasts unless renewed.
    pub lease_ttl: Duration,
}

impl SyncSettings {
    /// Settings for `schema` and `objects`, holder `<host>:<pid>`, 60 s leases (renewed
    /// every 20 s while work runs).
    pub fn new(schema: &str, objects: Vec<ObjectSettings>) -> Self {
        Self {
            schema: schema.to_owned(),
            objects,
            holder: format!("{}:{}", host_name(), std::process::id()),
            lease_ttl: Duration::from_secs(60),
        }
    }

    /// The settings of `object`, if it is configured.
    pub fn object(&self, object: &str) -> Option<&ObjectSettings> {
        self.objects.iter().find(|o| o.name == object)
    }
}

/// This machine's name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_directions_read_hubspot() {
        assert!(reads_hubspot(Direction::TwoWay));
        assert!(reads_hubspot(Direction::HubSpotToPostgres));
        assert!(!reads_hubspot(Direction::PostgresToHubSpot));
    }

    #[test]
    fn allowlist() {
        let only = PropertySelection::Only(["email".to_owned()].into());
        assert!(only.allows("email"));
        assert!(!only.allows("phone"));
        assert!(PropertySelection::All.allows("phone"));
    }
}
