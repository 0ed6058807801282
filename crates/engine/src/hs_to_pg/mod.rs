//! HubSpot → PostgreSQL: typed tables, backfill, incremental sync, associations, deletes and
//! merges (issue 7).
//!
//! A pass ([`HsToPg::run_once`]) first discovers every configured object's properties and
//! creates or evolves its table ([`discovery`]), creates the junction tables between them
//! ([`associations`]), then syncs each object that reads HubSpot — parents before children
//! (companies, contacts, deals, tickets, custom objects) — as one **unit of work** leased in
//! `hubsync.leases`, so several instances can share objects and a dead instance's work
//! moves on when its lease expires. Per object:
//!
//! 1. [`backfill`] on the first run (list endpoint), else [`incremental`] (search windows);
//! 2. associations of the records written ([`associations::flush_pending`]), and the
//!    periodic association sweep (always right after a backfill);
//! 3. the delete sweeps when due ([`deletes`]): archived listing, id-set reconciliation;
//! 4. merges are handled as records arrive ([`merges`]).
//!
//! Every step checkpoints in `hubsync.cursors` in the same transaction as its data
//! ([`checkpoint`]).

pub mod associations;
mod audit_trail;
pub mod backfill;
pub mod checkpoint;
pub mod deletes;
pub mod discovery;
mod error;
pub mod incremental;
pub mod merges;
mod progress;
pub mod records;
pub mod refresh;
pub mod write;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubsync_hubspot::HubSpotClient;
use hubsync_store::{Store, associations::AssociationMapping, state::leases};

pub use discovery::ObjectContext;
pub use error::SyncError;
pub use progress::{NoProgress, Phase, Progress};

use crate::settings::SyncSettings;
use error::on;

/// The lease name of one object's HubSpot → PostgreSQL unit of work.
pub fn unit_of_work(object: &str) -> String {
    format!("hubspot-to-postgres:{object}")
}

/// Options of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Only these objects (empty: every configured object).
    pub only: Vec<String>,
    /// Run every periodic sweep (associations, archived, id reconciliation) now.
    pub force_sweeps: bool,
}

/// What a pass did for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectReport {
    /// The object.
    pub object: String,
    /// Whether this pass ran (part of) its backfill.
    pub backfilled: bool,
    /// Rows inserted or updated.
    pub written: u64,
    /// Rows PostgreSQL already had in the same or a newer version.
    pub unchanged: u64,
    /// Values that did not fit their column.
    pub issues: u64,
    /// Merge losers tombstoned.
    pub merged: u64,
    /// Records whose associations were re-read.
    pub associations: u64,
    /// Rows marked archived or deleted.
    pub deleted: u64,
    /// The incremental high-water mark after the pass.
    pub high_water_mark: Option<DateTime<Utc>>,
    /// Another instance holds the object's lease: skipped.
    pub leased_elsewhere: bool,
    /// Why the object failed, if it did (other objects still ran).
    pub error: Option<String>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Per object, in sync order.
    pub objects: Vec<ObjectReport>,
    /// HubSpot calls the pass made (including retries).
    pub api_calls: u64,
    /// Calls HubSpot answered with 429.
    pub rate_limited: u64,
}

impl PassReport {
    /// Whether every object synced.
    pub fn is_success(&self) -> bool {
        self.objects.iter().all(|o| o.error.is_none())
    }
}

/// Discovered objects and junctions, ready to sync.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Every configured object, parents first.
    pub objects: Vec<ObjectContext>,
    /// The junction tables among them.
    pub junctions: Vec<AssociationMapping>,
}

/// The HubSpot → PostgreSQL pipelines of one portal and one database.
#[derive(Debug, Clone)]
pub struct HsToPg {
    client: HubSpotClient,
    store: Store,
    settings: SyncSettings,
}

