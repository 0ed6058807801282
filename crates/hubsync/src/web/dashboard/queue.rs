//! What waits for a person: the manual conflict queue, data issues (values that did not fit
//! their column), writes HubSpot rejected, and the audit trail of one record.
//!
//! Every action is one SQL statement on hubsync's state tables, the same a user could run:
//! resolving sets `hubsync.conflicts.resolution` (the daemon is woken by `NOTIFY
//! hubsync_conflicts` and writes the winning value); retrying a rejected write makes its
//! outbox entries pending again (`NOTIFY hubsync_outbox`).

use std::sync::Arc;

use axum::{
    Form,
    extract::{Path, Query, State},
    response::Redirect,
};
use hubsync_store::state::{
    audit,
    conflicts::{self, ConflictFilter},
    issues, records,
    shadow::Side,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Dashboard, PageError, PageResult, layout};

/// Most rows a list shows.
const LIMIT: i64 = 500;

/// `?done=…` after an action.
#[derive(Debug, Deserialize)]
pub(super) struct Done {
    done: Option<String>,
}

/// `GET /conflicts`.
pub(super) async fn conflicts_page(
    State(d): State<Arc<Dashboard>>,
    Query(q): Query<Done>,
) -> PageResult<Markup> {
    let conn = d.store.client().await?;
    let open = conflicts::list(&conn, ConflictFilter::Open, None, LIMIT).await?;
    let to_apply = conflicts::list(&conn, ConflictFilter::ToApply, None, LIMIT).await?;
    let body = html! {
        (layout::flash(q.done.as_deref()))
        p.muted { "Fields changed on both sides under the " code { "manual" } " policy. Taking a side writes its value to the other side (the daemon applies it within moments). Same as "
            code { "hubsync conflicts resolve ID --take hubspot|postgres" } "." }
        @if open.is_empty() { p #no-conflicts { "No open conflicts." } }
        @else {
            table #conflicts {
                thead { tr { th.n { "id" } th { "object" } th.n { "record" } th { "field" } th { "agreed before" }
                    th { "HubSpot" } th { "PostgreSQL" } th { "detected" } th { "take" } } }
                tbody { @for c in &open {
                    @let x = &c.detail;
                    tr data-conflict=(c.id) {
                        td.n { (c.id) } td { (x.object) }
                        td.n { a href={"/audit?object=" (x.object) "&id=" (x.hs_object_id)} { (x.hs_object_id) } }
                        td { code { (x.field) } }
                        td { (layout::value(x.shadow_value.as_deref())) }
                        td { (layout::value(x.hubspot_value.as_deref())) }
                        td { (layout::value(x.postgres_value.as_deref())) }
                        td { (c.detected_at.format("%Y-%m-%d %H:%M:%S")) }
                        td {
                            form.inline method="post" action={"/conflicts/" (c.id) "/resolve"} {
                                (layout::csrf_field(d.csrf()))
                                button name="take" value="hubspot" { "Take HubSpot" } " "
                                button name="take" value="postgres" { "Take PostgreSQL" }
                            }
                        }
                    }
                } }
            }
        }
        @if !to_apply.is_empty() {
            h2 { "Resolved, being applied" }
            table #to-apply { tbody { @for c in &to_apply {
                tr { td.n { (c.id) } td { (c.detail.object) } td.n { (c.detail.hs_object_id) } td { code { (c.detail.field) } }
                    td { (c.resolution.map_or("", Side::as_str)) } }
            } } }
        }
    };
    Ok(layout::page("Conflicts", "/conflicts", &body))
}

/// The form of a resolution.
#[derive(Debug, Deserialize)]
pub(super) struct Take {
    take: String,
}

/// `POST /conflicts/{id}/resolve`.
pub(super) async fn resolve(
    State(d): State<Arc<Dashboard>>,
    Path(id): Path<i64>,
    Form(form): Form<Take>,
) -> PageResult<Redirect> {
    let side = match form.take.as_str() {
        "hubspot" => Side::Hubspot,
        "postgres" => Side::Postgres,
        _ => {
            return Err(PageError::from(anyhow::anyhow!(
                "take must be hubspot or postgres"
            )));
        }
    };
    let conn = d.store.client().await?;
    let done = match conflicts::resolve(&conn, id, side).await? {
        Some(_) => format!("Conflict {id} resolved: the {} value wins.", side.as_str()),
        None => format!("Conflict {id} is not open any more."),
    };
    tracing::info!(
        conflict = id,
        take = side.as_str(),
        "conflict resolved from the dashboard"
    );
    Ok(redirect("/conflicts", &done))
}

