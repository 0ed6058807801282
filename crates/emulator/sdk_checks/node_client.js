// Drives the official Node client (@hubspot/api-client) through the core CRM flows against a
// running emulator: HUBSPOT_BASE_URL (default http://127.0.0.1:8090), HUBSPOT_TOKEN.
const hubspot = require('@hubspot/api-client');
const api = new hubspot.Client({ accessToken: process.env.HUBSPOT_TOKEN || 'pat-na1-x', basePath: process.env.HUBSPOT_BASE_URL || 'http://127.0.0.1:8090', numberOfApiCallRetries: 0 });
(async () => {
  const out = [];
  const c = await api.crm.contacts.basicApi.create({ properties: { email: 'node@example.com', firstname: 'Node' }, associations: [] });
  out.push(['create', c.id, c.createdAt instanceof Date]);
  const g = await api.crm.contacts.basicApi.getById(c.id, ['email', 'phone']);
  out.push(['get', g.properties.email, g.properties.phone]);
  const page = await api.crm.contacts.basicApi.getPage(100, undefined, ['email']);
  out.push(['page', page.results.length, page.paging && page.paging.next.after]);
  const all = await api.crm.contacts.getAll(100, undefined, ['email']);
  out.push(['getAll', all.length]);
  const s = await api.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'lastmodifieddate', operator: 'GTE', value: '1600000000000' }] }], sorts: ['lastmodifieddate'], properties: ['email'], limit: 200, after: '0' });
  out.push(['search', s.total, s.results.length, s.paging && s.paging.next.after]);
  const b = await api.crm.contacts.batchApi.create({ inputs: [{ properties: { email: 'nb1@example.com' }, associations: [] }] });
  out.push(['batchCreate', b.status, b.results.length]);
  const u = await api.crm.contacts.batchApi.upsert({ inputs: [{ id: 'nb1@example.com', idProperty: 'email', properties: { city: 'Oslo' } }] });
  out.push(['upsert', u.results[0].properties.city, u.results[0]._new ?? u.results[0]['new']]);
  const props = await api.crm.properties.coreApi.getAll('contacts');
  out.push(['properties', props.results.length]);
  const grp = await api.crm.properties.groupsApi.getAll('contacts');
  out.push(['groups', grp.results.length]);
  const sch = await api.crm.schemas.coreApi.create({ name: 'bikes', labels: { singular: 'Bike', plural: 'Bikes' }, primaryDisplayProperty: 'model', requiredProperties: [], properties: [{ name: 'model', label: 'Model', type: 'string', fieldType: 'text' }], associatedObjects: ['CONTACT'] });
  out.push(['schema', sch.objectTypeId]);
  const rec = await api.crm.objects.basicApi.create(sch.objectTypeId, { properties: { model: 'X' }, associations: [] });
  out.push(['custom', rec.id]);
  const m = await api.crm.contacts.basicApi.merge({ primaryObjectId: c.id, objectIdToMerge: b.results[0].id });
  out.push(['merge', m.id]);
  try { await api.crm.contacts.basicApi.create({ properties: { email: 'node@example.com' }, associations: [] }); } catch (e) { out.push(['conflict', e.code]); }
  await api.crm.contacts.basicApi.archive(c.id);
  out.push(['archive', 'ok']);
  for (const o of out) console.log(JSON.stringify(o));
})().catch(e => { console.error('FAILED', e.code, e.body || e.message); process.exit(1); });
