"""Airbyte's `source-hubspot` (PyPI `airbyte-source-hubspot`) against `hubsync emulator`.

Runs the connector's `spec`, `check`, `discover` and `read` (full refresh, then incremental from
a saved state, which goes through HubSpot's search API and its 10,000-result window) through
`airbyte_source.py`, which sends the connector's https://api.hubapi.com calls to the emulator.
Each step prints `PASS airbyte: <step>` or `FAIL airbyte: <step>: <reason>`; the exit status is
the number of failures. Environment (set by scripts/fidelity/run): FIDELITY_URL,
FIDELITY_TOKEN, FIDELITY_CONTACTS, FIDELITY_COMPANIES, FIDELITY_DEALS, FIDELITY_WORK (a scratch
folder).
"""

import json
import os
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ["FIDELITY_WORK"])
URL = os.environ["FIDELITY_URL"]
SEEDED = {
    "contacts": int(os.environ["FIDELITY_CONTACTS"]),
    "companies": int(os.environ["FIDELITY_COMPANIES"]),
    "deals": int(os.environ["FIDELITY_DEALS"]),
}
# incremental reads start here: the contacts cutoff leaves more than 10,000 contacts to find,
# so the connector must work around the search window
CUTOFF = {"contacts": "2022-01-01", "companies": "2024-01-01", "deals": "2024-01-01"}
STREAMS = list(SEEDED)
RESULTS = []


def record(name, ok, reason=""):
    RESULTS.append(ok)
    print(f"PASS airbyte: {name}" if ok else f"FAIL airbyte: {name}: {reason}", flush=True)


def connector(*args):
    """Runs the connector; returns its messages (JSON lines) and the raw stderr tail."""
    out = WORK / f"{args[0]}.out"
    with open(out, "w") as stdout, open(WORK / f"{args[0]}.err", "w") as stderr:
        proc = subprocess.run(
            [sys.executable, str(HERE / "airbyte_source.py"), *args],
            stdout=stdout, stderr=stderr, cwd=WORK, env=os.environ, check=False,
        )
    messages = []
    for line in out.read_text().splitlines():
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return proc.returncode, messages


def problems(messages):
    """The connector's own error reports (ERROR/FATAL logs and error traces), shortened."""
    found = []
    for m in messages:
        if m["type"] == "LOG" and m["log"]["level"] in ("ERROR", "FATAL"):
            found.append(m["log"]["message"].splitlines()[0][:300])
        elif m["type"] == "TRACE" and m["trace"]["type"] == "ERROR":
            found.append(m["trace"]["error"].get("internal_message", m["trace"]["error"]["message"])[:300])
    return found


def records(messages):
    """stream -> {id: record data}."""
    out = {s: {} for s in STREAMS}
    for m in messages:
        if m["type"] == "RECORD":
            out.setdefault(m["record"]["stream"], {})[m["record"]["data"]["id"]] = m["record"]["data"]
    return out


def write(name, value):
    path = WORK / name
    path.write_text(json.dumps(value))
    return str(path)


config = write(
    "config.json",
    {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": os.environ["FIDELITY_TOKEN"]},
        "start_date": "2020-01-01T00:00:00Z",
    },
)

# ---- spec, check, discover ------------------------------------------------------------------------

code, msgs = connector("spec")
spec = [m for m in msgs if m["type"] == "SPEC"]
record("spec", code == 0 and spec and "credentials" in spec[0]["spec"]["connectionSpecification"]["properties"],
       f"exit {code}, {len(spec)} SPEC messages")

code, msgs = connector("check", "--config", config)
status = [m["connectionStatus"]["status"] for m in msgs if m["type"] == "CONNECTION_STATUS"]
record("check (private app token)", status == ["SUCCEEDED"], f"exit {code}, status {status} {problems(msgs)}")

code, msgs = connector("discover", "--config", config)
catalog = [m["catalog"] for m in msgs if m["type"] == "CATALOG"]
discovered = {s["name"]: s for s in catalog[0]["streams"]} if catalog else {}
missing = [s for s in STREAMS if s not in discovered]
record("discover lists contacts, companies, deals", code == 0 and not missing,
       f"exit {code}, missing {missing}: {problems(msgs)[:2]}")


def configured(mode):
    streams = []
    for name in STREAMS:
        stream = discovered.get(name) or {
            # discover failed: the smallest stream description the connector accepts
            "name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
        }
        entry = {"stream": stream, "sync_mode": mode, "destination_sync_mode": "overwrite"}
        if mode == "incremental":
            entry.update(cursor_field=["updatedAt"], destination_sync_mode="append")
        streams.append(entry)
    return write(f"catalog_{mode}.json", {"streams": streams})


# ---- full refresh -------------------------------------------------------------------------------

