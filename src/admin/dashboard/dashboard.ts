/**
 * The dashboard's browser code (SPEC section 5, `GET /`). Compiled by
 * ./tsconfig.json (DOM types, no node types) and inlined into the page by
 * ../dashboard.ts as one module script: it may import types, nothing else.
 *
 * The page holds no data. It reads `GET /api/overview` every 2 s (same origin,
 * relative URLs), computes request and error rates from the deltas of the
 * cumulative counters, and reads `GET /api/pools/{pool}/backends/{backend}`
 * for each open "why" panel. When the admin has a token, the first 401 shows a
 * token field; the token lives in sessionStorage and every call retries with
 * `Authorization: Bearer TOKEN`.
 *
 * The DOM is built once per shape (listeners, pools, backends) and then updated
 * in place, so open panels and buttons survive each refresh. Every value goes in
 * through textContent, never innerHTML: backend names and reasons come from
 * config and from the network.
 *
 * The charts (the last section below) read `GET /api/history` every 5 s and
 * draw it with uPlot, whose script is a classic <script> before this one.
 */
import type {
  BackendDetailJson,
  BackendJson,
  BackendOverviewJson,
  BackendStateJson,
  ClusterJson,
  HistoryJson,
  HistorySeriesJson,
  CertificateJson,
  ListenerJson,
  OverviewJson,
  PoolJson,
  RouteJson,
  StatusClassJson,
} from '../api-json';
import type UPlot from 'uplot';

/** uPlot's IIFE (inlined before this script) defines it. */
declare const uPlot: typeof UPlot;

const REFRESH_MS = 2000;
const TIMEOUT_MS = 5000;
/** Shortest window a rate is computed over: a refresh right after a click would be noise. */
const RATE_WINDOW_MS = 1000;
const TOKEN_KEY = 'fulcrum.adminToken';
/** The states the stylesheet knows (any other shows as "unknown"), in the order a pool's summary counts them. */
const STATES: readonly BackendStateJson[] = ['up', 'down', 'ejected', 'draining'];
const KNOWN: ReadonlySet<string> = new Set(STATES);

type Action = 'drain' | 'enable' | 'remove';

/** One backend's row and what updates it in place. */
interface Row {
  readonly pool: string;
  readonly name: string;
  readonly tr: HTMLTableRowElement;
  readonly state: HTMLSpanElement;
  readonly weight: HTMLTableCellElement;
  readonly inflight: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
  readonly requests: HTMLTableCellElement;
  readonly errors: HTMLTableCellElement;
  readonly p50: HTMLTableCellElement;
  readonly p99: HTMLTableCellElement;
  readonly why: HTMLButtonElement;
  readonly drain: HTMLButtonElement;
  readonly enable: HTMLButtonElement;
  readonly remove: HTMLButtonElement;
  readonly whyTr: HTMLTableRowElement;
  readonly panel: HTMLDivElement;
}

/** A backend's counters at the start of the current rate window, and the last rates. */
interface RateBaseline {
  t: number;
  requests: number;
  failures: number;
  /** Requests per second; null until a window has passed. */
  rate: number | null;
  /** Failures per request, in percent; null without requests in the window. */
  err: number | null;
}

// ---- DOM helpers ----

