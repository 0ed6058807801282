//! Test kit for two-way sync: an emulator (no rate limit unless asked), a fresh database,
//! the HubSpot → PostgreSQL pipeline and the writer wired for one two-way `contacts` object.

use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, SeedConfig};
use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions};
use hubsync_engine::pg_to_hs::{self, DrainOptions, DrainReport};
use hubsync_engine::policy::{ConflictPolicy, Direction, FieldRule, FieldRules};
use hubsync_engine::settings::{ObjectSettings, PropertySelection, SyncSettings};
use hubsync_engine::two_way::{self, TwoWayObject};
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig};
use hubsync_store::{Store, TestDb, catalog::load_mapping};
use serde_json::{Value, json};

pub(crate) const SCHEMA: &str = "hubspot";
pub(crate) const PROPERTIES: [&str; 4] = ["email", "firstname", "lastname", "phone"];

pub(crate) struct Tw {
    pub(crate) emulator: EmulatorHandle,
    pub(crate) db: TestDb,
    pub(crate) client: HubSpotClient,
    pub(crate) http: reqwest::Client,
    pub(crate) rules: FieldRules,
    pub(crate) pipelines: HsToPg,
}

/// A two-way `contacts` kit with `policy`, after a first (empty) pass.
pub(crate) async fn tw(policy: ConflictPolicy) -> Tw {
    tw_with(
        FieldRules::new(FieldRule {
            direction: Direction::TwoWay,
            policy,
        }),
        None,
    )
    .await
}

/// A kit with explicit rules and an emulator burst limit (`None`: off).
pub(crate) async fn tw_with(rules: FieldRules, rate: Option<u32>) -> Tw {
    tw_seeded(rules, rate, SeedConfig::default()).await
}

