//! The simulated world of one run: the emulator (one per job, its data cleared between
//! runs), a fresh PostgreSQL database, the webhook receiver the emulator delivers to, the
//! application and HubSpot users making the script's edits, and the engine incarnation
//! currently "running", which the world crashes and restarts. Edits are made as the outside world makes them: SQL on the synced
//! table (captured by the triggers), HubSpot's UI (the emulator's control API) and another
//! integration's calls to HubSpot's public API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, EmulatorHandle};
use hubsync_engine::pg_to_hs::CrashPoint;
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldOverride, FieldRule, FieldRules};
use hubsync_store::TestDb;
use serde_json::{Value, json};

use super::engine::{APP_NAME, Engine, PassOutcome};
use super::script::{COMPANIES, FIELDS, Faults, Interruption, Op, Script, Side, Via};
use super::webhooks::{self, Receiver, WebhookFaults};

/// The emulator every run shares (rate limit off; faults are set per attempt).
pub(crate) async fn emulator() -> EmulatorHandle {
    // Before any HTTP client is built (jobs build theirs concurrently).
    hubsync_hubspot::install_tls_provider();
    let config = EmulatorConfig {
        rate_limit: None,
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    hubsync_emulator::spawn(config).await.expect("emulator")
}

/// Fault and crash counts of a run, by kind.
pub(crate) type Tally = BTreeMap<String, u64>;

/// One run's world.
pub(crate) struct World {
    /// The emulator's address.
    pub(crate) base: String,
    pub(crate) db: TestDb,
    pub(crate) http: reqwest::Client,
    pub(crate) rules: FieldRules,
    pub(crate) engine: Engine,
    /// HubSpot ids of the records, once known.
    pub(crate) ids: BTreeMap<usize, i64>,
    /// Public API writes the workload itself made (not the engine's).
    pub(crate) own_writes: u64,
    /// What was injected.
    pub(crate) tally: Tally,
    /// Where the emulator delivers webhooks (stops with the world).
    _receiver: Receiver,
    /// The current round's webhook faults.
    webhooks: WebhookFaults,
    /// HubSpot ids of the run's companies.
    pub(crate) companies: Vec<i64>,
    /// The associations the workload made: record → companies (moved by merges).
    pub(crate) links: BTreeMap<usize, BTreeSet<usize>>,
}

/// The rules a script configures.
pub(crate) fn rules(script: &Script) -> FieldRules {
    let mut rules = FieldRules::new(FieldRule {
        direction: Direction::TwoWay,
        policy: script.policy,
    });
    if let Some(p) = script.phone_policy {
        rules = rules.with_override(
            "phone",
            FieldOverride {
                direction: None,
                policy: Some(p),
            },
        );
    }
    rules
}

/// The email of record `rec` of run `seed` (unique across runs).
pub(crate) fn email(seed: u64, rec: usize) -> String {
    format!("s{seed}-r{rec}@sim.test")
}

impl World {
    /// Clears the emulator, makes a fresh database and runs the first (empty) pass.
    pub(crate) async fn new(base: &str, script: &Script) -> World {
        let http = reqwest::Client::new();
        let db = TestDb::new().await;
        let rules = rules(script);
        let engine = Engine::start(db.url(), base, &rules).await;
        let receiver = webhooks::receiver(db.store().clone(), script.seed).await;
        let url = receiver.url.clone();
        let world = World {
            base: base.to_owned(),
            db,
            http,
            rules,
            engine,
            ids: BTreeMap::new(),
            own_writes: 0,
            tally: Tally::new(),
            _receiver: receiver,
            webhooks: WebhookFaults::default(),
            companies: Vec::new(),
            links: BTreeMap::new(),
        };
        let mut world = world;
        world.set_faults(&Faults::default()).await;
        world
            .call("POST", "/_emulator/reset", Some(json!({"data": true})))
            .await
            .expect("reset");
        webhooks::subscribe(&world, &url).await;
        for c in 0..COMPANIES {
            let body = json!({"properties": {"name": format!("company-{}-{c}", script.seed)}});
            let made = world
                .call("POST", "/crm/v3/objects/companies", Some(body))
                .await
                .expect("company in HubSpot");
            let id = made["id"].as_str().and_then(|s| s.parse().ok());
            world.companies.push(id.expect("company id"));
        }
        let first = world.engine.pass(None).await;
        assert!(first.errors.is_empty(), "first pass: {:?}", first.errors);
        world
    }

    /// A policy in force for field `field`.
    pub(crate) fn policy(&self, field: usize) -> ConflictPolicy {
        self.rules.resolve(FIELDS[field]).policy
    }

    /// Makes one edit. Edits of the workload never fail (the script only makes edits the
    /// side can make).
    pub(crate) async fn apply(&mut self, seed: u64, op: &Op) {
        match op {
            Op::Create { side, rec, value } => {
                let email = email(seed, *rec);
                match side {
                    Side::Postgres => {
                        self.sql(
                            "INSERT INTO hubspot.contacts (email, firstname) VALUES ($1, $2)",
                            &[&email, value],
                        )
                        .await;
                    }
                    Side::HubSpot => {
                        let body = json!({"properties": {"email": email, "firstname": value}});
                        let made = self
                            .call("POST", "/crm/v3/objects/contacts", Some(body))
                            .await
                            .expect("create in HubSpot");
                        self.own_writes += 1;
                        let id = made["id"].as_str().and_then(|s| s.parse().ok());
                        self.ids.insert(*rec, id.expect("created id"));
                    }
                }
            }
            Op::Update {
                side,
                via,
                rec,
                field,
                value,
            } => {
                let column = FIELDS[*field];
                match side {
                    Side::Postgres => {
                        let sql =
                            format!("UPDATE hubspot.contacts SET {column} = $1 WHERE email = $2");
                        self.sql(&sql, &[value, &email(seed, *rec)]).await;
                    }
                    Side::HubSpot => {
                        let id = self.id(seed, *rec).await;
                        let body =
                            json!({"properties": {column: value.clone().unwrap_or_default()}});
                        let (method, path) = match via {
                            Via::Ui => ("POST", format!("/_emulator/objects/contacts/{id}")),
                            Via::Api => ("PATCH", format!("/crm/v3/objects/contacts/{id}")),
                        };
                        self.call(method, &path, Some(body))
                            .await
                            .expect("edit in HubSpot");
                        if *via == Via::Api {
                            self.own_writes += 1;
                        }
                    }
                }
            }
            Op::Delete { side, rec, soft } => match side {
                Side::Postgres => {
                    let sql = if *soft {
                        "UPDATE hubspot.contacts SET archived_at = now() WHERE email = $1"
                    } else {
                        "DELETE FROM hubspot.contacts WHERE email = $1"
                    };
                    self.sql(sql, &[&email(seed, *rec)]).await;
                }
                Side::HubSpot => {
                    let id = self.id(seed, *rec).await;
                    self.call("DELETE", &format!("/crm/v3/objects/contacts/{id}"), None)
                        .await
                        .expect("archive in HubSpot");
                    self.own_writes += 1;
                }
            },
            Op::Merge { survivor, loser } => {
                let primary = self.id(seed, *survivor).await;
                let merged = self.id(seed, *loser).await;
                let body = json!({
                    "primaryObjectId": primary.to_string(),
                    "objectIdToMerge": merged.to_string(),
                });
                self.call("POST", "/crm/v3/objects/contacts/merge", Some(body))
                    .await
                    .expect("merge in HubSpot");
                *self.tally.entry("merge".to_owned()).or_default() += 1;
                let moved = self.links.remove(loser).unwrap_or_default();
                self.links.entry(*survivor).or_default().extend(moved);
            }
            Op::Link {
                rec,
                company,
                linked,
            } => {
                let id = self.id(seed, *rec).await;
                let to = self.companies[*company];
                let (method, path) = if *linked {
                    (
                        "PUT",
                        format!(
                            "/crm/v4/objects/contacts/{id}/associations/default/companies/{to}"
                        ),
                    )
                } else {
                    (
                        "DELETE",
                        format!("/crm/v4/objects/contacts/{id}/associations/companies/{to}"),
                    )
                };
                self.call(method, &path, None)
                    .await
                    .expect("association in HubSpot");
                self.own_writes += 1;
                let kind = if *linked { "associate" } else { "dissociate" };
                *self.tally.entry(kind.to_owned()).or_default() += 1;
                let set = self.links.entry(*rec).or_default();
                if *linked {
                    set.insert(*company);
                } else {
                    set.remove(company);
                }
            }
            Op::Restore { rec } => {
                let id = self.id(seed, *rec).await;
                self.call(
                    "POST",
                    &format!("/_emulator/objects/contacts/{id}/restore"),
                    Some(json!({})),
                )
                .await
                .expect("restore in HubSpot");
            }
        }
    }

    /// The HubSpot id of a record (created in HubSpot, or synced from PostgreSQL).
    pub(crate) async fn id(&mut self, seed: u64, rec: usize) -> i64 {
        if let Some(id) = self.ids.get(&rec) {
            return *id;
        }
        let conn = self.db.store().client().await.expect("conn");
        let row = conn
            .query_one(
                "SELECT hs_object_id FROM hubspot.contacts WHERE email = $1",
                &[&email(seed, rec)],
            )
            .await
            .expect("row of a synced record");
        let id: i64 = row
            .get::<_, Option<i64>>(0)
            .expect("synced record has an id");
        self.ids.insert(rec, id);
        id
    }

    /// One sync attempt under `faults`, interrupted as scripted; faults are off after it.
    pub(crate) async fn attempt(&mut self, faults: &Faults, interruption: Interruption) {
        for kind in faults.kinds() {
            *self.tally.entry(kind.to_owned()).or_default() += 1;
        }
        if let Some(kind) = interruption.kind() {
            *self.tally.entry(kind.to_owned()).or_default() += 1;
        }
        self.set_faults(faults).await;
        match interruption {
            Interruption::None => {
                self.engine.pass(None).await;
            }
            Interruption::Crash { after_ms } => {
                let engine = self.engine.clone();
                let task = tokio::spawn(async move { engine.pass(None).await });
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                task.abort();
                let _ = task.await;
                self.restart().await;
            }
            Interruption::CrashAfterHubSpot | Interruption::CrashAfterClaim => {
                let point = if interruption == Interruption::CrashAfterClaim {
                    CrashPoint::AfterClaim
                } else {
                    CrashPoint::AfterHubSpot
                };
                self.engine.pass(Some(point)).await;
                self.restart().await;
            }
            Interruption::ConnectionLoss { after_ms } => {
                let engine = self.engine.clone();
                let task = tokio::spawn(async move { engine.pass(None).await });
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                self.kill_engine_connections().await;
                let _ = task.await;
            }
        }
        self.set_faults(&Faults::default()).await;
    }

    /// One uninterrupted attempt under `faults` while the application and HubSpot users
    /// make `edits` (a pass races them).
    pub(crate) async fn attempt_while_editing(&mut self, seed: u64, faults: &Faults, edits: &[Op]) {
        for kind in faults.kinds() {
            *self.tally.entry(kind.to_owned()).or_default() += 1;
        }
        *self
            .tally
            .entry("edits-during-pass".to_owned())
            .or_default() += 1;
        self.set_faults(faults).await;
        let engine = self.engine.clone();
        let task = tokio::spawn(async move { engine.pass(None).await });
        for op in edits {
            self.apply_unfaulted(seed, op).await;
        }
        let _ = task.await;
        self.set_faults(&Faults::default()).await;
    }

    /// An edit made while faults are on: HubSpot-side public API calls of the workload are
    /// retried past injected failures (a user retries; the edit itself must happen).
    async fn apply_unfaulted(&mut self, seed: u64, op: &Op) {
        match op {
            Op::Update {
                side: Side::HubSpot,
                rec,
                field,
                value,
                ..
            } => {
                // Through the control API, which faults do not touch.
                let ui = Op::Update {
                    side: Side::HubSpot,
                    via: Via::Ui,
                    rec: *rec,
                    field: *field,
                    value: value.clone(),
                };
                self.apply(seed, &ui).await;
            }
            _ => self.apply(seed, op).await,
        }
    }

    /// A new process after a crash: the old one's connections are gone.
    async fn restart(&mut self) {
        self.engine.kill();
        self.kill_engine_connections().await;
        self.engine = Engine::start(self.db.url(), &self.base, &self.rules).await;
    }

    /// `pg_terminate_backend` of every engine connection.
    async fn kill_engine_connections(&self) {
        let conn = self.db.store().client().await.expect("conn");
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
            &[&APP_NAME],
        )
        .await
        .expect("terminate engine connections");
    }

    /// The round's webhook faults, on from now until its quiescence.
    pub(crate) async fn start_round(&mut self, faults: &WebhookFaults) {
        for kind in faults.kinds() {
            *self.tally.entry(kind.to_owned()).or_default() += 1;
        }
        self.webhooks = faults.clone();
        self.set_faults(&Faults::default()).await;
    }

    /// Waits for the webhooks sent so far, then runs the inbox worker alone.
    pub(crate) async fn apply_webhooks(&mut self) {
        *self.tally.entry("inbox-first".to_owned()).or_default() += 1;
        webhooks::settle(self).await;
        let _ = self.engine.apply_inbox().await;
    }

    /// Adds the emulator's webhook delivery counters to the tally (before they are reset).
    pub(crate) async fn count_deliveries(&mut self) {
        for (k, v) in webhooks::delivery(self).await {
            *self.tally.entry(k).or_default() += v;
        }
    }

    /// Passes (faults off) until two in a row change nothing: every webhook delivered and
    /// applied, no error, nothing for the writer, an empty outbox and the same table and
    /// shadow contents.
    pub(crate) async fn quiesce(&mut self) -> Result<u32, String> {
        self.webhooks = WebhookFaults::default();
        self.set_faults(&Faults::default()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut passes = 0;
        let mut idle = 0;
        let mut before = self.fingerprint().await;
        loop {
            let delivered = webhooks::settle(self).await;
            let outcome: PassOutcome = self.engine.pass(None).await;
            passes += 1;
            let pending = self.count("SELECT count(*) FROM hubsync.outbox").await;
            let inbox = self
                .count("SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL")
                .await;
            let after = self.fingerprint().await;
            let quiet = delivered
                && outcome.errors.is_empty()
                && !outcome.pushed_anything()
                && pending == 0
                && inbox == 0
                && after == before;
            before = after;
            idle = if quiet { idle + 1 } else { 0 };
            if idle == 2 {
                return Ok(passes);
            }
            if tokio::time::Instant::now() > deadline || passes > 40 {
                let conn = self.db.store().client().await.expect("conn");
                let left: Vec<String> = conn
                    .query(
                        "SELECT concat_ws(' ', o.id, o.op, o.hs_object_id, o.status, o.attempts, \
                                o.changed_columns::text, r.status, r.last_error) \
                         FROM hubsync.outbox o LEFT JOIN hubsync.record_state r \
                           ON r.object = o.object AND r.row_key = o.row_key ORDER BY o.id",
                        &[],
                    )
                    .await
                    .expect("outbox")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                return Err(format!(
                    "NO QUIESCENCE after {passes} passes: last {outcome:?}, outbox: {left:?}"
                ));
            }
            if pending > 0 && !outcome.pushed_anything() {
                // Entries of a crashed writer wait for their claim to lapse.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// A digest of the synced table and the shadow.
    pub(crate) async fn fingerprint(&self) -> String {
        let conn = self.db.store().client().await.expect("conn");
        conn.query_one(
            "SELECT md5(coalesce((SELECT string_agg( \
                        concat_ws(',', c.hubsync_row_id, c.hs_object_id, c.email, c.firstname, \
                                  c.lastname, c.phone, c.archived_at, c.hubspot_updated_at), \
                        '|' ORDER BY c.hubsync_row_id) FROM hubspot.contacts c), '') \
                     || coalesce((SELECT string_agg( \
                        concat_ws(',', s.hs_object_id, s.field, s.value, s.hubspot_version, \
                                  s.postgres_version), \
                        '|' ORDER BY s.hs_object_id, s.field) FROM hubsync.shadow s), ''))",
            &[],
        )
        .await
        .expect("fingerprint")
        .get(0)
    }

    /// Sets the emulator's faults.
    pub(crate) async fn set_faults(&self, f: &Faults) {
        let mut body = json!({
            "latency_ms": f.latency_ms.0,
            "jitter_ms": f.latency_ms.1,
            "error_rate": f.server_errors,
            "rate_limit_rate": f.throttles,
            "search_lag_ms": f.search_lag_ms,
            "seed": f.seed,
        });
        if let Some(n) = f.storm {
            body["storm"] = json!({"requests": n});
        }
        if let (Some(body), Some(hooks)) = (body.as_object_mut(), self.webhooks.json().as_object())
        {
            body.extend(hooks.clone());
        }
        self.call("POST", "/_emulator/faults", Some(body))
            .await
            .expect("set faults");
    }

    /// Runs application SQL (captured by the triggers).
    pub(crate) async fn sql(
        &self,
        sql: &str,
        params: &[&(dyn hubsync_store::tokio_postgres::types::ToSql + Sync)],
    ) {
        let conn = self.db.store().client().await.expect("conn");
        conn.execute(sql, params).await.expect(sql);
    }

    /// A `bigint` query result.
    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let conn = self.db.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Calls the emulator; `Err` carries the status for non-2xx answers.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, u16> {
        let url = format!("{}{}", self.base, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, url).bearer_auth("pat-test");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer = req.send().await.expect(path);
        let status = answer.status();
        if !status.is_success() {
            return Err(status.as_u16());
        }
        Ok(answer.json().await.unwrap_or(Value::Null))
    }
}
