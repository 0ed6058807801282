"""Runs Airbyte's `source-hubspot` with every request to https://api.hubapi.com sent to the emulator.

The connector hard-codes HubSpot's host (its manifest, streams and OAuth code all name
`https://api.hubapi.com`). Rather than editing the connector, this wrapper rewrites the URL of
each outgoing `requests` call at the transport adapter, the last step before the socket: the
connector, the Airbyte CDK and its HTTP cache run unchanged. Usage is the connector's own CLI:

    FIDELITY_URL=http://127.0.0.1:PORT python airbyte_source.py read --config c.json --catalog k.json
"""

import os
import sys

import requests.adapters

HUBSPOT = "https://api.hubapi.com"
TARGET = os.environ["FIDELITY_URL"].rstrip("/")

_send = requests.adapters.HTTPAdapter.send


def _send_to_emulator(self, request, *args, **kwargs):
    if request.url.startswith(HUBSPOT):
        request.url = TARGET + request.url[len(HUBSPOT) :]
        # a plain-http emulator: the verify/cert arguments meant for HubSpot's TLS are unused
    return _send(self, request, *args, **kwargs)


requests.adapters.HTTPAdapter.send = _send_to_emulator

if __name__ == "__main__":
    from source_hubspot.run import run

    sys.argv[0] = "source-hubspot"
    run()
