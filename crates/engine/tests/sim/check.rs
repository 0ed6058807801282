//! The invariants checked after quiescence, each reported as one line a person can act on:
//! the value of every field on both sides against what the policy dictates, no lost change
//! (an overridden value is in the audit log or the conflicts table), no duplicate record on
//! either side, no resurrected delete, no echo loop (a quiet pass writes nothing to
//! HubSpot), and nothing left in the outbox, the inbox or in a failed state.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::oracle::{FieldExpect, RecordExpect, Values, field_name};
use super::script::FIELDS;
use super::world::{World, email};

/// A record as one side has it: how many live copies, and the first one's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Copy {
    pub(crate) live: usize,
    pub(crate) id: Option<i64>,
    pub(crate) values: Values,
}

/// What the checks found, and the agreed state to carry into the next round.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) problems: Vec<String>,
    /// `(rec, live, values)` as HubSpot has them.
    pub(crate) agreed: Vec<(usize, bool, Values)>,
    /// Open `manual` conflicts: `(rec, hs id, field)`.
    pub(crate) manual: Vec<(usize, i64, usize)>,
}

/// HubSpot's live copies of a record (search by email).
pub(crate) async fn hubspot_copy(world: &World, email: &str) -> Copy {
    let mut properties: Vec<&str> = vec!["email"];
    properties.extend(FIELDS);
    let body = json!({
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
        "properties": properties,
        "limit": 10,
    });
    let found = world
        .call("POST", "/crm/v3/objects/contacts/search", Some(body))
        .await
        .expect("search");
    let results = found["results"].as_array().cloned().unwrap_or_default();
    let mut copy = Copy {
        live: results.len(),
        ..Copy::default()
    };
    if let Some(first) = results.first() {
        copy.id = first["id"].as_str().and_then(|s| s.parse().ok());
        copy.values = std::array::from_fn(|f| text(&first["properties"][FIELDS[f]]));
    }
    copy
}

/// The values of a record HubSpot has archived (all `None` when it has none).
pub(crate) async fn archived_values(world: &World, id: i64) -> Values {
    let path = format!(
        "/crm/v3/objects/contacts/{id}?archived=true&properties={}",
        FIELDS.join(",")
    );
    match world.call("GET", &path, None).await {
        Ok(v) => std::array::from_fn(|f| text(&v["properties"][FIELDS[f]])),
        Err(_) => Values::default(),
    }
}

