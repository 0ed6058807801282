//! Webhook signature verification, v1, v2 and v3 (hubspot-api.md §12.5).
//!
//! * v1: `hex(sha256(secret + body))`
//! * v2: `hex(sha256(secret + METHOD + uri + body))`
//! * v3: `base64(hmac_sha256(secret, METHOD + uri + body + timestamp))`, and the
//!   `X-HubSpot-Request-Timestamp` must be within a window (5 minutes by default).
//!
//! Comparisons are constant-time (`Mac::verify_slice` for v3, an XOR fold for the v1/v2
//! digests). For v3 the URI is tried as received and, failing that, with the percent-escapes
//! HubSpot's docs say it decodes before signing (`%3A` `%2F` `%3F` `%40` `%21` `%24` `%27`
//! `%28` `%29` `%2A` `%2C` `%3B`).

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Header carrying a v1/v2 signature.
pub const SIGNATURE_HEADER: &str = "X-HubSpot-Signature";
/// Header naming the v1/v2 version (`v1` or `v2`).
pub const SIGNATURE_VERSION_HEADER: &str = "X-HubSpot-Signature-Version";
/// Header carrying a v3 signature.
pub const SIGNATURE_V3_HEADER: &str = "X-HubSpot-Signature-v3";
/// Header carrying the v3 timestamp (epoch ms).
pub const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";

/// A signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    /// SHA-256 of secret + body.
    V1,
    /// SHA-256 of secret + method + URI + body.
    V2,
    /// HMAC-SHA256 over method + URI + body + timestamp, time-limited.
    V3,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header of an accepted version.
    #[error("no acceptable HubSpot signature header")]
    Missing,
    /// The signature is not valid hex/base64.
    #[error("malformed HubSpot signature")]
    Malformed,
    /// The signature does not match.
    #[error("HubSpot signature mismatch")]
    Mismatch,
    /// v3 timestamp missing or unparsable.
    #[error("missing or malformed HubSpot request timestamp")]
    BadTimestamp,
    /// v3 timestamp outside the accepted window (a replay or a skewed clock).
    #[error("HubSpot request timestamp outside the accepted window")]
    Expired,
    /// The version is known but not accepted by this verifier.
    #[error("HubSpot signature version not accepted")]
    VersionNotAccepted,
}

/// What arrived: method, full URI (scheme, host, path and query as HubSpot called it), raw
/// body, and the signature headers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The full URI.
    pub uri: &'a str,
    /// The raw body bytes.
    pub body: &'a [u8],
    /// `X-HubSpot-Signature`.
    pub signature: Option<&'a str>,
    /// `X-HubSpot-Signature-Version`.
    pub signature_version: Option<&'a str>,
    /// `X-HubSpot-Signature-v3`.
    pub signature_v3: Option<&'a str>,
    /// `X-HubSpot-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
}

/// Verifies HubSpot webhook signatures with the app's client secret.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    secret: SecretString,
    max_age: Duration,
    accept_v1: bool,
    accept_v2: bool,
}

impl SignatureVerifier {
    /// Accepts v3 only, with a 5-minute window.
    pub fn new(client_secret: SecretString) -> Self {
        Self {
            secret: client_secret,
            max_age: Duration::from_secs(300),
            accept_v1: false,
            accept_v2: false,
        }
    }

    /// Changes the v3 timestamp window.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Also accepts v1 and/or v2 signatures (they carry no timestamp, so no replay guard).
    #[must_use]
    pub fn accept_legacy(mut self, v1: bool, v2: bool) -> Self {
        self.accept_v1 = v1;
        self.accept_v2 = v2;
        self
    }