/** The element with this id, checked to be of the expected type. */
function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T; name: string }): T {
  const n = document.getElementById(id);
  if (!(n instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return n;
}

type Child = Node | string | null;

/** el('td', { class: 'num' }, ['text', node]); null and undefined attributes and children are left out. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Readonly<Record<string, string | undefined>> | null,
  children?: readonly Child[],
): HTMLElementTagNameMap[K] {
  const n = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined) n.setAttribute(k, v);
  if (children) for (const c of children) if (c !== null) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return n;
}

function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

// The page's fixed elements (index.html).
const ui = {
  updated: byId('updated', HTMLSpanElement),
  forgetToken: byId('forget-token', HTMLButtonElement),
  errorBanner: byId('error-banner', HTMLDivElement),
  actionError: byId('action-error', HTMLDivElement),
  clusterWarning: byId('cluster-warning', HTMLDivElement),
  tokenForm: byId('token-form', HTMLFormElement),
  tokenMessage: byId('token-message', HTMLParagraphElement),
  tokenInput: byId('token-input', HTMLInputElement),
  listenersSection: byId('listeners-section', HTMLElement),
  listeners: byId('listeners', HTMLTableSectionElement),
  poolsSection: byId('pools-section', HTMLElement),
  pools: byId('pools', HTMLDivElement),
  chartsSection: byId('charts-section', HTMLElement),
  charts: byId('charts', HTMLDivElement),
};

// ---- formatting ----

function pad(n: number): string {
  return n < 10 ? '0' + n : String(n);
}
function hms(ms: number): string {
  const d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}
function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  return Math.floor(s / 3600) + ' h ago';
}
function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (v < 1) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return String(Math.round(v));
}
function fmtRate(v: number | null): string {
  if (v === null) return '–';
  if (v === 0) return '0';
  if (v < 10) return v.toFixed(1);
  return String(Math.round(v));
}
function backendPath(pool: string, backend: string): string {
  return 'api/pools/' + encodeURIComponent(pool) + '/backends/' + encodeURIComponent(backend);
}

// ---- state ----

let token = readToken();
/** Set while the token form waits; its promise resolves when a token is entered. */
let tokenWait: { readonly promise: Promise<void>; readonly resolve: () => void } | null = null;
/** The shape the DOM was built for (render compares it). */
let shape = '';
/** By "pool/backend". */
let rows = new Map<string, Row>();
/** By pool name. */
let summaries = new Map<string, HTMLSpanElement>();
/** By "pool/backend". */
const prev = new Map<string, RateBaseline>();
/** The "pool/backend" keys whose why panel is open. */
const open = new Set<string>();
let timer: number | undefined;
let running = false;
let again = false;

function readToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}
function saveToken(t: string): void {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage off: keep it in memory
  }
}

// ---- talking to the admin API ----

class ApiError extends Error {
  /** The API did not answer (or answered 5xx): say "cannot reach", not "answered". */
  readonly unreachable: boolean;
  constructor(message: string, unreachable: boolean) {
    super(message);
    this.unreachable = unreachable;
  }
}

function isAbort(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'name' in err && err.name === 'AbortError';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `error` of an error answer's JSON, if it has one. */
function errorText(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  return typeof body.error === 'string' && body.error !== '' ? body.error : undefined;
}

/** Resolves when the operator has entered a token. */
function askToken(refused: boolean): Promise<void> {
  if (tokenWait === null) {
    let resolve: () => void = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    tokenWait = { promise, resolve };
  }
  ui.tokenMessage.textContent = refused
    ? 'The admin API refused that token. Enter the admin token:'
    : 'This admin API needs a token (admin.token in the config).';
  ui.tokenMessage.className = 'token-message' + (refused ? ' refused' : '');
  ui.tokenForm.hidden = false;
  ui.errorBanner.hidden = true;
  ui.forgetToken.hidden = true;
  setText(ui.updated, 'waiting for the token');
  document.body.classList.remove('live');
  ui.tokenInput.focus();
  return tokenWait.promise;
}

ui.tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const v = ui.tokenInput.value.trim();
  if (!v) {
    ui.tokenInput.focus();
    return;
  }
  token = v;
  saveToken(v);
  ui.tokenInput.value = '';
  ui.tokenForm.hidden = true;
  ui.forgetToken.hidden = false;
  setText(ui.updated, 'loading…');
  const w = tokenWait;
  tokenWait = null;
  if (w) w.resolve();
});

ui.forgetToken.addEventListener('click', () => {
  token = '';
  saveToken('');
  ui.forgetToken.hidden = true;
  void refresh();
});

/**
 * One API call; on 401 asks for the token and tries again with it. The JSON
 * is taken to be T, the shape api-json.d.ts gives for that path: the page is
 * served by the same process as the API, so they cannot disagree.
 */
