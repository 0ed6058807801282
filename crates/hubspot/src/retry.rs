//! The retry decision and the backoff policy.
//!
//! [`classify`] is the one place that decides whether an HTTP answer is worth another try
//! (vector's table: 429 and 5xx retry, except 501; other 4xx are permanent), and
//! [`classify_transport`] does the same for failures without an answer (timeouts, connects and
//! resets retry). The sleeping is backon's exponential backoff with jitter; a `Retry-After`
//! from HubSpot stretches the delay, never shortens it.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// The call succeeded.
    Successful,
    /// Try again later; the reason is for logs.
    Retry(&'static str),
    /// Give up; the reason is for logs.
    DontRetry(&'static str),
}

/// Classifies an HTTP status.
///
/// 429 and 5xx retry, except 501 (not implemented) and 530 (HubSpot's answer to a malformed
/// token, lessons.md #6). 423 (portal locked during a bulk sync) and 477 (portal migrating
/// between data centres) are temporary by HubSpot's own description and retry too. Every other
/// 4xx is permanent.
pub fn classify(status: StatusCode) -> RetryAction {
    match status.as_u16() {
        _ if status.is_success() => RetryAction::Successful,
        429 => RetryAction::Retry("rate limited"),
        423 => RetryAction::Retry("portal locked"),
        477 => RetryAction::Retry("portal migration in progress"),
        501 => RetryAction::DontRetry("not implemented"),
        530 => RetryAction::DontRetry("invalid credentials"),
        _ if status.is_server_error() => RetryAction::Retry("server error"),
        _ if status.is_redirection() => RetryAction::DontRetry("unexpected redirect"),
        _ => RetryAction::DontRetry("client error"),
    }
}

/// Classifies a failure that produced no HTTP answer.
///
/// Building the request or following redirects will fail the same way again; everything
/// else (connect refused, timeout, connection reset, truncated body) is transient.
pub fn classify_transport(err: &reqwest::Error) -> RetryAction {
    if err.is_builder() || err.is_redirect() {
        RetryAction::DontRetry("request cannot be sent")
    } else if err.is_timeout() {
        RetryAction::Retry("timeout")
    } else if err.is_connect() {
        RetryAction::Retry("connect failed")
    } else {
        RetryAction::Retry("connection dropped")
    }
}

/// Reads `Retry-After` as seconds (HubSpot never sends the HTTP-date form; a date is ignored).
/// Fractional seconds are accepted.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The delay before the next attempt: backon's jittered exponential delay, stretched to
/// HubSpot's `Retry-After` when that is longer. `None` (attempts exhausted) stays `None`.
pub fn next_delay(backoff: Option<Duration>, retry_after: Option<Duration>) -> Option<Duration> {
    let backoff = backoff?;
    Some(match retry_after {
        Some(asked) => asked.max(backoff),
        None => backoff,
    })
}

/// The backoff for one call: exponential from `min_delay`, doubling, capped at `max_delay`,
/// with jitter, at most `max_retries` retries.
pub fn backoff(max_retries: usize, min_delay: Duration, max_delay: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(min_delay)
        .with_max_delay(max_delay)
        .with_factor(2.0)
        .with_max_times(max_retries)
        .with_jitter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;
    use reqwest::header::HeaderValue;

    fn code(n: u16) -> StatusCode {
        StatusCode::from_u16(n).expect("valid status")
    }

    #[test]
    fn vector_table() {
        for ok in [200, 201, 204, 207] {
            assert_eq!(classify(code(ok)), RetryAction::Successful, "{ok}");
        }
        for retry in [429, 500, 502, 503, 504, 521, 523, 524, 423, 477] {
            assert!(
                matches!(classify(code(retry)), RetryAction::Retry(_)),
                "{retry}"
            );
        }
        for permanent in [400, 401, 403, 404, 405, 409, 414, 415, 501, 530, 301] {
            assert!(
                matches!(classify(code(permanent)), RetryAction::DontRetry(_)),
                "{permanent}"
            );
        }
    }

    #[test]
    fn every_status_is_classified_by_the_rule() {
        for n in 100..=599u16 {
            let expected_retry =
                n == 429 || n == 423 || n == 477 || (n >= 500 && n != 501 && n != 530);
            let action = classify(code(n));
            if (200..300).contains(&n) {
                assert_eq!(action, RetryAction::Successful, "{n}");
            } else {
                assert_eq!(
                    matches!(action, RetryAction::Retry(_)),
                    expected_retry,
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_stretches_but_never_shortens() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(Some(s(1)), Some(s(10))), Some(s(10)));
        assert_eq!(next_delay(Some(s(4)), Some(s(1))), Some(s(4)));
        assert_eq!(next_delay(Some(s(4)), None), Some(s(4)));
        assert_eq!(
            next_delay(None, Some(s(1))),
            None,
            "exhausted stays exhausted"
        );
    }

    #[test]
    fn backoff_is_bounded_in_count_and_size() {
        let delays: Vec<_> = backoff(5, Duration::from_millis(100), Duration::from_secs(2))
            .build()
            .collect();
        assert_eq!(delays.len(), 5);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(4)),
            "{delays:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backon_honours_the_classification() {
        use backon::Retryable;
        use std::sync::atomic::{AtomicU32, Ordering};
        let attempts = AtomicU32::new(0);
        let statuses = [503u16, 429, 200];
        let result = (|| async {
            let n = attempts.fetch_add(1, Ordering::SeqCst) as usize;
            match classify(code(statuses[n])) {
                RetryAction::Successful => Ok(n),
                RetryAction::Retry(_) => Err(true),
                RetryAction::DontRetry(_) => Err(false),
            }
        })
        .retry(backoff(
            3,
            Duration::from_millis(10),
            Duration::from_secs(1),
        ))
        .sleep(tokio::time::sleep)
        .when(|retryable| *retryable)
        .await;
        assert_eq!(result, Ok(2));

        let permanent = AtomicU32::new(0);
        let result: Result<(), bool> = (|| async {
            permanent.fetch_add(1, Ordering::SeqCst);
            match classify(code(404)) {
                RetryAction::Retry(_) => Err(true),
                _ => Err(false),
            }
        })
        .retry(backoff(
            3,
            Duration::from_millis(10),
            Duration::from_secs(1),
        ))
        .sleep(tokio::time::sleep)
        .when(|retryable| *retryable)
        .await;
        assert_eq!(result, Err(false));
        assert_eq!(permanent.load(Ordering::SeqCst), 1, "404 is not retried");
    }
}