/// A kit over a seeded emulator (the first pass backfills the seeded contacts).
pub(crate) async fn tw_seeded(rules: FieldRules, rate: Option<u32>, seed: SeedConfig) -> Tw {
    let config = EmulatorConfig {
        seed,
        rate_limit: rate.map(|n| hubsync_emulator::RateLimit {
            requests: n,
            per: Duration::from_secs(10),
        }),
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    let emulator = hubsync_emulator::spawn(config).await.expect("emulator");
    let url = url::Url::parse(&emulator.base_url()).expect("url");
    let mut cfg = HubSpotClientConfig::new(url, "pat-test".to_owned().into());
    cfg.search_per_second = std::num::NonZeroU32::new(1000).expect("nonzero");
    cfg.burst = hubsync_hubspot::RateQuota {
        requests: std::num::NonZeroU32::new(rate.unwrap_or(100_000)).expect("nonzero"),
        per: Duration::from_secs(if rate.is_some() { 10 } else { 1 }),
    };
    let client = HubSpotClient::new(cfg).expect("client");
    let db = TestDb::new().await;
    let mut settings = ObjectSettings::new("contacts");
    settings.direction = Direction::TwoWay;
    settings.properties =
        PropertySelection::Only(PROPERTIES.iter().map(|p| (*p).to_owned()).collect());
    settings.lookback = Duration::from_secs(5);
    settings.clock_skew = Duration::ZERO;
    settings.archived_sweep_every = Duration::ZERO;
    settings.rules = rules.clone();
    let pipelines = HsToPg::new(
        client.clone(),
        db.store().clone(),
        SyncSettings::new(SCHEMA, vec![settings]),
    );
    let kit = Tw {
        emulator,
        db,
        client,
        http: reqwest::Client::new(),
        rules,
        pipelines,
    };
    kit.pull().await;
    let object = kit.object().await;
    pg_to_hs::prepare(kit.store(), &kit.client, &object)
        .await
        .expect("prepare");
    kit
}

impl Tw {
    pub(crate) fn store(&self) -> &Store {
        self.db.store()
    }

    /// The object as the writer sees it now.
    pub(crate) async fn object(&self) -> TwoWayObject {
        let conn = self.store().client().await.expect("conn");
        let mapping = load_mapping(&conn, SCHEMA, "contacts")
            .await
            .expect("mapping")
            .expect("table");
        TwoWayObject::new(mapping, self.rules.clone()).with_history(self.client.clone())
    }

    /// HubSpot → PostgreSQL.
    pub(crate) async fn pull(&self) {
        let report = self
            .pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
            .expect("pull");
        assert!(report.is_success(), "{report:?}");
    }

    /// PostgreSQL → HubSpot with `options`.
    pub(crate) async fn push_with(&self, options: &DrainOptions) -> DrainReport {
        let object = self.object().await;
        pg_to_hs::prepare(self.store(), &self.client, &object)
            .await
            .expect("prepare");
        pg_to_hs::drain(self.store(), &self.client, &object, options)
            .await
            .expect("push")
    }

    pub(crate) async fn push(&self) -> DrainReport {
        self.push_with(&DrainOptions::default()).await
    }

    /// One two-way pass as `hubsync sync --once` runs it: resolutions, pull, push.
    pub(crate) async fn pass(&self) -> DrainReport {
        let object = self.object().await;
        two_way::apply_resolutions(self.store(), &self.client, &object)
            .await
            .expect("resolutions");
        self.pull().await;
        self.push().await
    }

    /// Runs SQL as an application would (captured).
    pub(crate) async fn sql(&self, sql: &str) {
        let conn = self.store().client().await.expect("conn");
        conn.batch_execute(sql).await.expect(sql);
    }

    pub(crate) async fn scalar<T: for<'a> tokio_postgres_types::FromSql<'a>>(
        &self,
        sql: &str,
    ) -> T {
        let conn = self.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// A row's HubSpot id, by email.
    pub(crate) async fn id_of(&self, email: &str) -> i64 {
        self.scalar(&format!(
            "SELECT hs_object_id FROM hubspot.contacts WHERE email = '{email}'"
        ))
        .await
    }

    /// A record as HubSpot has it (properties of the kit).
    pub(crate) async fn hubspot(&self, id: i64) -> Value {
        let props = PROPERTIES.join(",");
        self.get(&format!(
            "/crm/v3/objects/contacts/{id}?properties={props},hubsync_row_id"
        ))
        .await
    }

    /// Edits a record as a HubSpot user would.
    pub(crate) async fn edit_in_hubspot(&self, id: i64, properties: Value) {
        self.post(
            &format!("/_emulator/objects/contacts/{id}"),
            json!({ "properties": properties }),
        )
        .await;
    }

    /// Records with this email in HubSpot (search).
    pub(crate) async fn count_in_hubspot(&self, property: &str, value: &str) -> u64 {
        let body = json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}], "limit": 10});
        let v = self.post("/crm/v3/objects/contacts/search", body).await;
        v["total"].as_u64().unwrap_or(0)
    }

    /// Write calls made to HubSpot since the last reset (batch create/update/upsert/archive,
    /// single-record writes and association writes).
    pub(crate) async fn write_calls(&self) -> u64 {
        let stats = self.get("/_emulator/stats").await;
        let Some(routes) = stats["by_route"].as_object() else {
            return 0;
        };
        routes
            .iter()
            .filter(|(route, _)| is_write(route))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum()
    }

    pub(crate) async fn stats(&self) -> Value {
        self.get("/_emulator/stats").await
    }

    pub(crate) async fn reset_stats(&self) {
        self.post("/_emulator/reset", json!({})).await;
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{}", self.emulator.base_url(), path);
        let answer = self
            .http
            .post(url)
            .bearer_auth("pat-test")
            .json(&body)
            .send()
            .await
            .expect(path);
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let url = format!("{}{}", self.emulator.base_url(), path);
        let answer = self
            .http
            .get(url)
            .bearer_auth("pat-test")
            .send()
            .await
            .expect(path);
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.expect("json")
    }
}

use hubsync_store::tokio_postgres::types as tokio_postgres_types;

/// Whether a `METHOD /path` route writes to HubSpot.
pub(crate) fn is_write(route: &str) -> bool {
    let writes = [
        "batch/create",
        "batch/update",
        "batch/upsert",
        "batch/archive",
        "labels/archive",
        "associate/default",
    ];
    route.starts_with("PATCH ")
        || route.starts_with("PUT ")
        || route.starts_with("DELETE ")
        || (route.starts_with("POST ")
            && writes.iter().any(|w| route.contains(w))
            && !route.contains("/properties/"))
        || (route.starts_with("POST /crm/v3/objects/") && route.matches('/').count() == 4)
}