/// `GET /issues`.
pub(super) async fn issues_page(
    State(d): State<Arc<Dashboard>>,
    Query(q): Query<Done>,
) -> PageResult<Markup> {
    let conn = d.store.client().await?;
    let bad = issues::list(&conn, None, LIMIT).await?;
    let mut rejected = Vec::new();
    for o in &d.objects {
        rejected.extend(records::failed(&conn, &o.name, LIMIT).await?);
    }
    let body = html! {
        (layout::flash(q.done.as_deref()))
        h2 { "Writes HubSpot rejected" }
        p.muted { "The row keeps its value in PostgreSQL; the change is retried when the row changes again, or now with Retry." }
        @if rejected.is_empty() { p #no-rejected { "None." } }
        @else {
            table #rejected {
                thead { tr { th { "object" } th { "row" } th.n { "HubSpot id" } th { "error" } th.n { "attempts" } th { "since" } th {} } }
                tbody { @for r in &rejected {
                    tr {
                        td { (r.object) } td { code { (r.row_key) } }
                        td.n { (r.hs_object_id.map_or("-".to_owned(), |i| i.to_string())) }
                        td { (r.last_error.as_deref().unwrap_or("")) }
                        td.n { (r.attempts) } td { (r.updated_at.format("%Y-%m-%d %H:%M:%S")) }
                        td {
                            @for (action, label) in [("retry", "Retry"), ("discard", "Discard change")] {
                                form.inline method="post" action={"/rejected/" (action)} {
                                    (layout::csrf_field(d.csrf()))
                                    input type="hidden" name="object" value=(r.object);
                                    input type="hidden" name="row_key" value=(r.row_key);
                                    button { (label) } " "
                                }
                            }
                        }
                    }
                } }
            }
        }
        h2 { "Values that did not fit their column" }
        p.muted { "The column is NULL for these; the raw value is shown. Dismiss once fixed in HubSpot (a good value also clears it)." }
        @if bad.is_empty() { p #no-issues { "None." } }
        @else {
            table #issues {
                thead { tr { th.n { "id" } th { "object" } th.n { "record" } th { "property" } th { "value" } th { "reason" } th.n { "seen" } th { "last" } th {} } }
                tbody { @for i in &bad {
                    tr data-issue=(i.id) {
                        td.n { (i.id) } td { (i.detail.object) } td.n { (i.detail.hs_object_id) }
                        td { code { (i.detail.property) } } td { (layout::value(i.detail.raw_value.as_deref())) }
                        td { (i.detail.reason) } td.n { (i.occurrences) } td { (i.last_seen.format("%Y-%m-%d %H:%M:%S")) }
                        td { form.inline method="post" action={"/issues/" (i.id) "/dismiss"} {
                            (layout::csrf_field(d.csrf())) button { "Dismiss" } } }
                    }
                } }
            }
        }
    };
    Ok(layout::page("Issues", "/issues", &body))
}

/// `POST /issues/{id}/dismiss`.
pub(super) async fn dismiss(
    State(d): State<Arc<Dashboard>>,
    Path(id): Path<i64>,
) -> PageResult<Redirect> {
    let conn = d.store.client().await?;
    let n = conn
        .execute("DELETE FROM hubsync.issues WHERE id = $1", &[&id])
        .await?;
    Ok(redirect("/issues", &format!("Dismissed {n} issue(s).")))
}

/// A rejected record in a form.
#[derive(Debug, Deserialize)]
pub(super) struct RecordKey {
    object: String,
    row_key: String,
}

