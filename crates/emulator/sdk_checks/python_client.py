"""Drives the official Python client (hubspot-api-client) through the core CRM flows against a
running emulator: HUBSPOT_BASE_URL (default http://127.0.0.1:8090), HUBSPOT_TOKEN."""
import os
import hubspot
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate, PublicObjectSearchRequest, BatchInputSimplePublicObjectBatchInputForCreate, BatchReadInputSimplePublicObjectId, SimplePublicObjectInput
from hubspot.crm.properties import PropertyCreate
api = HubSpot(access_token=os.environ.get("HUBSPOT_TOKEN", "pat-na1-x"), host=os.environ.get("HUBSPOT_BASE_URL", "http://127.0.0.1:8090"))
ok = []
c = api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com", "firstname": "Sdk"}))
ok.append(("create", c.id))
r = api.crm.contacts.basic_api.get_by_id(c.id, properties=["email","firstname","phone"])
ok.append(("get", r.properties["firstname"], r.properties.get("phone")))
page = api.crm.contacts.basic_api.get_page(limit=100, properties=["email"])
ok.append(("page", len(page.results), page.paging.next.after))
allc = api.crm.contacts.get_all(properties=["email"])
ok.append(("get_all", len(allc)))
s = api.crm.contacts.search_api.do_search(PublicObjectSearchRequest(filter_groups=[{"filters":[{"propertyName":"email","operator":"CONTAINS_TOKEN","value":"*@example.com"}]}], sorts=[{"propertyName":"createdate","direction":"DESCENDING"}], limit=200, after="0", properties=["email"]))
ok.append(("search", s.total, len(s.results)))
b = api.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[{"properties":{"email":"b1@example.com"}},{"properties":{"email":"b2@example.com"}}]))
ok.append(("batch_create", b.status, len(b.results)))
br = api.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": c.id}], properties=["email"]))
ok.append(("batch_read", len(br.results)))
u = api.crm.contacts.basic_api.update(c.id, SimplePublicObjectInput(properties={"lastname": "Kit"}))
ok.append(("update", u.properties["lastname"]))
p = api.crm.properties.core_api.create("contacts", PropertyCreate(name="sdk_score", label="Score", type="number", field_type="number", group_name="contactinformation"))
ok.append(("property", p.name))
props = api.crm.properties.core_api.get_all("contacts")
ok.append(("properties", len(props.results)))
deals = api.crm.deals.basic_api.get_page(limit=5, associations=["companies"])
ok.append(("deals+assoc", len(deals.results), bool(deals.results[0].associations)))
try:
    api.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com"}))
except Exception as e:
    ok.append(("conflict", e.status))
api.crm.contacts.basic_api.archive(c.id)
ok.append(("archive", "ok"))
sch = api.crm.schemas.core_api.create({"name":"cars","labels":{"singular":"Car","plural":"Cars"},"primaryDisplayProperty":"model","requiredProperties":["model"],"properties":[{"name":"model","label":"Model","type":"string","fieldType":"text"}],"associatedObjects":["CONTACT"]})
ok.append(("schema", sch.object_type_id))
allsch = api.crm.schemas.core_api.get_all()
ok.append(("schemas", len(allsch.results)))
car = api.crm.objects.basic_api.create(sch.object_type_id, {"properties": {"model": "T"}})
ok.append(("custom record", car.id))
for o in ok: print(o)