async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, json?: unknown): Promise<T> {
  for (;;) {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers['authorization'] = 'Bearer ' + token;
    if (json !== undefined) headers['content-type'] = 'application/json';
    const ctrl = new AbortController();
    const t = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(path, { method, headers, signal: ctrl.signal, cache: 'no-store', ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
    } catch (err) {
      throw new ApiError(isAbort(err) ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : 'connection failed', true);
    } finally {
      clearTimeout(t);
    }
    if (res.status === 401) {
      await askToken(token !== '');
      continue;
    }
    let body: unknown = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) throw new ApiError(errorText(body) ?? 'HTTP ' + res.status, res.status >= 500);
    if (token) ui.forgetToken.hidden = false;
    return body as T;
  }
}

function banner(text: string | null): void {
  const b = ui.errorBanner;
  if (text) {
    setText(b, text);
    b.hidden = false;
  } else b.hidden = true;
  document.body.classList.toggle('offline', !!text);
  document.body.classList.toggle('live', !text);
}

// ---- the refresh loop ----

async function refresh(): Promise<void> {
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  try {
    do {
      again = false;
      try {
        const data = await api<OverviewJson>('GET', 'api/overview');
        render(data);
        banner(null);
        setText(ui.updated, 'updated ' + hms(Date.now()));
        await Promise.all(Array.from(open).map(loadWhy));
      } catch (err) {
        const last = ui.updated.textContent ?? '';
        const since = last.indexOf('updated ') === 0 ? ' Showing data from ' + last.slice(8) + '.' : '';
        if (!since) setText(ui.updated, 'no data yet');
        const message = errorMessage(err);
        const unreachable = err instanceof ApiError && err.unreachable;
        banner(
          (unreachable ? 'Cannot reach the admin API (' + message + ').' : 'The admin API answered: ' + message + '.') +
            since +
            ' Retrying every ' + REFRESH_MS / 1000 + ' s.',
        );
      }
    } while (again);
  } finally {
    running = false;
    timer = setTimeout(() => void refresh(), REFRESH_MS);
  }
}

async function act(pool: string, backend: string, action: Action, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  await attempt(action.charAt(0).toUpperCase() + action.slice(1) + ' ' + pool + '/' + backend, () =>
    action === 'remove'
      ? api<BackendJson>('DELETE', backendPath(pool, backend))
      : api<BackendJson>('POST', backendPath(pool, backend) + '/' + action));
}

/** An admin action; its failure stays shown until the next action (the refresh right after must not wipe it). */
async function attempt(what: string, call: () => Promise<unknown>): Promise<boolean> {
  const note = ui.actionError;
  let ok = true;
  try {
    await call();
    note.hidden = true;
  } catch (err) {
    setText(note, what + ' failed: ' + errorMessage(err));
    note.hidden = false;
    ok = false;
  }
  await refresh();
  return ok;
}

/** SPEC section 11: POST /api/pools/{pool}/backends from the pool's "add a backend" form. */
async function addBackend(pool: string, url: HTMLInputElement, name: HTMLInputElement, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  const body: { url: string; name?: string } = { url: url.value.trim() };
  if (name.value.trim() !== '') body.name = name.value.trim();
  const ok = await attempt('Add a backend to ' + pool, () => api<BackendJson>('POST', 'api/pools/' + encodeURIComponent(pool) + '/backends', body));
  if (ok) {
    url.value = '';
    name.value = '';
  }
  button.disabled = false;
}

/** Replicas whose configs differ, or a Redis this replica cannot reach: said above the pools. */
function clusterWarning(c: ClusterJson | undefined): void {
  const w = ui.clusterWarning;
  const lines: string[] = [];
  if (c !== undefined && c.configsAgree === false) {
    const hashes = new Set(c.replicas.map((r) => r.configHash));
    lines.push('Cluster ' + c.name + ': the replicas run ' + hashes.size + ' different configs (' +
      c.replicas.map((r) => r.name + ' ' + r.configHash.slice(0, 8)).join(', ') + ').');
  }
  if (c !== undefined && c.redis === 'down') lines.push('Cluster ' + c.name + ': Redis is down; this replica serves with its local state.');
  setText(w, lines.join(' '));
  w.hidden = lines.length === 0;
  w.setAttribute('data-configs-agree', String(c?.configsAgree !== false));
}

