"""HubSpot's official Python client (`hubspot-api-client`) against `hubsync emulator`: the
everyday flows (lists and get_all, CRUD, batch, search and its 10,000 cap, properties,
associations, schemas, owners, pipelines, 429 handling). `python_edges.py` has the rest.

Each step prints `PASS python: <step>` or `FAIL python: <step>: <reason>`; the exit status is the
number of failures. Environment: see python_harness.py.
"""

import json
import time

from urllib3.util.retry import Retry

from hubspot import HubSpot
from hubspot.crm import contacts as hc
from hubspot.crm import objects as ho
from hubspot.crm import properties as hp
from hubspot.crm import schemas as hs
from hubspot.crm.associations import v4 as ha

from python_harness import (
    RUN, SEED_COMPANIES, SEED_CONTACTS, SEED_DEALS, TOKEN, URL, check, control, finish, raises, step,
)

client = HubSpot(access_token=TOKEN, host=URL)
crm = client.crm
state = {}


# ---- objects: list, paging, get_all ------------------------------------------------------------


@step("contacts get_page (limit, properties, paging.next.after)")
def _():
    page = crm.contacts.basic_api.get_page(limit=10, properties=["email", "firstname", "phone"])
    check(len(page.results) == 10, f"{len(page.results)} results")
    first = page.results[0]
    check(isinstance(first.id, str) and first.id.isdigit(), f"id {first.id!r}")
    check("email" in first.properties and "hs_object_id" in first.properties, first.properties)
    check(page.paging.next.after, "no paging.next.after")
    nxt = crm.contacts.basic_api.get_page(limit=10, after=page.paging.next.after)
    ids = {r.id for r in page.results}
    check(not ids & {r.id for r in nxt.results}, "second page overlaps the first")
    check(int(nxt.results[0].id) > int(page.results[-1].id), "pages not in id order")


@step(f"contacts get_all returns every seeded contact ({SEED_CONTACTS})")
def _():
    everything = crm.contacts.get_all(properties=["email"])
    check(len(everything) == SEED_CONTACTS, f"{len(everything)} contacts")
    check(len({r.id for r in everything}) == SEED_CONTACTS, "duplicate ids across pages")


@step(f"companies get_all ({SEED_COMPANIES}) and deals get_all ({SEED_DEALS})")
def _():
    companies = crm.companies.get_all()
    deals = crm.deals.get_all(properties=["dealname", "amount", "dealstage"])
    check(len(companies) == SEED_COMPANIES, f"{len(companies)} companies")
    check(len(deals) == SEED_DEALS, f"{len(deals)} deals")
    check(all(d.properties.get("dealstage") for d in deals), "deal without dealstage")


# ---- single-record CRUD and errors --------------------------------------------------------------


@step("create contact (201, SimplePublicObject)")
def _():
    body = hc.SimplePublicObjectInputForCreate(
        properties={"email": f"ann.{RUN}@example.com", "firstname": "Ann", "lifecyclestage": "lead"}
    )
    created = crm.contacts.basic_api.create(simple_public_object_input_for_create=body)
    check(created.id and created.id.isdigit(), f"id {created.id!r}")
    check(created.properties["email"] == f"ann.{RUN}@example.com", created.properties)
    check(created.created_at is not None and created.archived is False, "createdAt/archived")
    state["ann"] = created.id


@step("read contact by id and by idProperty=email")
def _():
    by_id = crm.contacts.basic_api.get_by_id(state["ann"], properties=["email", "firstname", "phone"])
    check(by_id.properties["firstname"] == "Ann", by_id.properties)
    check("phone" in by_id.properties and by_id.properties["phone"] is None, "phone not null")
    by_email = crm.contacts.basic_api.get_by_id(f"ann.{RUN}@example.com", id_property="email")
    check(by_email.id == state["ann"], f"{by_email.id} != {state['ann']}")


