//! TLS against a real server: a private cluster with `ssl = on` and a certificate from a
//! throwaway CA (made with the `openssl` command), reached with each `sslmode`.

use std::{path::Path, process::Command};

use hubsync_store::{ClusterOptions, ErrorKind, PrivateCluster, Store};

const SERVER_NAME: &str = "db.hubsync.test";

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certificates(dir: &Path) {
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName=DNS:{SERVER_NAME}\n"),
    )
    .unwrap();
    openssl(
        dir,
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca",
    );
    openssl(
        dir,
        &format!(
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN={SERVER_NAME}"
        ),
    );
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
         -days 2 -extfile san.ext",
    );
}

async fn uses_tls(url: &str) -> Result<bool, hubsync_store::StoreError> {
    let store = Store::connect(url).await?;
    let client = store.client().await?;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    drop(client);
    store.close();
    Ok(ssl)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sslmode_against_a_tls_server() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: the openssl command is needed to make test certificates");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("hubsync-tls-")
        .tempdir()
        .unwrap();
    let base = dir.path().join("pg");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certificates(&certs);
    let ca = certs.join("ca.crt");

    let cluster = tokio::task::spawn_blocking(
        move || -> Result<PrivateCluster, hubsync_store::StoreError> {
            // First start initialises PGDATA; then put the key pair in it (the server user
            // owns everything there) and restart with TLS on.
            let first = PrivateCluster::start(&base, None)?;
            first.stop()?;
            for f in ["server.crt", "server.key"] {
                std::fs::copy(certs.join(f), first.data_dir().join(f)).unwrap();
            }
            let settings = [
                ("ssl", "on"),
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
            ];
            PrivateCluster::start_with(
                &base,
                &ClusterOptions {
                    port: None,
                    settings: settings
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..ClusterOptions::default()
                },
            )
        },
    )
    .await
    .unwrap()
    .unwrap();
    let port = cluster.port();
    let tcp =
        |extra: &str| format!("host=127.0.0.1 port={port} user=postgres dbname=postgres {extra}");
    let ca = ca.display();

    assert!(!uses_tls(&tcp("sslmode=disable")).await.unwrap());
    assert!(uses_tls(&tcp("")).await.unwrap(), "prefer is the default");
    assert!(uses_tls(&tcp("sslmode=require")).await.unwrap());
    assert!(
        uses_tls(&tcp(&format!("sslmode=verify-ca sslrootcert={ca}")))
            .await
            .unwrap()
    );
    // verify-full checks the name: the certificate is for db.hubsync.test, not 127.0.0.1.
    let err = uses_tls(&tcp(&format!("sslmode=verify-full sslrootcert={ca}")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(!err.is_retryable());
    let by_name = format!(
        "host={SERVER_NAME} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres \
         sslmode=verify-full sslrootcert={ca}"
    );
    assert!(uses_tls(&by_name).await.unwrap());
    let url = format!(
        "postgresql://postgres@{SERVER_NAME}:{port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
    );
    assert!(uses_tls(&url).await.unwrap());
    // The public web roots do not trust our test CA.
    let untrusted = format!(
        "host={SERVER_NAME} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full"
    );
    assert!(uses_tls(&untrusted).await.is_err());

    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
}
