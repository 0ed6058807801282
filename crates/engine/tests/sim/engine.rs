//! One incarnation of the sync process as the simulation runs it: its own PostgreSQL pool
//! (tagged `application_name = hubsync-sim-engine`, so connection loss can target it), its
//! own HubSpot client (fresh rate governor) and the real pipelines. A pass is the daemon's
//! inbox worker (`webhook_inbox::InboxWorker`: the webhook events received so far), then
//! what `hubsync sync --once` does: HubSpot → PostgreSQL (`HsToPg::run_once`), then for the
//! two-way object `pg_to_hs::prepare`, `two_way::apply_resolutions` and `pg_to_hs::drain`.
//! A crash drops the incarnation; the next one is built from the database URL and the
//! settings only — nothing in memory survives.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions, Prepared, error_chain};
use hubsync_engine::pg_to_hs::{self, CrashPoint, DrainOptions, DrainReport};
use hubsync_engine::policy::FieldRules;
use hubsync_engine::settings::{ObjectSettings, PropertySelection, SyncSettings};
use hubsync_engine::two_way::{self, TwoWayObject};
use hubsync_engine::webhook_inbox::InboxWorker;
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig};
use hubsync_store::{Store, StoreOptions, catalog::load_mapping};

use super::script::FIELDS;

/// `application_name` of the engine's connections.
pub(crate) const APP_NAME: &str = "hubsync-sim-engine";
/// Schema of the synced tables.
pub(crate) const SCHEMA: &str = "hubspot";
/// How long a writer's outbox claim lasts (short, so a crashed writer's claims come back
/// quickly in quiescence).
const CLAIM_LEASE: Duration = Duration::from_millis(400);

/// What one pass did (`None` fields: that step did not get to run).
#[derive(Debug, Clone, Default)]
pub(crate) struct PassOutcome {
    /// Webhook events the inbox worker applied.
    pub(crate) webhooks: usize,
    /// Rows the pull reports written.
    pub(crate) pulled: u64,
    /// What the writer did.
    pub(crate) pushed: DrainReport,
    /// Errors met (the pass went on where `hubsync sync --once` would).
    pub(crate) errors: Vec<String>,
}

impl PassOutcome {
    /// Whether the writer found anything to do (the pull's `written` also counts rows
    /// rewritten unchanged from the lookback window, so it is not a signal).
    pub(crate) fn pushed_anything(&self) -> bool {
        self.pushed.entries > 0 || self.pushed.writes() > 0
    }
}

/// One process's worth of engine state.
#[derive(Clone)]
pub(crate) struct Engine {
    store: Store,
    client: HubSpotClient,
    pipelines: HsToPg,
    rules: FieldRules,
    holder: String,
    inbox: Arc<InboxWorker>,
    /// The catalog the inbox worker uses, discovered once per incarnation (as the daemon's).
    catalog: Arc<OnceLock<Arc<Prepared>>>,
}

impl Engine {
    /// A new incarnation against `db_url` and the emulator at `base_url`.
    pub(crate) async fn start(db_url: &str, base_url: &str, rules: &FieldRules) -> Engine {
        let options = StoreOptions {
            application_name: APP_NAME.to_owned(),
            max_connections: 6,
            ..StoreOptions::default()
        };
        let store = Store::connect_with(db_url, options)
            .await
            .expect("engine store");
        let url = url::Url::parse(base_url).expect("url");
        let mut cfg = HubSpotClientConfig::new(url, "pat-test".to_owned().into());
        cfg.search_per_second = std::num::NonZeroU32::new(1000).expect("nonzero");
        cfg.burst = hubsync_hubspot::RateQuota {
            requests: std::num::NonZeroU32::new(100_000).expect("nonzero"),
            per: Duration::from_secs(1),
        };
        cfg.max_retries = 2;
        cfg.min_retry_delay = Duration::from_millis(2);
        cfg.max_retry_delay = Duration::from_millis(40);
        cfg.timeout = Duration::from_secs(5);
        let client = HubSpotClient::new(cfg).expect("client");
        let mut settings = ObjectSettings::new("contacts");
        settings.direction = hubsync_engine::policy::Direction::TwoWay;
        settings.properties = PropertySelection::Only(
            std::iter::once("email")
                .chain(FIELDS)
                .map(str::to_owned)
                .collect(),
        );
        settings.lookback = Duration::from_secs(5);
        settings.clock_skew = Duration::ZERO;
        settings.archived_sweep_every = Duration::ZERO;
        settings.id_reconcile_every = Duration::ZERO;
        // Association changes do not bump modified dates: with webhooks dropped, only the
        // sweep finds them, and a check after quiescence needs it to have run.
        settings.association_sweep_every = Duration::ZERO;
        settings.rules = rules.clone();
        // The companies contacts are associated with (HubSpot → PostgreSQL only).
        let mut companies = ObjectSettings::new("companies");
        companies.direction = hubsync_engine::policy::Direction::HubSpotToPostgres;
        companies.properties =
            PropertySelection::Only(std::iter::once("name".to_owned()).collect());
        companies.lookback = Duration::from_secs(5);
        companies.clock_skew = Duration::ZERO;
        let sync = SyncSettings::new(SCHEMA, vec![companies, settings]);
        let holder = sync.holder.clone();
        let pipelines = HsToPg::new(client.clone(), store.clone(), sync);
        let inbox = Arc::new(InboxWorker::new(client.clone(), store.clone()));
        Engine {
            store,
            client,
            pipelines,
            rules: rules.clone(),
            holder,
            inbox,
            catalog: Arc::new(OnceLock::new()),
        }
    }

