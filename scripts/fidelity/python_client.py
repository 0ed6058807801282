"""HubSpot's official Python client (`hubspot-api-client`) against `hubsync emulator`.

Each step prints `PASS python: <step>` or `FAIL python: <step>: <reason>`; the exit status is the
number of failures (capped at 100). The emulator's address, token and seed sizes come from the
environment set by `scripts/fidelity/run`:

    FIDELITY_URL  FIDELITY_TOKEN  FIDELITY_CONTACTS  FIDELITY_COMPANIES  FIDELITY_DEALS
"""

import json
import os
import sys
import time
import traceback
import urllib.request
import uuid

from urllib3.util.retry import Retry

from hubspot import HubSpot
from hubspot.crm import contacts as hc
from hubspot.crm import objects as ho
from hubspot.crm import properties as hp
from hubspot.crm import schemas as hs
from hubspot.crm.associations import v4 as ha

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


# ---- merge, GDPR delete, history, partial batches, other objects ----------------------------------


def new_contact(**props):
    props.setdefault("email", f"{uuid.uuid4().hex[:10]}.{RUN}@example.com")
    return crm.contacts.basic_api.create(hc.SimplePublicObjectInputForCreate(properties=props))


@step("merge two contacts (survivor returned; the merged-away id reads as the survivor)")
def _():
    keep, lose = new_contact(firstname="Keep"), new_contact(firstname="Lose", phone="+1 555 0199")
    merged = crm.contacts.basic_api.merge(
        hc.PublicMergeInput(primary_object_id=keep.id, object_id_to_merge=lose.id)
    )
    check(merged.id == keep.id, f"survivor {merged.id}")
    again = crm.contacts.basic_api.get_by_id(lose.id, properties=["phone", "hs_merged_object_ids"])
    check(again.id == keep.id, f"old id reads as {again.id}")
    check(lose.id in (again.properties["hs_merged_object_ids"] or ""), again.properties)


@step("GDPR delete by email (204), then 404")
def _():
    c = new_contact()
    crm.contacts.basic_api.purge(hc.PublicGdprDeleteInput(object_id=c.properties["email"], id_property="email"))
    raises(lambda: crm.contacts.basic_api.get_by_id(c.id, archived=True), 404)


@step("propertiesWithHistory on read (ValueWithTimestamp parsed, newest first)")
def _():
    c = new_contact(firstname="One")
    crm.contacts.basic_api.update(c.id, hc.SimplePublicObjectInput(properties={"firstname": "Two"}))
    rec = crm.contacts.basic_api.get_by_id(c.id, properties_with_history=["firstname"])
    history = rec.properties_with_history["firstname"]
    check([h.value for h in history][:2] == ["Two", "One"], [h.value for h in history])
    check(history[0].timestamp >= history[1].timestamp and history[0].source_type, history[0])