// ---- rendering ----

function render(data: OverviewJson): void {
  const { pools, listeners } = data;
  clusterWarning(data.cluster);
  // An older admin API has no certificates; a new certificate (ACME's first, a renewal) rebuilds the table.
  const certificates = data.certificates ?? [];
  const sig = JSON.stringify([listeners, certificates, pools.map((p) => [p.name, p.strategy, p.backends.map((b) => [b.name, b.url, b.backup])])]);
  if (sig !== shape) {
    build(pools, listeners, certificates);
    shape = sig;
  }
  const now = Date.now();
  for (const p of pools) {
    const counts: Record<BackendStateJson, number> = { up: 0, down: 0, ejected: 0, draining: 0 };
    for (const b of p.backends) {
      updateRow(p.name, b, now);
      counts[b.state]++;
    }
    const parts = STATES.filter((s) => counts[s] > 0).map((s) => counts[s] + ' ' + s);
    const summary = summaries.get(p.name);
    if (summary) {
      setText(summary, p.backends.length + (p.backends.length === 1 ? ' backend' : ' backends') + (parts.length ? ' · ' + parts.join(' · ') : ''));
    }
  }
}

/** "acme: example.com, www.example.com · R11 · until 2027-03-01" */
function certificateText(c: CertificateJson | undefined): string {
  if (c === undefined) return '';
  const issuer = /(?:^|,)CN=([^,]*)/.exec(c.issuer)?.[1] ?? c.issuer;
  return c.source + ': ' + c.names.join(', ') + ' · ' + issuer + ' · until ' + c.notAfter.slice(0, 10);
}

/** One route in one line: what it matches, then what it does (SPEC 8). */
function routeText(r: RouteJson): string {
  const m: string[] = [];
  if (r.host) m.push('host ' + r.host);
  if (r.methods) m.push(r.methods.join(','));
  if (r.path) m.push('= ' + r.path);
  if (r.pathPrefix) m.push(r.pathPrefix);
  if (r.pathRegex) m.push('~ ' + r.pathRegex);
  for (const h of r.headers ?? []) m.push('header ' + h);
  for (const q of r.query ?? []) m.push('query ' + q);
  let action: string;
  if (r.kind === 'pools' && r.pools) {
    const total = r.pools.reduce((sum, p) => sum + p.weight, 0);
    action = '→ ' + r.pools.map((p) => p.pool + ' ' + (total > 0 ? Math.round((p.weight / total) * 1000) / 10 : 0) + '%').join(' · ');
  } else if (r.kind === 'redirect' && r.redirect) {
    const d = r.redirect;
    action = 'redirect ' + d.status + ' to ' + (d.scheme ?? '(scheme)') + '://' + (d.host ?? '(host)') + (d.port !== null ? ':' + d.port : '') + (d.path ?? '/(path)') + '?(query)';
  } else if (r.kind === 'respond' && r.respond) {
    action = 'respond ' + r.respond.status;
  } else {
    action = '→ ' + (r.pool ?? '');
  }
  const extras: string[] = [];
  if (r.rewrite) extras.push('rewrite ' + r.rewrite);
  if (r.mirror) extras.push('mirror ' + r.mirror.pool + ' ' + r.mirror.percent + '%');
  if (r.requestHeaders) extras.push('request headers');
  if (r.responseHeaders) extras.push('response headers');
  return (m.length ? m.join(' ') : '*') + ' ' + action + (extras.length ? ' (' + extras.join(', ') + ')' : '');
}

