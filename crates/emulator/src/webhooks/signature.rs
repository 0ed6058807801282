//! HubSpot's webhook request signatures (hubspot-api.md §12.5): v1 and v2 (hex SHA-256 over the
//! secret and request parts) and v3 (base64 HMAC-SHA256 keyed by the client secret, over
//! method, URI, body and timestamp).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// `X-HubSpot-Signature` for `X-HubSpot-Signature-Version: v1`:
/// `hex(sha256(client_secret + body))`.
pub fn v1(secret: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// `X-HubSpot-Signature` for `X-HubSpot-Signature-Version: v2`:
/// `hex(sha256(client_secret + method + uri + body))`.
pub fn v2(secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(secret.as_bytes());
    hash.update(method.as_bytes());
    hash.update(uri.as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// `X-HubSpot-Signature-v3`: `base64(HMAC_SHA256(secret, method + uri + body + timestamp))`,
/// `timestamp` being the `X-HubSpot-Request-Timestamp` value (epoch milliseconds).
pub fn v3(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://www.example.com/webhook_uri";
    const BODY: &[u8] = b"{'example_field':'example_value'}";
    const B1: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    #[test]
    fn v1_matches_the_sdk_vectors() {
        assert_eq!(
            v1(SECRET, BODY),
            "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
        );
        assert_eq!(
            v1(SECRET, B1),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
    }

    #[test]
    fn v2_matches_the_sdk_vectors() {
        assert_eq!(
            v2(SECRET, "POST", URI, BODY),
            "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
        );
        assert_eq!(
            v2(SECRET, "GET", URI, b""),
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
        );
        assert_eq!(
            v2(SECRET, "POST", URI, br#"{"example_field":"example_value"}"#),
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
        );
    }

    #[test]
    fn v3_matches_the_sdk_vector() {
        assert_eq!(
            v3(SECRET, "POST", URI, BODY, "1693657560000"),
            "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
        );
    }

    #[test]
    fn v3_depends_on_every_part() {
        let base = v3(SECRET, "POST", URI, BODY, "1693657560000");
        assert_ne!(base, v3(SECRET, "POST", URI, BODY, "1693657560001"));
        assert_ne!(base, v3(SECRET, "PUT", URI, BODY, "1693657560000"));
        assert_ne!(base, v3("other", "POST", URI, BODY, "1693657560000"));
    }
}
