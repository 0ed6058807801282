//! The pool: session defaults, origin tagging, error classification.

use hubsync_store::{ErrorKind, Store, StoreError, TestDb, tagged_transaction};

#[tokio::test(flavor = "multi_thread")]
async fn sessions_get_hubsync_defaults() {
    let db = TestDb::empty().await;
    let client = db.store().client().await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('TimeZone'), current_setting('application_name'), \
             current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "UTC");
    assert_eq!(row.get::<_, String>(1), "hubsync");
    assert_eq!(row.get::<_, String>(2), "2min");
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_tag_is_local_to_its_transaction() {
    let db = TestDb::empty().await;
    let store = Store::connect(db.url()).await.unwrap();
    let mut client = store.client().await.unwrap();
    let tx = tagged_transaction(&mut client).await.unwrap();
    let inside: Option<String> = tx
        .query_one("SELECT current_setting('hubsync.origin', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside.as_deref(), Some("hubsync"));
    tx.commit().await.unwrap();
    let after: Option<String> = client
        .query_one(
            "SELECT nullif(current_setting('hubsync.origin', true), '')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_classified() {
    let db = TestDb::empty().await;
    let client = db.store().client().await.unwrap();
    client
        .batch_execute("CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)")
        .await
        .unwrap();
    let err = client
        .execute("INSERT INTO u VALUES (1)", &[])
        .await
        .map_err(|e| StoreError::postgres("insert", e))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(!err.is_retryable());
    let err = client
        .execute("SELECT 'abc'::numeric", &[])
        .await
        .map_err(|e| StoreError::postgres("cast", e))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);

    // Nothing listens on port 1: a connection error, retryable.
    let err = Store::connect("host=127.0.0.1 port=1 user=x connect_timeout=2")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_names_missing_privileges() {
    let db = TestDb::new().await;
    let client = db.store().client().await.unwrap();
    assert_eq!(
        hubsync_store::preflight::problems(&client, "hubspot")
            .await
            .unwrap(),
        Vec::<String>::new()
    );

    let role = format!("weak_{}", db.name());
    client
        .batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("BEGIN; SET LOCAL ROLE {role}"))
        .await
        .unwrap();
    let problems = hubsync_store::preflight::problems(&client, "hubspot").await;
    client
        .batch_execute(&format!("ROLLBACK; DROP ROLE {role}"))
        .await
        .unwrap();
    let problems = problems.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("schema hubspot does not exist"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("needs USAGE and CREATE on schema hubsync"),
        "{problems:?}"
    );
}