    /// The process dies: its connections close (PostgreSQL rolls back what was open).
    pub(crate) fn kill(&self) {
        self.store.close();
    }

    /// Only the HubSpot → PostgreSQL half of a pass.
    pub(crate) async fn pull(&self) -> Result<u64, String> {
        let report = self
            .pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(report.objects.iter().map(|o| o.written).sum())
    }

    /// The daemon's inbox worker: applies webhook batches until the inbox is empty; returns
    /// the events taken.
    pub(crate) async fn apply_inbox(&self) -> Result<usize, String> {
        let catalog = match self.catalog.get() {
            Some(c) => Arc::clone(c),
            None => {
                let found = self
                    .pipelines
                    .prepare()
                    .await
                    .map_err(|e| error_chain(&e))?;
                Arc::clone(self.catalog.get_or_init(|| Arc::new(found)))
            }
        };
        let mut taken = 0;
        loop {
            let batch = self
                .inbox
                .apply_batch(&catalog, &|_| true)
                .await
                .map_err(|e| error_chain(&e))?;
            if batch.taken == 0 {
                return Ok(taken);
            }
            taken += batch.taken;
        }
    }

    /// One pass (inbox worker, then what `hubsync sync --once` does); errors are collected,
    /// not raised.
    pub(crate) async fn pass(&self, crash_at: Option<CrashPoint>) -> PassOutcome {
        let mut out = PassOutcome::default();
        match self.apply_inbox().await {
            Ok(n) => out.webhooks = n,
            Err(e) => out.errors.push(format!("inbox: {e}")),
        }
        match self
            .pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
        {
            Ok(report) => {
                for o in &report.objects {
                    out.pulled += o.written + o.deleted + o.merged;
                    if let Some(e) = &o.error {
                        out.errors.push(format!("pull: {e}"));
                    }
                }
            }
            Err(e) => {
                out.errors.push(format!("pull: {}", error_chain(&e)));
                return out;
            }
        }
        match self.push(crash_at).await {
            Ok(r) => out.pushed = r,
            Err(e) => out.errors.push(format!("push: {e}")),
        }
        out
    }

    /// Only the PostgreSQL → HubSpot half of a pass (prepare, resolutions, drain).
    pub(crate) async fn push(&self, crash_at: Option<CrashPoint>) -> Result<DrainReport, String> {
        let object = self.object().await?;
        let store = &self.store;
        let show = |e: two_way::TwoWayError| error_chain(&e);
        pg_to_hs::prepare(store, &self.client, &object)
            .await
            .map_err(show)?;
        two_way::apply_resolutions(store, &self.client, &object)
            .await
            .map_err(show)?;
        let options = DrainOptions {
            consumer: self.holder.clone(),
            lease: CLAIM_LEASE,
            retry_after: Duration::from_millis(100),
            crash_at,
            ..DrainOptions::default()
        };
        pg_to_hs::drain(store, &self.client, &object, &options)
            .await
            .map_err(show)
    }

    /// The two-way object as the writer sees it now.
    async fn object(&self) -> Result<TwoWayObject, String> {
        let conn = self.store.client().await.map_err(|e| error_chain(&e))?;
        let mapping = load_mapping(&conn, SCHEMA, "contacts")
            .await
            .map_err(|e| error_chain(&e))?
            .ok_or("no contacts table yet")?;
        Ok(TwoWayObject::new(mapping, self.rules.clone()).with_history(self.client.clone()))
    }
}
