"""Shared pieces of the Python client flows (`python_client.py`, `python_edges.py`): the
emulator's address and seed sizes from the environment set by `scripts/fidelity/run`, a
PASS/FAIL step recorder, assertions, and the emulator's control API.

    FIDELITY_URL  FIDELITY_TOKEN  FIDELITY_CONTACTS  FIDELITY_COMPANIES  FIDELITY_DEALS
"""

import json
import os
import sys
import traceback
import urllib.request
import uuid

from hubspot.crm import contacts as hc

URL = os.environ["FIDELITY_URL"]
TOKEN = os.environ["FIDELITY_TOKEN"]
SEED_CONTACTS = int(os.environ["FIDELITY_CONTACTS"])
SEED_COMPANIES = int(os.environ["FIDELITY_COMPANIES"])
SEED_DEALS = int(os.environ["FIDELITY_DEALS"])
RUN = uuid.uuid4().hex[:8]

RESULTS = []


def step(name):
    """Decorator: runs the function now and records PASS/FAIL."""

    def run(fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
            detail = exc.body if isinstance(exc, hc.ApiException) and exc.body else exc
            reason = f"{type(exc).__name__}: {detail}".replace("\n", " ")[:400]
            if os.environ.get("FIDELITY_VERBOSE"):
                traceback.print_exc()
            print(f"FAIL python: {name}: {reason}", flush=True)
            RESULTS.append((name, False))
        else:
            print(f"PASS python: {name}", flush=True)
            RESULTS.append((name, True))
        return fn

    return run


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def raises(fn, status):
    """Calls fn, expects the client to raise ApiException with `status`; returns the JSON body."""
    try:
        fn()
    except hc.ApiException as exc:  # every generated package's ApiException shares the shape
        check(exc.status == status, f"expected HTTP {status}, got {exc.status}: {exc.body}")
        return json.loads(exc.body)
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status", None) == status and getattr(exc, "body", None):
            return json.loads(exc.body)
        raise
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def control(method, path, body=None):
    """The emulator's control API (`/_emulator/...`), outside the client under test."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def finish(label):
    """Prints the summary line and exits with the number of failures (capped at 100)."""
    passed = sum(1 for _, ok in RESULTS if ok)
    print(f"SUMMARY {label}: {passed}/{len(RESULTS)} passed", flush=True)
    sys.exit(min(len(RESULTS) - passed, 100))
