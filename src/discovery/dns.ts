import { Resolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { BackendConfig, DnsDiscoveryConfig } from '../config/types';
import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';

/** What discovery needs of a resolver; node:dns/promises `Resolver` is one. */
export interface DnsResolverLike {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /** Abort queries in flight (called on stop). */
  cancel?(): void;
}

export interface DiscoveryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DnsDiscoveryOptions {
  readonly logger?: DiscoveryLogger;
  /** Used as it is (config.server is not applied to it); default: a node:dns Resolver. */
  readonly resolver?: DnsResolverLike;
  /** First-try timeout of each query, ms (c-ares backs off on the second try). Default 2000. */
  readonly timeoutMs?: number;
  /** How often a draining backend is checked for its last request to end, ms. Default 100. */
  readonly drainPollMs?: number;
  /**
   * Reload: the previous generation's pool of the same name. At start(), the
   * backends its discovery found (same DNS name and port, not being removed)
   * are added to this pool at once, so a pool fed only by DNS is never empty
   * between the swap and the first answer.
   */
  readonly adoptFrom?: BackendPool;
}

type Family = 4 | 6;

/** A backend this discovery added. */
interface Owned {
  readonly backend: Backend;
  readonly family: Family;
  readonly dnsName: string;
  readonly port: number;
  /** Gone from DNS: draining until its in-flight requests end. */
  removing: boolean;
  /** It was already drained (admin API) when DNS dropped it: "back in DNS" must not enable it. */
  drainedBefore: boolean;
}

/** Every backend any discovery added, for adoption across a reload. */
const discovered = new WeakMap<Backend, Owned>();

/** Answers that mean "this name has no such records", not "the resolver failed". */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

const silent: DiscoveryLogger = { info: () => undefined, warn: () => undefined };

/** url and name of the backend at `address` (as from the resolver) and `port`; undefined if not an IP. */
export function dnsBackend(address: string, port: number): Pick<BackendConfig, 'url' | 'name'> | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  // Through URL, so an IPv6 address is written exactly as a static backend's would be.
  const host = new URL(`http://${family === 6 ? `[${address}]` : address}/`).hostname;
  return { url: `http://${host}:${port}`, name: `${host}:${port}` };
}

/** "host:port" or "[v6]:port" → parts. */
function splitServer(server: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(server) ?? /^([^:]+):(\d+)$/.exec(server);
  if (m === null) return { host: server, port: 53 };
  return { host: m[1]!, port: Number(m[2]) };
}

