// Drives the official Node client (@hubspot/api-client) through associations v4 (record-level,
// batch, labels), owners and pipelines against a running emulator, and validates webhook
// deliveries with the SDK's own Signature.isValid (v1 and v3). HUBSPOT_BASE_URL (default
// http://127.0.0.1:8090), HUBSPOT_TOKEN; the emulator must run with --webhook-secret sdk-secret.
const http = require('http');
const hubspot = require('@hubspot/api-client');
const base = process.env.HUBSPOT_BASE_URL || 'http://127.0.0.1:8090';
const api = new hubspot.Client({ accessToken: process.env.HUBSPOT_TOKEN || 'pat-na1-x', basePath: base, numberOfApiCallRetries: 0 });
const secret = 'sdk-secret';
const deliveries = [];
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const url = `http://127.0.0.1:${server.address().port}${req.url}`;
    const v1 = hubspot.Signature.isValid({ signature: req.headers['x-hubspot-signature'], clientSecret: secret, requestBody: body, signatureVersion: req.headers['x-hubspot-signature-version'], url });
    const v3 = hubspot.Signature.isValid({ signature: req.headers['x-hubspot-signature-v3'], clientSecret: secret, requestBody: body, signatureVersion: 'v3', url, timestamp: Number(req.headers['x-hubspot-request-timestamp']) });
    deliveries.push({ v1, v3, events: JSON.parse(body) });
    res.writeHead(204); res.end();
  });
});
(async () => {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await fetch(`${base}/_emulator/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `http://127.0.0.1:${server.address().port}/hook`, flush_ms: 50 }) });
  const out = [];
  const contact = await api.crm.contacts.basicApi.create({ properties: { email: `node${Date.now()}@example.com` }, associations: [] });
  const lonely = await api.crm.contacts.basicApi.create({ properties: {}, associations: [] });
  const company = await api.crm.companies.basicApi.create({ properties: { name: 'Node Co' }, associations: [] });
  const d = await api.crm.associations.v4.basicApi.createDefault('contacts', contact.id, 'companies', company.id);
  out.push(['createDefault', d.results.map((r) => r.associationSpec.associationTypeId).sort((a, b) => a - b)]);
  const page = await api.crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies');
  out.push(['getPage', page.results[0].toObjectId, page.results[0].associationTypes.map((t) => t.typeId)]);
  const label = await api.crm.associations.v4.schema.definitionsApi.create('contacts', 'companies', { label: 'Champion', name: `champion_${Date.now()}` });
  const typeId = label.results[0].typeId;
  const pair = await api.crm.associations.v4.basicApi.create('contacts', contact.id, 'companies', company.id, [{ associationCategory: 'USER_DEFINED', associationTypeId: typeId }]);
  out.push(['labelled', pair.labels]);
  const batch = await api.crm.associations.v4.batchApi.getPage('contacts', 'companies', { inputs: [{ id: contact.id }, { id: lonely.id }] });
  out.push(['batchRead', batch.results.length, batch.numErrors]);
  const owners = await api.crm.owners.ownersApi.getPage(undefined, undefined, 5);
  out.push(['owners', owners.results.length]);
  const pipelines = await api.crm.pipelines.pipelinesApi.getAll('deals');
  out.push(['pipelines', pipelines.results[0].id, pipelines.results[0].stages.length]);
  await api.crm.associations.v4.basicApi.archive('contacts', contact.id, 'companies', company.id);
  out.push(['archive', (await api.crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies')).results.length]);
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && !deliveries.some((x) => x.events.some((e) => e.subscriptionType === 'contact.associationChange'))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  out.push(['webhooks', deliveries.length, deliveries.every((x) => x.v1 && x.v3)]);
  for (const row of out) console.log(JSON.stringify(row));
  server.close();
})().catch((e) => { console.error('FAILED', e.message, e.body || ''); process.exit(1); });
