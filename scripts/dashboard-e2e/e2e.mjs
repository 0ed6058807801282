// Drives the dashboard in headless Chromium (see ./run). Every step checks its effect in
// PostgreSQL (psql) and in the local HubSpot (its HTTP API); screenshots of each page go to
// $SCREENSHOTS. Exits non-zero on the first failed check.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { BASE, HUBSPOT, PSQL_URL, CHROMIUM, SCREENSHOTS } = process.env;
const TOKEN = 'demo-private-app-token';
const DEADLINE_MS = 60_000;

const sql = (q) => execFileSync('psql', [PSQL_URL, '-Atqc', q], { encoding: 'utf8' }).trim();
const hubspot = async (path, init = {}) => {
  const r = await fetch(HUBSPOT + path, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  return { status: r.status, body: await r.json().catch(() => ({})) };
};
const hsEdit = (id, properties) =>
  hubspot(`/_emulator/objects/contacts/${id}`, { method: 'POST', body: JSON.stringify({ properties }) });
const hsValue = async (id, p) => (await hubspot(`/crm/v3/objects/contacts/${id}?properties=${p}`)).body?.properties?.[p];
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}
async function eventually(what, probe) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    if (await probe()) return check(true, what);
    if (Date.now() > end) return check(false, `${what} (within ${DEADLINE_MS / 1000} s)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

mkdirSync(SCREENSHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-extensions', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const shot = (name) => page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
try {
  await eventually('contacts backfilled', () => sql('SELECT count(*) FROM hubspot.contacts') === '40');
  const id = sql('SELECT hs_object_id FROM hubspot.contacts ORDER BY 1 LIMIT 1');

  // Every page loads.
  for (const [path, name, marker] of [
    ['/', 'overview', '#objects'], ['/budget', 'budget', '#classes'], ['/conflicts', 'conflicts', 'main'],
    ['/issues', 'issues', 'main'], ['/mapping?object=contacts', 'mapping', '#mapping'], ['/audit', 'audit', '#audit'],
  ]) {
    const r = await page.goto(BASE + path);
    check(r.status() === 200 && (await page.locator(marker).count()) > 0, `GET ${path}`);
    await shot(name);
  }
  check((await page.goto(BASE + '/')) && (await page.locator('tr[data-object="contacts"]').count()) === 1,
    'overview lists contacts');
  check((await page.locator('svg').count()) > 0, 'overview shows the API budget chart');

  // Field mapping: make firstname manual.
  await page.goto(BASE + '/mapping?object=contacts');
  let row = page.locator('tr[data-property="firstname"]');
  await row.locator('select[name="conflict"]').selectOption('manual');
  await row.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/done=/);
  check((await page.locator('.flash').innerText()).includes('in use now'), 'mapping change applied by the daemon');
  check(sql("SELECT conflict FROM hubsync.mapping_overrides WHERE object='contacts' AND property='firstname'") === 'manual',
    'override stored in hubsync.mapping_overrides');
  check((await page.locator('tr[data-property="firstname"] td').nth(7).innerText()) === 'manual', 'page shows the new rule');

  // Exclude jobtitle: HubSpot's next jobtitle edit stays out of PostgreSQL.
  row = page.locator('tr[data-property="jobtitle"]');
  await row.locator('select[name="synced"]').selectOption('no');
  await row.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/done=/);
  await shot('mapping-changed');
  const jobBefore = sql(`SELECT coalesce(jobtitle, '') FROM hubspot.contacts WHERE hs_object_id = ${id}`);
  await hsEdit(id, { jobtitle: 'Excluded Title', lastname: 'AfterExclude' });
  await eventually('lastname edited in HubSpot arrives', () =>
    sql(`SELECT lastname FROM hubspot.contacts WHERE hs_object_id = ${id}`) === 'AfterExclude');
  check(sql(`SELECT coalesce(jobtitle, '') FROM hubspot.contacts WHERE hs_object_id = ${id}`) === jobBefore,
    'excluded jobtitle not written to PostgreSQL');

  // A real conflict: PostgreSQL changes firstname while HubSpot refuses writes (5xx on the
  // write path), then a HubSpot user changes it too: the inbound merge finds both changed.
  const faults = (f) => fetch(HUBSPOT + '/_emulator/faults', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(f),
  });
  await faults({ error_rate: 1.0, paths: ['/crm/v3/objects/contacts/batch/update', '/crm/v3/objects/contacts/search'] });
  sql(`UPDATE hubspot.contacts SET firstname = 'FromPostgres' WHERE hs_object_id = ${id}`);
  await hsEdit(id, { firstname: 'FromHubSpot' });
  await eventually('the conflict is queued', () =>
    sql(`SELECT count(*) FROM hubsync.conflicts WHERE status='open' AND hs_object_id=${id} AND field='firstname'`) === '1');
  await faults({});
  await page.goto(BASE + '/conflicts');
  const cid = sql(`SELECT id FROM hubsync.conflicts WHERE status='open' AND hs_object_id=${id} AND field='firstname'`);
  const crow = page.locator(`tr[data-conflict="${cid}"]`);
  check((await crow.count()) === 1, 'the conflict is on the page');
  await shot('conflicts-open');
  await crow.getByRole('button', { name: 'Take PostgreSQL' }).click();
  await page.waitForURL(/done=/);
  check((await page.locator('.flash').innerText()).includes('resolved'), 'resolution acknowledged');
  await eventually("PostgreSQL's value reaches HubSpot", async () => (await hsValue(id, 'firstname')) === 'FromPostgres');
  await eventually('the conflict is applied', () =>
    sql(`SELECT count(*) FROM hubsync.conflicts WHERE id=${cid} AND applied_at IS NOT NULL`) === '1');
  check(sql(`SELECT firstname FROM hubspot.contacts WHERE hs_object_id = ${id}`) === 'FromPostgres',
    'PostgreSQL keeps its value');
  await page.goto(BASE + '/conflicts');
  await shot('conflicts-resolved');

  // The audit page shows what hubsync changed on the record.
  await page.goto(`${BASE}/audit?object=contacts&id=${id}`);
  check((await page.locator('#audit tbody tr').count()) > 0, 'audit entries for the record');
  await shot('audit-record');

  // Forms from another origin are refused.
  const forged = await fetch(BASE + '/mapping', {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
    body: 'object=contacts&property=email&synced=no',
  });
  check(forged.status === 403, 'cross-origin form refused');
  // The overview and budget again, now that the chart has samples of the activity above.
  await page.goto(BASE + '/');
  await shot('overview');
  await page.goto(BASE + '/budget');
  await shot('budget');
  console.log('dashboard e2e: all checks passed');
} finally {
  await browser.close();
}
