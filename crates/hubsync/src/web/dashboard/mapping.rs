//! Field mapping per object: each HubSpot property hubsync knows (from
//! `hubsync.catalog_columns`), its column and types, whether it is synced, its direction
//! and conflict rule — and a form per property to include/exclude it or change its rule.
//!
//! A change is stored in `hubsync.mapping_overrides` and applied without a restart: the
//! running daemon refreshes its catalog at once ([`Dashboard::mapping_changed`]), every
//! other running instance within moments (`NOTIFY hubsync_mapping` from the table's
//! trigger), and the engine applies stored overrides at the start of every pass (so
//! `hubsync sync --once` honours them too). "As configured" deletes the override.

use std::sync::Arc;

use axum::{
    Form,
    extract::{Query, State},
    response::Redirect,
};
use hubsync_engine::{overrides, settings::ObjectSettings};
use hubsync_store::state::mapping_overrides::{self, MappingOverride};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Dashboard, PageError, PageResult, layout, queue::redirect};

const DIRECTIONS: [&str; 3] = ["hubspot-to-postgres", "postgres-to-hubspot", "two-way"];
const POLICIES: [&str; 4] = ["last-write-wins", "hubspot-wins", "postgres-wins", "manual"];

/// `?object=…&done=…`.
#[derive(Debug, Deserialize)]
pub(super) struct MappingQuery {
    object: Option<String>,
    done: Option<String>,
}

/// One property as the page shows it.
struct Row {
    property: String,
    label: Option<String>,
    column: Option<String>,
    hs_type: Option<String>,
    pg_type: Option<String>,
    read_only: bool,
}

/// `GET /mapping`.
pub(super) async fn page(
    State(d): State<Arc<Dashboard>>,
    Query(q): Query<MappingQuery>,
) -> PageResult<Markup> {
    let Some(object) = q
        .object
        .clone()
        .or_else(|| d.objects.first().map(|o| o.name.clone()))
    else {
        return Ok(layout::page(
            "Field mapping",
            "/mapping",
            &html! { p { "No objects configured." } },
        ));
    };
    let Some(configured) = d.settings.object(&object).cloned() else {
        return Err(PageError::from(anyhow::anyhow!(
            "object {object} is not configured"
        )));
    };
    let conn = d.store.client().await?;
    let stored = mapping_overrides::list(&conn, Some(&object)).await?;
    let mut effective = configured.clone();
    overrides::apply(&mut effective, &stored);
    let rows = conn
        .query(
            "SELECT property_name, label, column_name, hs_type, pg_type, read_only \
             FROM hubsync.catalog_columns \
             WHERE schema_name = $1 AND object_name = $2 AND kind = 'property' \
             ORDER BY property_name",
            &[&d.settings.schema, &object],
        )
        .await?;
    let mut props: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            property: r.get(0),
            label: r.get(1),
            column: r.get(2),
            hs_type: r.get(3),
            pg_type: r.get(4),
            read_only: r.get(5),
        })
        .collect();
    // Overridden or allowlisted properties not (yet) in the catalog.
    let mut extra: Vec<String> = stored.iter().map(|o| o.property.clone()).collect();
    if let hubsync_engine::settings::PropertySelection::Only(names) = &effective.properties {
        extra.extend(names.iter().cloned());
    }
    for name in extra {
        if !props.iter().any(|p| p.property == name) {
            props.push(Row {
                property: name,
                label: None,
                column: None,
                hs_type: None,
                pg_type: None,
                read_only: false,
            });
        }
    }
    props.sort_by(|a, b| a.property.cmp(&b.property));
    let view = d.objects.iter().find(|o| o.name == object);
    let body = html! {
        (layout::flash(q.done.as_deref()))
        p { @for o in &d.objects {
            a href={"/mapping?object=" (o.name)} class=[(o.name == object).then_some("on")] {
                @if o.name == object { strong { (o.name) } } @else { (o.name) } } " "
        } }
        @if let Some(v) = view {
            p.muted { "Object " code { (v.name) } ": direction " code { (v.direction) } ", conflict rule "
                code { (v.conflict) } ", properties " code { (selection(&configured)) } " in hubsync.toml. "
                "Changes here are stored in " code { "hubsync.mapping_overrides" } " and apply to the running daemon at once." }
        }
        table #mapping {
            thead { tr {
                th { "HubSpot property" } th { "label" } th { "column" } th { "HubSpot type" } th { "column type" }
                th { "synced" } th { "direction" } th { "conflict rule" } th { "change" }
            } }
            tbody { @for p in &props {
                @let over = stored.iter().find(|o| o.property == p.property);
                @let rule = effective.rules.resolve(&p.property);
                @let synced = effective.properties.allows(&p.property);
                tr data-property=(p.property) {
                    td { code { (p.property) } @if over.is_some() { " " span.muted title="changed at run time" { "(override)" } } }
                    td { (p.label.as_deref().unwrap_or("")) }
                    td { @if let Some(c) = &p.column { code { (c) } } @else { span.muted { "custom_properties" } } }
                    td { (p.hs_type.as_deref().unwrap_or("?")) }
                    td { (p.pg_type.as_deref().unwrap_or("-")) }
                    td class=(if synced { "ok" } else { "muted" }) { (if synced { "yes" } else { "no" }) }
                    td { (rule.direction.as_str()) @if p.read_only { " " span.muted { "(read-only in HubSpot)" } } }
                    td { (rule.policy.as_str()) }
                    td { form.inline method="post" action="/mapping" {
                        (layout::csrf_field(d.csrf()))
                        input type="hidden" name="object" value=(object);
                        input type="hidden" name="property" value=(p.property);
                        (choice("synced", &["yes", "no"], over.and_then(|o| o.included).map(|i| if i { "yes" } else { "no" })))
                        (choice("direction", &DIRECTIONS, over.and_then(|o| o.direction.as_deref())))
                        (choice("conflict", &POLICIES, over.and_then(|o| o.conflict.as_deref())))
                        " " button { "Save" }
                    } }
                }
            } }
        }
        h2 { "Add a property" }
        form method="post" action="/mapping" {
            (layout::csrf_field(d.csrf()))
            input type="hidden" name="object" value=(object);
            input type="hidden" name="synced" value="yes";
            "HubSpot property name " input name="property" required pattern="[A-Za-z0-9_]+";
            " " button { "Sync it" }
        }
        p.muted { "A newly synced property gets its column on the next catalog refresh (at once); existing rows receive its values as records change or are re-read." }
    };
    Ok(layout::page("Field mapping", "/mapping", &body))
}