@step("update contact (PATCH, updatedAt moves)")
def _():
    before = crm.contacts.basic_api.get_by_id(state["ann"])
    time.sleep(0.01)
    upd = crm.contacts.basic_api.update(
        state["ann"], hc.SimplePublicObjectInput(properties={"firstname": "Anne", "phone": "+1 555 0100"})
    )
    check(upd.properties["firstname"] == "Anne", upd.properties)
    check(upd.updated_at > before.updated_at, f"{upd.updated_at} <= {before.updated_at}")


@step("duplicate email -> client raises 409 with 'Existing ID'")
def _():
    body = hc.SimplePublicObjectInputForCreate(properties={"email": f"ann.{RUN}@example.com"})
    err = raises(lambda: crm.contacts.basic_api.create(simple_public_object_input_for_create=body), 409)
    check(f"Existing ID: {state['ann']}" in err["message"], err["message"])
    check(err["category"] == "CONFLICT" and err.get("correlationId"), err)


@step("unknown id -> client raises NotFoundException (404 OBJECT_NOT_FOUND)")
def _():
    try:
        crm.contacts.basic_api.get_by_id("1")
    except hc.exceptions.NotFoundException as exc:
        err = json.loads(exc.body)
        check(err["category"] == "OBJECT_NOT_FOUND", err)
        return
    raise AssertionError("no NotFoundException")