/// PostgreSQL's live rows of a record.
pub(crate) async fn postgres_copy(world: &World, email: &str) -> Copy {
    let conn = world.db.store().client().await.expect("conn");
    let rows = conn
        .query(
            "SELECT hs_object_id, firstname, lastname, phone FROM hubspot.contacts \
             WHERE email = $1 AND archived_at IS NULL ORDER BY hs_object_id",
            &[&email],
        )
        .await
        .expect("rows");
    let mut copy = Copy {
        live: rows.len(),
        ..Copy::default()
    };
    if let Some(r) = rows.first() {
        copy.id = r.get(0);
        copy.values =
            std::array::from_fn(|f| r.get::<_, Option<String>>(f + 1).filter(|s| !s.is_empty()));
    }
    copy
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Checks every record against its expectation.
pub(crate) async fn records(
    world: &World,
    seed: u64,
    expects: &BTreeMap<usize, RecordExpect>,
) -> Findings {
    let mut out = Findings::default();
    for (rec, expect) in expects {
        let email = email(seed, *rec);
        let hs = hubspot_copy(world, &email).await;
        let pg = postgres_copy(world, &email).await;
        let all_rows = world
            .count(&format!(
                "SELECT count(*) FROM hubspot.contacts WHERE email = '{email}'"
            ))
            .await;
        if all_rows > 1 {
            out.problems
                .push(format!("r{rec}: DUPLICATE rows in PostgreSQL ({all_rows})"));
        }
        match expect {
            RecordExpect::Gone => {
                if hs.live > 0 || pg.live > 0 {
                    out.problems.push(format!(
                        "r{rec}: RESURRECTED delete: live in HubSpot {} / PostgreSQL {} ({:?} / {:?})",
                        hs.live, pg.live, hs.values, pg.values
                    ));
                }
                // What a restore brings back: HubSpot's archived copy.
                let kept = match world.ids.get(rec) {
                    Some(id) => archived_values(world, *id).await,
                    None => Values::default(),
                };
                out.agreed.push((*rec, false, kept));
            }
            RecordExpect::MergedInto(survivor) => {
                if let Some(p) = merged_away(world, seed, *rec, *survivor, &hs, &pg).await {
                    out.problems.push(p);
                }
                out.agreed.push((*rec, false, Values::default()));
            }
            RecordExpect::Live(fields) => {
                if hs.live != 1 || pg.live != 1 {
                    let what = if hs.live > 1 { "DUPLICATE" } else { "MISSING" };
                    out.problems.push(format!(
                        "r{rec}: {what}: {} live in HubSpot, {} live rows in PostgreSQL",
                        hs.live, pg.live
                    ));
                    continue;
                }
                if hs.id != pg.id {
                    out.problems.push(format!(
                        "r{rec}: linked to different records: HubSpot {:?}, row {:?}",
                        hs.id, pg.id
                    ));
                }
                let id = hs.id.unwrap_or_default();
                for (f, e) in fields.iter().enumerate() {
                    let (h, p) = (&hs.values[f], &pg.values[f]);
                    let name = field_name(f);
                    let mut bad = |why: &str| {
                        out.problems.push(format!(
                            "r{rec}.{name}: {why}: HubSpot {h:?}, PostgreSQL {p:?}, expected {e:?}"
                        ));
                    };
                    match e {
                        FieldExpect::Value(v) => {
                            if h != v || p != v {
                                bad(if h == p { "WRONG VALUE" } else { "DIVERGED" });
                            }
                        }
                        FieldExpect::Won { value, loser } => {
                            if h != value || p != value {
                                bad(if h == p {
                                    "POLICY VIOLATED"
                                } else {
                                    "DIVERGED"
                                });
                            } else if !recorded(world, id, name, loser.as_deref()).await {
                                let trail = audit_trail(world, id).await;
                                bad(&format!(
                                    "LOST CHANGE (overridden value in neither audit nor conflicts; audit: {trail})"
                                ));
                            }
                        }
                        FieldExpect::Either(a, b) => {
                            if h != p {
                                bad("DIVERGED");
                            } else if h != a && h != b {
                                bad("WRONG VALUE");
                            } else {
                                let loser = if h == a { b } else { a };
                                if !recorded(world, id, name, loser.as_deref()).await {
                                    let trail = audit_trail(world, id).await;
                                    bad(&format!(
                                        "LOST CHANGE (overridden value in neither audit nor conflicts; audit: {trail})"
                                    ));
                                }
                            }
                        }
                        FieldExpect::Manual { hubspot, postgres } => {
                            if h != hubspot || p != postgres {
                                bad("MANUAL CONFLICT NOT LEFT IN PLACE");
                            } else if !open_conflict(world, id, name).await {
                                bad("NO OPEN CONFLICT");
                            } else {
                                out.manual.push((*rec, id, f));
                            }
                        }
                    }
                }
                if let Some(p) = links(world, *rec, id).await {
                    out.problems.push(p);
                }
                out.agreed.push((*rec, true, hs.values.clone()));
            }
        }
    }
    out
}

/// A live record's associations with the run's companies: the junction rows are what
/// HubSpot has, and HubSpot has what the workload made (moved by merges).
async fn links(world: &World, rec: usize, id: i64) -> Option<String> {
    let path = format!("/crm/v4/objects/contacts/{id}/associations/companies");
    let answer = world.call("GET", &path, None).await.expect("associations");
    let hubspot: BTreeSet<i64> = answer["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            r["toObjectId"]
                .as_i64()
                .or_else(|| r["toObjectId"].as_str().and_then(|s| s.parse().ok()))
        })
        .collect();
    let conn = world.db.store().client().await.expect("conn");
    let junction = conn
        .query_opt(
            "SELECT format('%I.%I', schema_name, table_name), from_column, to_column \
             FROM hubsync.catalog_associations WHERE from_object = 'contacts' AND to_object = 'companies'",
            &[],
        )
        .await
        .expect("junction");
    let Some(j) = junction else {
        return Some(format!(
            "r{rec}: NO JUNCTION TABLE for contacts → companies"
        ));
    };
    let (table, from, to): (String, String, String) = (j.get(0), j.get(1), j.get(2));
    let rows: BTreeSet<i64> = conn
        .query(
            &format!("SELECT DISTINCT \"{to}\" FROM {table} WHERE \"{from}\" = $1"),
            &[&id],
        )
        .await
        .expect("junction rows")
        .iter()
        .filter_map(|r| r.get::<_, Option<i64>>(0))
        .collect();
    let made: BTreeSet<i64> = world
        .links
        .get(&rec)
        .into_iter()
        .flatten()
        .map(|c| world.companies[*c])
        .collect();
    if rows != hubspot {
        Some(format!(
            "r{rec}: ASSOCIATIONS DIVERGED: HubSpot companies {hubspot:?}, junction rows {rows:?}"
        ))
    } else if hubspot != made {
        Some(format!(
            "r{rec}: ASSOCIATION LOST: HubSpot companies {hubspot:?}, the workload made {made:?}"
        ))
    } else {
        None
    }
}

