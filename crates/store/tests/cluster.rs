//! The private cluster: initdb on a new folder, reuse of a running server and of kept data.

use hubsync_store::{PrivateCluster, Store};

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
