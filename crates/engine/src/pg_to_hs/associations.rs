//! Junction rows → associations v4. The capture triggers record an application's INSERT,
//! UPDATE and DELETE of junction rows (`contacts_companies`, …) in `hubsync.outbox` under
//! the object `associations:{from}:{to}`; this drains them after the records of an object
//! (so a record created in this pass has its id): INSERT → v4 `batch/create` with the row's
//! type, DELETE → `batch/labels/archive` of that type (HubSpot removes the whole pair when
//! the type is the unlabeled one), UPDATE → both when the pair or type changed. Batches of
//! 100 through the client's governor; a batch HubSpot rejects whole is split down to the
//! row at fault.
//!
//! Both calls are idempotent in HubSpot (creating an existing association or archiving a
//! missing one changes nothing), so a crash after HubSpot accepted a batch is healed by
//! sending it again: no duplicate can arise. After HubSpot accepted a row, in one tagged
//! (uncaptured) transaction: the row is rewritten to what HubSpot has (ids of records named
//! by row id, the resolved type, HubSpot's category and label) so the next pull finds it
//! equal, its entries are acknowledged, and `hubsync.record_state` (object
//! `associations:{from}:{to}`, row key = the junction row's `hubsync_row_id`) says synced —
//! or failed with HubSpot's message, without holding up the other rows. A row naming a
//! record not yet created in HubSpot waits (entries kept, `outbox.last_error` says why).

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use hubsync_hubspot::associations::{MAX_ASSOCIATION_READ_INPUTS, MAX_ASSOCIATION_WRITE_INPUTS};
use hubsync_hubspot::{AssociationCreate, AssociationType, HubSpotClient, HubSpotError};
use hubsync_store::{
    Store, StoreError,
    associations::{
        AssociationMapping, AssociationRow, SentLink, hubspot_ids_of_rows,
        load_association_mappings, record_sent_links, replace_associations,
    },
    install_capture,
    state::{
        audit::{self, AuditEntry, Direction as AuditDirection},
        outbox::{self, RecordChange},
        records::{self, SyncStatus},
    },
    tagged_transaction,
};
use uuid::Uuid;

use super::links::{End, Known, Link, Resolved, Step};
use super::{CrashPoint, DrainOptions, DrainReport};
use crate::hs_to_pg::associations::fetch;
use crate::two_way::{TwoWayError, TwoWayObject};

/// Inputs per association write call (HubSpot's batch limit).
const BATCH: usize = MAX_ASSOCIATION_WRITE_INPUTS;

/// The junction tables `object` is a side of.
async fn junctions_of(
    store: &Store,
    object: &TwoWayObject,
) -> Result<Vec<AssociationMapping>, StoreError> {
    let client = store.client().await?;
    let all = load_association_mappings(&client, &object.mapping.schema).await?;
    Ok(all
        .into_iter()
        .filter(|j| j.from_object == object.name() || j.to_object == object.name())
        .collect())
}

/// Installs the capture triggers on the junction tables `object` is a side of.
///
/// # Errors
/// Database errors.
pub(super) async fn prepare(store: &Store, object: &TwoWayObject) -> Result<(), StoreError> {
    let junctions = junctions_of(store, object).await?;
    let client = store.client().await?;
    for junction in &junctions {
        match install_capture(&client, &junction.capture_spec()).await {
            // A junction table dropped by hand must not stop the object's writeback; the
            // next pull recreates it and the next prepare captures it.
            Err(StoreError::Invalid(reason)) => {
                tracing::warn!(junction = %junction.table, %reason, "junction table not captured");
            }
            other => other?,
        }
    }
    Ok(())
}

