"""HubSpot's official Python client (`hubspot-api-client`) against `hubsync emulator`: merge,
GDPR delete, property history, partial batches, free-text search, tickets and deals in pipelines,
association labels, new pipelines, 401, 414, archived lists and 5xx retries.

Same output and environment as python_client.py.
"""

import json
import uuid

from urllib3.util.retry import Retry

from hubspot import HubSpot
from hubspot.crm import contacts as hc
from hubspot.crm import objects as ho
from hubspot.crm.associations import v4 as ha

from python_harness import RUN, TOKEN, URL, check, control, finish, raises, step

client = HubSpot(access_token=TOKEN, host=URL)
crm = client.crm


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



@step("generic objects API: type ids (0-1, 0-2) and singular names give the same records")
def _():
    by_name = crm.objects.basic_api.get_page("contacts", limit=5)
    for alias in ("0-1", "contact"):
        page = crm.objects.basic_api.get_page(alias, limit=5)
        check([r.id for r in page.results] == [r.id for r in by_name.results], alias)
    found = crm.objects.search_api.do_search("0-2", ho.PublicObjectSearchRequest(limit=3))
    check(found.total > 0 and len(found.results) == 3, f"companies by 0-2: {found.total}")
    err = raises(lambda: crm.objects.basic_api.get_page("butterflies"), 400)
    check(err["message"] == "Unable to infer object type from: butterflies", err)


finish("python hubspot-api-client (edge flows)")