function build(pools: readonly PoolJson<BackendOverviewJson>[], listeners: readonly ListenerJson[], certificates: readonly CertificateJson[]): void {
  const lt = ui.listeners;
  lt.textContent = '';
  for (const l of listeners) {
    const routes = el(
      'td',
      { class: 'routes' },
      l.routes.map((r) => el('span', { class: 'route', 'data-kind': r.kind }, [routeText(r)])),
    );
    lt.appendChild(
      el('tr', { 'data-listener': l.name }, [
        el('td', null, [el('strong', null, [l.name])]),
        el('td', { class: 'mono listen' }, [(l.tls ? 'https://' : 'http://') + l.listen]),
        el('td', { class: 'cert', 'data-testid': 'certificate' }, [certificateText(certificates.find((c) => c.listener === l.name))]),
        routes,
      ]),
    );
  }
  ui.listenersSection.hidden = listeners.length === 0;

  const pt = ui.pools;
  pt.textContent = '';
  rows = new Map();
  summaries = new Map();
  for (const p of pools) {
    const summary = el('span', { class: 'pool-summary' });
    summaries.set(p.name, summary);
    const tbody = el('tbody');
    for (const b of p.backends) buildRow(tbody, p.name, b);
    const addUrl = el('input', { class: 'url', type: 'text', placeholder: 'http://10.0.0.31:8080', 'data-testid': 'add-url', 'aria-label': 'url of the new backend' });
    const addName = el('input', { type: 'text', placeholder: 'name (default host:port)', 'data-testid': 'add-name', 'aria-label': 'name of the new backend' });
    const addButton = el('button', { type: 'submit', class: 'btn', 'data-testid': 'add-submit' }, ['Add backend']);
    const addForm = el('form', { class: 'add-backend', 'data-add': p.name }, [addUrl, addName, addButton]);
    addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void addBackend(p.name, addUrl, addName, addButton);
    });
    pt.appendChild(
      el('section', { class: 'pool card', 'data-pool': p.name }, [
        el('div', { class: 'pool-head' }, [
          el('h2', { class: 'pool-name' }, [p.name]),
          el('span', { class: 'strategy', title: 'strategy' }, [p.strategy]),
          summary,
        ]),
        el('table', null, [
          el('thead', null, [
            el('tr', null, [
              el('th', null, ['Backend']),
              el('th', null, ['State']),
              el('th', { class: 'num', title: 'configured weight (effective weight while it ramps up in slow start)' }, ['Weight']),
              el('th', { class: 'num', title: 'requests in flight now' }, ['In flight']),
              el('th', { class: 'num', title: 'requests per second since the last refresh' }, ['Req/s']),
              el('th', { class: 'num', title: 'requests sent since start' }, ['Requests']),
              el('th', { class: 'num', title: 'failures / requests since the last refresh' }, ['Errors']),
              el('th', { class: 'num' }, ['p50 ms']),
              el('th', { class: 'num' }, ['p99 ms']),
              el('th', null, []),
            ]),
          ]),
          tbody,
        ]),
        addForm,
      ]),
    );
  }
  if (pools.length === 0) pt.appendChild(el('p', { class: 'empty' }, ['No pools.']));
  ui.poolsSection.hidden = false;
  // Rows that went away keep no rate baseline; panels that went away close.
  for (const k of Array.from(prev.keys())) if (!rows.has(k)) prev.delete(k);
  for (const k of Array.from(open)) if (!rows.has(k)) open.delete(k);
}

