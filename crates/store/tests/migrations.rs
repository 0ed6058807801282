//! Migrations of the hubsync schema.

use hubsync_store::{TestDb, embedded_migrations, migrate};

#[tokio::test(flavor = "multi_thread")]
async fn apply_once_then_nothing_to_do() {
    let db = TestDb::empty().await;
    let all: Vec<i32> = embedded_migrations().iter().map(|(v, _)| *v).collect();
    assert_eq!(migrate(db.store()).await.unwrap(), all);
    assert!(migrate(db.store()).await.unwrap().is_empty());

    let client = db.store().client().await.unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'hubsync' AND c.relkind = 'r' AND obj_description(c.oid) IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in [
        "cursors",
        "leases",
        "record_state",
        "shadow",
        "outbox",
        "inbox",
        "conflicts",
        "issues",
        "audit",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "{t} missing or undocumented: {tables:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_apply_once() {
    let db = TestDb::empty().await;
    let (a, b) = tokio::join!(migrate(db.store()), migrate(db.store()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), embedded_migrations().len());
}
