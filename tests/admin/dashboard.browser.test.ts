/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core
 * (no browser download, ever). Real backends, an in-process Fulcrum, the page
 * served by the admin listener and reading the live API.
 *
 * Set FULCRUM_SCREENSHOT=1 to write docs/dashboard.png; otherwise the
 * screenshot goes to the temp folder, so a test run never edits the docs.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { startBackend, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';
import { startRedis } from '../helpers/redis';
import type { HistoryJson } from '../../src/admin/api-json';
import { selfSigned } from '../helpers/tls';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const REFRESH_MS = 2000;

/** Launched once for the describe block below; each test gets its own context. */
let browser: Browser;

const { cleanups } = useTeardown();

/** Every console error and uncaught page error, so a test can insist on none. */
interface Watched {
  page: Page;
  problems: string[];
}

async function openPage(): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A navigation (page.reload) cancels the page's fetch in flight: normal, and no console error.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  return { page, problems };
}

/** History sampled every 250 ms, so the charts have lines within a second or two. */
async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml, {}, { historyIntervalMs: 250 });
  cleanups.push(() => f.stop());
  return f;
}

/** A backend that answers 200 (with `failEvery`: a 500 every that many requests); /healthz is its health path. */
async function backend(name: string, failEvery = 0): Promise<TestBackend> {
  let n = 0;
  const b = await startBackend(name, (req, res) => {
    req.resume();
    const fail = req.url !== '/healthz' && failEvery > 0 && ++n % failEvery === 0;
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' }).end(name);
  });
  cleanups.push(() => b.close());
  return b;
}

/** Backends without a name: the API names them 127.0.0.1:PORT, which URLs must encode. */
function config(bs: TestBackend[], admin = '{ listen: 127.0.0.1:0 }'): string {
  return `
log: { level: warn, access: false }
admin: ${admin}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /api/ }
        pool: web
      - { match: { pathPrefix: /shop/ }, pools: [ { pool: web, weight: 90 }, { pool: web2, weight: 10 } ], mirror: { pool: web2, percent: 5 } }
      - { match: { host: old.test }, redirect: { scheme: https, host: www.test, status: 301 } }
      - { match: { path: /robots.txt }, respond: { status: 200, body: x } }
      - pool: web
pools:
  web2: { backends: [ { url: ${bs[0]!.url}, name: copy } ] }
  web:
    strategy: round-robin
    healthCheck: { path: /healthz, interval: 500ms, timeout: 500ms }
    backends:
${bs.map((b) => `      - { url: ${b.url} }`).join('\n')}
`;
}

const key = (b: TestBackend) => `web/127.0.0.1:${b.port}`;
const row = (page: Page, b: TestBackend) => page.locator(`tr.backend[data-backend="${key(b)}"]`);
const text = async (l: Locator) => ((await l.textContent()) ?? '').trim();

