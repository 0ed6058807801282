//! The overview (per object: mode, direction, rows, lag, last sync, pending outbox, errors)
//! and the API budget page (calls per endpoint class and endpoint against the limits, 429s,
//! the chart).

use std::sync::Arc;

use axum::{extract::State, http::header, response::IntoResponse};
use hubsync_hubspot::EndpointClass;
use hubsync_store::state::summary;
use maud::{Markup, html};

use super::{Dashboard, PageResult, budget, layout};
use crate::commands::status::object_status;

/// `GET /`.
pub(super) async fn page(State(d): State<Arc<Dashboard>>) -> PageResult<Markup> {
    let conn = d.store.client().await?;
    let summaries = summary::by_object(&conn).await?;
    let schema = &d.settings.schema;
    let mut rows = Vec::new();
    for o in &d.objects {
        let s = summaries.get(&o.name).cloned().unwrap_or_default();
        let status = object_status(&conn, schema, &o.name, &o.direction, &s).await?;
        rows.push((o, status, s));
    }
    let open_conflicts: i64 = rows.iter().map(|r| r.1.open_conflicts).sum();
    let issues: i64 = rows.iter().map(|r| r.1.issues).sum();
    let stats = d.client.stats();
    let body = html! {
        div.cards {
            div.card { "HubSpot calls" b { (stats.requests) } span.muted { "since start" } }
            div.card { "429 answers" b class=[(stats.rate_limited > 0).then_some("bad")] { (stats.rate_limited) } }
            div.card { "Open conflicts" b class=[(open_conflicts > 0).then_some("bad")] { a href="/conflicts" { (open_conflicts) } } }
            div.card { "Data issues" b { a href="/issues" { (issues) } } }
        }
        h2 { "Objects" }
        table #objects {
            thead { tr {
                th { "object" } th { "mode" } th { "direction" } th { "conflict rule" }
                th.n { "rows" } th.n { "archived" } th { "backfill" } th.n { "lag" }
                th { "last sync" } th.n { "pending outbox" } th.n { "inbox" } th.n { "errors" }
            } }
            tbody {
                @for (o, st, s) in &rows {
                    @let errors = s.records_failed + s.outbox_failed;
                    tr data-object=(o.name) {
                        td { a href={"/mapping?object=" (o.name)} { (o.name) } }
                        td { (o.mode) }
                        td { (o.direction) }
                        td { (o.conflict) }
                        td.n { (st.rows.map_or("-".to_owned(), |n| n.to_string())) }
                        td.n { (st.archived.map_or("-".to_owned(), |n| n.to_string())) }
                        td { (st.backfill) }
                        td.n { (st.lag_seconds.map_or("-".to_owned(), lag)) }
                        td { (st.last_sync.as_deref().unwrap_or("never")) }
                        td.n { (st.pending_outbound) }
                        td.n { (s.inbox_pending) }
                        td.n class=[(errors > 0).then_some("bad")] {
                            @if errors > 0 { a href="/issues" { (errors) } } @else { "0" }
                        }
                    }
                }
            }
        }
        h2 { "HubSpot API budget" }
        (budget::chart(&d.budget.samples(), &d.limits))
        p { a href="/budget" { "Calls by endpoint and limits →" } }
    };
    Ok(layout::page("Overview", "/", &body))
}

/// `GET /budget`.
pub(super) async fn budget_page(State(d): State<Arc<Dashboard>>) -> PageResult<Markup> {
    let stats = d.client.stats();
    let bound = d.client.rate_bound();
    let samples = d.budget.samples();
    let last_10s = |c: EndpointClass| -> u64 {
        let (Some(last), Some(first)) = (samples.last(), samples.first()) else {
            return 0;
        };
        let since = last.at - chrono::Duration::seconds(10);
        let base = samples.iter().find(|s| s.at >= since).unwrap_or(first);
        let get = |s: &budget::Sample| s.by_class.get(&c).copied().unwrap_or(0);
        get(last).saturating_sub(get(base))
    };
    let class_row = |c: EndpointClass, name: &str, limit: String| {
        html! { tr data-class=(name) {
            td { (name) } td.n { (stats.by_class.get(&c).copied().unwrap_or(0)) }
            td.n { (last_10s(c)) } td { (limit) }
        } }
    };
    let daily_used = d
        .limits
        .daily
        .zip(stats.daily_remaining)
        .map(|(cap, left)| cap.saturating_sub(left));
    let body = html! {
        (budget::chart(&samples, &d.limits))
        h2 { "By endpoint class" }
        table #classes {
            thead { tr { th { "class" } th.n { "calls since start" } th.n { "last 10 s" } th { "limit" } } }
            tbody {
                (class_row(EndpointClass::Burst, "burst",
                    format!("{} per {} (governor paces to {} per {})",
                        d.limits.burst.map_or("unlimited".to_owned(), |(n, _)| n.to_string()),
                        d.limits.burst.map_or("-".to_owned(), |(_, p)| humantime::format_duration(p).to_string()),
                        bound.requests, humantime::format_duration(bound.per))))
                (class_row(EndpointClass::Search, "search", format!("{} per second", d.limits.search_per_second)))
                (class_row(EndpointClass::Exempt, "exempt (associations)", "daily only".to_owned()))
            }
        }
        h2 { "Daily" }
        table #daily { tbody {
            tr { th { "requests since start" } td.n { (stats.requests) } }
            tr { th { "daily limit (configured)" } td.n { (d.limits.daily.map_or("not set".to_owned(), |n| n.to_string())) } }
            tr { th { "daily remaining (HubSpot's header)" } td.n { (stats.daily_remaining.map_or("-".to_owned(), |n| n.to_string())) } }
            tr { th { "used today (limit − remaining)" } td.n { (daily_used.map_or("-".to_owned(), |n| n.to_string())) } }
            tr { th { "burst remaining (last answer)" } td.n { (stats.remaining.map_or("-".to_owned(), |n| n.to_string())) } }
            tr { th { "429 answers" } td.n class=[(stats.rate_limited > 0).then_some("bad")] { (stats.rate_limited) } }
            tr { th { "retries" } td.n { (stats.retries) } }
            tr { th { "failed calls (after retries)" } td.n { (stats.failures) } }
        } }
        h2 { "By endpoint" }
        table #endpoints {
            thead { tr { th { "endpoint" } th.n { "calls" } } }
            tbody { @for (name, n) in &stats.by_endpoint { tr { td { code { (name) } } td.n { (n) } } } }
        }
        h2 { "By answer" }
        table #statuses {
            thead { tr { th { "HTTP status" } th.n { "answers" } } }
            tbody { @for (status, n) in &stats.by_status {
                tr { td { @if *status == 0 { "no answer" } @else { (status) } } td.n { (n) } }
            } }
        }
    };
    Ok(layout::page("API budget", "/budget", &body))
}

/// `GET /budget/chart.svg`: the chart alone (for embedding elsewhere).
pub(super) async fn chart_svg(State(d): State<Arc<Dashboard>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        budget::chart_svg(&d.budget.samples(), &d.limits).into_string(),
    )
}

fn lag(seconds: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds.unsigned_abs())).to_string()
}