impl HsToPg {
    /// Wires the pipelines. `store` must be migrated ([`hubsync_store::migrate`]).
    pub fn new(client: HubSpotClient, store: Store, settings: SyncSettings) -> Self {
        Self {
            client,
            store,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// The HubSpot client (shared governor).
    pub fn client(&self) -> &HubSpotClient {
        &self.client
    }

    /// Reads every configured object's property definitions, creates or evolves the tables
    /// and the junction tables. Objects come back parents first.
    ///
    /// # Errors
    /// The first object that cannot be discovered.
    pub async fn prepare(&self) -> Result<Prepared, SyncError> {
        let mut settings = self.settings.objects.clone();
        crate::overrides::apply_stored(&self.store, &mut settings).await?;
        settings.sort_by_key(|o| (associations::rank(&o.name), o.name.clone()));
        let companies = settings.iter().any(|o| o.name == "companies");
        let mut objects = Vec::with_capacity(settings.len());
        for object in &settings {
            let ctx = discovery::discover(
                &self.client,
                &self.store,
                &self.settings.schema,
                object,
                companies,
            )
            .await?;
            objects.push(ctx);
        }
        let junctions = associations::ensure_junctions(&self.store, &objects).await?;
        Ok(Prepared { objects, junctions })
    }

    /// One complete pass: backfill on the first run, incremental after, associations,
    /// deletes and merges, for every object that reads HubSpot. An object that fails is
    /// reported and the others still run.
    ///
    /// # Errors
    /// Discovery failures (no object is synced then).
    pub async fn run_once(
        &self,
        options: &PassOptions,
        progress: &dyn Progress,
    ) -> Result<PassReport, SyncError> {
        let before = self.client.stats();
        let prepared = self.prepare().await?;
        let mut report = PassReport::default();
        for ctx in &prepared.objects {
            if !crate::settings::reads_hubspot(ctx.settings.direction)
                || (!options.only.is_empty() && !options.only.iter().any(|o| o == ctx.name()))
            {
                continue;
            }
            let object_report = self
                .sync_leased(ctx, &prepared.junctions, options, progress)
                .await;
            if let Some(err) = &object_report.error {
                tracing::error!(object = ctx.name(), error = %err, "object failed");
            }
            report.objects.push(object_report);
        }
        let after = self.client.stats();
        report.api_calls = after.requests.saturating_sub(before.requests);
        report.rate_limited = after.rate_limited.saturating_sub(before.rate_limited);
        Ok(report)
    }

    /// Syncs one object under its lease (renewed while the work runs).
    pub async fn sync_leased(
        &self,
        ctx: &ObjectContext,
        junctions: &[AssociationMapping],
        options: &PassOptions,
        progress: &dyn Progress,
    ) -> ObjectReport {
        let object = ctx.name().to_owned();
        let unit = unit_of_work(&object);
        let mut report = ObjectReport {
            object: object.clone(),
            ..ObjectReport::default()
        };
        match self.acquire(&unit).await {
            Ok(true) => {}
            Ok(false) => {
                report.leased_elsewhere = true;
                return report;
            }
            Err(e) => {
                report.error = Some(error_chain(&e));
                return report;
            }
        }
        let work = self.sync_object(ctx, junctions, options, progress, &mut report);
        let result = tokio::select! {
            r = work => r,
            lost = self.keep_lease(&unit) => Err(lost),
        };
        if let Err(e) = result {
            report.error = Some(error_chain(&e));
        }
        if let Ok(conn) = self.store.client().await {
            let _ = leases::release(&conn, &unit, &self.settings.holder).await;
        }
        report
    }

    /// Syncs one object (without taking its lease): backfill or incremental,
    /// associations, delete sweeps.
    ///
    /// # Errors
    /// The first failing step; completed steps stay stored.
    pub async fn sync_object(
        &self,
        ctx: &ObjectContext,
        junctions: &[AssociationMapping],
        options: &PassOptions,
        progress: &dyn Progress,
        report: &mut ObjectReport,
    ) -> Result<(), SyncError> {
        let (client, store) = (&self.client, &self.store);
        let object = ctx.name();
        let done_before = {
            let conn = store.client().await.map_err(on(object))?;
            checkpoint::load_opt::<checkpoint::BackfillPosition>(
                &conn,
                object,
                checkpoint::BACKFILL,
            )
            .await
            .map_err(on(object))?
            .is_some_and(|p| p.done)
        };
        let mut force_associations = options.force_sweeps;
        let backfill = if done_before {
            let inc = incremental::incremental(client, store, ctx, progress).await?;
            absorb(report, &inc.batch);
            force_associations |= inc.association_overflow;
            report.high_water_mark = Some(checkpoint::from_ms(inc.hwm_ms));
            report.associations +=
                associations::flush_pending(client, store, ctx, junctions, progress).await?;
            backfill::BackfillOutcome {
                done: true,
                ..backfill::BackfillOutcome::default()
            }
        } else {
            // Associations are read while the backfill runs (exempt from the burst budget).
            let (signal, follow) = tokio::sync::watch::channel((0u64, false));
            let copy = async {
                let outcome = backfill::backfill(client, store, ctx, progress, Some(&signal)).await;
                drop(signal);
                outcome
            };
            let links =
                associations::sweep(client, store, ctx, junctions, true, Some(follow), progress);
            let (outcome, linked) = tokio::join!(copy, links);
            let outcome = outcome?;
            report.associations += linked?;
            report.backfilled = true;
            absorb(report, &outcome.batch);
            outcome
        };
        report.associations += associations::sweep(
            client,
            store,
            ctx,
            junctions,
            force_associations,
            None,
            progress,
        )
        .await?;
        if backfill.done {
            let force = options.force_sweeps;
            report.deleted += deletes::sweep_archived(client, store, ctx, force, progress).await?;
            report.deleted += deletes::reconcile_ids(client, store, ctx, force, progress).await?;
        }
        Ok(())
    }

    /// Takes (or renews) the lease on any unit of work for this instance's holder,
    /// taking over at once a lease whose holder is a dead process of this machine. The
    /// daemon leases its own units (writeback, settled pass) through this.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn acquire_lease(&self, unit: &str) -> Result<bool, SyncError> {
        self.acquire(unit).await
    }

    /// Re-reads the records `ids` of `object` (webhook hints): stores them, their
    /// associations and merges, and marks the ones HubSpot no longer has.
    ///
    /// # Errors
    /// An object that is not configured; HubSpot or PostgreSQL failures.
    pub async fn refresh(
        &self,
        prepared: &Prepared,
        object: &str,
        ids: &[i64],
    ) -> Result<refresh::RefreshOutcome, SyncError> {
        let ctx = prepared
            .objects
            .iter()
            .find(|c| c.name() == object)
            .ok_or_else(|| SyncError::Setup(format!("{object:?} is not a configured object")))?;
        refresh::refresh_records(&self.client, &self.store, ctx, &prepared.junctions, ids).await
    }

    async fn acquire(&self, unit: &str) -> Result<bool, SyncError> {
        let conn = self.store.client().await.map_err(on(unit))?;
        let holder = &self.settings.holder;
        let ttl = self.settings.lease_ttl;
        if leases::acquire(&conn, unit, holder, ttl)
            .await
            .map_err(on(unit))?
            .is_some()
        {
            return Ok(true);
        }
        // A holder on this machine whose process is gone (kill -9) cannot renew: take its
        // lease over at once instead of waiting for it to expire.
        let current = leases::list(&conn).await.map_err(on(unit))?;
        let Some(dead) = current
            .iter()
            .find(|l| l.unit == unit && holder_is_dead(&l.holder))
        else {
            return Ok(false);
        };
        let taken = conn
            .execute(
                "UPDATE hubsync.leases SET holder = $3, fencing = fencing + 1, acquired_at = now(),
                        expires_at = now() + make_interval(secs => $4)
                  WHERE unit = $1 AND holder = $2",
                &[&unit, &dead.holder, holder, &ttl.as_secs_f64()],
            )
            .await
            .map_err(on(unit))?;
        if taken > 0 {
            tracing::info!(unit, previous = %dead.holder, "took over the lease of a process that is gone");
            // Its outbox claims (consumer = holder) would otherwise block those records
            // until the claims lapse (minutes): they are given back now.
            let released = hubsync_store::state::outbox::release_all_of(&conn, &dead.holder)
                .await
                .map_err(on(unit))?;
            if released > 0 {
                tracing::info!(unit, previous = %dead.holder, released, "gave back the outbox entries the gone process had claimed");
            }
        }
        Ok(taken > 0)
    }

    /// Renews the lease every third of its lifetime; returns only when it is lost.
    async fn keep_lease(&self, unit: &str) -> SyncError {
        let period = (self.settings.lease_ttl / 3).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            match self.acquire(unit).await {
                Ok(true) => {}
                Ok(false) => {
                    return SyncError::Setup(format!(
                        "lost the lease on {unit} to another instance"
                    ));
                }
                Err(e) => tracing::warn!(unit, error = %e, "could not renew lease; retrying"),
            }
        }
    }
}

/// Whether a lease holder (`host:pid`) is a process of this machine that no longer runs.
/// Only decidable where `/proc` exists; elsewhere leases simply expire.
fn holder_is_dead(holder: &str) -> bool {
    let Some((host, pid)) = holder.rsplit_once(':') else {
        return false;
    };
    if host != crate::settings::host_name() || !Path::new("/proc/self").exists() {
        return false;
    }
    pid.parse::<u32>()
        .is_ok_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists())
}

fn absorb(report: &mut ObjectReport, batch: &write::BatchOutcome) {
    report.written += batch.written;
    report.unchanged += batch.skipped;
    report.issues += batch.issues;
    report.merged += batch.merged;
}

/// An error and its causes, `: `-joined (no values ever appear in them).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
