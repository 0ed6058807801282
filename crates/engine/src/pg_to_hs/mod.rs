//! PostgreSQL → HubSpot writeback: the outbox (filled by capture triggers) is claimed,
//! coalesced per record, merged field by field against the shadow copy, and written with
//! HubSpot's batch endpoints — creates as upserts keyed on the unique `hubsync_row_id`
//! property (no duplicate after a crash), updates of only the changed fields, archives for
//! `DELETE` or `archived_at`, and primary-association changes through associations v4;
//! then the application's junction-row changes of the object's pairs ([`associations`]).
//!
//! Per record, the HubSpot id, the shadow, `hubsync.record_state` (synced / failed with
//! HubSpot's message) and the outbox acknowledgement commit in one transaction after HubSpot
//! accepted the write (lesson 14). A record HubSpot rejects (a 207 item error, or found by
//! bisecting a batch HubSpot rejected whole) is marked failed and its entries kept; the
//! others go on (lessons 25, 26). A failed record is retried when its row changes again.

mod associations;
mod bisect;
mod links;
mod outcome;
mod plan;
mod send;
mod verify;

use std::collections::HashMap;
use std::time::Duration;

use hubsync_hubspot::{HubSpotClient, PropertyCreate, PropertyGroup};
use hubsync_store::{
    GenericClient, Store, StoreError, install_capture,
    rows::{StoredRow, read_rows_by_row_ids},
    state::outbox,
};
use uuid::Uuid;

use crate::two_way::{ROW_ID_PROPERTY, TwoWayError, TwoWayObject};

pub use send::CrashPoint;

/// Group hubsync's own HubSpot properties live in.
const PROPERTY_GROUP: &str = "hubsync";

/// How [`drain`] works.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Who claims outbox entries (recorded in `hubsync.outbox.claimed_by`).
    pub consumer: String,
    /// Records claimed per round.
    pub records_per_claim: i64,
    /// How long a claim lasts before another consumer may take the entries over (a crashed
    /// writer's entries come back after it).
    pub lease: Duration,
    /// HubSpot batch calls in flight at once (the rate governor still paces them).
    pub concurrency: usize,
    /// After a HubSpot call failed as a whole, when its entries may be tried again.
    pub retry_after: Duration,
    /// Two-way objects: records HubSpot modified within this window that have pending
    /// changes are read and merged before writing, so a HubSpot edit the pull has not seen
    /// yet is never overwritten silently (see `verify`). Zero turns it off.
    pub verify_recent: Duration,
    /// Test hook: stop as if the process died at this point.
    #[doc(hidden)]
    pub crash_at: Option<CrashPoint>,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            consumer: format!("hubsync-{}", std::process::id()),
            records_per_claim: 10_000,
            lease: Duration::from_secs(300),
            concurrency: 4,
            retry_after: Duration::from_secs(30),
            verify_recent: Duration::from_secs(300),
            crash_at: None,
        }
    }
}

/// What [`drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Records created in HubSpot.
    pub created: u64,
    /// Records whose changed fields were updated in HubSpot.
    pub updated: u64,
    /// Records archived in HubSpot.
    pub archived: u64,
    /// Associations written (primary-column changes and junction-row changes).
    pub associations: u64,
    /// Records whose changes needed no HubSpot write (echoes, held conflicts, no-ops).
    pub unchanged: u64,
    /// Records HubSpot rejected (now `failed` in `hubsync.record_state`).
    pub failed: u64,
    /// Fields not sent because a manual conflict on them is open.
    pub held_conflicts: u64,
    /// Fields PostgreSQL may not change (read-only / one-way) written back over its edit.
    pub reverted: u64,
    /// Outbox entries acknowledged.
    pub entries: u64,
    /// Records read from HubSpot before writing because HubSpot modified them recently.
    pub verified: u64,
}

impl DrainReport {
    /// Adds another report's counts.
    pub fn absorb(&mut self, o: &DrainReport) {
        self.created += o.created;
        self.updated += o.updated;
        self.archived += o.archived;
        self.associations += o.associations;
        self.unchanged += o.unchanged;
        self.failed += o.failed;
        self.held_conflicts += o.held_conflicts;
        self.reverted += o.reverted;
        self.entries += o.entries;
        self.verified += o.verified;
    }

    /// HubSpot record writes made (creates, updates, archives).
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.created + self.updated + self.archived
    }
}