@step("unknown property on write -> 400 VALIDATION_ERROR PROPERTY_DOESNT_EXIST")
def _():
    body = hc.SimplePublicObjectInput(properties={"first000name": "x"})
    err = raises(lambda: crm.contacts.basic_api.update(state["ann"], body), 400)
    check(err["category"] == "VALIDATION_ERROR", err)
    check(err["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST", err["errors"])


@step("archive contact (204), then 404, then readable with archived=true")
def _():
    crm.contacts.basic_api.archive(state["ann"])
    raises(lambda: crm.contacts.basic_api.get_by_id(state["ann"]), 404)
    gone = crm.contacts.basic_api.get_by_id(state["ann"], archived=True)
    check(gone.archived is True and gone.archived_at is not None, "archived/archivedAt")


# ---- batch ----------------------------------------------------------------------------------------


@step("batch create 3 contacts (201, COMPLETE)")
def _():
    inputs = [
        hc.SimplePublicObjectBatchInputForCreate(
            properties={"email": f"b{i}.{RUN}@example.com", "firstname": f"B{i}"}, associations=[]
        )
        for i in range(3)
    ]
    res = crm.contacts.batch_api.create(hc.BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    check(res.status == "COMPLETE" and len(res.results) == 3, f"{res.status} {len(res.results)}")
    state["batch"] = sorted(r.id for r in res.results)


@step("batch read with a missing id (207: results + errors)")
def _():
    inputs = [hc.SimplePublicObjectId(id=i) for i in state["batch"] + ["1"]]
    res = crm.contacts.batch_api.read(
        hc.BatchReadInputSimplePublicObjectId(inputs=inputs, properties=["email", "firstname"])
    )
    check(len(res.results) == 3, f"{len(res.results)} results")
    check(getattr(res, "num_errors", 0) == 1 and res.errors[0].category == "OBJECT_NOT_FOUND", res)


@step("batch update")
def _():
    inputs = [hc.SimplePublicObjectBatchInput(id=i, properties={"lastname": "Batch"}) for i in state["batch"]]
    res = crm.contacts.batch_api.update(hc.BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    check(len(res.results) == 3, f"{len(res.results)} results")
    check(all(r.properties["lastname"] == "Batch" for r in res.results), "lastname not set")


@step("batch upsert by email (one existing, one new)")
def _():
    inputs = [
        hc.SimplePublicObjectBatchInputUpsert(
            id=f"b0.{RUN}@example.com", id_property="email", properties={"jobtitle": "Upserted"}
        ),
        hc.SimplePublicObjectBatchInputUpsert(
            id=f"new.{RUN}@example.com", id_property="email", properties={"firstname": "New"}
        ),
    ]
    res = crm.contacts.batch_api.upsert(hc.BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
    by_new = {r.new: r for r in res.results}
    check(set(by_new) == {True, False}, f"new flags {[r.new for r in res.results]}")
    check(by_new[False].id == state["batch"][0] or by_new[False].id in state["batch"], "existing id")
    state["upserted"] = by_new[True].id


@step("batch archive (204), records gone")
def _():
    ids = state["batch"] + [state["upserted"]]
    crm.contacts.batch_api.archive(hc.BatchInputSimplePublicObjectId(inputs=[hc.SimplePublicObjectId(id=i) for i in ids]))
    raises(lambda: crm.contacts.basic_api.get_by_id(ids[0]), 404)


# ---- search ---------------------------------------------------------------------------------------


@step("search: filter + sort + paging with after")
def _():
    def req(after=None):
        return hc.PublicObjectSearchRequest(
            filter_groups=[
                hc.FilterGroup(filters=[hc.Filter(property_name="lifecyclestage", operator="HAS_PROPERTY")])
            ],
            sorts=["-createdate"],
            properties=["email", "createdate", "lifecyclestage"],
            limit=50,
            after=after,
        )

    first = crm.contacts.search_api.do_search(public_object_search_request=req())
    check(first.total > 50, f"total {first.total}")
    dates = [r.properties["createdate"] for r in first.results]
    check(dates == sorted(dates, reverse=True), "not sorted by createdate descending")
    check(first.paging.next.after == "50", f"after {first.paging.next.after!r}")
    second = crm.contacts.search_api.do_search(public_object_search_request=req(first.paging.next.after))
    check(not {r.id for r in first.results} & {r.id for r in second.results}, "pages overlap")
    check(second.results[0].properties["createdate"] <= dates[-1], "second page out of order")


@step("search: object-form sorts, IN and BETWEEN filters, total")
def _():
    stages = ["lead", "customer"]
    res = crm.contacts.search_api.do_search(
        public_object_search_request={
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lifecyclestage", "operator": "IN", "values": stages},
                        {
                            "propertyName": "createdate",
                            "operator": "BETWEEN",
                            "value": "2021-01-01T00:00:00Z",
                            "highValue": str(int(time.time() * 1000)),
                        },
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["lifecyclestage"],
            "limit": 100,
        }
    )
    check(res.total > 0, "no results")
    check(all(r.properties["lifecyclestage"] in stages for r in res.results), "filter not applied")
    ids = [int(r.id) for r in res.results]
    check(ids == sorted(ids), "not ascending by id")


@step("search: 10,000-result cap (after=9800 ok, after=10000 -> 400)")
def _():
    def req(after):
        return hc.PublicObjectSearchRequest(
            sorts=["hs_object_id"], properties=["email"], limit=200, after=after
        )

    check(SEED_CONTACTS > 10000, "seed more than 10,000 contacts to exercise the cap")
    page = crm.contacts.search_api.do_search(public_object_search_request=req("9800"))
    check(page.total >= SEED_CONTACTS, f"total {page.total}")
    check(len(page.results) == 200, f"{len(page.results)} results at 9800")
    err = raises(lambda: crm.contacts.search_api.do_search(public_object_search_request=req("10000")), 400)
    check(err["category"] == "VALIDATION_ERROR", err)


# ---- properties -----------------------------------------------------------------------------------


@step("properties: list, create custom property, read it, groups list/create")
def _():
    props = crm.properties.core_api.get_all("contacts")
    names = {p.name for p in props.results}
    check({"email", "firstname", "lifecyclestage"} <= names, "standard properties missing")
    group = crm.properties.groups_api.create(
        "contacts", hp.PropertyGroupCreate(name=f"fid_{RUN}", label="Fidelity", display_order=-1)
    )
    check(group.name == f"fid_{RUN}", group)
    prop = crm.properties.core_api.create(
        "contacts",
        hp.PropertyCreate(
            name=f"fid_color_{RUN}",
            label="Favourite colour",
            type="enumeration",
            field_type="select",
            group_name=f"fid_{RUN}",
            options=[
                hp.OptionInput(label="Red", value="red", display_order=0, hidden=False),
                hp.OptionInput(label="Blue", value="blue", display_order=1, hidden=False),
            ],
        ),
    )
    check(prop.name == f"fid_color_{RUN}" and len(prop.options) == 2, prop)
    got = crm.properties.core_api.get_by_name("contacts", f"fid_color_{RUN}")
    check(got.group_name == f"fid_{RUN}", got.group_name)
    groups = crm.properties.groups_api.get_all("contacts")
    check(f"fid_{RUN}" in {g.name for g in groups.results}, "new group not listed")
    # the new property is writable with an option value, and a bad option is rejected
    c = crm.contacts.basic_api.create(
        hc.SimplePublicObjectInputForCreate(properties={f"fid_color_{RUN}": "blue"})
    )
    check(c.properties[f"fid_color_{RUN}"] == "blue", c.properties)
    body = hc.SimplePublicObjectInput(properties={f"fid_color_{RUN}": "green"})
    err = raises(lambda: crm.contacts.basic_api.update(c.id, body), 400)
    check(err["errors"][0]["code"] == "INVALID_OPTION", err)


# ---- associations v4 ------------------------------------------------------------------------------


@step("associations v4: create labelled (279), list, create default, archive")
def _():
    contact = crm.contacts.basic_api.create(
        hc.SimplePublicObjectInputForCreate(properties={"email": f"assoc.{RUN}@example.com"})
    )
    companies = crm.companies.basic_api.get_page(limit=3).results
    state["assoc_contact"], state["assoc_companies"] = contact.id, [c.id for c in companies]
    spec = [ha.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)]
    made = crm.associations.v4.basic_api.create("contacts", contact.id, "companies", companies[0].id, spec)
    check(str(made.to_object_id) == companies[0].id, made)
    crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", companies[1].id)
    page = crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies", limit=500)
    linked = {str(r.to_object_id): {t.type_id for t in r.association_types} for r in page.results}
    check(set(linked) == {companies[0].id, companies[1].id}, linked)
    check(279 in linked[companies[0].id], linked)
    crm.associations.v4.basic_api.archive("contacts", contact.id, "companies", companies[0].id)
    page = crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    check({str(r.to_object_id) for r in page.results} == {companies[1].id}, "archive did not remove")


@step("associations v4 batch: create, read (with a no-associations input), v3 expansion")
def _():
    contact, companies = state["assoc_contact"], state["assoc_companies"]
    lonely = crm.contacts.basic_api.create(
        hc.SimplePublicObjectInputForCreate(properties={"email": f"lonely.{RUN}@example.com"})
    ).id
    spec = [ha.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)]
    crm.associations.v4.batch_api.create(
        "contacts",
        "companies",
        ha.BatchInputPublicAssociationMultiPost(
            inputs=[ha.PublicAssociationMultiPost(_from=ha.PublicObjectId(id=contact), to=ha.PublicObjectId(id=companies[2]), types=spec)]
        ),
    )
    res = crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        ha.BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[ha.PublicFetchAssociationsBatchRequest(id=contact), ha.PublicFetchAssociationsBatchRequest(id=lonely)]
        ),
    )
    check(len(res.results) == 1, f"{len(res.results)} results")
    targets = {str(t.to_object_id) for t in res.results[0].to}
    check(targets == {companies[1], companies[2]}, targets)
    check(getattr(res, "num_errors", 0) == 1, "no error item for the contact without associations")
    rec = crm.contacts.basic_api.get_by_id(contact, associations=["companies"])
    ids = {a.id for a in rec.associations["companies"].results}
    check(ids == {companies[1], companies[2]}, ids)