@step("batch create with objectWriteTraceIds and a duplicate email -> 207 per-item CONFLICT")
def _():
    dup = new_contact()
    inputs = [
        hc.SimplePublicObjectBatchInputForCreate(
            properties={"email": email}, associations=[], object_write_trace_id=str(i)
        )
        for i, email in enumerate([f"ok.{RUN}@example.com", dup.properties["email"]])
    ]
    res = crm.contacts.batch_api.create(hc.BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    check(len(res.results) == 1 and res.num_errors == 1, res)
    err = res.errors[0]
    check(err.category == "CONFLICT" and err.context["existingId"] == [dup.id], err)


@step("search: free-text query and NOT_HAS_PROPERTY")
def _():
    c = new_contact(firstname=f"Zebedee{RUN}", lastname="Quux")
    res = crm.contacts.search_api.do_search(hc.PublicObjectSearchRequest(query=f"zebedee{RUN}"))
    check([r.id for r in res.results] == [c.id], [r.id for r in res.results])
    res = crm.contacts.search_api.do_search(
        hc.PublicObjectSearchRequest(
            filter_groups=[hc.FilterGroup(filters=[
                hc.Filter(property_name="email", operator="EQ", value=c.properties["email"].upper()),
                hc.Filter(property_name="phone", operator="NOT_HAS_PROPERTY"),
            ])]
        )
    )
    check(res.total == 1 and res.results[0].id == c.id, f"total {res.total}")


@step("tickets and deals: create in a pipeline, bad stage rejected, numeric search")
def _():
    t = crm.tickets.basic_api.create(
        hc.SimplePublicObjectInputForCreate(
            properties={"subject": f"Broken {RUN}", "hs_pipeline": "0", "hs_pipeline_stage": "1"}
        )
    )
    check(t.properties["hs_pipeline_stage"] == "1", t.properties)
    bad = hc.SimplePublicObjectInput(properties={"hs_pipeline_stage": "no-such-stage"})
    raises(lambda: crm.tickets.basic_api.update(t.id, bad), 400)
    company = crm.companies.basic_api.get_page(limit=1).results[0]
    deal = crm.deals.basic_api.create(
        hc.SimplePublicObjectInputForCreate(
            properties={"dealname": f"Big {RUN}", "amount": "987654321", "pipeline": "default",
                        "dealstage": "appointmentscheduled"},
            associations=[{"to": {"id": company.id},
                           "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}],
        )
    )
    res = crm.deals.search_api.do_search(hc.PublicObjectSearchRequest(
        filter_groups=[hc.FilterGroup(filters=[hc.Filter(property_name="amount", operator="GT", value="987654320")])]
    ))
    check([r.id for r in res.results] == [deal.id], [r.id for r in res.results])
    linked = crm.associations.v4.basic_api.get_page("deals", deal.id, "companies")
    check([str(r.to_object_id) for r in linked.results] == [company.id], linked.results)


@step("association labels: create a contact->company label, list it, associate with it")
def _():
    from hubspot.crm.associations.v4 import schema as hl

    made = crm.associations.v4.schema.definitions_api.create(
        "contacts", "companies",
        hl.PublicAssociationDefinitionCreateRequest(label=f"Advisor {RUN}", name=f"advisor_{RUN}"),
    )
    type_id = [r.type_id for r in made.results if r.label == f"Advisor {RUN}"][0]
    listed = crm.associations.v4.schema.definitions_api.get_all("contacts", "companies")
    check(type_id in {r.type_id for r in listed.results}, "label not listed")
    c = new_contact()
    company = crm.companies.basic_api.get_page(limit=1).results[0]
    spec = [ha.AssociationSpec(association_category="USER_DEFINED", association_type_id=type_id)]
    crm.associations.v4.basic_api.create("contacts", c.id, "companies", company.id, spec)
    page = crm.associations.v4.basic_api.get_page("contacts", c.id, "companies")
    labels = {t.label for r in page.results for t in r.association_types}
    check(f"Advisor {RUN}" in labels, labels)


@step("pipelines: create a deal pipeline with stages; a deal in it validates")
def _():
    from hubspot.crm import pipelines as hpl

    pipe = crm.pipelines.pipelines_api.create("deals", hpl.PipelineInput(
        label=f"Partners {RUN}", display_order=5,
        stages=[hpl.PipelineStageInput(label="Intro", display_order=0, metadata={"probability": "0.1"}),
                hpl.PipelineStageInput(label="Won", display_order=1, metadata={"probability": "1.0"})],
    ))
    check(len(pipe.stages) == 2, pipe)
    deal = crm.deals.basic_api.create(hc.SimplePublicObjectInputForCreate(
        properties={"dealname": "P", "pipeline": pipe.id, "dealstage": pipe.stages[0].id}))
    check(deal.properties["dealstage"] == pipe.stages[0].id, deal.properties)
    bad = hc.SimplePublicObjectInput(properties={"dealstage": "appointmentscheduled"})
    raises(lambda: crm.deals.basic_api.update(deal.id, bad), 400)


@step("wrong token -> UnauthorizedException (401 INVALID_AUTHENTICATION)")
def _():
    stranger = HubSpot(access_token="pat-na1-wrong", host=URL)
    try:
        stranger.crm.contacts.basic_api.get_page(limit=1)
    except hc.exceptions.UnauthorizedException as exc:
        check(json.loads(exc.body)["category"] == "INVALID_AUTHENTICATION", exc.body)
        return
    raise AssertionError("no UnauthorizedException")


@step("over-long URL (900 property names) -> 414")
def _():
    names = [f"a_rather_long_property_name_number_{i}" for i in range(900)]
    try:
        crm.contacts.basic_api.get_page(limit=1, properties=names)
    except hc.ApiException as exc:
        check(exc.status == 414, f"status {exc.status}")
        return
    raise AssertionError("no 414")


@step("archived=true list shows only archived contacts")
def _():
    c = new_contact()
    crm.contacts.basic_api.archive(c.id)
    page = crm.contacts.basic_api.get_page(limit=100, archived=True)
    check(page.results and all(r.archived for r in page.results), "non-archived record listed")
    check(c.id in {r.id for r in page.results}, "archived contact missing")


@step("injected 5xx (error_rate 0.3): Retry(status_forcelist=5xx) gets every call through")
def _():
    retrying = HubSpot(
        access_token=TOKEN, host=URL,
        retry=Retry(total=10, backoff_factor=0.01, status_forcelist=(500, 502, 503, 504), allowed_methods=None),
    )
    control("POST", "/_emulator/faults", {"error_rate": 0.3, "seed": 3})
    try:
        for _ in range(10):
            retrying.crm.contacts.basic_api.get_page(limit=1)
        retrying.crm.contacts.search_api.do_search(hc.PublicObjectSearchRequest(limit=1))
    finally:
        control("DELETE", "/_emulator/faults")
    check(control("GET", "/_emulator/stats")["faults"]["server_errors"] > 0, "no 5xx was injected")


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


passed = sum(1 for _, ok in RESULTS if ok)
print(f"SUMMARY python hubspot-api-client: {passed}/{len(RESULTS)} passed", flush=True)
sys.exit(min(len(RESULTS) - passed, 100))
