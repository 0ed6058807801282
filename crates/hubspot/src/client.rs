//! [`HubSpotClient`]: base URL, auth, and the one `send` path every HubSpot call goes through
//! (governor → request → headers fed back → classification → backon retry).
//!
//! The token is a [`SecretString`]; it is exposed only to build the `Authorization` header,
//! which reqwest marks sensitive, and is never logged.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::endpoint::Endpoint;
use crate::error::HubSpotError;
use crate::rate_limit::{Governor, RateHeaders, RateQuota};
use crate::retry::{self, RetryAction, classify};
use crate::stats::{CallStats, Tally};

/// HubSpot's production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// Everything a [`HubSpotClient`] needs. Build with [`HubSpotClientConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
pub struct HubSpotClientConfig {
    /// API root (`https://api.hubapi.com`, or an emulator's address).
    pub base_url: Url,
    /// Private-app or OAuth access token.
    pub token: SecretString,
    /// The portal's burst limit (default 100 per 10 s).
    pub burst: RateQuota,
    /// Search requests per second (default 4, headroom under HubSpot's 5).
    pub search_per_second: NonZeroU32,
    /// Our own cap on calls per UTC day; `None` trusts HubSpot's daily headers alone.
    pub daily_limit: Option<u64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt for retryable failures.
    pub max_retries: usize,
    /// First retry delay (doubles, with jitter).
    pub min_retry_delay: Duration,
    /// Longest retry delay (a longer `Retry-After` still wins).
    pub max_retry_delay: Duration,
    /// Longest URL sent on GETs; property lists beyond it are split (lessons.md #3).
    pub max_url_bytes: usize,
    /// Source ids per association batch read (HubSpot allows 1,000 since 2025-02; the
    /// default uses that to keep incremental passes within ~11 calls per 1,000 records).
    pub association_read_batch: usize,
}

impl HubSpotClientConfig {
    /// Defaults: 100/10 s burst, 4 searches/s, no daily cap, 30 s timeout, 6 retries
    /// from 500 ms to 16 s, URLs up to 8,000 bytes, 1,000 ids per association read.
    pub fn new(base_url: Url, token: SecretString) -> Self {
        Self {
            base_url,
            token,
            burst: RateQuota::default(),
            search_per_second: NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN),
            daily_limit: None,
            timeout: Duration::from_secs(30),
            max_retries: 6,
            min_retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(16),
            max_url_bytes: 8_000,
            association_read_batch: crate::associations::MAX_ASSOCIATION_READ_INPUTS,
        }
    }
}

/// The HubSpot client. Cheap to clone; clones share one connection pool, one rate governor
/// and one [`CallStats`] tally, so use one client (and its clones) per portal.
#[derive(Clone)]
pub struct HubSpotClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    token: SecretString,
    governor: Governor,
    tally: Tally,
    max_retries: usize,
    min_retry_delay: Duration,
    max_retry_delay: Duration,
    max_url_bytes: usize,
    association_read_batch: usize,
}

impl fmt::Debug for HubSpotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotClient")
            .field("base_url", &self.inner.base_url.as_str())
            .field("governor", &self.inner.governor)
            .finish_non_exhaustive()
    }
}

/// The header carrying HubSpot's id of one request (also `correlationId` in error bodies).
pub(crate) const CORRELATION_HEADER: &str = "x-hubspot-correlation-id";

/// An answer with a success status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
    /// `X-HubSpot-Correlation-Id` (HubSpot sends it on every answer).
    pub(crate) correlation_id: Option<String>,
}

/// Installs ring as rustls' process-wide provider unless one is already installed.
pub fn install_tls_provider() {
    let _ = ring_provider().install_default();
}