# ---- schemas / custom objects ---------------------------------------------------------------------


@step("schemas: create custom object, list, create and list its records")
def _():
    name = f"car_{RUN}"
    egg = hs.ObjectSchemaEgg(
        name=name,
        labels=hs.ObjectTypeDefinitionLabels(singular="Car", plural="Cars"),
        primary_display_property="model",
        required_properties=["model"],
        searchable_properties=["model"],
        secondary_display_properties=[],
        properties=[
            hs.ObjectTypePropertyCreate(name="model", label="Model", type="string", field_type="text"),
            hs.ObjectTypePropertyCreate(name="year", label="Year", type="number", field_type="number"),
        ],
        associated_objects=["CONTACT"],
    )
    schema = crm.schemas.core_api.create(egg)
    check(schema.object_type_id.startswith("2-"), schema.object_type_id)
    check(schema.fully_qualified_name.endswith(name), schema.fully_qualified_name)
    listed = crm.schemas.core_api.get_all()
    check(schema.object_type_id in {s.object_type_id for s in listed.results}, "schema not listed")
    for model in ("Model T", "Beetle"):
        crm.objects.basic_api.create(
            schema.object_type_id,
            ho.SimplePublicObjectInputForCreate(properties={"model": model, "year": 1950}),
        )
    page = crm.objects.basic_api.get_page(name, properties=["model", "year"])
    check(sorted(r.properties["model"] for r in page.results) == ["Beetle", "Model T"], page.results)
    check(page.results[0].properties["year"] == "1950", "number not returned as string")