/** Poll a locator's text until it matches, with a deadline. */
async function until(l: Locator, want: (t: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  let last = '';
  await waitFor(async () => want((last = await text(l).catch(() => ''))), timeoutMs, what).catch((e: Error) => {
    throw new Error(`${e.message}; last text: "${last}"`);
  });
  return last;
}

/** Steady traffic through the proxy until the returned function is called. */
function traffic(url: string, everyMs: number): () => Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let stop = false;
  let sent = 0;
  const loop = (async () => {
    while (!stop) {
      await request(`${url}/ok`, { agent });
      sent++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return async () => {
    stop = true;
    await loop;
    agent.destroy();
    return sent;
  };
}

describe('the dashboard in Chromium', () => {
  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}. The dashboard tests need it: apt-get install -y --no-install-recommends chromium (Debian; .ci/run does this), or set CHROMIUM_PATH.`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('shows listeners, pools and live backend stats; Drain and Enable work and the why panel explains', async () => {
    // c answers 500 to one request in eight, so the error column has something to show.
    const [a, b, c] = [await backend('a'), await backend('b'), await backend('c', 8)];
    const f = await fulcrum(config([a, b, c]));
    const { page, problems } = await openPage();

    await page.goto(f.adminUrl + '/');
    expect(await page.title()).toBe('Fulcrum dashboard');

    // Listener with its address and routes; pool with its strategy; every backend up.
    const listener = page.locator('[data-listener="public"]');
    await listener.waitFor({ timeout: 5000 });
    expect(await text(listener.locator('.listen'))).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await listener.locator('.route').allTextContents()).toEqual([
      '/api/ → web',
      '/shop/ → web 90% · web2 10% (mirror web2 5%)',
      'host old.test redirect 301 to https://www.test/(path)?(query)',
      '= /robots.txt respond 200',
      '* → web',
    ]);
    expect(await listener.locator('.route').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['pool', 'pools', 'redirect', 'respond', 'pool']);
    const pool = page.locator('[data-pool="web"]');
    expect(await text(pool.locator('.pool-name'))).toBe('web');
    expect(await text(pool.locator('.strategy'))).toBe('round-robin');
    for (const x of [a, b, c]) {
      expect(await text(row(page, x).locator('.state'))).toBe('up');
      expect(await text(row(page, x).locator('[data-field="weight"]'))).toBe('1');
    }
    expect(await text(page.getByTestId('updated'))).toMatch(/^updated \d\d:\d\d:\d\d$/);
    expect(await page.getByTestId('error-banner').isVisible()).toBe(false);
    expect(await page.getByTestId('token-form').isVisible()).toBe(false);

    // Requests through the proxy are counted (round-robin: 3 each) within a refresh or two.
    for (let i = 0; i < 9; i++) expect((await request(`${f.url()}/ok`)).status).toBe(200);
    for (const x of [a, b, c]) await until(row(page, x).locator('[data-field="requests"]'), (t) => t === '3', 2 * REFRESH_MS + 1000, `${x.name} requests counted`);

    // Steady traffic: a rate shows up, computed from counter deltas between refreshes.
    const stopTraffic = traffic(f.url(), 10);
    try {
      await until(row(page, a).locator('[data-field="rate"]'), (t) => Number(t) > 0, 3 * REFRESH_MS + 1000, 'a non-zero req/s');
      expect(await text(row(page, a).locator('[data-field="p50"]'))).toMatch(/^\d+(\.\d+)?$/);

      // Drain b: its row says so within one refresh (the page refreshes right after the POST).
      await row(page, b).locator('[data-action="drain"]').click();
      const t0 = Date.now();
      await until(row(page, b).locator('.state'), (t) => t === 'draining', REFRESH_MS, 'b draining');
      expect(Date.now() - t0).toBeLessThan(REFRESH_MS);
      expect(await row(page, b).getAttribute('data-state')).toBe('draining');
      expect(await row(page, b).locator('[data-action="drain"]').isDisabled()).toBe(true);
      expect(f.fulcrum.pools.get('web')!.get(`127.0.0.1:${b.port}`)!.state).toBe('draining');

      // Why: the explain history from the backend endpoint.
      await row(page, b).locator('[data-action="why"]').click();
      const why = page.locator(`tr.why[data-why="${key(b)}"]`);
      await until(why.locator('.why-changes'), (t) => t.includes('drained by the admin API'), 3000, 'the drain reason');
      expect(await text(why.locator('.why-summary'))).toMatch(/^draining since \d\d:\d\d:\d\d .*drained by the admin API$/);
      expect(await text(why.locator('.why-changes'))).toContain('up → draining');
      await until(why.locator('.why-probes'), (t) => t.includes('pass'), 3000, 'health probes listed');

      // Let the rates settle over a full window with b drained, then the picture for the docs.
      await until(row(page, b).locator('[data-field="rate"]'), (t) => t === '0', 3 * REFRESH_MS + 1000, 'b no traffic once drained');
      await until(row(page, c).locator('[data-field="errors"]'), (t) => t !== '–' && t !== '0%', 4 * REFRESH_MS, 'an error rate');
      const shot = process.env.FULCRUM_SCREENSHOT ? path.join(__dirname, '../../docs/dashboard.png') : path.join(os.tmpdir(), 'fulcrum-dashboard.png');
      // The whole page in one viewport: a full-page capture would draw the sticky header mid-page.
      const height = Number(await page.evaluate('document.documentElement.scrollHeight'));
      await page.setViewportSize({ width: 1280, height });
      await page.screenshot({ path: shot });
      await page.setViewportSize({ width: 1280, height: 800 });
    } finally {
      await stopTraffic();
    }

    // The panel stays open across refreshes; Enable brings b back.
    await row(page, b).locator('[data-action="enable"]').click();
    await until(row(page, b).locator('.state'), (t) => t === 'up', REFRESH_MS, 'b up again');
    await until(page.locator(`tr.why[data-why="${key(b)}"] .why-changes`), (t) => t.includes('enabled by the admin API'), REFRESH_MS + 1000, 'the enable reason');

    expect(problems).toEqual([]);
  });

  test('SPEC 11: the pool form adds a backend and its Remove button deletes it; replicas whose configs differ are warned about', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const clustered = (strategy: string, replica: string) => config([a]).replace('    strategy: round-robin', `    strategy: ${strategy}`)
      + `cluster: { redis: '${redis.url}', name: dash, replica: ${replica} }\n`;
    const f = await fulcrum(clustered('round-robin', 'one'));
    const { page, problems } = await openPage();
    await page.goto(f.adminUrl + '/');
    await row(page, a).waitFor({ timeout: 5000 });
    expect(await page.getByTestId('cluster-warning').isVisible()).toBe(false);

    const form = page.locator('form[data-add="web"]');
    await form.getByTestId('add-url').fill(b.url);
    await form.getByTestId('add-submit').click();
    await until(row(page, b).locator('.state'), (t) => t === 'down' || t === 'up', REFRESH_MS, 'b added');
    expect(f.fulcrum.pools.get('web')!.get(`127.0.0.1:${b.port}`)).toBeDefined();
    // Its first passing probe (every 500 ms) brings it up.
    await until(row(page, b).locator('.state'), (t) => t === 'up', 3 * REFRESH_MS, 'b up');

    await row(page, b).locator('[data-action="remove"]').click();
    await waitFor(async () => (await row(page, b).count()) === 0, 2 * REFRESH_MS, 'b gone from the page');
    expect(f.fulcrum.pools.get('web')!.get(`127.0.0.1:${b.port}`)).toBeUndefined();

    // A second replica of the cluster on another strategy: the configs disagree.
    await fulcrum(clustered('random', 'two'));
    const warning = page.getByTestId('cluster-warning');
    await until(warning, (t) => t.includes('2 different configs'), 4 * REFRESH_MS, 'the configs warning');
    expect(await warning.isVisible()).toBe(true);
    expect(await text(warning)).toMatch(/one [0-9a-f]{8}, two [0-9a-f]{8}/);
    expect(problems).toEqual([]);
  });

  test('charts the last 15 minutes per pool, backend and listener from Fulcrum\'s history, and again after a reload', async () => {
    const [a, c] = [await backend('a'), await backend('c', 2)];
    const f = await fulcrum(config([a, c]));
    const stopTraffic = traffic(f.url(), 5);
    const { page, problems } = await openPage();
    const points = async (key: string) => Number(await page.locator(`[data-chart="${key}"]`).getAttribute('data-points').catch(() => '0'));
    const charts = ['pool/web/requests', 'pool/web/errors', 'pool/web/p99', 'listener/public/codes'];
    const history = async () => JSON.parse((await request(`${f.adminUrl}/api/history`)).body) as HistoryJson;
    const most = (vs: readonly (number | null)[]) => Math.max(0, ...vs.map((v) => v ?? 0));
    let h: HistoryJson;
    try {
      await page.goto(f.adminUrl + '/');
      for (const key of charts) {
        await waitFor(async () => (await points(key)) >= 4, 10_000, `chart ${key} drawn with values`);
      }
      // What is drawn is Fulcrum's: requests, c's 5xx (one in two), their status classes, latencies.
      await waitFor(async () => {
        h = await history();
        const pool = h.pools.find((p) => p.name === 'web')!;
        return most(pool.requestRate) > 0 && most(pool.backends.find((b) => b.name === `127.0.0.1:${c.port}`)!.errorRate) > 0
          && most(h.listeners[0]!.codes['5xx']) > 0 && most(pool.p99Ms) > 0;
      }, 10_000, 'requests, errors and latencies in the history');
    } finally {
      await stopTraffic();
    }
    // uPlot drew each into a canvas, with a legend naming the pool and both backends.
    expect(await page.locator('[data-chart-pool="web"] .chart canvas').count()).toBe(3);
    expect(await page.locator('[data-chart-listener="public"] .chart canvas').count()).toBe(1);
    const legend = await page.locator('[data-chart="pool/web/requests"] .u-legend').textContent();
    expect(legend).toContain('web (pool)');
    expect(legend).toContain(`127.0.0.1:${a.port}`);
    expect(legend).toContain(`127.0.0.1:${c.port}`);
    expect(h!.pools.find((p) => p.name === 'web')!.backends.find((b) => b.name === `127.0.0.1:${a.port}`)!.errorRate.every((v) => v === null || v === 0)).toBe(true);

    // A reload draws the same history at once: it is kept in Fulcrum, not in the page.
    const before = await points('pool/web/requests');
    await page.reload();
    await waitFor(async () => (await points('pool/web/requests')) >= before, 5000, 'the charts after a reload');
    // Three charts per pool (web and the routes' web2), one per listener.
    expect(await page.locator('.chart canvas').count()).toBe(7);
    expect(problems).toEqual([]);
  });

  test('with admin.token the page asks for the token, then shows the pools', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a], '{ listen: 127.0.0.1:0, token: secret }'));
    const { page, problems } = await openPage();

    await page.goto(f.adminUrl + '/');
    const form = page.getByTestId('token-form');
    await form.waitFor({ state: 'visible', timeout: 5000 });
    expect(await page.locator('tr.backend').count()).toBe(0);

    // A wrong token is refused and asked for again.
    await page.getByTestId('token-input').fill('wrong');
    await page.getByTestId('token-submit').click();
    await until(page.getByTestId('token-message'), (t) => t.includes('refused'), 3000, 'the refusal');
    expect(await form.isVisible()).toBe(true);

    await page.getByTestId('token-input').fill('secret');
    await page.getByTestId('token-input').press('Enter');
    await until(row(page, a).locator('.state'), (t) => t === 'up', 3000, 'the pool after the token');
    expect(await form.isVisible()).toBe(false);
    expect(await page.evaluate('sessionStorage.getItem("fulcrum.adminToken")')).toBe('secret');

    // A reload keeps the token for the session: no prompt.
    await page.reload();
    await row(page, a).locator('.state').waitFor({ timeout: 5000 });
    expect(await form.isVisible()).toBe(false);

    // Drain through the token too.
    await row(page, a).locator('[data-action="drain"]').click();
    await until(row(page, a).locator('.state'), (t) => t === 'draining', REFRESH_MS, 'a draining');

    // The only errors are the browser's own notes of the expected 401s (the page
    // itself is served with 401 to a browser without the token, then the API's).
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.filter((p) => !p.includes('status of 401 (Unauthorized)'))).toEqual([]);
  });

  test('shows an error banner when the admin API goes away, keeping the last data', async () => {
    const a = await backend('a');
    const f = await startFulcrum(config([a]));
    const { page, problems } = await openPage();
    await page.goto(f.adminUrl + '/');
    await row(page, a).locator('.state').waitFor({ timeout: 5000 });
    const updated = await text(page.getByTestId('updated'));

    await f.stop();
    const banner = page.getByTestId('error-banner');
    await until(banner, (t) => t.startsWith('Cannot reach the admin API'), REFRESH_MS + 6000, 'the error banner');
    expect(await banner.isVisible()).toBe(true);
    expect(await text(banner)).toContain(`Showing data from ${updated.slice('updated '.length)}`);
    expect(await text(row(page, a).locator('.state'))).toBe('up');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.filter((p) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(p))).toEqual([]);
  });

  test('shows each TLS listener\'s certificate: where it comes from, its names, issuer and expiry', async () => {
    const a = await backend('a');
    const cert = selfSigned();
    const f = await fulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  secure: { listen: 127.0.0.1:0, tls: { cert: ${cert.cert}, key: ${cert.key} }, routes: [{ pool: web }] }
  public: { listen: 127.0.0.1:0, routes: [{ pool: web }] }
pools:
  web: { backends: [{ url: ${a.url} }] }
`);
    const { page, problems } = await openPage();
    await page.goto(f.adminUrl + '/');
    const secure = page.locator('[data-listener="secure"] [data-testid="certificate"]');
    await secure.waitFor({ timeout: 5000 });
    expect(await text(secure)).toMatch(/^file: localhost, 127\.0\.0\.1 · localhost · until \d{4}-\d\d-\d\d$/);
    expect(await text(page.locator('[data-listener="public"] [data-testid="certificate"]'))).toBe('');
    expect(problems).toEqual([]);
  });
});