    /// Verifies a request: v3 when its header is present, else v1/v2 per the version
    /// header (default v1). `now_ms` is the current time in epoch milliseconds.
    ///
    /// # Errors
    /// See [`SignatureError`].
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now_ms: i64,
    ) -> Result<SignatureVersion, SignatureError> {
        if let Some(signature) = request.signature_v3 {
            let timestamp = request.timestamp.ok_or(SignatureError::BadTimestamp)?;
            self.verify_v3(
                request.method,
                request.uri,
                request.body,
                timestamp,
                signature,
                now_ms,
            )?;
            return Ok(SignatureVersion::V3);
        }
        let signature = request.signature.ok_or(SignatureError::Missing)?;
        match request.signature_version.map(str::trim) {
            None | Some("v1" | "V1") if self.accept_v1 => {
                self.verify_v1(request.body, signature)?;
                Ok(SignatureVersion::V1)
            }
            Some("v2" | "V2") if self.accept_v2 => {
                self.verify_v2(request.method, request.uri, request.body, signature)?;
                Ok(SignatureVersion::V2)
            }
            None | Some("v1" | "V1" | "v2" | "V2") => Err(SignatureError::VersionNotAccepted),
            Some(_) => Err(SignatureError::Missing),
        }
    }

    /// v1: `hex(sha256(secret + body))`.
    ///
    /// # Errors
    /// [`SignatureError::Malformed`] or [`SignatureError::Mismatch`].
    pub fn verify_v1(&self, body: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
        let digest = sha256_of(&[self.secret.expose_secret().as_bytes(), body]);
        digest_matches(&digest, signature_hex)
    }

    /// v2: `hex(sha256(secret + METHOD + uri + body))`.
    ///
    /// # Errors
    /// [`SignatureError::Malformed`] or [`SignatureError::Mismatch`].
    pub fn verify_v2(
        &self,
        method: &str,
        uri: &str,
        body: &[u8],
        signature_hex: &str,
    ) -> Result<(), SignatureError> {
        let method = method.to_ascii_uppercase();
        let digest = sha256_of(&[
            self.secret.expose_secret().as_bytes(),
            method.as_bytes(),
            uri.as_bytes(),
            body,
        ]);
        digest_matches(&digest, signature_hex)
    }

    /// v3: checks the timestamp window, then
    /// `base64(hmac_sha256(secret, METHOD + uri + body + timestamp))`.
    ///
    /// # Errors
    /// [`SignatureError::BadTimestamp`], [`SignatureError::Expired`],
    /// [`SignatureError::Malformed`] or [`SignatureError::Mismatch`].
    pub fn verify_v3(
        &self,
        method: &str,
        uri: &str,
        body: &[u8],
        timestamp: &str,
        signature_b64: &str,
        now_ms: i64,
    ) -> Result<(), SignatureError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        let window = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(ts) > window || ts.saturating_sub(now_ms) > window {
            return Err(SignatureError::Expired);
        }
        let expected = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| SignatureError::Malformed)?;
        let method = method.to_ascii_uppercase();
        let decoded = decode_v3_uri(uri);
        let candidates: &[&str] = if decoded == uri {
            &[uri]
        } else {
            &[uri, &decoded]
        };
        for candidate in candidates {
            let Ok(mut mac) =
                Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            else {
                return Err(SignatureError::Malformed);
            };
            for part in [
                method.as_bytes(),
                candidate.as_bytes(),
                body,
                timestamp.as_bytes(),
            ] {
                mac.update(part);
            }
            if mac.verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }
}

fn sha256_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// Compares a digest with a hex signature without early exit on the first differing byte.
fn digest_matches(digest: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
    let given = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::Malformed)?;
    if given.len() != digest.len() {
        return Err(SignatureError::Mismatch);
    }
    let diff = digest
        .iter()
        .zip(&given)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The URI with the escapes HubSpot decodes before signing v3 requests.