/// ring is the project's chosen provider (stack.md §4: no C build); rustls 0.23.48 deprecates
/// it only for lacking post-quantum key exchange.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn tls_config() -> Result<rustls::ClientConfig, HubSpotError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| HubSpotError::Config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl HubSpotClient {
    /// Builds the client.
    ///
    /// # Errors
    /// [`HubSpotError::Config`] when the base URL cannot carry paths or the HTTP client cannot
    /// be built.
    pub fn new(config: HubSpotClientConfig) -> Result<Self, HubSpotError> {
        install_tls_provider();
        if config.base_url.cannot_be_a_base() {
            return Err(HubSpotError::Config(
                "base_url cannot carry paths".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("hubsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HubSpotError::Config(format!("HTTP client setup failed: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url: config.base_url,
                token: config.token,
                governor: Governor::new(config.burst, config.search_per_second, config.daily_limit),
                tally: Tally::default(),
                max_retries: config.max_retries,
                min_retry_delay: config.min_retry_delay,
                max_retry_delay: config.max_retry_delay,
                max_url_bytes: config.max_url_bytes,
                association_read_batch: config
                    .association_read_batch
                    .clamp(1, crate::associations::MAX_ASSOCIATION_READ_INPUTS),
            }),
        })
    }

    /// What this client (and its clones) has done so far.
    pub fn stats(&self) -> CallStats {
        self.inner.tally.snapshot()
    }

    /// The burst bound the governor currently paces to (the configured one, or HubSpot's
    /// stricter reported one).
    pub fn rate_bound(&self) -> RateQuota {
        self.inner.governor.bound()
    }

    /// The configured API root.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    pub(crate) fn max_url_bytes(&self) -> usize {
        self.inner.max_url_bytes
    }

    pub(crate) fn association_read_batch(&self) -> usize {
        self.inner.association_read_batch
    }

    /// `base_url` + path segments (each percent-encoded) + query pairs.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GETs `url` and decodes the JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        url: Url,
    ) -> Result<T, HubSpotError> {
        let answer = self.send(endpoint, Method::GET, url, None).await?;
        decode(endpoint, &answer.body)
    }

    /// Sends `body` as JSON with `method` and decodes the JSON answer.
    pub(crate) async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        body: &B,
    ) -> Result<T, HubSpotError> {
        let answer = self.send_body(endpoint, method, url, body).await?;
        decode(endpoint, &answer.body)
    }

    /// Sends `body` as JSON and returns the raw answer (for 204s and multi-status bodies).
    pub(crate) async fn send_body<B: Serialize + ?Sized>(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        body: &B,
    ) -> Result<Answer, HubSpotError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| HubSpotError::InvalidInput(format!("request body not encodable: {e}")))?;
        self.send(endpoint, method, url, Some(Bytes::from(bytes)))
            .await
    }

    /// The one path to HubSpot: governed, classified, retried.
    pub(crate) async fn send(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        body: Option<Bytes>,
    ) -> Result<Answer, HubSpotError> {
        let inner = &self.inner;
        let result = (|| self.attempt(endpoint, &method, &url, body.clone()))
            .retry(retry::backoff(inner.max_retries, inner.min_retry_delay, inner.max_retry_delay))
            .sleep(tokio::time::sleep)
            .when(HubSpotError::is_retryable)
            .adjust(|err, delay| retry::next_delay(delay, err.retry_after()))
            .notify(|err, delay| {
                inner.tally.retry(endpoint.label);
                tracing::warn!(endpoint = endpoint.label, status = ?err.status(), ?delay, error = %err, "retrying HubSpot call");
            })
            .await;
        if result.is_err() {
            inner.tally.failure();
        }
        result
    }

    async fn attempt(
        &self,
        endpoint: Endpoint,
        method: &Method,
        url: &Url,
        body: Option<Bytes>,
    ) -> Result<Answer, HubSpotError> {
        let inner = &self.inner;
        let sent_at = inner.governor.acquire(endpoint.class).await?;
        let mut request = inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(inner.token.expose_secret())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => {
                inner
                    .tally
                    .request(endpoint.label, endpoint.class, 0, &RateHeaders::default());
                return Err(HubSpotError::transport(endpoint.label, source));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let rate = RateHeaders::parse(&headers);
        inner
            .tally
            .request(endpoint.label, endpoint.class, status.as_u16(), &rate);
        inner.governor.observe(endpoint.class, sent_at, &rate).await;
        let body = response
            .bytes()
            .await
            .map_err(|e| HubSpotError::transport(endpoint.label, e))?;
        answer(endpoint, status, &headers, body)
    }
}

fn answer(
    endpoint: Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Answer, HubSpotError> {
    let correlation = headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if classify(status) == RetryAction::Successful {
        return Ok(Answer {
            status: status.as_u16(),
            body,
            correlation_id: correlation,
        });
    }
    Err(HubSpotError::from_response(
        endpoint.label,
        status.as_u16(),
        &body,
        retry::retry_after(headers),
        correlation,
    ))
}

/// Decodes a JSON answer.
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: Endpoint,
    body: &[u8],
) -> Result<T, HubSpotError> {
    serde_json::from_slice(body).map_err(|source| HubSpotError::Decode {
        endpoint: endpoint.label,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> HubSpotClient {
        let url = Url::parse(base).expect("url");
        HubSpotClient::new(HubSpotClientConfig::new(
            url,
            SecretString::from("pat-na1-secret"),
        ))
        .expect("client")
    }

    #[test]
    fn urls_encode_segments_and_keep_a_base_path() {
        let c = client("http://127.0.0.1:9/prefix/");
        let url = c.url(
            &["crm", "v3", "objects", "contacts", "ann+1@x.com"],
            &[("idProperty", "email")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/crm/v3/objects/contacts/ann+1@x.com?idProperty=email"
        );
        let slash = c.url(&["a/b"], &[]);
        assert_eq!(slash.as_str(), "http://127.0.0.1:9/prefix/a%2Fb");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = client("https://api.hubapi.com");
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// Engines spawn these futures onto a multi-threaded runtime: they must be `Send`.
    #[test]
    fn call_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let c = client("http://127.0.0.1:9");
        assert_send(&c.list_page("contacts", &crate::ListRequest::default()));
        assert_send(&c.batch_upsert("contacts", &[]));
        assert_send(&c.read_associations("contacts", "companies", &[]));
        let from = chrono::Utc::now();
        let mut pull = c.modified_between("contacts", from, from, &[]);
        assert_send(&pull.next_page());
        assert_send(&c.list_pages("contacts", crate::ListRequest::default()));
    }

    #[tokio::test]
    async fn unreachable_host_is_retried_then_surfaced() {
        let url = Url::parse("http://127.0.0.1:1").expect("url");
        let mut config = HubSpotClientConfig::new(url, SecretString::from("t"));
        config.max_retries = 2;
        config.min_retry_delay = Duration::from_millis(1);
        config.max_retry_delay = Duration::from_millis(5);
        let c = HubSpotClient::new(config).expect("client");
        let err = c
            .send(Endpoint::OBJECTS_GET, Method::GET, c.url(&["x"], &[]), None)
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            matches!(
                err,
                HubSpotError::Transport {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let stats = c.stats();
        assert_eq!(stats.requests, 3);
        assert_eq!(stats.retries, 2);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.by_status.get(&0), Some(&3));
    }
}