function buildRow(tbody: HTMLTableSectionElement, pool: string, b: BackendOverviewJson): void {
  const key = pool + '/' + b.name;
  const cell = (field: string) => el('td', { class: 'num', 'data-field': field });
  const button = (action: string, title: string, label: string, extra: Record<string, string> = {}) =>
    el('button', { type: 'button', class: 'btn', 'data-action': action, ...extra, title }, [label]);
  const state = el('span', { class: 'state' });
  const weight = cell('weight');
  const inflight = cell('inflight');
  const rate = cell('rate');
  const requests = cell('requests');
  const errors = cell('errors');
  const p50 = cell('p50');
  const p99 = cell('p99');
  const why = button('why', 'why is it in this state', 'Why', { 'aria-expanded': 'false' });
  const drain = button('drain', 'stop sending new requests; in-flight ones finish', 'Drain');
  const enable = button('enable', 'back under the health checker', 'Enable');
  const remove = button('remove', 'delete it: it drains, then goes once its in-flight requests end', 'Remove');
  const tr = el('tr', { class: 'backend', 'data-backend': key }, [
    el('td', null, [
      el('div', { class: 'b-name' }, [b.name, b.backup ? el('span', { class: 'tag', title: 'used only when no primary is available' }, ['backup']) : null]),
      b.url !== 'http://' + b.name ? el('div', { class: 'b-url' }, [b.url]) : null,
    ]),
    el('td', null, [state]),
    weight, inflight, rate, requests, errors, p50, p99,
    el('td', { class: 'actions' }, [why, drain, enable, remove]),
  ]);
  const panel = el('div', { class: 'why-body' }, [el('p', { class: 'empty' }, ['loading…'])]);
  const whyTr = el('tr', { class: 'why', 'data-why': key, hidden: '' }, [el('td', { colspan: '10' }, [panel])]);
  const r: Row = { pool, name: b.name, tr, state, weight, inflight, rate, requests, errors, p50, p99, why, drain, enable, remove, whyTr, panel };
  why.addEventListener('click', () => {
    const show = !open.has(key);
    if (show) open.add(key);
    else open.delete(key);
    whyTr.hidden = !show;
    why.setAttribute('aria-expanded', String(show));
    if (show) void loadWhy(key);
  });
  drain.addEventListener('click', () => void act(pool, b.name, 'drain', drain));
  enable.addEventListener('click', () => void act(pool, b.name, 'enable', enable));
  remove.addEventListener('click', () => void act(pool, b.name, 'remove', remove));
  if (open.has(key)) {
    whyTr.hidden = false;
    why.setAttribute('aria-expanded', 'true');
  }
  rows.set(key, r);
  tbody.appendChild(tr);
  tbody.appendChild(whyTr);
}

function updateRow(pool: string, b: BackendOverviewJson, now: number): void {
  const key = pool + '/' + b.name;
  const r = rows.get(key);
  if (!r) return;
  const state = KNOWN.has(b.state) ? b.state : 'unknown';
  r.tr.setAttribute('data-state', state);
  r.whyTr.setAttribute('data-state', state);
  r.state.className = 'state state-' + state;
  r.state.setAttribute('data-state', b.state);
  setText(r.state, b.state);
  r.drain.disabled = b.state === 'draining';
  r.enable.disabled = b.state !== 'draining';

  if (b.effectiveWeight !== b.weight) {
    setText(r.weight, b.effectiveWeight + ' of ' + b.weight);
    r.weight.title = 'slow start: effective weight ' + b.effectiveWeight + ', ramping up to ' + b.weight;
  } else {
    setText(r.weight, String(b.weight));
    r.weight.title = '';
  }
  setText(r.inflight, String(b.activeRequests));
  setText(r.requests, String(b.requests));

  // Rates from counter deltas. A counter that went down (reload, restart) starts a new baseline.
  let p = prev.get(key);
  if (!p || b.requests < p.requests || b.failures < p.failures) {
    p = { t: now, requests: b.requests, failures: b.failures, rate: null, err: null };
    prev.set(key, p);
  } else if (now - p.t >= RATE_WINDOW_MS) {
    const dr = b.requests - p.requests;
    const df = b.failures - p.failures;
    p.rate = (dr * 1000) / (now - p.t);
    p.err = dr > 0 ? Math.min(100, (df * 100) / dr) : null;
    p.t = now;
    p.requests = b.requests;
    p.failures = b.failures;
  }
  const err = p.err;
  setText(r.rate, fmtRate(p.rate));
  setText(r.errors, err === null ? '–' : err === 0 ? '0%' : err.toFixed(err < 10 ? 1 : 0) + '%');
  r.errors.className = 'num' + (err === null || err === 0 ? '' : err >= 5 ? ' err-high' : ' err-some');
  r.errors.title = 'failures since start: ' + b.failures;

  setText(r.p50, fmtMs(b.latencyMs?.p50));
  setText(r.p99, fmtMs(b.latencyMs?.p99));
}

// ---- the "why" panel ----

async function loadWhy(key: string): Promise<void> {
  const r = rows.get(key);
  if (!r) return;
  try {
    const d = await api<BackendDetailJson>('GET', backendPath(r.pool, r.name));
    if (rows.get(key) === r && open.has(key)) renderWhy(r, d);
  } catch (err) {
    if (rows.get(key) === r) r.panel.replaceChildren(el('p', { class: 'bad' }, ['Could not load the history: ' + errorMessage(err)]));
  }
}