fn selection(s: &ObjectSettings) -> String {
    match &s.properties {
        hubsync_engine::settings::PropertySelection::All => "all".to_owned(),
        hubsync_engine::settings::PropertySelection::Only(n) => format!("{} listed", n.len()),
        hubsync_engine::settings::PropertySelection::AllExcept(n) => {
            format!("all but {}", n.len())
        }
    }
}

/// A select with "as configured" plus `options`, `current` selected.
fn choice(name: &str, options: &[&str], current: Option<&str>) -> Markup {
    html! {
        select name=(name) aria-label=(name) {
            option value="" selected[current.is_none()] { (name) ": as configured" }
            @for o in options { option value=(o) selected[current == Some(*o)] { (o) } }
        }
    }
}

/// The form.
#[derive(Debug, Deserialize)]
pub(super) struct Change {
    object: String,
    property: String,
    #[serde(default)]
    synced: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    conflict: String,
}

/// `POST /mapping`.
pub(super) async fn save(
    State(d): State<Arc<Dashboard>>,
    Form(c): Form<Change>,
) -> PageResult<Redirect> {
    let property = c.property.trim();
    let valid_name = !property.is_empty()
        && property.len() <= 100
        && property
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if d.settings.object(&c.object).is_none() || !valid_name {
        return Err(PageError::from(anyhow::anyhow!(
            "unknown object or bad property name"
        )));
    }
    let pick = |v: &str, allowed: &[&str]| -> Result<Option<String>, PageError> {
        match v {
            "" => Ok(None),
            v if allowed.contains(&v) => Ok(Some(v.to_owned())),
            _ => Err(PageError::from(anyhow::anyhow!("unknown choice"))),
        }
    };
    let o = MappingOverride {
        object: c.object.clone(),
        property: property.to_owned(),
        included: match c.synced.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        direction: pick(&c.direction, &DIRECTIONS)?,
        conflict: pick(&c.conflict, &POLICIES)?,
        updated_by: Some("dashboard".to_owned()),
    };
    let conn = d.store.client().await?;
    mapping_overrides::set(&conn, &o).await?;
    let applied = d.mapping_changed().await;
    tracing::info!(object = %o.object, property = %o.property, applied, "field mapping changed from the dashboard");
    let what = if o.is_empty() {
        "back to the configuration"
    } else {
        "saved"
    };
    let when = if applied {
        "in use now"
    } else {
        "the daemon takes it up at its next round"
    };
    let done = format!("{property}: {what}; {when}.");
    Ok(redirect(&format!("/mapping?object={}", c.object), &done))
}