function formatServer(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

type FamilyResult = { readonly ok: true; readonly addresses: string[] } | { readonly ok: false; readonly error: string };

/**
 * DNS service discovery for one pool: resolves A and AAAA records of
 * `config.name` at start and then every `refreshMs` (the next run is scheduled
 * when the current one has finished, so runs never overlap), and makes the
 * pool's discovered backends match the answer:
 *
 * - a new address becomes a backend `http://ADDR:PORT` named `ADDR:PORT`
 *   (IPv6: `[ADDR]:PORT`), unless a backend of that name or url is already in
 *   the pool (static backends are never touched);
 * - an address that is gone drains, and is removed once its in-flight
 *   requests have ended; if it comes back before that, it is enabled again;
 * - a family whose query fails (timeout, refused, SERVFAIL...) keeps its
 *   backends as they are: a resolver hiccup never empties a pool. NODATA and
 *   NXDOMAIN are answers: that family has no addresses.
 */
export class DnsDiscovery {
  readonly #pool: BackendPool;
  readonly #config: DnsDiscoveryConfig;
  readonly #logger: DiscoveryLogger;
  readonly #resolver: DnsResolverLike;
  readonly #ownsResolver: boolean;
  readonly #drainPollMs: number;
  readonly #adoptFrom: BackendPool | undefined;
  /** A resolver given by host name: its address is looked up before the first query. */
  #pendingServer: { host: string; port: number } | undefined;
  readonly #owned = new Map<string, Owned>();
  /** Names in DNS that belong to a static backend, logged once each. */
  readonly #skipped = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #started = false;
  #stopped = false;
  /** The last failure logged, so a resolver that stays down is not logged on every refresh. */
  #failing: string | undefined;

  constructor(pool: BackendPool, config: DnsDiscoveryConfig, options: DnsDiscoveryOptions = {}) {
    this.#pool = pool;
    this.#config = config;
    this.#logger = options.logger ?? silent;
    this.#drainPollMs = options.drainPollMs ?? 100;
    this.#adoptFrom = options.adoptFrom;
    if (options.resolver !== undefined) {
      this.#resolver = options.resolver;
      this.#ownsResolver = false;
    } else {
      const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
      if (config.server !== undefined) {
        const { host, port } = splitServer(config.server);
        if (isIP(host) !== 0) resolver.setServers([formatServer(host, port)]);
        else this.#pendingServer = { host, port };
      }
      this.#resolver = resolver;
      this.#ownsResolver = true;
    }
  }

  /** Backends this discovery added and still holds (draining ones included). */
  get backends(): readonly Backend[] {
    return [...this.#owned.values()].map((o) => o.backend);
  }

  /** Resolve at once, then every `refreshMs`. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#adopt();
    void this.#loop();
  }

  /** Clear every timer; answers still in flight are ignored. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    this.#timer = undefined;
    this.#poll = undefined;
    if (this.#ownsResolver) this.#resolver.cancel?.();
  }

  /** Resolve once now and apply the answer (after any run in progress). Never rejects. */
  refresh(): Promise<void> {
    const run = this.#chain.then(() => this.#resolveOnce()).catch((err: unknown) => {
      if (!this.#stopped) this.#fail((err as Error).message);
    });
    this.#chain = run;
    return run;
  }

  async #loop(): Promise<void> {
    await this.refresh();
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#loop(), this.#config.refreshMs);
    this.#timer.unref();
  }

  #adopt(): void {
    const from = this.#adoptFrom;
    if (from === undefined || from === this.#pool) return;
    for (const b of from.backends) {
      const o = discovered.get(b);
      if (o === undefined || o.removing || o.dnsName !== this.#config.name || o.port !== this.#config.port) continue;
      if (this.#pool.get(b.name) !== undefined) continue;
      this.#add({ url: b.url, name: b.name }, o.family, 'kept from the previous config', b);
    }
  }

  async #resolveOnce(): Promise<void> {
    if (this.#stopped) return;
    const name = this.#config.name;
    try {
      if (!(await this.#ensureServer())) return;
      const [v4, v6] = await Promise.all([this.#query(4), this.#query(6)]);
      if (this.#stopped) return;
      const failures = [v4, v6].flatMap((r, i) => (r.ok ? [] : [`${i === 0 ? 'A' : 'AAAA'}: ${r.error}`]));
      if (failures.length > 0) this.#fail(failures.join(', '));
      else if (this.#failing !== undefined) {
        this.#failing = undefined;
        this.#logger.info({ pool: this.#pool.name, dns: name }, 'DNS resolution works again');
      }
      this.#apply(new Map<Family, string[] | undefined>([
        [4, v4.ok ? v4.addresses : undefined],
        [6, v6.ok ? v6.addresses : undefined],
      ]));
    } finally {
      this.#sweep();
    }
  }

  /** A resolver named by host name is looked up (with the system's resolver) before the first query. */
  async #ensureServer(): Promise<boolean> {
    const pending = this.#pendingServer;
    if (pending === undefined) return true;
    try {
      const { address } = await lookup(pending.host);
      if (this.#stopped) return false;
      (this.#resolver as Resolver).setServers([formatServer(address, pending.port)]);
      this.#pendingServer = undefined;
      return true;
    } catch (err) {
      if (!this.#stopped) this.#fail(`cannot find the DNS server ${pending.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return false;
    }
  }

  async #query(family: Family): Promise<FamilyResult> {
    try {
      const addresses = family === 4
        ? await this.#resolver.resolve4(this.#config.name)
        : await this.#resolver.resolve6(this.#config.name);
      return { ok: true, addresses };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && EMPTY_CODES.has(code)) return { ok: true, addresses: [] };
      return { ok: false, error: code ?? (err as Error).message };
    }
  }

  #fail(error: string): void {
    if (this.#failing === error) return;
    this.#failing = error;
    this.#logger.warn({ pool: this.#pool.name, dns: this.#config.name, server: this.#config.server, error },
      'DNS resolution failed: keeping the current backends');
  }

  /** Make the discovered backends match the answer; `undefined` for a family means "keep it as it is". */
  #apply(answer: ReadonlyMap<Family, string[] | undefined>): void {
    const pool = this.#pool;
    const dns = this.#config.name;
    const wanted = new Map<string, { bc: Pick<BackendConfig, 'url' | 'name'>; family: Family }>();
    for (const [family, addresses] of answer) {
      for (const a of addresses ?? []) {
        const bc = dnsBackend(a, this.#config.port);
        if (bc !== undefined) wanted.set(bc.name, { bc, family });
      }
    }

    for (const [name, o] of this.#owned) {
      if (pool.get(name) !== o.backend) {
        // Someone else removed it: no longer ours.
        this.#owned.delete(name);
        continue;
      }
      if (o.removing || wanted.has(name) || answer.get(o.family) === undefined) continue;
      o.removing = true;
      o.drainedBefore = o.backend.drained;
      pool.transition(o.backend, 'drain', `removed from DNS (${dns})`);
      this.#logger.info({ pool: pool.name, backend: name, dns, inFlight: o.backend.inFlight }, 'backend gone from DNS: draining');
    }

    for (const [name, { bc, family }] of wanted) {
      const o = this.#owned.get(name);
      if (o !== undefined) {
        if (o.removing) {
          o.removing = false;
          if (!o.drainedBefore) pool.transition(o.backend, 'enable', 'back in DNS');
          this.#logger.info({ pool: pool.name, backend: name, dns }, 'backend back in DNS');
        }
        continue;
      }
      const other = pool.get(name) ?? pool.backends.find((b) => b.url === bc.url);
      if (other !== undefined) {
        if (!this.#skipped.has(name)) {
          this.#skipped.add(name);
          this.#logger.info({ pool: pool.name, backend: other.name, dns }, 'address in DNS is a static backend: left as it is');
        }
        continue;
      }
      this.#add(bc, family, 'found in DNS');
    }
  }

  /** `previous`: the same backend in the pool before a reload, whose state and counters it keeps. */
  #add(bc: Pick<BackendConfig, 'url' | 'name'>, family: Family, why: string, previous?: Backend): void {
    const pool = this.#pool;
    const backend = pool.add({ ...bc, weight: 1, backup: false }, previous);
    const o: Owned = { backend, family, dnsName: this.#config.name, port: this.#config.port, removing: false, drainedBefore: false };
    this.#owned.set(bc.name, o);
    discovered.set(backend, o);
    this.#logger.info({ pool: pool.name, backend: bc.name, url: bc.url, dns: this.#config.name }, `backend added: ${why}`);
  }

  /** Remove drained backends whose last request has ended; poll while some still have requests. */
  #sweep(): void {
    if (this.#stopped) return;
    let pending = false;
    for (const [name, o] of this.#owned) {
      if (!o.removing) continue;
      if (this.#pool.get(name) !== o.backend) {
        this.#owned.delete(name);
        continue;
      }
      if (o.backend.inFlight > 0) {
        pending = true;
        continue;
      }
      this.#owned.delete(name);
      this.#pool.remove(o.backend);
      this.#logger.info({ pool: this.#pool.name, backend: name, dns: this.#config.name }, 'backend removed: gone from DNS');
    }
    if (pending && this.#poll === undefined) {
      this.#poll = setInterval(() => this.#sweep(), this.#drainPollMs);
      this.#poll.unref();
    } else if (!pending && this.#poll !== undefined) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
  }
}