/** Newest first, at most max rows; count is an optional note after the title. */
function list<T>(
  title: string,
  cls: string,
  items: readonly T[],
  max: number,
  count: string,
  empty: string,
  cells: (item: T) => Child[],
): HTMLDivElement {
  const shown = items.slice(-max).reverse();
  const body = shown.length
    ? el('table', null, [el('tbody', null, shown.map((it) => el('tr', null, cells(it))))])
    : el('p', { class: 'empty' }, [empty]);
  return el('div', { class: cls }, [el('h3', null, [title, count ? el('span', { class: 'count' }, [' · ' + count]) : null]), body]);
}

function renderWhy(r: Row, d: BackendDetailJson): void {
  const changes = d.stateChanges;
  const last = changes.length ? changes[changes.length - 1] : undefined;
  const summary =
    last && last.to === d.state
      ? el('p', { class: 'why-summary' }, [
          el('strong', null, [d.state]),
          ' since ' + hms(last.time) + ' (' + ago(last.time) + '): ',
          el('span', { class: 'why-reason' }, [last.reason]),
        ])
      : el('p', { class: 'why-summary' }, [el('strong', null, [d.state]), ' since start: no state change recorded.']);
  const probes = d.probes;
  const passed = probes.filter((p) => p.ok).length;
  const failures = d.recentFailures;
  r.panel.replaceChildren(
    summary,
    el('div', { class: 'why-grid' }, [
      list('State changes', 'why-changes', changes, 8, changes.length > 8 ? 'newest 8 of ' + changes.length : '', 'none yet', (c) => [
        el('td', { class: 't' }, [hms(c.time)]),
        el('td', { class: 'mono' }, [c.from + ' → ' + c.to]),
        el('td', { class: 'reason' }, [c.reason]),
      ]),
      list(
        'Health probes',
        'why-probes',
        probes,
        5,
        probes.length ? passed + ' of the last ' + probes.length + ' passed' : '',
        'none (no active health check, or not run yet)',
        (p) => [
          el('td', { class: 't' }, [hms(p.time)]),
          el('td', { class: p.ok ? 'ok' : 'bad' }, [p.ok ? 'pass' : 'fail']),
          el('td', { class: 'mono' }, [p.status !== undefined ? String(p.status) : '']),
          el('td', null, [p.error ?? '']),
          el('td', { class: 'num' }, [fmtMs(p.latencyMs) + ' ms']),
        ],
      ),
      list('Failures on live traffic', 'why-failures', failures, 5, failures.length > 5 ? 'newest 5 of ' + failures.length : '', 'none', (f) => [
        el('td', { class: 't' }, [hms(f.time)]),
        el('td', { class: 'bad' }, [f.reason]),
      ]),
    ]),
  );
}

// ---- charts: the last 15 minutes (GET /api/history, drawn with uPlot) ----