/// Gets an object ready for writeback: the unique `hubsync_row_id` property exists in
/// HubSpot (created on first run) and the capture triggers watch the table's current
/// columns. Idempotent; run it at the start of every pass.
///
/// # Errors
/// [`TwoWayError::Unsupported`] when HubSpot has a non-unique property of that name;
/// database and HubSpot errors.
pub async fn prepare(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
) -> Result<(), TwoWayError> {
    ensure_row_id_property(hubspot, object.name()).await?;
    let client = store.client().await?;
    install_capture(&client, &object.capture_spec()).await?;
    associations::prepare(store, object).await?;
    Ok(())
}

/// Makes sure `hubsync_row_id` (unique text) exists on the object in HubSpot, in a
/// `hubsync` property group (falling back to the object's first group).
///
/// # Errors
/// As [`prepare`].
pub async fn ensure_row_id_property(
    hubspot: &HubSpotClient,
    object_type: &str,
) -> Result<(), TwoWayError> {
    if let Ok(p) = hubspot.get_property(object_type, ROW_ID_PROPERTY).await
        && p.has_unique_value
    {
        return Ok(());
    }
    let groups = hubspot.list_property_groups(object_type).await?;
    let group = if groups.iter().any(|g| g.name == PROPERTY_GROUP) {
        PROPERTY_GROUP.to_owned()
    } else {
        let wanted = PropertyGroup {
            name: PROPERTY_GROUP.to_owned(),
            label: "hubsync".to_owned(),
            display_order: -1,
            archived: false,
        };
        match hubspot.create_property_group(object_type, &wanted).await {
            Ok(g) => g.name,
            Err(e) => match groups.first() {
                Some(g) => g.name.clone(),
                None => return Err(e.into()),
            },
        }
    };
    let mut property = PropertyCreate::text(ROW_ID_PROPERTY, "hubsync row id", group);
    property.description = Some(
        "Key of the PostgreSQL row this record is synced with (managed by hubsync; do not edit)"
            .to_owned(),
    );
    property.hidden = true;
    hubspot
        .ensure_unique_property(object_type, &property)
        .await
        .map_err(|e| match e {
            hubsync_hubspot::HubSpotError::InvalidInput(reason) => TwoWayError::Unsupported {
                object: object_type.to_owned(),
                reason,
            },
            other => other.into(),
        })?;
    Ok(())
}

/// Writes every pending change of `object` to HubSpot, round after round, until the outbox
/// has nothing claimable left. Rounds are pipelined (see `send`): sending starts with the
/// first planned batch, and the next round is claimed while the last batches are in flight.
/// Whole-call HubSpot failures put the affected entries back for
/// [`DrainOptions::retry_after`] and are returned after the other work is done.
///
/// # Errors
/// Database errors; the first whole-call HubSpot failure.
pub async fn drain(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    options: &DrainOptions,
) -> Result<DrainReport, TwoWayError> {
    let mut report = DrainReport::default();
    let mut first_error = None;
    let mut entries = Vec::new();
    loop {
        // A prefetched claim skipped the records still in flight: an empty one is asked
        // again before stopping.
        if entries.is_empty() {
            entries = send::claim(store, object, options).await?;
        }
        if entries.is_empty() {
            break;
        }
        if options.crash_at == Some(CrashPoint::AfterClaim) {
            return Ok(report);
        }
        let changes = outbox::coalesce(&entries);
        let round = send::Round::new(store, hubspot, object, options);
        let done = round.run(changes, options.crash_at.is_none()).await?;
        report.absorb(&done.report);
        entries = done.next;
        if first_error.is_none() {
            first_error = done.error;
        }
        if options.crash_at.is_some() || first_error.is_some() {
            round.release(&entries).await?;
            break;
        }
    }
    // Junction rows after the records, so a record created just now has its id.
    let links = associations::drain(store, hubspot, object, options).await;
    match first_error {
        Some(e) => Err(e),
        None => {
            report.absorb(&links?);
            Ok(report)
        }
    }
}

/// The current rows of the changed records, by row key.
async fn current_rows(
    client: &impl GenericClient,
    object: &TwoWayObject,
    changes: &[outbox::RecordChange],
) -> Result<HashMap<String, StoredRow>, StoreError> {
    let keys: Vec<Uuid> = changes
        .iter()
        .filter_map(|c| Uuid::parse_str(&c.row_key).ok())
        .collect();
    let rows = read_rows_by_row_ids(client, &object.mapping, &keys).await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.row_id.to_string(), r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// The daemon spawns these futures on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(s: &Store, h: &HubSpotClient, o: &TwoWayObject, opt: &DrainOptions) {
        assert_send(drain(s, h, o, opt));
        assert_send(prepare(s, h, o));
        assert_send(crate::two_way::apply_resolutions(s, h, o));
    }
}
