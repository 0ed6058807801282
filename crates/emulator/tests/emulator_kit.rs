//! What the associations, webhooks, faults and rate-limit tests add to the core's harness:
//! calls by method name returning `(status, JSON)`, record creation returning the numeric id,
//! header access, and polling with a deadline (no fixed sleeps).

use std::time::Duration;

use hubsync_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Emu, Reply, quiet_config};

/// Starts an emulator with `config` (the harness's test token is accepted).
pub(crate) async fn start(config: EmulatorConfig) -> Emu {
    Emu::with(EmulatorConfig {
        tokens: quiet_config().tokens,
        ..config
    })
    .await
}

/// Starts an emulator with rate limits off (tests that are not about limits).
pub(crate) async fn start_unlimited() -> Emu {
    Emu::start().await
}

/// Calls by method name.
pub(crate) trait Calls {
    /// Sends a request with the test token and an optional JSON body.
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply;
    /// Sends a request; status and JSON body.
    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value);
    /// Creates a record through the public API and returns its id.
    async fn create(&self, object_type: &str, properties: Value) -> u64;
    /// `PUT` the default association from one record to another (v4); status and JSON body.
    async fn associate_default(&self, from: (&str, u64), to: (&str, u64)) -> (u16, Value);
    /// `GET` one record's associations of `to_type` (v4); status and JSON body.
    async fn associations(&self, from: (&str, u64), to_type: &str) -> (u16, Value);
}

impl Calls for Emu {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        self.call(method, path, body).await
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let reply = self.send(method, path, body).await;
        let body = if reply.body == json!("") {
            Value::Null
        } else {
            reply.body
        };
        (reply.status.as_u16(), body)
    }

    async fn create(&self, object_type: &str, properties: Value) -> u64 {
        let path = format!("/crm/v3/objects/{object_type}");
        let (status, body) = self
            .json("POST", &path, Some(json!({"properties": properties})))
            .await;
        assert_eq!(status, 201, "create {object_type}: {body}");
        body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("created record has an id")
    }

    async fn associate_default(
        &self,
        (from_type, from): (&str, u64),
        (to_type, to): (&str, u64),
    ) -> (u16, Value) {
        let path =
            format!("/crm/v4/objects/{from_type}/{from}/associations/default/{to_type}/{to}");
        self.json("PUT", &path, None).await
    }

    async fn associations(&self, (from_type, from): (&str, u64), to_type: &str) -> (u16, Value) {
        let path = format!("/crm/v4/objects/{from_type}/{from}/associations/{to_type}");
        self.json("GET", &path, None).await
    }
}

/// A response header as text.
pub(crate) fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Polls `check` every 20 ms until it returns `Some` or `deadline` passes.
pub(crate) async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
