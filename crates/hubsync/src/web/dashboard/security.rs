//! Who may use the dashboard and how forms are protected.
//!
//! - **Authentication**: with `dashboard.token` set, every request needs
//!   `Authorization: Bearer TOKEN` or basic auth with the token as password (browsers ask
//!   for it: `WWW-Authenticate: Basic`). The configuration refuses a non-loopback
//!   `server.listen` without a token.
//! - **CSRF**: every POST must carry the per-process token (a hidden `csrf` field, random
//!   per process start) and, when the browser sends `Origin` (all current ones do on POST),
//!   come from the same host the page was served from.
//!
//! Comparisons are constant-time.

use std::{io::Read, sync::Arc};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64_engine::decode_basic;
use secrecy::ExposeSecret;

use super::Dashboard;

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A fresh random token (128 bits from the OS).
pub(super) fn new_csrf_token() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !filled {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .elapsed()
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two byte strings.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: authentication, then for POSTs origin and CSRF checks.
pub(super) async fn guard(
    State(d): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &d.token
        && !authorized(request.headers(), token.expose_secret())
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"hubsync\"")],
            "authentication required",
        )
            .into_response();
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return (StatusCode::FORBIDDEN, "cross-origin form refused").into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if !token.is_some_and(|t| same(t.as_bytes(), d.csrf().as_bytes())) {
        return (
            StatusCode::FORBIDDEN,
            "missing or stale form token; reload the page",
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return same(bearer.trim().as_bytes(), token.as_bytes());
    }
    if let Some(basic) = value.strip_prefix("Basic ")
        && let Some(password) = decode_basic(basic.trim())
    {
        return same(password.as_bytes(), token.as_bytes());
    }
    false
}

/// `Origin` (when present) names the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin).is_ok_and(|u| {
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        };
        !host.is_empty() && authority.eq_ignore_ascii_case(host)
    })
}

/// Basic-auth decoding without another dependency.
mod base64_engine {
    /// The password of a `Basic` credential (`user:password`, base64).
    pub(super) fn decode_basic(encoded: &str) -> Option<String> {
        let bytes = decode(encoded)?;
        let text = String::from_utf8(bytes).ok()?;
        text.split_once(':').map(|(_, p)| p.to_owned())
    }

    fn decode(s: &str) -> Option<Vec<u8>> {
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            })
        };
        let s = s.trim_end_matches('=').as_bytes();
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        for chunk in s.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                n |= value(*c)? << (18 - 6 * i);
            }
            let bytes = n.to_be_bytes();
            out.extend_from_slice(&bytes[1..chunk.len()]);
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn decodes_basic_credentials() {
            // "ops:s3cret" and "a:b"
            assert_eq!(
                super::decode_basic("b3BzOnMzY3JldA==").as_deref(),
                Some("s3cret")
            );
            assert_eq!(super::decode_basic("YTpi").as_deref(), Some("b"));
            assert_eq!(super::decode_basic("!!"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().expect("header"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://127.0.0.1:8080".parse().expect("header"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            "http://evil.example".parse().expect("header"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn bearer_or_basic_password_must_match() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().expect("header"));
            h
        };
        assert!(authorized(&with("Bearer s3cret"), "s3cret"));
        assert!(
            authorized(&with("Basic b3BzOnMzY3JldA=="), "s3cret"),
            "ops:s3cret"
        );
        assert!(!authorized(&with("Bearer wrong"), "s3cret"));
        assert!(!authorized(&with("Basic YTpi"), "s3cret"));
        assert!(!authorized(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn tokens_are_random_and_compared_exactly() {
        let (a, b) = (new_csrf_token(), new_csrf_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(same(a.as_bytes(), a.as_bytes()));
        assert!(!same(a.as_bytes(), b.as_bytes()));
    }
}