code, msgs = connector("read", "--config", config, "--catalog", configured("full_refresh"))
full = records(msgs)
errors = problems(msgs)
for name in STREAMS:
    got = full.get(name, {})
    record(f"read {name} (full refresh): {len(got)} records, {SEEDED[name]} seeded",
           len(got) == SEEDED[name], f"{len(got)} records")
record("full refresh read reported no errors", code == 0 and not errors, f"exit {code}, {errors[:2]}")

with_company = [r for r in full["contacts"].values() if r.get("properties_associatedcompanyid")]
linked = [r for r in with_company if str(r["properties_associatedcompanyid"]) in (r.get("companies") or [])]
record("contacts carry their companies (associations) as the primary company says",
       with_company and len(linked) == len(with_company), f"{len(linked)} of {len(with_company)}")

emails = [r.get("properties_email") for r in full["contacts"].values()]
record("contact properties flattened (properties_email on every contact, all distinct)",
       all(emails) and len(set(emails)) == len(emails), f"{sum(1 for e in emails if e)} with email")

# ---- incremental from a state (search API) ------------------------------------------------------

state = write("state.json", [
    {"type": "STREAM", "stream": {"stream_descriptor": {"name": name},
                                  "stream_state": {"updatedAt": f"{CUTOFF[name]}T00:00:00.000000Z"}}}
    for name in STREAMS
])
before = json.loads(urllib.request.urlopen(URL + "/_emulator/stats").read())["by_route"]
code, msgs = connector("read", "--config", config, "--catalog", configured("incremental"), "--state", state)
inc = records(msgs)
errors = problems(msgs)
for name in STREAMS:
    expected = {i for i, r in full[name].items() if r["updatedAt"][:10] >= CUTOFF[name]}
    got = set(inc.get(name, {}))
    record(
        f"read {name} (incremental since {CUTOFF[name]}): {len(got)} records, {len(expected)} expected",
        got == expected,
        f"{len(expected - got)} missing, {len(got - expected)} extra",
    )
record("incremental read reported no errors", code == 0 and not errors, f"exit {code}, {errors[:2]}")
after = json.loads(urllib.request.urlopen(URL + "/_emulator/stats").read())["by_route"]
searches = sum(v - before.get(k, 0) for k, v in after.items() if k.endswith("/search"))
record("incremental read used the search API", searches > 0, f"{searches} search calls")
states = [m for m in msgs if m["type"] == "STATE"]
record("incremental read emitted state", bool(states), "no STATE message")

# ---- the next incremental read picks up exactly the records edited since ------------------------

latest = {}
for m in states:
    latest[m["state"]["stream"]["stream_descriptor"]["name"]] = m["state"]
edited = sorted(full["contacts"])[:3]
for i, contact_id in enumerate(edited):
    req = urllib.request.Request(
        f"{URL}/_emulator/objects/contacts/{contact_id}",
        data=json.dumps({"properties": {"jobtitle": f"Edited {i}"}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).read()
state = write("state_next.json", list(latest.values()))
code, msgs = connector("read", "--config", config, "--catalog", configured("incremental"), "--state", state)
nxt = records(msgs)


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def at_cursor(name):
    """Ids whose updatedAt equals the saved cursor: the connector's filter is inclusive (GTE)."""
    cursor = instant(latest[name]["stream"]["stream_state"]["updatedAt"])
    return {i for i, r in full[name].items() if instant(r["updatedAt"]) == cursor}


got = {i: r.get("properties_jobtitle") for i, r in nxt.get("contacts", {}).items()}
expected = set(edited) | (at_cursor("contacts") - set(edited))
record(
    f"next incremental read returns the {len(edited)} contacts edited since, with their new values "
    "(plus the record at the inclusive cursor)",
    set(got) == expected and all(got[c] == f"Edited {i}" for i, c in enumerate(edited)),
    f"got {sorted(got)[:5]} ({len(got)}), expected {sorted(expected)[:5]} ({len(expected)})",
)
for name in ("companies", "deals"):
    got_ids = set(nxt.get(name, {}))
    record(f"next incremental read of unchanged {name}: only the record at the cursor",
           got_ids == at_cursor(name), f"got {sorted(got_ids)}, at cursor {sorted(at_cursor(name))}")
record("next incremental read reported no errors", code == 0 and not problems(msgs), f"{problems(msgs)[:2]}")

stats = json.loads(urllib.request.urlopen(URL + "/_emulator/stats").read())
print(f"INFO airbyte: {stats['requests_total']} requests, {stats['rate_limited_total']} answered 429", flush=True)

passed = sum(RESULTS)
print(f"SUMMARY airbyte-source-hubspot: {passed}/{len(RESULTS)} passed", flush=True)
sys.exit(min(len(RESULTS) - passed, 100))
