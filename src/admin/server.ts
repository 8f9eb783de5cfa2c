import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AdminConfig, ListenerConfig, RouteConfig, ValueMatchConfig } from '../config/types';
import { dashboardPage } from './dashboard';
import type { BackendDetailJson, BackendJson, BackendOverviewJson, CertificateJson, HistoryJson, ListenerJson, OverviewJson, PoolsJson, RouteJson } from './api-json';
import type { BackendPool } from '../pool/pool';
import type { Backend } from '../pool/backend';
import type { AdminAction, ClusterJson } from '../replicas';
import { Invalid, backendName as parseBackendName, parseBackendUrl } from '../config/values';

/** What the admin API needs from the running proxy: a narrow view, nothing more. */
export interface AdminTarget {
  pools(): readonly BackendPool[];
  listeners(): readonly ListenerConfig[];
  /** Where a listener is bound ("127.0.0.1:8080"; the real port when the config says 0). */
  listenerAddress(name: string): string | undefined;
  /** The certificate each TLS listener serves now. */
  certificates?: () => readonly CertificateJson[];
  /** Listeners bound and each pool has an available backend. */
  ready(): boolean;
  /** Prometheus text and its content type. */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** Bring counters up to date before answering about pools (workers report them). */
  refresh?: () => Promise<void>;
  /** The dashboard's charts: the last 15 minutes of request figures. */
  history?: () => HistoryJson;
  /** Reload the config file (SPEC section 6); undefined when reload is not available. */
  reload?: () => Promise<{ ok: boolean; changes: string[]; errors: string[] }>;
  /** Carry out an admin action here (and on every replica of a cluster); the backend it applied to. */
  act(a: AdminAction): Backend | undefined;
  /** GET /api/cluster (SPEC section 10); undefined without a cluster. */
  cluster(): ClusterJson | undefined;
}

/** Exactly the fields SPEC section 5 names: scripts depend on this shape. */
function backendJson(b: Backend): BackendJson {
  return {
    name: b.name,
    url: b.url,
    state: b.state,
    weight: b.configuredWeight,
    backup: b.backup,
    activeRequests: b.inFlight,
    requests: b.requests,
    failures: b.failures,
  };
}

/** What the dashboard shows besides: slow start's weight and recent latency. */
function backendOverviewJson(b: Backend): BackendOverviewJson {
  return { ...backendJson(b), effectiveWeight: b.weight, latencyMs: b.latencyQuantiles() };
}

