//! Connection strings and TLS: parses a libpq URL or `key=value` string, honours `sslmode`
//! the way libpq does (including `verify-ca` and `verify-full`, which tokio-postgres does not
//! parse itself) and builds the rustls connector (ring provider, webpki roots or the file in
//! `sslrootcert`).

use std::{path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it, without checking its certificate (libpq `allow`
    /// and `prefer`, the default).
    #[default]
    Prefer,
    /// Always use TLS; check the certificate only if `sslrootcert` is given.
    Require,
    /// Always use TLS and check the certificate chain, not the host name.
    VerifyCa,
    /// Always use TLS and check the certificate chain and the host name.
    VerifyFull,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsPolicy {
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
}

/// A parsed connection string: the driver's config plus our TLS policy.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSpec {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: TlsPolicy,
}

/// Parses a `postgres://` / `postgresql://` URL or a libpq `key=value` string.
pub(crate) fn parse(conninfo: &str) -> Result<ConnectionSpec, StoreError> {
    let trimmed = conninfo.trim();
    let (rest, tls) = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")
    {
        split_url(trimmed)?
    } else {
        split_key_values(trimmed)?
    };
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
    config.ssl_mode(match tls.mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
    });
    Ok(ConnectionSpec { config, tls })
}

/// Takes the TLS keys out of a list of pairs; returns the policy.
fn take_tls(pairs: &mut Vec<(String, String)>) -> Result<TlsPolicy, StoreError> {
    let mut policy = TlsPolicy::default();
    let mut error = None;
    pairs.retain(|(k, v)| match k.as_str() {
        "sslmode" => {
            policy.mode = match v.as_str() {
                "disable" => SslMode::Disable,
                "allow" | "prefer" => SslMode::Prefer,
                "require" => SslMode::Require,
                "verify-ca" => SslMode::VerifyCa,
                "verify-full" => SslMode::VerifyFull,
                _ => {
                    error = Some(format!(
                        "sslmode must be one of disable, allow, prefer, require, verify-ca, \
                         verify-full (got {v:?})"
                    ));
                    SslMode::Prefer
                }
            };
            false
        }
        "sslrootcert" => {
            if v != "system" {
                policy.root_cert = Some(PathBuf::from(v));
            }
            false
        }
        _ => true,
    });
    match error {
        Some(e) => Err(StoreError::Config(e)),
        None => Ok(policy),
    }
}

fn split_url(conninfo: &str) -> Result<(String, TlsPolicy), StoreError> {
    let mut url = url::Url::parse(conninfo)
        .map_err(|e| StoreError::Config(format!("not a valid PostgreSQL URL: {e}")))?;
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let policy = take_tls(&mut pairs)?;
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok((url.to_string(), policy))
}

fn split_key_values(conninfo: &str) -> Result<(String, TlsPolicy), StoreError> {
    let mut pairs = key_values(conninfo)?;
    let policy = take_tls(&mut pairs)?;
    let rest = pairs
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((rest, policy))
}

/// Splits a libpq `key = value` string (values optionally single-quoted, `\` escapes).
fn key_values(s: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(StoreError::Config(format!("missing \"=\" after {key:?}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(StoreError::Config(format!("unterminated quote in {key:?}")));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// Builds the rustls connector for a policy. Uses the ring provider explicitly, so no
/// process-wide default provider has to be installed first.
pub(crate) fn connector(policy: &TlsPolicy) -> Result<MakeRustlsConnect, StoreError> {
    // ring is the project's chosen provider (no C build); rustls 0.23.48 deprecates its
    // constructor only because ring lacks post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("no usable TLS protocol version", e))?;
    let roots = Arc::new(root_store(policy)?);
    let verify_chain = matches!(policy.mode, SslMode::VerifyCa | SslMode::VerifyFull)
        || (policy.mode == SslMode::Require && policy.root_cert.is_some());
    let config = if policy.mode == SslMode::VerifyFull {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let chain = if verify_chain {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| tls_error("could not build the certificate verifier", e))?;
            Some(inner)
        } else {
            None
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostCheck {
                chain,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

fn tls_error(message: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Tls {
        message: message.to_owned(),
        source: Some(Box::new(e)),
    }
}

fn root_store(policy: &TlsPolicy) -> Result<RootCertStore, StoreError> {
    let Some(path) = &policy.root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(&format!("cannot read sslrootcert {}", path.display()), e))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| tls_error(&format!("bad PEM in sslrootcert {}", path.display()), e))?;
        store
            .add(cert)
            .map_err(|e| tls_error("unusable root certificate", e))?;
    }
    if store.is_empty() {
        return Err(StoreError::Tls {
            message: format!("sslrootcert {} holds no certificate", path.display()),
            source: None,
        });
    }
    Ok(store)
}

/// The modes that do not check the host name. With `chain` (`verify-ca`, or `require` with a
/// root certificate) the chain must lead to a trusted root; without it (`prefer` / `require`
/// without a root certificate) the connection is encrypted but, as in libpq, the server is
/// not authenticated. Handshake signatures are always checked.
#[derive(Debug)]
struct NoHostCheck {
    /// The chain check, when the mode asks for one.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// The provider's signature algorithms (the ones `chain` was built with).
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoHostCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_tls_keys_are_taken_out() {
        let spec =
            parse("postgresql://u:p@db.example.com:6543/app?sslmode=verify-full&connect_timeout=5")
                .unwrap();
        assert_eq!(spec.tls.mode, SslMode::VerifyFull);
        assert_eq!(spec.config.get_ssl_mode(), DriverSslMode::Require);
        assert_eq!(spec.config.get_dbname(), Some("app"));
        assert_eq!(spec.config.get_ports(), &[6543]);
    }

    #[test]
    fn key_value_strings_keep_quotes_and_take_tls_keys() {
        let spec =
            parse(r"host=/tmp/x port = 5 password='it\'s' dbname='a b' sslmode=disable").unwrap();
        assert_eq!(spec.tls.mode, SslMode::Disable);
        assert_eq!(spec.config.get_dbname(), Some("a b"));
        assert_eq!(spec.config.get_password(), Some(&b"it's"[..]));
        assert_eq!(spec.config.get_ports(), &[5]);
    }

    #[test]
    fn bad_sslmode_is_a_config_error() {
        let err = parse("host=x sslmode=sometimes").unwrap_err();
        assert!(matches!(err, StoreError::Config(_)));
    }

    #[test]
    fn every_mode_builds_a_connector() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert!(
                connector(&TlsPolicy {
                    mode,
                    root_cert: None
                })
                .is_ok()
            );
        }
        let missing = TlsPolicy {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        assert!(connector(&missing).is_err());
    }
}