const HISTORY_REFRESH_MS = 5000;
const PALETTE = ['#0969da', '#bf8700', '#8250df', '#0a7d8c', '#bc4c00', '#57606a', '#cf222e', '#1a7f37'];
const CLASS_COLORS: Readonly<Record<StatusClassJson, string>> = { '1xx': '#8c959f', '2xx': '#1a7f37', '3xx': '#0969da', '4xx': '#bf8700', '5xx': '#cf222e' };
const CLASSES: readonly StatusClassJson[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** What one chart shows: its title, unit, and one line per series. */
interface ChartSpec {
  readonly key: string;
  readonly title: string;
  readonly unit: string;
  readonly series: readonly { readonly label: string; readonly color: string; readonly values: readonly (number | null)[] }[];
}

/** The plots by chart key, and the shape they were built for. */
let plots = new Map<string, { readonly plot: UPlot; readonly box: HTMLDivElement }>();
let chartShape = '';
let historyTimer: number | undefined;

async function refreshCharts(): Promise<void> {
  clearTimeout(historyTimer);
  try {
    renderCharts(await api<HistoryJson>('GET', 'api/history'));
  } catch {
    // The overview's banner already says when the admin API cannot be reached.
  } finally {
    historyTimer = setTimeout(() => void refreshCharts(), HISTORY_REFRESH_MS);
  }
}

/** A pool's three charts: its total and each backend, one line each. */
function poolCharts(p: HistoryJson['pools'][number]): ChartSpec[] {
  const lines = (pick: (s: HistorySeriesJson) => readonly (number | null)[]) => [
    { label: p.name + ' (pool)', color: '#1f2328', values: pick(p) },
    ...p.backends.map((b, i) => ({ label: b.name, color: PALETTE[i % PALETTE.length]!, values: pick(b) })),
  ];
  return [
    { key: 'pool/' + p.name + '/requests', title: 'Requests', unit: 'req/s', series: lines((s) => s.requestRate) },
    { key: 'pool/' + p.name + '/errors', title: 'Errors (5xx)', unit: '%', series: lines((s) => s.errorRate) },
    { key: 'pool/' + p.name + '/p99', title: 'p99 latency', unit: 'ms', series: lines((s) => s.p99Ms) },
  ];
}

function listenerChart(l: HistoryJson['listeners'][number]): ChartSpec {
  return {
    key: 'listener/' + l.name + '/codes',
    title: 'Status codes',
    unit: 'req/s',
    series: CLASSES.map((c) => ({ label: c, color: CLASS_COLORS[c], values: l.codes[c] })),
  };
}

function renderCharts(h: HistoryJson): void {
  const groups = [
    ...h.pools.map((p) => ({ kind: 'pool', name: p.name, specs: poolCharts(p) })),
    ...h.listeners.map((l) => ({ kind: 'listener', name: l.name, specs: [listenerChart(l)] })),
  ];
  const sig = JSON.stringify(groups.map((g) => [g.kind, g.name, g.specs.map((s) => [s.key, s.series.map((x) => x.label)])]));
  ui.chartsSection.hidden = groups.length === 0;
  if (sig !== chartShape) {
    buildCharts(groups);
    chartShape = sig;
  }
  const times = h.times.map((t) => t / 1000);
  for (const g of groups) {
    for (const spec of g.specs) {
      const c = plots.get(spec.key);
      if (!c) continue;
      c.plot.setData([times, ...spec.series.map((s) => s.values.slice())] as UPlot.AlignedData);
      // How many values the lines hold: what a test (or a curious operator) can read off the page.
      const points = spec.series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
      c.box.setAttribute('data-points', String(points));
    }
  }
}

function buildCharts(groups: readonly { kind: string; name: string; specs: readonly ChartSpec[] }[]): void {
  for (const c of plots.values()) c.plot.destroy();
  plots = new Map();
  ui.charts.textContent = '';
  const width = Math.max(240, Math.floor((ui.charts.clientWidth || 1200) / 3) - 24);
  for (const g of groups) {
    const row = el('div', { class: 'chart-row' });
    const card = el('section', { class: 'card chart-card', ['data-chart-' + g.kind]: g.name }, [
      el('div', { class: 'chart-head' }, [el('h2', null, [g.name]), el('span', { class: 'strategy' }, [g.kind])]),
      row,
    ]);
    ui.charts.appendChild(card);
    for (const spec of g.specs) {
      const box = el('div', { class: 'chart', 'data-chart': spec.key, 'data-points': '0' });
      row.appendChild(el('div', { class: 'chart-cell' }, [el('h3', null, [spec.title + ' · ' + spec.unit]), box]));
      const opts: UPlot.Options = {
        width,
        height: 150,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max ?? 0, min ?? 0, spec.unit === '%' ? 1 : 0.001) * 1.1] } },
        axes: [{ stroke: '#59636e', grid: { stroke: '#eef1f4' } }, { stroke: '#59636e', grid: { stroke: '#eef1f4' }, size: 48 }],
        series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: s.label.endsWith('(pool)') ? 2 : 1.5, spanGaps: false, points: { show: false } }))],
      };
      plots.set(spec.key, { plot: new uPlot(opts, [[], ...spec.series.map(() => [])] as UPlot.AlignedData, box), box });
    }
  }
}

void refreshCharts();
void refresh();
