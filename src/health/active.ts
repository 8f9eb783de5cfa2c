import http from 'node:http';
import https from 'node:https';
import type { HealthCheckConfig } from '../config/types';
import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';
import { isLocalResourceError } from '../upstream/errors';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { BackendEdge } from '../pool/backend';
import { backendTlsOptions } from '../upstream/backend-tls';
import { encodeLocal } from '../proxy-protocol/header';
import { probeHttp2 } from './http2-probe';

/** Result of one probe: ok, or why not. */
export interface ProbeOutcome {
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
  readonly latencyMs: number;
  /**
   * Set when the probe could not even be made: Fulcrum is out of file
   * descriptors or memory (EMFILE...). No verdict on the backend.
   */
  readonly localCode?: string;
}

export type ProbeResultListener = (pool: BackendPool, backend: Backend, outcome: ProbeOutcome) => void;

/** Words for the errors a probe meets, for the explain history. */
function describe(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connect refused';
    case 'ECONNRESET': return 'connection reset';
    case 'ETIMEDOUT': return 'timed out';
    case 'ENOTFOUND': return 'host not found';
    case 'EHOSTUNREACH': return 'host unreachable';
    default: return err.message || String(err.code);
  }
}

/**
 * One HTTP GET on `path` with the backend's own Host, on a fresh connection
 * (as HAProxy does by default: a probe also tests that the backend accepts
 * connections), bounded by `timeoutMs`.
 */
export function probe(url: string, config: HealthCheckConfig, edge: BackendEdge = {}): Promise<ProbeOutcome> {
  const started = performance.now();
  const target = new URL(config.path, url);
  const secure = target.protocol === 'https:';
  const client = secure ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Omit<ProbeOutcome, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...o, latencyMs: Math.round((performance.now() - started) * 100) / 100 });
    };
    const req = client.get(target, {
      agent: probeAgent(secure, edge),
      headers: { 'user-agent': 'fulcrum-health-check', connection: 'close' },
      // Self-signed backends are common inside a network; a probe checks liveness, not identity.
      // With pool tls it checks what requests check (and presents the same client certificate).
      ...(edge.tls === undefined ? { rejectUnauthorized: false } : backendTlsOptions(edge.tls)),
    }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = config.expectStatus.some(([lo, hi]) => status >= lo && status <= hi);
      done(ok ? { ok, status } : { ok, status, error: `status ${status}` });
      res.on('error', () => undefined);
    });
    const timer = setTimeout(() => {
      done({ ok: false, error: `timed out after ${config.timeoutMs}ms` });
      req.destroy();
    }, config.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done(isLocalResourceError(err)
      ? { ok: false, error: `not probed: ${err.code} (Fulcrum is out of file descriptors or memory)`, localCode: err.code }
      : { ok: false, error: describe(err) }));
  });
}

/**
 * A fresh connection per probe. With pool proxyProtocol it begins with a
 * LOCAL (v2) or UNKNOWN (v1) header: the probe is Fulcrum's own connection,
 * no client's (SPEC 9.3).
 */
function probeAgent(secure: boolean, edge: BackendEdge): http.Agent | false {
  if (edge.proxyProtocol === undefined) return false;
  const header = encodeLocal(edge.proxyProtocol);
  const agent = secure ? new https.Agent({ keepAlive: false }) : new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: (o: tls.ConnectionOptions & net.NetConnectOpts) => Socket }).createConnection = (o) => {
    const raw = net.connect({ host: o.host!, port: Number(o.port) });
    raw.write(header);
    return secure ? tls.connect({ ...o, socket: raw }) : raw;
  };
  return agent;
}

/**
 * Active health checks for one pool. It only ever tells the pool what it saw
 * (`health-up` after `rise` passes, `health-down` after `fall` failures); it
 * never touches the request path. Probes start at once, then every `interval`
 * with ±10% jitter so the probes of many backends do not fire in lockstep.
 */
export class HealthChecker {
  readonly #pool: BackendPool;
  readonly #config: HealthCheckConfig;
  readonly #random: () => number;
  readonly #onProbe: ProbeResultListener | undefined;
  readonly #timers = new Map<Backend, NodeJS.Timeout>();
  readonly #passes = new Map<Backend, number>();
  readonly #fails = new Map<Backend, number>();
  /** Added at run time and not yet up: one passing probe brings them up (SPEC section 11). */
  readonly #firstPass = new Set<Backend>();
  #stopped = false;

  constructor(pool: BackendPool, config: HealthCheckConfig, options: { random?: () => number; onProbe?: ProbeResultListener } = {}) {
    this.#pool = pool;
    this.#config = config;
    this.#random = options.random ?? Math.random;
    this.#onProbe = options.onProbe;
  }

  start(): void {
    for (const b of this.#pool.backends) this.watch(b, this.#pool.isRuntime(b));
  }

  /**
   * Begin probing a backend (at start, or when discovery or the admin API
   * adds one). `firstPass`: it is down until its first passing probe, which
   * brings it up whatever `rise` says.
   */
  watch(backend: Backend, firstPass = false): void {
    if (this.#stopped || this.#timers.has(backend)) return;
    if (firstPass && !backend.healthy) this.#firstPass.add(backend);
    this.#schedule(backend, 0);
  }

  /** Stop probing a backend (discovery removed it). */
  unwatch(backend: Backend): void {
    clearTimeout(this.#timers.get(backend));
    this.#timers.delete(backend);
    this.#firstPass.delete(backend);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  #schedule(backend: Backend, delayMs: number): void {
    const timer = setTimeout(() => void this.#run(backend), delayMs);
    timer.unref();
    this.#timers.set(backend, timer);
  }

  async #run(backend: Backend): Promise<void> {
    // The round this run belongs to: unwatched and watched again meanwhile, a new round has started and this one ends here.
    const round = this.#timers.get(backend);
    const outcome = await (this.#pool.config.protocol === 'http2' ? probeHttp2(backend.url, this.#config, backend.edge) : probe(backend.url, this.#config, backend.edge));
    if (this.#stopped || round === undefined || this.#timers.get(backend) !== round) return;
    this.#record(backend, outcome);
    const jitter = 1 + (this.#random() * 0.2 - 0.1);
    this.#schedule(backend, Math.max(1, Math.round(this.#config.intervalMs * jitter)));
  }

  #record(backend: Backend, o: ProbeOutcome): void {
    const pool = this.#pool;
    pool.recordProbe(backend, { time: pool.now(), ok: o.ok, status: o.status, error: o.error, latencyMs: o.latencyMs });
    this.#onProbe?.(pool, backend, o);
    // Issue 20, F3: Fulcrum's own exhaustion says nothing about the backend;
    // the state stays as it was, and so do the runs of passes and failures.
    if (o.localCode !== undefined) return;
    if (o.ok) {
      this.#fails.set(backend, 0);
      const passes = (this.#passes.get(backend) ?? 0) + 1;
      this.#passes.set(backend, passes);
      if (!backend.healthy && (passes >= this.#config.rise || this.#firstPass.has(backend))) {
        this.#firstPass.delete(backend);
        pool.transition(backend, 'health-up', `health check passed ${passes} time${passes === 1 ? '' : 's'}`);
      }
    } else {
      this.#passes.set(backend, 0);
      const fails = (this.#fails.get(backend) ?? 0) + 1;
      this.#fails.set(backend, fails);
      if (backend.healthy && fails >= this.#config.fall) {
        pool.transition(backend, 'health-down', `health check failed ${fails} time${fails === 1 ? '' : 's'}: ${o.error}`);
      }
    }
  }
}