/// A merged-away record: no live copy on either side, its row tombstoned with the
/// survivor's HubSpot id.
async fn merged_away(
    world: &World,
    seed: u64,
    rec: usize,
    survivor: usize,
    hs: &Copy,
    pg: &Copy,
) -> Option<String> {
    if hs.live > 0 || pg.live > 0 {
        return Some(format!(
            "r{rec}: MERGED RECORD STILL LIVE (into r{survivor}): HubSpot {} / PostgreSQL {}",
            hs.live, pg.live
        ));
    }
    let survivor_id = hubspot_copy(world, &email(seed, survivor)).await.id;
    let conn = world.db.store().client().await.expect("conn");
    let row = conn
        .query_opt(
            "SELECT archived_at IS NOT NULL, merged_into FROM hubspot.contacts WHERE email = $1",
            &[&email(seed, rec)],
        )
        .await
        .expect("loser row");
    let (archived, merged_into): (bool, Option<i64>) = match &row {
        Some(r) => (r.get(0), r.get(1)),
        None => (false, None),
    };
    (!archived || merged_into != survivor_id).then(|| {
        format!(
            "r{rec}: MERGE NOT TOMBSTONED: row {} archived {archived}, merged_into {merged_into:?}, survivor r{survivor} is {survivor_id:?}",
            if row.is_some() { "present" } else { "missing" }
        )
    })
}

/// Whether an overridden value is kept in the audit log or the conflicts table.
async fn recorded(world: &World, id: i64, field: &str, value: Option<&str>) -> bool {
    let Some(value) = value else { return true };
    let conn = world.db.store().client().await.expect("conn");
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM hubsync.audit WHERE hs_object_id = $1 \
            AND (fields -> $2 ->> 'old' = $3 OR fields -> $2 ->> 'new' = $3)) \
         OR EXISTS (SELECT 1 FROM hubsync.conflicts WHERE hs_object_id = $1 AND field = $2 \
            AND (hubspot_value = $3 OR postgres_value = $3))",
        &[&id, &field, &value],
    )
    .await
    .expect("audit")
    .get(0)
}

/// A record's audit entries, for failure reports.
async fn audit_trail(world: &World, id: i64) -> String {
    let conn = world.db.store().client().await.expect("conn");
    let rows = conn
        .query(
            "SELECT direction || ' ' || action || ' ' || fields::text FROM hubsync.audit \
             WHERE hs_object_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .expect("audit");
    let shadow = conn
        .query(
            "SELECT concat_ws(' ', field, value, hubspot_version, postgres_version, agreed_from) \
             FROM hubsync.shadow WHERE hs_object_id = $1 ORDER BY field",
            &[&id],
        )
        .await
        .expect("shadow");
    let text = |rows: &[hubsync_store::tokio_postgres::Row]| {
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!("{}; shadow: {}", text(&rows), text(&shadow))
}

async fn open_conflict(world: &World, id: i64, field: &str) -> bool {
    let conn = world.db.store().client().await.expect("conn");
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM hubsync.conflicts WHERE hs_object_id = $1 \
            AND field = $2 AND status = 'open')",
        &[&id, &field],
    )
    .await
    .expect("conflicts")
    .get(0)
}

/// Nothing left behind: outbox and inbox drained, no record failed.
pub(crate) async fn drained(world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    let checks = [
        ("OUTBOX NOT DRAINED", "SELECT count(*) FROM hubsync.outbox"),
        (
            "INBOX NOT DRAINED",
            "SELECT count(*) FROM hubsync.inbox WHERE processed_at IS NULL",
        ),
        (
            "FAILED RECORDS",
            "SELECT count(*) FROM hubsync.record_state WHERE status = 'failed'",
        ),
    ];
    for (what, sql) in checks {
        let n = world.count(sql).await;
        if n > 0 {
            problems.push(format!("{what}: {n}"));
        }
    }
    problems
}

/// HubSpot write calls counted by the emulator since its counters were reset (batch
/// create/update/upsert/archive, single-record writes, association writes).
pub(crate) async fn write_calls(world: &World) -> u64 {
    let stats = world
        .call("GET", "/_emulator/stats", None)
        .await
        .expect("stats");
    let Some(routes) = stats["by_route"].as_object() else {
        return 0;
    };
    routes
        .iter()
        .filter(|(route, _)| is_write(route))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}

/// Injected 5xx and 429 answers since the counters were reset.
pub(crate) async fn injected(world: &World) -> u64 {
    let stats = world
        .call("GET", "/_emulator/stats", None)
        .await
        .expect("stats");
    let f = &stats["faults"];
    f["server_errors"].as_u64().unwrap_or(0) + f["throttled"].as_u64().unwrap_or(0)
}

fn is_write(route: &str) -> bool {
    let object_write =
        route.starts_with("PATCH ") || route.starts_with("PUT ") || route.starts_with("DELETE ");
    let batch = route.starts_with("POST ")
        && [
            "batch/create",
            "batch/update",
            "batch/upsert",
            "batch/archive",
            "associat",
        ]
        .iter()
        .any(|w| route.contains(w))
        && !route.contains("/batch/read");
    let create = route.starts_with("POST /crm/v3/objects/") && route.matches('/').count() == 4;
    (object_write || batch || create) && !route.contains("/properties/")
}
