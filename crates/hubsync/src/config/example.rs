//! The commented example configuration `hubsync init` writes (a test proves it parses).

/// The text of the example `hubsync.toml`.
pub(crate) const EXAMPLE: &str = r#"# hubsync.toml — keeps HubSpot CRM and PostgreSQL in sync.
# Secrets never live in this file: each is { env = "NAME" } or { file = "PATH" }.

[hubspot]
# base_url = "https://api.hubapi.com"   # or a local emulator: "http://127.0.0.1:8090"
token = { env = "HUBSPOT_TOKEN" }        # a private app's access token
rate_limit = "100/10s"                   # your portal's burst limit (100/10s Free/Starter, 190/10s Pro/Enterprise)
# search_rate_limit = 4                  # search requests per second (HubSpot allows 5)
# daily_limit = 250000                   # your portal's daily cap
# webhook_secret = { env = "HUBSPOT_WEBHOOK_SECRET" }   # the app's client secret (hubsync run)

[postgres]
url = { env = "DATABASE_URL" }           # postgres://user@host/db?sslmode=require
schema = "hubspot"                       # synced tables; hubsync's own state lives in schema "hubsync"
# hard_delete = false                    # true: delete rows HubSpot deletes instead of setting archived_at
# allow_truncate = false                 # TRUNCATE of a synced table is refused unless true

# [server]                               # the daemon (hubsync run)
# listen = "127.0.0.1:8080"              # webhooks, dashboard, /metrics, /healthz
# webhook_path = "/webhooks/hubspot"     # register http(s)://YOUR-HOST/webhooks/hubspot in your HubSpot app
# writeback_window = "50ms"              # micro-batch window for PostgreSQL -> HubSpot
# reconcile_every = "5m"                 # sweep that catches what webhooks missed
# settle_delay = "2m"                    # the settled pass runs this far behind real time
# audit_retention = "90days"
# public_url = "https://sync.example.com"  # what HubSpot calls (signatures cover it); default: the Host header
# webhook_signatures = ["v3"]            # add "v1"/"v2" for legacy apps (no replay protection)
# webhook_max_age = "5m"                 # v3 timestamps older than this are refused (replays)
# webhook_max_bytes = 1048576            # larger deliveries are refused with 413
# inbox_retention = "7days"              # processed webhook ids kept to drop HubSpot's redeliveries

# [dashboard]                            # served by `hubsync run` on server.listen (docs/operations.md)
# enabled = true
# token = { env = "HUBSYNC_DASHBOARD_TOKEN" }   # required when server.listen is not a loopback address

# [alerts]                               # once per incident, plus a recovery notice
# webhook_url = "https://hooks.example.com/hubsync"   # POSTed a JSON notice
# command = "/usr/local/bin/page-oncall"              # run with the JSON notice on stdin
# check_every = "30s"
# lag = "15m"                            # an object's lag behind HubSpot or its oldest outbox entry
# error_rate = 0.05                      # share of HubSpot calls failing over 5 minutes
# open_conflicts = 25
# api_budget = 0.8                       # share of hubspot.daily_limit used, or any 429

[[object]]
name = "contacts"                        # contacts | companies | deals | tickets | a custom object's name
direction = "two-way"                    # hubspot-to-postgres | postgres-to-hubspot | two-way
properties = ["email", "firstname", "lastname", "phone", "lifecyclestage"]   # or "all"
conflict = "last-write-wins"             # hubspot-wins | postgres-wins | manual
# mode = "realtime"                      # or { every = "15m" }, or { realtime = true, every = "1h" }
[object.fields.lifecyclestage]
conflict = "hubspot-wins"

[[object]]
name = "companies"
direction = "hubspot-to-postgres"
properties = "all"

[[object]]
name = "deals"
direction = "hubspot-to-postgres"
properties = "all"
mode = { every = "15m" }
"#;
