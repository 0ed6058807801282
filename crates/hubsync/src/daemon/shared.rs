//! What every worker of the daemon shares: the store, the HubSpot client (one governor for
//! the portal), the engine's pipelines, each object's schedule, and the **catalog** — the
//! discovered tables and junctions, published once discovery succeeded and refreshed by every
//! reconciliation round (so a property added in HubSpot becomes a column without a restart).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use hubsync_engine::{
    hs_to_pg::{HsToPg, ObjectContext, Prepared},
    model::Side,
    pg_to_hs,
    two_way::TwoWayObject,
};
use hubsync_hubspot::HubSpotClient;
use hubsync_store::{Store, set_allow_truncate};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// When and how one object syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Webhooks and change capture apply as they arrive.
    pub(crate) realtime: bool,
    /// How often the object is polled/reconciled with HubSpot.
    pub(crate) every: Duration,
    /// HubSpot's changes are copied to PostgreSQL.
    pub(crate) reads_hubspot: bool,
    /// PostgreSQL's changes are written to HubSpot.
    pub(crate) writes_hubspot: bool,
}

/// The daemon's shared state.
#[derive(Debug)]
pub(crate) struct Shared {
    /// PostgreSQL.
    pub(crate) store: Store,
    /// HubSpot (clones share the governor).
    pub(crate) client: HubSpotClient,
    /// The engine's HubSpot → PostgreSQL pipelines.
    pub(crate) pipelines: HsToPg,
    /// Per configured object.
    pub(crate) plans: BTreeMap<String, Plan>,
    /// `[server]` intervals.
    pub(crate) writeback_window: Duration,
    /// `server.settle_delay`.
    pub(crate) settle_delay: Duration,
    /// `server.reconcile_every`.
    pub(crate) reconcile_every: Duration,
    /// `server.inbox_retention`.
    pub(crate) inbox_retention: Duration,
    /// `server.audit_retention`.
    pub(crate) audit_retention: Duration,
    /// `postgres.allow_truncate`.
    allow_truncate: bool,
    catalog: watch::Sender<Option<Arc<Prepared>>>,
}

impl Shared {
    /// Wires the shared state from the validated configuration.
    pub(crate) fn new(config: &Config, store: Store, client: HubSpotClient) -> Shared {
        let settings = config.sync_settings();
        let plans = config
            .objects
            .iter()
            .zip(&settings.objects)
            .map(|(o, s)| {
                let plan = Plan {
                    realtime: o.schedule.realtime,
                    every: config.sweep_every(o),
                    reads_hubspot: s.direction.allows_from(Side::HubSpot),
                    writes_hubspot: s.direction.allows_from(Side::Postgres),
                };
                (o.name.clone(), plan)
            })
            .collect();
        let pipelines = HsToPg::new(client.clone(), store.clone(), settings);
        let s = &config.server;
        Shared {
            store,
            client,
            pipelines,
            plans,
            writeback_window: s.writeback_window,
            settle_delay: s.settle_delay,
            reconcile_every: s.reconcile_every,
            inbox_retention: s.inbox_retention,
            audit_retention: s.audit_retention,
            allow_truncate: config.postgres.allow_truncate,
            catalog: watch::channel(None).0,
        }
    }

    /// Who this instance is in `hubsync.leases` and outbox claims.
    pub(crate) fn holder(&self) -> &str {
        &self.pipelines.settings().holder
    }

    /// The plan of `object`, if it is configured.
    pub(crate) fn plan(&self, object: &str) -> Option<&Plan> {
        self.plans.get(object)
    }

    /// Discovers every object (tables, columns, junctions), gets the written-back ones ready
    /// (unique row-id property in HubSpot, capture triggers) and publishes the result.
    ///
    /// # Errors
    /// HubSpot or PostgreSQL failures; the previous catalog stays published.
    pub(crate) async fn refresh_catalog(&self) -> anyhow::Result<Arc<Prepared>> {
        let prepared = self.pipelines.prepare().await?;
        for ctx in &prepared.objects {
            if self.plan(ctx.name()).is_some_and(|p| p.writes_hubspot) {
                pg_to_hs::prepare(&self.store, &self.client, &two_way_object(ctx)).await?;
                let conn = self.store.client().await?;
                let (schema, table) = (&ctx.mapping.schema, &ctx.mapping.table);
                set_allow_truncate(&conn, schema, table, self.allow_truncate).await?;
            }
        }
        let prepared = Arc::new(prepared);
        self.catalog.send_replace(Some(Arc::clone(&prepared)));
        Ok(prepared)
    }

    /// The catalog, once published; `None` when `shutdown` came first.
    pub(crate) async fn catalog(&self, shutdown: &CancellationToken) -> Option<Arc<Prepared>> {
        let mut rx = self.catalog.subscribe();
        tokio::select! {
            found = rx.wait_for(Option::is_some) => found.ok().and_then(|c| c.clone()),
            () = shutdown.cancelled() => None,
        }
    }

    /// Takes or renews this instance's lease on `unit` (a dead local holder's lease is
    /// taken over at once); `false` when another live instance holds it.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn lease(&self, unit: &str) -> anyhow::Result<bool> {
        Ok(self.pipelines.acquire_lease(unit).await?)
    }

    /// The catalog now, if published.
    pub(crate) fn current_catalog(&self) -> Option<Arc<Prepared>> {
        self.catalog.borrow().clone()
    }
}

/// The object as the two-way merge and the writer see it.
pub(crate) fn two_way_object(ctx: &ObjectContext) -> TwoWayObject {
    TwoWayObject::from_context(ctx)
}
