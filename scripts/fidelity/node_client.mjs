// HubSpot's official Node client (`@hubspot/api-client`) against `hubsync emulator`.
//
// Each step prints `PASS node: <step>` or `FAIL node: <step>: <reason>`; the exit status is the
// number of failures. Environment (set by scripts/fidelity/run): FIDELITY_URL, FIDELITY_TOKEN,
// FIDELITY_CONTACTS, FIDELITY_COMPANIES, FIDELITY_DEALS, and FIDELITY_NODE_DIR (a folder whose
// node_modules holds @hubspot/api-client).

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const require = createRequire(path.join(process.env.FIDELITY_NODE_DIR, 'package.json'));
const hubspot = require('@hubspot/api-client');

const URL = process.env.FIDELITY_URL;
const TOKEN = process.env.FIDELITY_TOKEN;
const SEED_CONTACTS = Number(process.env.FIDELITY_CONTACTS);
const SEED_COMPANIES = Number(process.env.FIDELITY_COMPANIES);
const SEED_DEALS = Number(process.env.FIDELITY_DEALS);
const RUN = randomBytes(4).toString('hex');

const client = new hubspot.Client({ accessToken: TOKEN, basePath: URL });
const crm = client.crm;
const results = [];
const state = {};

async function step(name, fn) {
  try {
    await fn();
    console.log(`PASS node: ${name}`);
    results.push(true);
  } catch (err) {
    const detail = err?.body ? JSON.stringify(err.body) : String(err?.stack ?? err);
    const reason = `${err?.code ? `HTTP ${err.code} ` : ''}${err?.message ?? ''} ${detail}`;
    console.log(`FAIL node: ${name}: ${reason.replace(/\s+/g, ' ').slice(0, 400)}`);
    results.push(false);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(typeof msg === 'string' ? msg : JSON.stringify(msg));
}

/** Expects the client to reject with HTTP `status`; returns the parsed error body. */
async function raises(promiseFn, status) {
  try {
    await promiseFn();
  } catch (err) {
    check(err.code === status, `expected HTTP ${status}, got ${err.code}: ${JSON.stringify(err.body)}`);
    return err.body;
  }
  throw new Error(`expected HTTP ${status}, the call succeeded`);
}

/** The emulator's control API, outside the client under test. */
async function control(method, route, body) {
  const res = await fetch(URL + route, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${method} ${route}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const ids = (rows) => new Set(rows.map((r) => r.id));

// ---- objects: list, paging, getAll ------------------------------------------------------------

await step('contacts getPage (limit, properties, paging.next.after)', async () => {
  const page = await crm.contacts.basicApi.getPage(10, undefined, ['email', 'firstname', 'phone']);
  check(page.results.length === 10, `${page.results.length} results`);
  check(/^\d+$/.test(page.results[0].id), page.results[0].id);
  check(page.results[0].createdAt instanceof Date && !isNaN(page.results[0].createdAt), 'createdAt');
  check(page.paging?.next?.after, 'no paging.next.after');
  const next = await crm.contacts.basicApi.getPage(10, page.paging.next.after);
  const first = ids(page.results);
  check(!next.results.some((r) => first.has(r.id)), 'second page overlaps the first');
});

await step(`contacts getAll returns every seeded contact (${SEED_CONTACTS})`, async () => {
  const all = await crm.contacts.getAll(undefined, undefined, ['email']);
  check(all.length === SEED_CONTACTS, `${all.length} contacts`);
  check(ids(all).size === SEED_CONTACTS, 'duplicate ids across pages');
});

await step(`companies getAll (${SEED_COMPANIES}) and deals getAll (${SEED_DEALS})`, async () => {
  const companies = await crm.companies.getAll();
  const deals = await crm.deals.getAll(undefined, undefined, ['dealname', 'dealstage', 'amount']);
  check(companies.length === SEED_COMPANIES, `${companies.length} companies`);
  check(deals.length === SEED_DEALS, `${deals.length} deals`);
});

// ---- single-record CRUD and errors --------------------------------------------------------------

await step('create contact (201, SimplePublicObject)', async () => {
  const created = await crm.contacts.basicApi.create({
    properties: { email: `ann.${RUN}@example.com`, firstname: 'Ann', lifecyclestage: 'lead' },
    associations: [],
  });
  check(/^\d+$/.test(created.id), created.id);
  check(created.properties.email === `ann.${RUN}@example.com`, created.properties);
  check(created.archived === false, 'archived');
  state.ann = created.id;
});

await step('read contact by id and by idProperty=email', async () => {
  const byId = await crm.contacts.basicApi.getById(state.ann, ['email', 'firstname', 'phone']);
  check(byId.properties.firstname === 'Ann', byId.properties);
  check(byId.properties.phone === null, 'requested empty property is not null');
  const byEmail = await crm.contacts.basicApi.getById(
    `ann.${RUN}@example.com`, undefined, undefined, undefined, false, 'email');
  check(byEmail.id === state.ann, byEmail.id);
});

await step('update contact (PATCH, updatedAt moves)', async () => {
  const before = await crm.contacts.basicApi.getById(state.ann);
  await new Promise((r) => setTimeout(r, 10));
  const upd = await crm.contacts.basicApi.update(state.ann, { properties: { firstname: 'Anne' } });
  check(upd.properties.firstname === 'Anne', upd.properties);
  check(upd.updatedAt > before.updatedAt, 'updatedAt did not move');
});

await step("duplicate email -> client rejects with 409 and 'Existing ID'", async () => {
  const body = await raises(
    () => crm.contacts.basicApi.create({ properties: { email: `ann.${RUN}@example.com` }, associations: [] }),
    409,
  );
  check(body.message.includes(`Existing ID: ${state.ann}`), body.message);
  check(body.category === 'CONFLICT' && body.correlationId, body);
});

await step('unknown id -> 404 OBJECT_NOT_FOUND', async () => {
  const body = await raises(() => crm.contacts.basicApi.getById('1'), 404);
  check(body.category === 'OBJECT_NOT_FOUND', body);
});

await step('archive contact (204), then 404, then readable with archived=true', async () => {
  await crm.contacts.basicApi.archive(state.ann);
  await raises(() => crm.contacts.basicApi.getById(state.ann), 404);
  const gone = await crm.contacts.basicApi.getById(state.ann, undefined, undefined, undefined, true);
  check(gone.archived === true && gone.archivedAt instanceof Date, 'archived/archivedAt');
});

// ---- batch ----------------------------------------------------------------------------------------

await step('batch create 3 contacts (201, COMPLETE)', async () => {
  const inputs = [0, 1, 2].map((i) => ({
    properties: { email: `b${i}.${RUN}@example.com`, firstname: `B${i}` },
    associations: [],
  }));
  const res = await crm.contacts.batchApi.create({ inputs });
  check(res.status === 'COMPLETE' && res.results.length === 3, res);
  state.batch = res.results.map((r) => r.id).sort();
});

await step('batch read with a missing id (207: results + errors)', async () => {
  const res = await crm.contacts.batchApi.read({
    inputs: [...state.batch, '1'].map((id) => ({ id })),
    properties: ['email'],
    propertiesWithHistory: [],
  });
  check(res.results.length === 3, `${res.results.length} results`);
  check(res.numErrors === 1 && res.errors[0].category === 'OBJECT_NOT_FOUND', res);
});

await step('batch update', async () => {
  const res = await crm.contacts.batchApi.update({
    inputs: state.batch.map((id) => ({ id, properties: { lastname: 'Batch' } })),
  });
  check(res.results.length === 3 && res.results.every((r) => r.properties.lastname === 'Batch'), res);
});

await step('batch upsert by email (one existing, one new)', async () => {
  const res = await crm.contacts.batchApi.upsert({
    inputs: [
      { id: `b0.${RUN}@example.com`, idProperty: 'email', properties: { jobtitle: 'Upserted' } },
      { id: `new.${RUN}@example.com`, idProperty: 'email', properties: { firstname: 'New' } },
    ],
  });
  const flags = res.results.map((r) => r._new ?? r['new']).sort();
  check(JSON.stringify(flags) === '[false,true]', `new flags ${JSON.stringify(flags)}`);
  state.upserted = res.results.find((r) => (r._new ?? r['new']) === true).id;
});

await step('batch archive (204), records gone', async () => {
  const all = [...state.batch, state.upserted];
  await crm.contacts.batchApi.archive({ inputs: all.map((id) => ({ id })) });
  await raises(() => crm.contacts.basicApi.getById(all[0]), 404);
});

// ---- search ---------------------------------------------------------------------------------------

await step('search: filter + sort + paging with after', async () => {
  const req = (after) => ({
    filterGroups: [{ filters: [{ propertyName: 'lifecyclestage', operator: 'HAS_PROPERTY' }] }],
    sorts: ['-createdate'],
    properties: ['email', 'createdate'],
    limit: 50,
    after,
  });
  const first = await crm.contacts.searchApi.doSearch(req(undefined));
  check(first.total > 50, `total ${first.total}`);
  const dates = first.results.map((r) => r.properties.createdate);
  check(JSON.stringify(dates) === JSON.stringify([...dates].sort().reverse()), 'not sorted descending');
  check(first.paging.next.after === '50', `after ${first.paging.next.after}`);
  const second = await crm.contacts.searchApi.doSearch(req(first.paging.next.after));
  const seen = ids(first.results);
  check(!second.results.some((r) => seen.has(r.id)), 'pages overlap');
});

await step('search: 10,000-result cap (after=9800 ok, after=10000 -> 400)', async () => {
  check(SEED_CONTACTS > 10000, 'seed more than 10,000 contacts to exercise the cap');
  const req = (after) => ({ sorts: ['hs_object_id'], properties: ['email'], limit: 200, after, filterGroups: [] });
  const page = await crm.contacts.searchApi.doSearch(req('9800'));
  check(page.total >= SEED_CONTACTS && page.results.length === 200, `${page.total} ${page.results.length}`);
  const body = await raises(() => crm.contacts.searchApi.doSearch(req('10000')), 400);
  check(body.category === 'VALIDATION_ERROR', body);
});

// ---- properties -----------------------------------------------------------------------------------

await step('properties: list, create custom property and group, read them back', async () => {
  const props = await crm.properties.coreApi.getAll('contacts');
  const names = new Set(props.results.map((p) => p.name));
  check(['email', 'firstname', 'lifecyclestage'].every((n) => names.has(n)), 'standard properties missing');
  await crm.properties.groupsApi.create('contacts', { name: `fid_${RUN}`, label: 'Fidelity', displayOrder: -1 });
  const prop = await crm.properties.coreApi.create('contacts', {
    name: `fid_score_${RUN}`,
    label: 'Score',
    type: 'number',
    fieldType: 'number',
    groupName: `fid_${RUN}`,
  });
  check(prop.name === `fid_score_${RUN}` && prop.type === 'number', prop);
  const got = await crm.properties.coreApi.getByName('contacts', `fid_score_${RUN}`);
  check(got.groupName === `fid_${RUN}`, got.groupName);
  const groups = await crm.properties.groupsApi.getAll('contacts');
  check(groups.results.some((g) => g.name === `fid_${RUN}`), 'new group not listed');
  const c = await crm.contacts.basicApi.create({ properties: { [`fid_score_${RUN}`]: '42.5' }, associations: [] });
  check(c.properties[`fid_score_${RUN}`] === '42.5', c.properties);
  const body = await raises(
    () => crm.contacts.basicApi.update(c.id, { properties: { [`fid_score_${RUN}`]: 'lots' } }), 400);
  check(body.category === 'VALIDATION_ERROR', body);
});

// ---- associations v4 ------------------------------------------------------------------------------

await step('associations v4: create labelled (279), createDefault, getPage, archive', async () => {
  const contact = await crm.contacts.basicApi.create({ properties: { email: `assoc.${RUN}@example.com` }, associations: [] });
  const companies = (await crm.companies.basicApi.getPage(3)).results.map((c) => c.id);
  state.contact = contact.id;
  state.companies = companies;
  const made = await crm.associations.v4.basicApi.create('contacts', contact.id, 'companies', companies[0], [
    { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 },
  ]);
  check(String(made.toObjectId) === companies[0], made);
  await crm.associations.v4.basicApi.createDefault('contacts', contact.id, 'companies', companies[1]);
  const page = await crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies', undefined, 500);
  const linked = new Map(page.results.map((r) => [String(r.toObjectId), r.associationTypes.map((t) => t.typeId)]));
  check(linked.size === 2 && linked.get(companies[0]).includes(279), [...linked]);
  await crm.associations.v4.basicApi.archive('contacts', contact.id, 'companies', companies[0]);
  const after = await crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies');
  check(after.results.length === 1 && String(after.results[0].toObjectId) === companies[1], after.results);
});

await step('associations v4 batch: create, read (with a no-associations input), v3 expansion', async () => {
  const lonely = (await crm.contacts.basicApi.create({ properties: { email: `lonely.${RUN}@example.com` }, associations: [] })).id;
  await crm.associations.v4.batchApi.create('contacts', 'companies', {
    inputs: [{
      _from: { id: state.contact },
      to: { id: state.companies[2] },
      types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }],
    }],
  });
  const res = await crm.associations.v4.batchApi.getPage('contacts', 'companies', {
    inputs: [{ id: state.contact }, { id: lonely }],
  });
  check(res.results.length === 1, `${res.results.length} results`);
  const targets = res.results[0].to.map((t) => String(t.toObjectId)).sort();
  check(JSON.stringify(targets) === JSON.stringify([state.companies[1], state.companies[2]].sort()), targets);
  check(res.numErrors === 1, 'no error item for the contact without associations');
  const rec = await crm.contacts.basicApi.getById(state.contact, undefined, undefined, ['companies']);
  const v3 = new Set(rec.associations.companies.results.map((a) => a.id));
  check(v3.size === 2 && v3.has(state.companies[2]), [...v3]);
});

// ---- schemas / custom objects ---------------------------------------------------------------------

await step('schemas: create custom object, list, create and list its records', async () => {
  const name = `boat_${RUN}`;
  const schema = await crm.schemas.coreApi.create({
    name,
    labels: { singular: 'Boat', plural: 'Boats' },
    primaryDisplayProperty: 'hull',
    requiredProperties: ['hull'],
    searchableProperties: ['hull'],
    secondaryDisplayProperties: [],
    properties: [
      { name: 'hull', label: 'Hull', type: 'string', fieldType: 'text' },
      { name: 'length', label: 'Length', type: 'number', fieldType: 'number' },
    ],
    associatedObjects: ['CONTACT'],
  });
  check(schema.objectTypeId.startsWith('2-'), schema.objectTypeId);
  const listed = await crm.schemas.coreApi.getAll();
  check(listed.results.some((s) => s.objectTypeId === schema.objectTypeId), 'schema not listed');
  for (const hull of ['Sloop', 'Ketch']) {
    await crm.objects.basicApi.create(schema.objectTypeId, { properties: { hull, length: '12' }, associations: [] });
  }
  const page = await crm.objects.basicApi.getPage(name, 10, undefined, ['hull', 'length']);
  check(JSON.stringify(page.results.map((r) => r.properties.hull).sort()) === '["Ketch","Sloop"]', page.results);
  const search = await crm.objects.searchApi.doSearch(schema.objectTypeId, { query: 'sloop', filterGroups: [] });
  check(search.total === 1, `query search total ${search.total}`);
});

// ---- owners, pipelines ----------------------------------------------------------------------------

await step('owners getPage and getById', async () => {
  const owners = await crm.owners.ownersApi.getPage(undefined, undefined, 100);
  check(owners.results.length > 0, 'no owners');
  const one = await crm.owners.ownersApi.getById(Number(owners.results[0].id));
  check(one.email === owners.results[0].email, one);
});

await step('pipelines: deal and ticket pipelines with stages', async () => {
  const deals = await crm.pipelines.pipelinesApi.getAll('deals');
  const def = deals.results.find((p) => p.id === 'default');
  check(def && def.stages.length >= 2, 'no default deal pipeline');
  const tickets = await crm.pipelines.pipelinesApi.getAll('tickets');
  check(tickets.results.length > 0 && tickets.results[0].stages.length > 0, 'no ticket pipeline');
});

// ---- merge, history, partial batches, labels, pipelines, auth, 5xx --------------------------------

const newContact = (props = {}) => crm.contacts.basicApi.create({
  properties: { email: `${randomBytes(5).toString('hex')}.${RUN}@example.com`, ...props },
  associations: [],
});

await step('merge two contacts; the merged-away id reads as the survivor', async () => {
  const keep = await newContact({ firstname: 'Keep' });
  const lose = await newContact({ firstname: 'Lose' });
  const merged = await crm.contacts.basicApi.merge({ primaryObjectId: keep.id, objectIdToMerge: lose.id });
  check(merged.id === keep.id, merged.id);
  const again = await crm.contacts.basicApi.getById(lose.id);
  check(again.id === keep.id, `old id reads as ${again.id}`);
});

await step('propertiesWithHistory (timestamps parsed as Dates, newest first)', async () => {
  const c = await newContact({ firstname: 'One' });
  await crm.contacts.basicApi.update(c.id, { properties: { firstname: 'Two' } });
  const rec = await crm.contacts.basicApi.getById(c.id, undefined, ['firstname']);
  const history = rec.propertiesWithHistory.firstname;
  check(history[0].value === 'Two' && history[1].value === 'One', history);
  check(history[0].timestamp instanceof Date && history[0].sourceType, history[0]);
});

await step('batch create with objectWriteTraceIds and a duplicate -> 207 per-item CONFLICT', async () => {
  const dup = await newContact();
  const res = await crm.contacts.batchApi.create({
    inputs: [`ok.${RUN}@example.com`, dup.properties.email].map((email, i) => ({
      properties: { email }, associations: [], objectWriteTraceId: String(i),
    })),
  });
  check(res.results.length === 1 && res.numErrors === 1, res);
  check(res.errors[0].category === 'CONFLICT' && res.errors[0].context.existingId[0] === dup.id, res.errors);
});

await step('getAll deals with associations (v3 expansion on every page)', async () => {
  const deals = await crm.deals.getAll(undefined, undefined, ['dealname'], undefined, ['companies']);
  check(deals.length === SEED_DEALS, `${deals.length} deals`);
  check(deals.every((d) => d.associations?.companies?.results?.length > 0), 'a seeded deal without its company');
});

await step('association labels under the schema API: create, list, associate with it', async () => {
  const made = await crm.associations.v4.schema.definitionsApi.create('contacts', 'companies', {
    label: `Advisor ${RUN}`, name: `advisor_${RUN}`,
  });
  const typeId = made.results.find((r) => r.label === `Advisor ${RUN}`).typeId;
  const listed = await crm.associations.v4.schema.definitionsApi.getAll('contacts', 'companies');
  check(listed.results.some((r) => r.typeId === typeId), 'label not listed');
  const c = await newContact();
  await crm.associations.v4.basicApi.create('contacts', c.id, 'companies', state.companies[0], [
    { associationCategory: 'USER_DEFINED', associationTypeId: typeId },
  ]);
  const page = await crm.associations.v4.basicApi.getPage('contacts', c.id, 'companies');
  check(page.results[0].associationTypes.some((t) => t.label === `Advisor ${RUN}`), page.results);
});

await step('pipelines: create a ticket pipeline; tickets validate against it', async () => {
  const pipe = await crm.pipelines.pipelinesApi.create('tickets', {
    label: `Escalations ${RUN}`, displayOrder: 3,
    stages: [
      { label: 'Open', displayOrder: 0, metadata: { ticketState: 'OPEN' } },
      { label: 'Done', displayOrder: 1, metadata: { ticketState: 'CLOSED' } },
    ],
  });
  const t = await crm.tickets.basicApi.create({
    properties: { subject: 'x', hs_pipeline: pipe.id, hs_pipeline_stage: pipe.stages[0].id }, associations: [],
  });
  check(t.properties.hs_pipeline === pipe.id, t.properties);
  await raises(() => crm.tickets.basicApi.update(t.id, { properties: { hs_pipeline_stage: '1' } }), 400);
});

await step('wrong token -> 401 INVALID_AUTHENTICATION', async () => {
  const stranger = new hubspot.Client({ accessToken: 'pat-na1-wrong', basePath: URL });
  const body = await raises(() => stranger.crm.contacts.basicApi.getPage(1), 401);
  check(body.category === 'INVALID_AUTHENTICATION', body);
});

await step('injected 5xx (error_rate 0.3): numberOfApiCallRetries gets every call through', async () => {
  const retrying = new hubspot.Client({ accessToken: TOKEN, basePath: URL, numberOfApiCallRetries: 6 });
  await control('POST', '/_emulator/faults', { error_rate: 0.3, seed: 3 });
  try {
    for (let i = 0; i < 10; i++) await retrying.crm.contacts.basicApi.getPage(1);
  } finally {
    await control('DELETE', '/_emulator/faults');
  }
  check((await control('GET', '/_emulator/stats')).faults.server_errors > 0, 'no 5xx was injected');
});

// ---- rate limits: the client's own RetryDecorator --------------------------------------------------

await step('429 without retries: client rejects with the TEN_SECONDLY_ROLLING body', async () => {
  await control('POST', '/_emulator/rate-limits', { burst: '2/2s' });
  try {
    await new Promise((r) => setTimeout(r, 2100));
    let body;
    for (let i = 0; i < 5 && !body; i++) {
      try {
        await crm.contacts.basicApi.getPage(1);
      } catch (err) {
        check(err.code === 429, `HTTP ${err.code}`);
        body = err.body;
      }
    }
    check(body, 'no 429 after 5 calls with a 2/2s limit');
    check(body.policyName === 'TEN_SECONDLY_ROLLING', body);
  } finally {
    await control('POST', '/_emulator/rate-limits', { burst: 'off' });
  }
});

await step('429 with numberOfApiCallRetries: burst and search limits retried to success', async () => {
  const retrying = new hubspot.Client({ accessToken: TOKEN, basePath: URL, numberOfApiCallRetries: 3 });
  const before = (await control('GET', '/_emulator/stats')).rate_limited_by_policy ?? {};
  await control('POST', '/_emulator/rate-limits', { burst: '3/1s', search_per_second: 1 });
  try {
    // RetryDecorator waits 10 s after a TEN_SECONDLY_ROLLING 429 and 1 s after the search
    // "secondly" one (matched by message text).
    for (let i = 0; i < 4; i++) await retrying.crm.contacts.basicApi.getPage(1);
    for (let i = 0; i < 3; i++) {
      await retrying.crm.contacts.searchApi.doSearch({ limit: 1, filterGroups: [] });
    }
  } finally {
    await control('POST', '/_emulator/rate-limits', { burst: 'off', search_per_second: null });
  }
  const after = (await control('GET', '/_emulator/stats')).rate_limited_by_policy ?? {};
  for (const policy of ['TEN_SECONDLY_ROLLING', 'SECONDLY']) {
    check((after[policy] ?? 0) > (before[policy] ?? 0), `${policy} never throttled: ${JSON.stringify(after)}`);
  }
});

const passed = results.filter(Boolean).length;
console.log(`SUMMARY node @hubspot/api-client: ${passed}/${results.length} passed`);
process.exit(Math.min(results.length - passed, 100));
