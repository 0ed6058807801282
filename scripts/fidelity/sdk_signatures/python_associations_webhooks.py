"""Drives the official Python client (hubspot-api-client) through associations v4 (record-level,
batch, labels), owners and pipelines against a running emulator, and validates the emulator's
webhook deliveries with the SDK's own Signature.is_valid (v1 and v3).

HUBSPOT_BASE_URL (default http://127.0.0.1:8090), HUBSPOT_TOKEN. The emulator must run with
--webhook-secret sdk-secret (the target URL is set here through /_emulator/webhooks)."""
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec, BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.associations.v4.schema import PublicAssociationDefinitionCreateRequest
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.utils.signature import Signature

BASE = os.environ.get("HUBSPOT_BASE_URL", "http://127.0.0.1:8090")
SECRET = "sdk-secret"
api = HubSpot(access_token=os.environ.get("HUBSPOT_TOKEN", "pat-na1-x"), host=BASE)
ok = []

deliveries = []


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        uri = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        v3 = Signature.is_valid(self.headers["X-HubSpot-Signature-v3"], SECRET, body, uri,
                                signature_version="v3",
                                timestamp=self.headers["X-HubSpot-Request-Timestamp"])
        v1 = Signature.is_valid(self.headers["X-HubSpot-Signature"], SECRET, body, uri,
                                signature_version=self.headers["X-HubSpot-Signature-Version"])
        deliveries.append((v1, v3, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
control = json.dumps({"url": f"http://127.0.0.1:{server.server_port}/hook", "flush_ms": 50}).encode()
urllib.request.urlopen(urllib.request.Request(f"{BASE}/_emulator/webhooks", data=control,
                                              headers={"Content-Type": "application/json"}))

contact = api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": f"assoc{time.time_ns()}@example.com"}))
lonely = api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={}))
company = api.crm.companies.basic_api.create({"properties": {"name": "SDK Co"}})
d = api.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company.id)
ok.append(("create_default", sorted(r.association_spec.association_type_id for r in d.results)))
page = api.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
ok.append(("get_page", page.results[0].to_object_id, sorted(t.type_id for t in page.results[0].association_types)))
label = api.crm.associations.v4.schema.definitions_api.create("contacts", "companies", PublicAssociationDefinitionCreateRequest(label="Buyer", name=f"buyer_{time.time_ns()}"))
type_id = label.results[0].type_id
labels = api.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
ok.append(("labels", len(labels.results)))
pair = api.crm.associations.v4.basic_api.create("contacts", contact.id, "companies", company.id,
                                                 [AssociationSpec(association_category="USER_DEFINED", association_type_id=type_id)])
ok.append(("labelled", pair.labels))
batch = api.crm.associations.v4.batch_api.get_page("contacts", "companies", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": contact.id}, {"id": lonely.id}]))
ok.append(("batch_read", len(batch.results), batch.num_errors))
owners = api.crm.owners.owners_api.get_page(limit=5)
ok.append(("owners", len(owners.results)))
pipelines = api.crm.pipelines.pipelines_api.get_all("deals")
ok.append(("pipelines", pipelines.results[0].id, len(pipelines.results[0].stages)))
api.crm.associations.v4.basic_api.archive("contacts", contact.id, "companies", company.id)
ok.append(("archive", api.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies").results))

deadline = time.time() + 10
while time.time() < deadline and not any(e.get("subscriptionType") == "contact.associationChange"
                                          for _, _, events in deliveries for e in events):
    time.sleep(0.05)
ok.append(("webhooks", len(deliveries), all(v1 and v3 for v1, v3, _ in deliveries)))
for row in ok:
    print(*row)
