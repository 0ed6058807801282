//! The page frame every dashboard page shares: navigation, a small stylesheet, no scripts.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Inline stylesheet (no build step, no external requests).
const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a.on{color:#fff;font-weight:600}
header strong{margin-right:12px}
main{padding:16px 20px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 20px}
th,td{border-bottom:1px solid #e3e6eb;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600}.ok{color:#067647}.muted{color:#6b7280}
.flash{background:#ecfdf3;border:1px solid #abefc6;padding:8px 12px;margin:8px 0}
.error{background:#fef3f2;border:1px solid #fecdca;padding:8px 12px}
form.inline{display:inline}button{cursor:pointer}
code{background:#eef0f4;padding:1px 4px;border-radius:3px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e6eb;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}
"#;

/// A whole page: `title`, the active navigation entry `nav` (a path), and `body`.
pub(super) fn page(title: &str, nav: &str, body: &Markup) -> Markup {
    let links = [
        ("/", "Overview"),
        ("/budget", "API budget"),
        ("/conflicts", "Conflicts"),
        ("/issues", "Issues"),
        ("/mapping", "Field mapping"),
        ("/audit", "Audit"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hubsync" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "hubsync" }
                    @for (href, label) in links {
                        a href=(href) class=[(href == nav).then_some("on")] { (label) }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub(super) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A one-line notice after an action (`?done=…`).
pub(super) fn flash(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p.flash role="status" { (m) }
        }
    }
}

/// A value for a table cell: `(empty)` for none, long values shortened.
pub(super) fn value(v: Option<&str>) -> Markup {
    match v {
        None => html! { span.muted { "(empty)" } },
        Some(v) if v.chars().count() > 60 => {
            html! { span title=(v) { (v.chars().take(59).collect::<String>()) "…" } }
        }
        Some(v) => html! { (v) },
    }
}
