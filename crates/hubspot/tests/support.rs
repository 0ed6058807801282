//! A real emulator on 127.0.0.1:0 and a [`HubSpotClient`] pointed at it.

use std::num::NonZeroU32;
use std::time::Duration;

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, RateLimit, SeedConfig};
use hubsync_hubspot::{HubSpotClient, HubSpotClientConfig, ObjectInput, RateQuota};
use serde_json::Value;

/// The emulator plus a client.
pub(crate) struct Portal {
    pub(crate) handle: EmulatorHandle,
    pub(crate) client: HubSpotClient,
}

/// Emulator limits off; client limits generous; quick retries.
pub(crate) fn unlimited() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: None,
        daily_limit: None,
        search_per_second: None,
        ..EmulatorConfig::default()
    }
}

/// A client config for `handle` with generous limits and quick retries.
pub(crate) fn client_config(handle: &EmulatorHandle) -> HubSpotClientConfig {
    let url = url::Url::parse(&handle.base_url()).expect("emulator URL parses");
    let mut config = HubSpotClientConfig::new(url, "pat-na1-test".into());
    config.burst = "100000/10s".parse::<RateQuota>().expect("quota");
    config.search_per_second = NonZeroU32::new(1000).expect("non-zero");
    config.min_retry_delay = Duration::from_millis(20);
    config.max_retry_delay = Duration::from_millis(200);
    config
}

impl Portal {
    /// An unlimited, empty portal.
    pub(crate) async fn start() -> Self {
        Self::with(unlimited(), client_config).await
    }

    /// An unlimited portal seeded with `contacts` contacts.
    pub(crate) async fn seeded(contacts: usize) -> Self {
        let config = EmulatorConfig {
            seed: SeedConfig {
                contacts,
                companies: 3,
                deals: 2,
                tickets: 1,
                value: 11,
            },
            ..unlimited()
        };
        Self::with(config, client_config).await
    }

    /// Any emulator and client configuration.
    pub(crate) async fn with(
        config: EmulatorConfig,
        client: impl FnOnce(&EmulatorHandle) -> HubSpotClientConfig,
    ) -> Self {
        let handle = hubsync_emulator::spawn(config)
            .await
            .expect("emulator starts");
        let client = HubSpotClient::new(client(&handle)).expect("client builds");
        Self { handle, client }
    }

    /// A portal limited to `requests` per `per`, with the client config of
    /// [`client_config`] adjusted by `tune` (its burst, its retries).
    pub(crate) async fn rate_limited(
        requests: u32,
        per: Duration,
        tune: impl FnOnce(&mut HubSpotClientConfig),
    ) -> Self {
        let config = EmulatorConfig {
            rate_limit: Some(RateLimit { requests, per }),
            ..unlimited()
        };
        Self::with(config, |h| {
            let mut config = client_config(h);
            tune(&mut config);
            config
        })
        .await
    }

    /// POSTs JSON to the emulator's control API.
    pub(crate) async fn control(&self, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.handle.base_url()))
            .json(&body)
            .send()
            .await
            .expect("control call");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// GETs the emulator's control API.
    pub(crate) async fn control_get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.handle.base_url()))
            .send()
            .await
            .expect("control call")
            .json()
            .await
            .expect("JSON")
    }

    /// Creates `n` contacts named `prefix-i@example.com` through batch create; returns ids.
    pub(crate) async fn contacts(&self, prefix: &str, n: usize) -> Vec<u64> {
        let inputs: Vec<ObjectInput> = (0..n)
            .map(|i| {
                ObjectInput::new([
                    ("email", format!("{prefix}-{i}@example.com")),
                    ("firstname", format!("F{i}")),
                ])
            })
            .collect();
        let outcome = self
            .client
            .batch_create("contacts", &inputs)
            .await
            .expect("batch create");
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        outcome.results.iter().map(|r| r.id).collect()
    }
}