/// Sends the pending junction-row changes of every junction `object` is a side of.
/// Whole-call failures leave the entries for [`DrainOptions::retry_after`]; the first is
/// returned after the other junctions are done.
///
/// # Errors
/// Database errors; the first whole-call HubSpot failure.
pub(super) async fn drain(
    store: &Store,
    hubspot: &HubSpotClient,
    object: &TwoWayObject,
    options: &DrainOptions,
) -> Result<DrainReport, TwoWayError> {
    let mut report = DrainReport::default();
    let mut first_error = None;
    for junction in junctions_of(store, object).await? {
        let mut drain = JunctionDrain {
            store,
            hubspot,
            junction: &junction,
            options,
            types: None,
            waiting: Vec::new(),
        };
        let result = drain.run(&mut report).await;
        let deferred = drain.defer_waiting().await;
        match result.and(deferred.map_err(TwoWayError::from)) {
            Ok(()) => {}
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
        if options.crash_at.is_some() {
            break;
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// One junction's drain: claims, plans, sends, records.
struct JunctionDrain<'a> {
    store: &'a Store,
    hubspot: &'a HubSpotClient,
    junction: &'a AssociationMapping,
    options: &'a DrainOptions,
    /// The pair's association types, read once per drain when first needed.
    types: Option<Vec<AssociationType>>,
    /// Changes held in flight until the drain ends (then given back): a record they name
    /// is not created in HubSpot yet.
    waiting: Vec<(RecordChange, String)>,
}

/// What happened to one change.
enum Done {
    Nothing,
    Sent {
        archive: Option<Resolved>,
        create: Option<Resolved>,
    },
    Failed(String),
}

impl JunctionDrain<'_> {
    async fn run(&mut self, report: &mut DrainReport) -> Result<(), TwoWayError> {
        let object = self.junction.outbox_object();
        loop {
            let mut client = self.store.client().await?;
            let entries = outbox::claim(
                &mut client,
                &self.options.consumer,
                Some(&object),
                self.options.records_per_claim,
                self.options.lease,
            )
            .await?;
            drop(client);
            if entries.is_empty() {
                return Ok(());
            }
            if self.options.crash_at == Some(CrashPoint::AfterClaim) {
                return Ok(());
            }
            let changes = outbox::coalesce(&entries);
            let steps = match self.plan(&changes).await {
                Ok(steps) => steps,
                Err(e) => {
                    self.retry_later(&changes, &e).await?;
                    return Err(e);
                }
            };
            let mut done = Vec::new();
            let mut sends = Vec::new();
            for (change, step) in changes.into_iter().zip(steps) {
                match step {
                    Step::Wait(reason) => self.waiting.push((change, reason)),
                    Step::Nothing => done.push((change, Done::Nothing)),
                    Step::Refuse(reason) => done.push((change, Done::Failed(reason))),
                    Step::Send { archive, create } => sends.push((change, archive, create)),
                }
            }
            let failures = match self.send(&sends).await {
                Ok(f) => f,
                Err(e) => {
                    let e = TwoWayError::from(e);
                    let sent: Vec<RecordChange> = sends.into_iter().map(|s| s.0).collect();
                    self.retry_later(&sent, &e).await?;
                    self.record(done, None, report).await?;
                    return Err(e);
                }
            };
            if self.options.crash_at == Some(CrashPoint::AfterHubSpot) {
                return Ok(());
            }
            for (i, (change, archive, create)) in sends.into_iter().enumerate() {
                let outcome = match failures.get(&i) {
                    Some(message) => Done::Failed(message.clone()),
                    None => Done::Sent { archive, create },
                };
                done.push((change, outcome));
            }
            let refreshed = self.refresh(&done).await;
            self.record(done, refreshed, report).await?;
        }
    }

    /// The step of every change (reads the HubSpot ids behind row ids, and the pair's
    /// types once).
    async fn plan(&mut self, changes: &[RecordChange]) -> Result<Vec<Step>, TwoWayError> {
        let j = self.junction;
        let links: Vec<Link> = changes
            .iter()
            .flat_map(|c| c.old_row.iter().chain(c.new_row.iter()))
            .map(|row| Link::of(row, j))
            .collect();
        let rows_of = |pick: fn(&Link) -> End| -> Vec<Uuid> {
            links
                .iter()
                .filter_map(|l| match pick(l) {
                    End::Row(r) => Some(r),
                    _ => None,
                })
                .collect()
        };
        let client = self.store.client().await?;
        let from_rows =
            hubspot_ids_of_rows(&client, &j.schema, &j.from_table, &rows_of(|l| l.from)).await?;
        let to_rows =
            hubspot_ids_of_rows(&client, &j.schema, &j.to_table, &rows_of(|l| l.to)).await?;
        drop(client);
        if self.types.is_none() {
            let types = self
                .hubspot
                .association_labels(&j.from_object, &j.to_object)
                .await?;
            self.types = Some(types);
        }
        let known = Known {
            mapping: j,
            from_rows: &from_rows,
            to_rows: &to_rows,
            types: self.types.as_deref().unwrap_or_default(),
        };
        Ok(changes.iter().map(|c| known.step(c)).collect())
    }

    /// Archives, then creates, in batches; returns HubSpot's message per failed send
    /// (by index into `sends`).
    async fn send(
        &self,
        sends: &[(RecordChange, Option<Resolved>, Option<Resolved>)],
    ) -> Result<HashMap<usize, String>, HubSpotError> {
        let mut failures = HashMap::new();
        for archive in [true, false] {
            let inputs: Vec<(usize, AssociationCreate)> = sends
                .iter()
                .enumerate()
                .filter(|(i, _)| !failures.contains_key(i))
                .filter_map(|(i, (_, old, new))| {
                    let r = if archive { old } else { new };
                    r.as_ref().map(|r| {
                        let input = AssociationCreate {
                            from: u64::try_from(r.from).unwrap_or_default(),
                            to: u64::try_from(r.to).unwrap_or_default(),
                            types: vec![r.spec()],
                        };
                        (i, input)
                    })
                })
                .collect();
            for chunk in inputs.chunks(BATCH) {
                for (i, message) in self.write(archive, chunk).await? {
                    failures.entry(i).or_insert(message);
                }
            }
        }
        Ok(failures)
    }

    /// One write call; a call HubSpot rejects whole, or whose errors do not say which
    /// input they concern, is split in halves down to single inputs.
    fn write<'s>(
        &'s self,
        archive: bool,
        inputs: &'s [(usize, AssociationCreate)],
    ) -> BoxFuture<'s, Result<Vec<(usize, String)>, HubSpotError>> {
        Box::pin(async move {
            let (from, to) = (&self.junction.from_object, &self.junction.to_object);
            let calls: Vec<AssociationCreate> = inputs.iter().map(|(_, c)| c.clone()).collect();
            let answer = if archive {
                self.hubspot
                    .archive_association_labels(from, to, &calls)
                    .await
            } else {
                self.hubspot.create_associations(from, to, &calls).await
            };
            let split = inputs.len() > 1;
            match answer {
                Ok(outcome) if split && outcome.errors.iter().any(|e| e.indices.is_empty()) => {
                    self.halves(archive, inputs).await
                }
                Ok(outcome) => Ok(outcome
                    .errors
                    .iter()
                    .flat_map(|e| {
                        let message = match &e.category {
                            Some(c) => format!("{c}: {}", e.message),
                            None => e.message.clone(),
                        };
                        let at: Vec<usize> = if e.indices.is_empty() {
                            vec![0]
                        } else {
                            e.indices.clone()
                        };
                        at.into_iter()
                            .filter_map(|k| inputs.get(k))
                            .map(move |(i, _)| (*i, message.clone()))
                    })
                    .collect()),
                Err(e) if is_rejection(&e) && split => self.halves(archive, inputs).await,
                Err(e) if is_rejection(&e) => {
                    let message = e.api().map_or_else(
                        || e.to_string(),
                        |a| match &a.category {
                            Some(c) => format!("{c}: {}", a.message),
                            None => a.message.clone(),
                        },
                    );
                    Ok(inputs.iter().map(|(i, _)| (*i, message.clone())).collect())
                }
                Err(e) => Err(e),
            }
        })
    }

    async fn halves(
        &self,
        archive: bool,
        inputs: &[(usize, AssociationCreate)],
    ) -> Result<Vec<(usize, String)>, HubSpotError> {
        let (left, right) = inputs.split_at(inputs.len() / 2);
        let mut out = self.write(archive, left).await?;
        out.extend(self.write(archive, right).await?);
        Ok(out)
    }

    /// Records the outcome of each change in one tagged transaction.
    /// HubSpot's associations now, for the from-side records of the sent rows: writing
    /// one association can change others (a labelled type brings the unlabeled one, a new
    /// primary demotes the old, archiving the unlabeled type removes the pair), and the
    /// store takes them now — not as a change on the next pull. A read failure only
    /// leaves that to the next pull.
    async fn refresh(
        &self,
        done: &[(RecordChange, Done)],
    ) -> Option<(Vec<i64>, Vec<AssociationRow>)> {
        let mut ids: Vec<i64> = done
            .iter()
            .filter_map(|(_, d)| match d {
                Done::Sent { archive, create } => Some(archive.iter().chain(create.iter())),
                _ => None,
            })
            .flatten()
            .map(|r| r.from)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return None;
        }
        match fetch(
            self.hubspot,
            self.junction,
            &ids,
            MAX_ASSOCIATION_READ_INPUTS,
        )
        .await
        {
            Ok(rows) => Some((ids, rows)),
            Err(error) => {
                tracing::warn!(junction = %self.junction.table, %error, "cannot re-read written associations; the next pull will");
                None
            }
        }
    }

    async fn record(
        &self,
        done: Vec<(RecordChange, Done)>,
        refreshed: Option<(Vec<i64>, Vec<AssociationRow>)>,
        report: &mut DrainReport,
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let object = self.junction.outbox_object();
        let consumer = &self.options.consumer;
        let mut client = self.store.client().await?;
        let tx = tagged_transaction(&mut client).await?;
        let mut sent = Vec::new();
        let mut audits = Vec::new();
        for (change, outcome) in done {
            let (status, error) = match outcome {
                Done::Failed(message) => {
                    outbox::fail(&tx, consumer, &change.entry_ids, &message, None).await?;
                    report.failed += 1;
                    (SyncStatus::Failed, Some(message))
                }
                Done::Nothing | Done::Sent { .. } => {
                    report.entries += outbox::ack(&tx, consumer, &change.entry_ids).await?;
                    match outcome {
                        Done::Sent { archive, create } => {
                            report.associations +=
                                u64::from(archive.is_some()) + u64::from(create.is_some());
                            audits.extend(self.audit(&change, archive.as_ref(), "dissociate"));
                            audits.extend(self.audit(&change, create.as_ref(), "associate"));
                            sent.extend(create.map(|c| sent_link(&change, c)));
                        }
                        _ => report.unchanged += 1,
                    }
                    (SyncStatus::Synced, None)
                }
            };
            records::set(
                &tx,
                &object,
                &change.row_key,
                None,
                status,
                error.as_deref(),
            )
            .await?;
        }
        record_sent_links(&tx, self.junction, &sent).await?;
        audit::insert(&tx, &audits).await?;
        if let Some((ids, rows)) = refreshed {
            replace_associations(&tx, self.junction, &ids, &rows).await?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit sent associations", e))?;
        Ok(())
    }

    /// The audit entry of one association write, on the from-side record:
    /// `{"companies": {"old"|"new": "123:279"}}`.
    fn audit(
        &self,
        change: &RecordChange,
        link: Option<&Resolved>,
        action: &str,
    ) -> Option<AuditEntry> {
        let link = link?;
        let value = format!("{}:{}", link.to, link.kind.type_id);
        let (old, new) = if action == "associate" {
            (None, Some(value.as_str()))
        } else {
            (Some(value.as_str()), None)
        };
        let mut entry = AuditEntry::new(
            AuditDirection::PostgresToHubspot,
            &self.junction.from_object,
            action,
        )
        .change(&self.junction.to_object, old, new);
        entry.hs_object_id = Some(link.from);
        entry.row_key = Some(change.row_key.clone());
        Some(entry)
    }

    /// Puts changes back for [`DrainOptions::retry_after`] after a whole-call failure.
    async fn retry_later(
        &self,
        changes: &[RecordChange],
        error: &TwoWayError,
    ) -> Result<(), StoreError> {
        let message = error.to_string();
        let ids: Vec<i64> = changes
            .iter()
            .flat_map(|c| c.entry_ids.iter().copied())
            .collect();
        let client = self.store.client().await?;
        outbox::fail(
            &client,
            &self.options.consumer,
            &ids,
            &message,
            Some(self.options.retry_after),
        )
        .await?;
        Ok(())
    }

    /// Gives the waiting changes back (claimable at once; a later drain of either object
    /// picks them up), saying why, and shows them as pending in `hubsync.record_state`.
    async fn defer_waiting(&mut self) -> Result<(), StoreError> {
        if self.waiting.is_empty() || self.options.crash_at.is_some() {
            return Ok(());
        }
        let object = self.junction.outbox_object();
        let mut client = self.store.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::postgres("begin", e))?;
        for (change, reason) in self.waiting.drain(..) {
            outbox::defer(&tx, &self.options.consumer, &change.entry_ids, &reason).await?;
            records::set(
                &tx,
                &object,
                &change.row_key,
                None,
                SyncStatus::Pending,
                None,
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit deferred associations", e))?;
        Ok(())
    }
}

/// The junction row's new content, as HubSpot accepted it.
fn sent_link(change: &RecordChange, c: Resolved) -> SentLink {
    SentLink {
        row_id: Uuid::parse_str(&change.row_key).unwrap_or_default(),
        version: change.version,
        from_id: c.from,
        to_id: c.to,
        type_id: i32::try_from(c.kind.type_id).unwrap_or(i32::MAX),
        category: c.kind.category,
        label: c.kind.label,
    }
}

/// HubSpot refused the call as a whole for its content (not a transient failure).
fn is_rejection(e: &HubSpotError) -> bool {
    matches!(e.status(), Some(400 | 404 | 409 | 422))
}