# ---- owners, pipelines ----------------------------------------------------------------------------


@step("owners get_page and get_by_id")
def _():
    owners = crm.owners.owners_api.get_page(limit=100)
    check(len(owners.results) > 0, "no owners")
    one = crm.owners.owners_api.get_by_id(int(owners.results[0].id))
    check(one.email == owners.results[0].email, one)


@step("pipelines: deal and ticket pipelines with stages")
def _():
    deals = crm.pipelines.pipelines_api.get_all("deals")
    default = [p for p in deals.results if p.id == "default"]
    check(default and len(default[0].stages) >= 2, "no default deal pipeline")
    check(default[0].stages[0].metadata.get("probability") is not None, default[0].stages[0].metadata)
    tickets = crm.pipelines.pipelines_api.get_all("tickets")
    check(tickets.results and tickets.results[0].stages, "no ticket pipeline")


# ---- rate limits ----------------------------------------------------------------------------------


@step("429 without retry: client raises with TEN_SECONDLY_ROLLING body")
def _():
    control("POST", "/_emulator/rate-limits", {"burst": "2/2s"})
    try:
        time.sleep(2.1)  # a fresh window
        err = None
        for _ in range(5):
            try:
                crm.contacts.basic_api.get_page(limit=1)
            except hc.ApiException as exc:
                check(exc.status == 429, f"status {exc.status}")
                err = json.loads(exc.body)
                break
        check(err is not None, "no 429 after 5 calls with a 2/2s limit")
        check(err["policyName"] == "TEN_SECONDLY_ROLLING", err)
        check(err["message"] == "You have reached your ten_secondly_rolling limit.", err)
    finally:
        control("POST", "/_emulator/rate-limits", {"burst": "off"})


@step("429 with the client's Retry(status_forcelist=[429]): every call succeeds")
def _():
    retrying = HubSpot(
        access_token=TOKEN,
        host=URL,
        retry=Retry(total=8, backoff_factor=0.5, status_forcelist=(429,), allowed_methods=None),
    )
    before = control("GET", "/_emulator/stats")["rate_limited_total"]
    control("POST", "/_emulator/rate-limits", {"burst": "3/1s"})
    try:
        for _ in range(10):
            retrying.crm.contacts.basic_api.get_page(limit=1)
        body = hc.SimplePublicObjectInputForCreate(properties={"email": f"retry.{RUN}@example.com"})
        retrying.crm.contacts.basic_api.create(simple_public_object_input_for_create=body)
    finally:
        control("POST", "/_emulator/rate-limits", {"burst": "off"})
    after = control("GET", "/_emulator/stats")["rate_limited_total"]
    check(after > before, "the emulator never throttled: the retry path was not exercised")



finish("python hubspot-api-client (core flows)")
