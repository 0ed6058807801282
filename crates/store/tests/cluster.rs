//! The private cluster: initdb on a new folder, reuse of a running server and of kept data.

use hubsync_store::{ClusterOptions, PrivateCluster, Store};

#[tokio::test(flavor = "multi_thread")]
async fn starts_reuses_and_keeps_data() {
    let dir = tempfile::Builder::new()
        .prefix("hubsync-cluster-")
        .tempdir()
        .unwrap();
    let base = dir.path().join("pg");
    let started = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || PrivateCluster::start(&base, None))
            .await
            .unwrap()
    }
    .unwrap();
    let store = Store::connect(&started.url()).await.unwrap();
    let client = store.client().await.unwrap();
    client
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        .await
        .unwrap();
    drop(client);
    store.close();

    // Starting again while it runs finds the running server.
    let again = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || PrivateCluster::start(&base, None))
            .await
            .unwrap()
    }
    .unwrap();
    assert_eq!(again.port(), started.port());

    // Stop, start: the data is still there.
    let restarted = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            again.stop()?;
            PrivateCluster::start(&base, None)
        })
        .await
        .unwrap()
    }
    .unwrap();
    let store = Store::connect(&restarted.tcp_url_for("postgres"))
        .await
        .unwrap();
    let v: i32 = store
        .client()
        .await
        .unwrap()
        .query_one("SELECT v FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 7);
    store.close();
    tokio::task::spawn_blocking(move || restarted.stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn data_from_another_major_version_is_refused_or_recreated() {
    let dir = tempfile::Builder::new()
        .prefix("hubsync-cluster-")
        .tempdir()
        .unwrap();
    let base = dir.path().join("pg");
    let outcome = tokio::task::spawn_blocking(move || {
        let cluster = PrivateCluster::start(&base, None)?;
        cluster.stop()?;
        std::fs::write(cluster.data_dir().join("PG_VERSION"), "9\n").unwrap();
        let refused = PrivateCluster::start(&base, None).map(|_| ());
        let options = ClusterOptions {
            reinit_on_version_change: true,
            ..Default::default()
        };
        let fresh = PrivateCluster::start_with(&base, &options)?;
        fresh.stop()?;
        Ok::<_, hubsync_store::StoreError>(refused)
    })
    .await
    .unwrap()
    .unwrap();
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("created by PostgreSQL 9"), "{message}");
}