/// `POST /rejected/retry`: the record's failed outbox entries become pending again.
pub(super) async fn retry_rejected(
    State(d): State<Arc<Dashboard>>,
    Form(k): Form<RecordKey>,
) -> PageResult<Redirect> {
    let conn = d.store.client().await?;
    let n = conn
        .execute(
            "WITH retried AS (UPDATE hubsync.outbox SET status = 'pending', available_at = now(), \
               claimed_by = NULL, claimed_until = NULL \
             WHERE object = $1 AND row_key = $2 AND status = 'failed' RETURNING id) \
             SELECT pg_notify('hubsync_outbox', $1) FROM retried LIMIT 1",
            &[&k.object, &k.row_key],
        )
        .await?;
    let done = if n > 0 {
        "Retry queued."
    } else {
        "Nothing to retry: the change is no longer waiting (edit the row to send it again)."
    };
    Ok(redirect("/issues", done))
}

/// `POST /rejected/discard`: drops the record's failed outbox entries (PostgreSQL keeps its
/// value; HubSpot keeps its own) and clears the failed status.
pub(super) async fn discard_rejected(
    State(d): State<Arc<Dashboard>>,
    Form(k): Form<RecordKey>,
) -> PageResult<Redirect> {
    let mut conn = d.store.client().await?;
    let tx = conn.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM hubsync.outbox WHERE object = $1 AND row_key = $2 AND status = 'failed'",
            &[&k.object, &k.row_key],
        )
        .await?;
    tx.execute(
        "DELETE FROM hubsync.record_state WHERE object = $1 AND row_key = $2 AND status = 'failed'",
        &[&k.object, &k.row_key],
    )
    .await?;
    tx.commit().await?;
    Ok(redirect(
        "/issues",
        &format!("Discarded {n} rejected change(s)."),
    ))
}

/// `?object=…&id=…`.
#[derive(Debug, Deserialize)]
pub(super) struct RecordQuery {
    object: Option<String>,
    id: Option<i64>,
}

/// `GET /audit`: what hubsync changed on one record (or the latest entries).
pub(super) async fn audit_page(
    State(d): State<Arc<Dashboard>>,
    Query(q): Query<RecordQuery>,
) -> PageResult<Markup> {
    let conn = d.store.client().await?;
    let entries = match (&q.object, q.id) {
        (Some(object), Some(id)) => audit::for_record(&conn, object, id, LIMIT).await?,
        _ => audit::latest(&conn, 100).await?,
    };
    let body = html! {
        form method="get" action="/audit" {
            "Object " select name="object" { @for o in &d.objects {
                option value=(o.name) selected[q.object.as_deref() == Some(o.name.as_str())] { (o.name) } } }
            " HubSpot id " input name="id" type="number" value=[q.id];
            " " button { "Show" }
        }
        p.muted { "Every write hubsync made to either side (kept for server.audit_retention). SQL: "
            code { "SELECT * FROM hubsync.audit WHERE object = 'contacts' AND hs_object_id = 123 ORDER BY at DESC" } }
        table #audit {
            thead { tr { th { "when" } th { "direction" } th { "object" } th.n { "record" } th { "action" } th { "fields (old → new)" } th { "correlation id" } } }
            tbody { @for e in &entries {
                tr {
                    td { (e.at.format("%Y-%m-%d %H:%M:%S%.3f")) } td { (e.entry.direction.as_str()) }
                    td { (e.entry.object) } td.n { (e.entry.hs_object_id.map_or("-".to_owned(), |i| i.to_string())) }
                    td { (e.entry.action) } td { code { (fields(&e.entry.fields)) } }
                    td { (e.entry.correlation_id.as_deref().unwrap_or("")) }
                }
            } }
        }
    };
    Ok(layout::page("Audit", "/audit", &body))
}

fn fields(v: &serde_json::Value) -> String {
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    map.iter()
        .map(|(k, change)| {
            let side = |s: &str| {
                change.get(s).map_or("∅".to_owned(), |x| match x {
                    serde_json::Value::Null => "∅".to_owned(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            if change.is_object() {
                format!("{k}: {} → {}", side("old"), side("new"))
            } else {
                format!("{k}: {change}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A redirect back to `path` with a notice.
pub(super) fn redirect(path: &str, done: &str) -> Redirect {
    let q: String = url::form_urlencoded::byte_serialize(done.as_bytes()).collect();
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={q}"))
}
