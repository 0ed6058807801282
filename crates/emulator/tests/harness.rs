//! A real emulator on 127.0.0.1:0 and a reqwest client talking to it over HTTP.

use hubsync_emulator::{EmulatorConfig, EmulatorHandle, SeedConfig};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

/// A running emulator plus an authenticated client.
pub(crate) struct Emu {
    /// The server.
    pub(crate) handle: EmulatorHandle,
    /// HTTP client.
    pub(crate) http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

/// A reply: status, headers, body (JSON, or the text as a JSON string when not JSON).
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

/// A config without rate limits (tests make many calls quickly).
pub(crate) fn quiet_config() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: None,
        daily_limit: None,
        search_per_second: None,
        tokens: vec!["pat-na1-test".into()],
        ..EmulatorConfig::default()
    }
}

impl Emu {
    /// An empty portal.
    pub(crate) async fn start() -> Self {
        Self::with(quiet_config()).await
    }

    /// A portal seeded with `contacts` contacts and `companies` companies.
    pub(crate) async fn seeded(contacts: usize, companies: usize) -> Self {
        let mut config = quiet_config();
        config.seed = SeedConfig {
            contacts,
            companies,
            deals: 5,
            tickets: 5,
            value: 7,
        };
        Self::with(config).await
    }

    /// Any configuration.
    pub(crate) async fn with(config: EmulatorConfig) -> Self {
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let handle = hubsync_emulator::spawn(config)
            .await
            .expect("emulator starts");
        let base = handle.base_url();
        let http = reqwest::Client::builder().build().expect("client");
        Self { handle, http, base }
    }

    /// Sends a request with the test token.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth("pat-na1-test");
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req.send().await.expect("request sent")).await
    }

    /// GET.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    /// POST with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PATCH with a JSON body.
    pub(crate) async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// DELETE.
    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a contact and returns its id.
    pub(crate) async fn contact(&self, props: Value) -> String {
        let r = self
            .post(
                "/crm/v3/objects/contacts",
                serde_json::json!({ "properties": props }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("string id").to_owned()
    }
}

/// Reads a response into a [`Reply`].
pub(crate) async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}