function listenerJson(l: ListenerConfig, bound: string | undefined): ListenerJson {
  return {
    name: l.name,
    listen: bound ?? (l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`),
    tls: l.tls !== undefined,
    routes: l.routes.map(routeJson),
  };
}

function routeJson(r: RouteConfig): RouteJson {
  const m = r.match;
  const conditions = (list: readonly ValueMatchConfig[] | undefined) =>
    list === undefined ? null : list.map((v) => (v.regex !== undefined ? `${v.name}~${v.regex}` : `${v.name}=${v.exact}`));
  const w = r.rewrite;
  return {
    host: m.hosts !== undefined ? m.hosts.join(', ') : null,
    hosts: m.hosts ?? null,
    pathPrefix: m.pathPrefix ?? null,
    path: m.path ?? null,
    pathRegex: m.pathRegex ?? null,
    methods: m.methods ?? null,
    headers: conditions(m.headers),
    query: conditions(m.query),
    kind: r.pools !== undefined ? 'pools' : r.redirect !== undefined ? 'redirect' : r.respond !== undefined ? 'respond' : 'pool',
    pool: r.pool ?? null,
    pools: r.pools ?? null,
    redirect: r.redirect !== undefined
      ? { scheme: r.redirect.scheme ?? null, host: r.redirect.host ?? null, port: r.redirect.port ?? null, path: r.redirect.path ?? null, status: r.redirect.status }
      : null,
    respond: r.respond !== undefined ? { status: r.respond.status } : null,
    mirror: r.mirror !== undefined ? { pool: r.mirror.pool, percent: r.mirror.percent } : null,
    rewrite: w !== undefined ? ('path' in w ? `→ ${w.path}` : `${w.pathRegex} → ${w.replacement}`)
      : r.stripPrefix && m.pathPrefix !== undefined ? `strip ${m.pathPrefix}` : null,
    requestHeaders: r.requestHeaders !== undefined,
    responseHeaders: r.responseHeaders !== undefined,
  };
}

/** A path segment's %-escapes decoded; undefined when one is malformed ("b1%", "%ZZ"): the client's error, not ours. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, extra?: Record<string, string>): void {
  if (extra !== undefined) for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  send(res, status, { error: message });
}

/**
 * Constant-time token check; hashing first makes lengths equal, so length leaks
 * nothing either. The scheme is case-insensitive (RFC 9110 section 11.1).
 */
function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
  const a = createHash('sha256').update(header.slice(7)).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

const MAX_BODY = 64 * 1024;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new Error('body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

/**
 * The admin listener (SPEC section 5). Separate from every proxy listener, so
 * the API is never reachable through a route.
 */
export class AdminServer {
  readonly server: Server;
  #config: AdminConfig;
  readonly #target: AdminTarget;
  /** The dashboard, assembled now: a missing or broken build fails at startup, not at the first GET /. */
  readonly #page: Buffer = dashboardPage();

  constructor(config: AdminConfig, target: AdminTarget) {
    this.#config = config;
    this.#target = target;
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: Error) => {
        if (!res.headersSent) sendError(res, 500, err.message);
        else res.destroy();
      });
    });
  }

  /** Reload: a new token applies to the next call. */
  setConfig(config: AdminConfig): void {
    this.#config = config;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      send(res, 200, { status: 'ok' });
      return;
    }
    const token = this.#config.token;
    const authorized = token === undefined || tokenMatches(req.headers.authorization, token);
    if (path === '/' || path === '/index.html') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      // SPEC: every call but /healthz needs the token, so a browser (which cannot
      // send a bearer header when opening a page) gets a 401 — whose body is the
      // page itself. It holds no data; it asks for the token and sends it with
      // every API call.
      res.writeHead(authorized ? 200 : 401, { 'content-type': 'text/html; charset=utf-8', 'content-length': this.#page.length, 'cache-control': 'no-store' });
      res.end(this.#page);
      return;
    }
    if (!authorized) {
      sendError(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="fulcrum"' });
      return;
    }
    if (path === '/readyz') {
      const ok = this.#target.ready();
      send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
      return;
    }
    if (path === '/metrics') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      const m = await this.#target.metrics();
      res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.text) });
      res.end(m.text);
      return;
    }
    if (path.startsWith('/api/pools') || path === '/api/overview') await this.#target.refresh?.();
    if (path === '/api/pools') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      send(res, 200, {
        pools: this.#target.pools().map((p) => ({
          name: p.name,
          strategy: p.config.strategy,
          backends: p.backends.map(backendJson),
        })),
      } satisfies PoolsJson);
      return;
    }
    if (path === '/api/overview') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      const cluster = this.#target.cluster();
      send(res, 200, {
        pools: this.#target.pools().map((p) => ({
          name: p.name,
          strategy: p.config.strategy,
          backends: p.backends.map(backendOverviewJson),
        })),
        listeners: this.#target.listeners().map((l) => listenerJson(l, this.#target.listenerAddress(l.name))),
        ...(cluster !== undefined ? { cluster } : {}),
        certificates: this.#target.certificates?.() ?? [],
      } satisfies OverviewJson);
      return;
    }
    if (path === '/api/history') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      if (this.#target.history === undefined) return sendError(res, 501, 'no history in this process');
      send(res, 200, this.#target.history());
      return;
    }
    if (path === '/api/reload') {
      if (method !== 'POST') return sendError(res, 405, 'use POST');
      if (this.#target.reload === undefined) return sendError(res, 501, 'reload is not available in this version');
      const result = await this.#target.reload();
      send(res, result.ok ? 200 : 400, result);
      return;
    }
    if (path === '/api/cluster') {
      if (method !== 'GET') return sendError(res, 405, 'use GET');
      const cluster = this.#target.cluster();
      if (cluster === undefined) return sendError(res, 404, 'no cluster: this replica is on its own (see cluster in the config)');
      send(res, 200, cluster);
      return;
    }
    const add = /^\/api\/pools\/([^/]+)\/backends$/.exec(path);
    if (add !== null) return this.#addBackend(req, res, method, add[1]!);
    const m = /^\/api\/pools\/([^/]+)\/backends\/([^/]+?)(\/drain|\/enable)?$/.exec(path);
    if (m !== null) {
      const poolName = decodeSegment(m[1]);
      const backendName = decodeSegment(m[2]);
      if (poolName === undefined || backendName === undefined) return sendError(res, 400, 'bad request: malformed percent-encoding in the path');
      const pool = this.#target.pools().find((p) => p.name === poolName);
      if (pool === undefined) return sendError(res, 404, `unknown pool "${poolName}"`);
      const backend = pool.get(backendName);
      if (backend === undefined) return sendError(res, 404, `unknown backend "${backendName}" in pool "${poolName}"`);
      const action = m[3];
      if (action !== undefined) {
        if (method !== 'POST') return sendError(res, 405, 'use POST');
        this.#target.act({ kind: 'drain', pool: pool.name, backend: backend.name, value: action === '/drain' });
        send(res, 200, backendJson(backend));
        return;
      }
      if (method === 'PUT') {
        let body: unknown;
        try {
          body = await readJson(req);
        } catch (err) {
          return sendError(res, 400, (err as Error).message);
        }
        const weight = (body as { weight?: unknown } | null)?.weight;
        if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 10000) {
          return sendError(res, 400, 'weight must be an integer from 1 to 10000');
        }
        this.#target.act({ kind: 'weight', pool: pool.name, backend: backend.name, value: weight });
        send(res, 200, backendJson(backend));
        return;
      }
      if (method === 'DELETE') {
        // SPEC section 11: 202, the backend drains and goes once its in-flight requests end.
        this.#target.act({ kind: 'member', pool: pool.name, backend: backend.name, value: 'removed' });
        send(res, 202, backendJson(backend));
        return;
      }
      if (method !== 'GET') return sendError(res, 405, 'use GET, PUT or DELETE');
      send(res, 200, {
        ...backendOverviewJson(backend),
        pool: pool.name,
        probes: backend.probes,
        recentFailures: backend.recentFailures,
        stateChanges: backend.history,
      } satisfies BackendDetailJson);
      return;
    }
    sendError(res, 404, `no such admin endpoint: ${method} ${path}`);
  }

  /** SPEC section 11: POST /api/pools/{pool}/backends {"url", "name"?, "weight"?, "backup"?}. */
  async #addBackend(req: IncomingMessage, res: ServerResponse, method: string, poolSegment: string): Promise<void> {
    const poolName = decodeSegment(poolSegment);
    if (poolName === undefined) return sendError(res, 400, 'bad request: malformed percent-encoding in the path');
    const pool = this.#target.pools().find((p) => p.name === poolName);
    if (pool === undefined) return sendError(res, 404, `unknown pool "${poolName}"`);
    if (method !== 'POST') return sendError(res, 405, 'use POST');
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      return sendError(res, 400, (err as Error).message);
    }
    const parsed = newBackend(body);
    if (typeof parsed === 'string') return sendError(res, 400, parsed);
    if (pool.get(parsed.name) !== undefined) return sendError(res, 409, `pool "${pool.name}" already has a backend named "${parsed.name}"`);
    const b = this.#target.act({ kind: 'member', pool: pool.name, backend: parsed.name, value: parsed });
    if (b === undefined) return sendError(res, 404, `unknown pool "${poolName}"`);
    send(res, 201, backendJson(b));
  }
}

/** The body of POST /api/pools/{pool}/backends, checked as the config file's backends are; a string says what is wrong. */
function newBackend(body: unknown): { url: string; name: string; weight: number; backup: boolean } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object: {"url", "name"?, "weight"?, "backup"?}';
  const o = body as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['url', 'name', 'weight', 'backup'].includes(k));
  if (unknown.length > 0) return `unknown field ${JSON.stringify(unknown[0])}: expected url, name, weight, backup`;
  const url = parseBackendUrl(o.url);
  if (url instanceof Invalid) return url.message;
  const name = o.name === undefined ? url.name : parseBackendName(o.name);
  if (name instanceof Invalid) return name.message;
  const weight = o.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 10000) return 'weight must be an integer from 1 to 10000';
  const backup = o.backup ?? false;
  if (typeof backup !== 'boolean') return 'backup must be true or false';
  return { url: url.url, name, weight, backup };
}
