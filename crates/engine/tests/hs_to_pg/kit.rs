//! Test kit: an emulator, a fresh database, a client and the pipelines wired together.

use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, SeedConfig};
use hubsync_engine::hs_to_pg::{HsToPg, NoProgress, PassOptions, PassReport};
use hubsync_engine::settings::{ObjectSettings, SyncSettings};
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig};
use hubsync_store::{Store, TestDb};

pub(crate) const SCHEMA: &str = "hubspot";

pub(crate) struct Kit {
    pub(crate) emulator: EmulatorHandle,
    pub(crate) db: TestDb,
    pub(crate) client: HubSpotClient,
    pub(crate) http: reqwest::Client,
}

/// Seeds the emulator (rate limit off) and returns the kit.
pub(crate) async fn kit(seed: SeedConfig) -> Kit {
    let config = EmulatorConfig {
        seed,
        rate_limit: None,
        search_per_second: None,
        daily_limit: None,
        ..EmulatorConfig::default()
    };
    let emulator = hubsync_emulator::spawn(config).await.expect("emulator");
    let url = url::Url::parse(&emulator.base_url()).expect("url");
    let mut cfg = HubSpotClientConfig::new(url, "pat-test".to_owned().into());
    cfg.search_per_second = std::num::NonZeroU32::new(1000).expect("nonzero");
    cfg.burst = hubsync_hubspot::RateQuota {
        requests: std::num::NonZeroU32::new(100_000).expect("nonzero"),
        per: Duration::from_secs(1),
    };
    let client = HubSpotClient::new(cfg).expect("client");
    Kit {
        emulator,
        db: TestDb::new().await,
        client,
        http: reqwest::Client::new(),
    }
}

impl Kit {
    pub(crate) fn store(&self) -> &Store {
        self.db.store()
    }

    /// Pipelines over `objects` with sweeps due every pass.
    pub(crate) fn pipelines(&self, objects: &[&str]) -> HsToPg {
        let objects = objects
            .iter()
            .map(|name| {
                let mut o = ObjectSettings::new(name);
                o.lookback = Duration::from_secs(5);
                o.clock_skew = Duration::ZERO;
                o
            })
            .collect();
        self.pipelines_with(objects)
    }

    pub(crate) fn pipelines_with(&self, objects: Vec<ObjectSettings>) -> HsToPg {
        HsToPg::new(
            self.client.clone(),
            self.store().clone(),
            SyncSettings::new(SCHEMA, objects),
        )
    }

    pub(crate) async fn pass(&self, pipelines: &HsToPg) -> PassReport {
        let report = pipelines
            .run_once(&PassOptions::default(), &NoProgress)
            .await
            .expect("pass");
        assert!(report.is_success(), "{report:?}");
        report
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let conn = self.store().client().await.expect("conn");
        conn.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// POSTs JSON to the emulator and returns the JSON answer.
    pub(crate) async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
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
        answer.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub(crate) async fn get(&self, path: &str) -> serde_json::Value {
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

/// A seed with `contacts`, `companies`, `deals`.
pub(crate) fn seed(contacts: usize, companies: usize, deals: usize) -> SeedConfig {
    SeedConfig {
        contacts,
        companies,
        deals,
        tickets: 0,
        value: 7,
    }
}
