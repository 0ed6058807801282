//! `hubsync export` / `hubsync import` on the real binary: HubSpot's export column names,
//! a round trip through an emptied table, a per-row error report, and `--to-hubspot`
//! creating a record through batch upsert.

use crate::gdpr::OneShot;

const OBJECTS: &str = "[[object]]\nname = \"contacts\"\n\
                       properties = [\"email\", \"firstname\", \"lastname\", \"createdate\"]\n";

async fn table(kit: &OneShot) -> Vec<(i64, Option<String>, Option<String>)> {
    let conn = kit.db.store().client().await.expect("conn");
    conn.query(
        "SELECT hs_object_id, email, firstname FROM hubspot.contacts ORDER BY 1",
        &[],
    )
    .await
    .expect("rows")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_and_reports_bad_rows() {
    let kit = OneShot::new(12, 0, OBJECTS).await;
    kit.ok(&["sync", "--once"]);
    let before = table(&kit).await;
    assert_eq!(before.len(), 12);

    let file = kit.dir.path().join("contacts.csv");
    let path = file.to_str().expect("utf-8 path");
    kit.ok(&["export", "--object", "contacts", "-o", path]);
    let text = std::fs::read_to_string(&file).expect("csv");
    let header = text.lines().next().expect("header");
    for name in [
        "Record ID",
        "Email",
        "First Name",
        "Last Name",
        "Create Date",
    ] {
        assert!(header.split(',').any(|h| h == name), "{name} in {header}");
    }
    assert_eq!(text.lines().count(), 13, "header + one line per row");
    let stdout = kit.ok(&["export", "--object", "contacts"]).stdout;
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        text,
        "stdout and file agree"
    );

    // Empty the table, add a row with a bad date and one without an id, import.
    kit.db
        .store()
        .client()
        .await
        .expect("conn")
        .batch_execute("DELETE FROM hubspot.contacts")
        .await
        .expect("delete");
    let mut bad = text.clone();
    let columns = header.split(',').count();
    let mut row = vec![String::new(); columns];
    let at = |name: &str| header.split(',').position(|h| h == name).expect(name);
    row[at("Record ID")] = "999999".into();
    row[at("Create Date")] = "yesterday".into();
    bad.push_str(&(row.join(",") + "\n"));
    row[at("Record ID")] = String::new();
    row[at("Create Date")] = String::new();
    row[at("Email")] = "nobody@example.com".into();
    bad.push_str(&(row.join(",") + "\n"));
    std::fs::write(&file, bad).expect("write");

    let out = kit.run(&["import", "--object", "contacts", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rejected rows fail the command");
    assert!(stderr.contains("line 14: Create Date"), "{stderr}");
    assert!(stderr.contains("line 15: no Record ID"), "{stderr}");
    assert_eq!(
        table(&kit).await,
        before,
        "the good rows are back, unchanged"
    );
    let audited: i64 = kit
        .scalar("SELECT count(*) FROM hubsync.audit WHERE action = 'import'")
        .await;
    assert_eq!(audited, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_to_hubspot_creates_records_through_batch_upsert() {
    let kit = OneShot::new(2, 0, OBJECTS).await;
    kit.ok(&["sync", "--once"]);
    let file = kit.dir.path().join("new.csv");
    std::fs::write(
        &file,
        "Email,First Name,Unknown Column\nnew.person@example.com,Newton,x\n",
    )
    .expect("csv");
    let out = kit.ok(&[
        "import",
        "--object",
        "contacts",
        file.to_str().expect("path"),
        "--to-hubspot",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unknown Column"),
        "skipped columns are reported"
    );
    let id: i64 = kit
        .scalar("SELECT hs_object_id FROM hubspot.contacts WHERE email = 'new.person@example.com'")
        .await;
    let (status, body) = kit
        .hubspot(&format!(
            "/crm/v3/objects/contacts/{id}?properties=firstname,email"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["properties"]["firstname"], "Newton");
    let pushed: i64 = kit
        .scalar(&format!(
            "SELECT count(*) FROM hubsync.audit WHERE action = 'import' AND hs_object_id = {id} \
             AND direction = 'postgres_to_hubspot'"
        ))
        .await;
    assert_eq!(pushed, 1);
}