fn decode_v3_uri(uri: &str) -> String {
    const ESCAPES: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let hit = ESCAPES
            .iter()
            .find(|(esc, _)| tail.get(..3).is_some_and(|t| t.eq_ignore_ascii_case(esc)));
        match hit {
            Some((_, plain)) => {
                out.push_str(plain);
                rest = &tail[3..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Signs like HubSpot does (for tests, the emulator's peers and local tooling).
pub fn sign(
    version: SignatureVersion,
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let method = method.to_ascii_uppercase();
    match version {
        SignatureVersion::V1 => hex::encode(sha256_of(&[secret.as_bytes(), body])),
        SignatureVersion::V2 => hex::encode(sha256_of(&[
            secret.as_bytes(),
            method.as_bytes(),
            uri.as_bytes(),
            body,
        ])),
        SignatureVersion::V3 => {
            let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map(|mut mac| {
                for part in [
                    method.as_bytes(),
                    uri.as_bytes(),
                    body,
                    timestamp.as_bytes(),
                ] {
                    mac.update(part);
                }
                mac.finalize().into_bytes().to_vec()
            });
            base64::engine::general_purpose::STANDARD.encode(mac.unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://www.example.com/webhook_uri";
    const BODY: &[u8] = b"{'example_field':'example_value'}";
    const B1: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    const TS: &str = "1693657560000";
    const V3_SIG: &str = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(SECRET.into()).accept_legacy(true, true)
    }

    #[test]
    fn documented_vectors() {
        let v = verifier();
        v.verify_v1(
            BODY,
            "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750",
        )
        .expect("v1");
        v.verify_v1(
            B1,
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        )
        .expect("v1 B1");
        v.verify_v2(
            "POST",
            URI,
            BODY,
            "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383",
        )
        .expect("v2");
        v.verify_v2(
            "GET",
            URI,
            b"",
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
        )
        .expect("v2 GET");
        v.verify_v2(
            "post",
            URI,
            br#"{"example_field":"example_value"}"#,
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        )
        .expect("v2 json");
        v.verify_v3("POST", URI, BODY, TS, V3_SIG, 1_693_657_560_000 + 1_000)
            .expect("v3");
        assert_eq!(
            sign(SignatureVersion::V3, SECRET, "POST", URI, BODY, TS),
            V3_SIG
        );
    }

    #[test]
    fn tampering_and_replays_are_refused() {
        let v = verifier();
        let now = 1_693_657_560_000;
        assert_eq!(
            v.verify_v3("POST", URI, b"{}", TS, V3_SIG, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify_v3("POST", "https://evil/x", BODY, TS, V3_SIG, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify_v3("POST", URI, BODY, TS, V3_SIG, now + 300_001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            v.verify_v3("POST", URI, BODY, TS, V3_SIG, now - 300_001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            v.verify_v3("POST", URI, BODY, "soon", V3_SIG, now),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            v.verify_v3("POST", URI, BODY, TS, "***", now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(v.verify_v1(BODY, "00"), Err(SignatureError::Mismatch));
        assert_eq!(v.verify_v1(BODY, "zz"), Err(SignatureError::Malformed));
        let tight = SignatureVerifier::new(SECRET.into()).max_age(Duration::from_secs(1));
        assert_eq!(
            tight.verify_v3("POST", URI, BODY, TS, V3_SIG, now + 1_001),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn v3_accepts_hubspots_decoded_uri_form() {
        let encoded = "https://www.example.com/webhook%3Fa=1%2C2%3D";
        let decoded = "https://www.example.com/webhook?a=1,2%3D";
        assert_eq!(decode_v3_uri(encoded), decoded);
        assert_eq!(decode_v3_uri("a%20b%2fc%"), "a%20b/c%");
        let sig = sign(SignatureVersion::V3, SECRET, "POST", decoded, BODY, TS);
        verifier()
            .verify_v3("POST", encoded, BODY, TS, &sig, 1_693_657_560_000)
            .expect("decoded form");
    }

    #[test]
    fn verify_picks_the_version_and_honours_the_accept_list() {
        let now = 1_693_657_560_000;
        let mut req = SignedRequest {
            method: "POST",
            uri: URI,
            body: BODY,
            signature: Some("69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"),
            signature_version: None,
            signature_v3: None,
            timestamp: None,
        };
        assert_eq!(verifier().verify(&req, now), Ok(SignatureVersion::V1));
        let v3_only = SignatureVerifier::new(SECRET.into());
        assert_eq!(
            v3_only.verify(&req, now),
            Err(SignatureError::VersionNotAccepted)
        );
        req.signature_v3 = Some(V3_SIG);
        req.timestamp = Some(TS);
        assert_eq!(v3_only.verify(&req, now), Ok(SignatureVersion::V3));
        req.timestamp = None;
        assert_eq!(v3_only.verify(&req, now), Err(SignatureError::BadTimestamp));
        let none = SignedRequest {
            signature: None,
            signature_v3: None,
            ..req
        };
        assert_eq!(v3_only.verify(&none, now), Err(SignatureError::Missing));
    }
}
