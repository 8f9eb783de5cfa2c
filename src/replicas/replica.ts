import { hostname } from 'node:os';
import type Redis from 'ioredis';
import type { ClusterConfig } from '../config/types';
import type { Logger } from '../log';
import type { SharedBuckets } from '../proxy/rate-limit';
import type { AdminAction } from './actions';
import { ACTION_LUA, BUCKETS_LUA } from './scripts';
import type { ClusterJson, ReplicaJson } from '../admin/api-json';

/**
 * One replica of a cluster (SPEC section 10): its connection to Redis and
 * everything it shares through it. Admin actions are stored in one hash
 * (field: pool, backend, kind; value: what it sets, when, by whom) and
 * published for speed; a replica that starts, or finds Redis again, writes
 * the actions it took meanwhile (last write wins, by time) and reads
 * everyone's. Ejections are stored with their end time. Each replica writes
 * a heartbeat every second; one not seen for 5 s is gone.
 *
 * Redis is never on a request's path: the command client has no offline
 * queue and short timeouts, so a call fails at once while Redis is away, and
 * nothing that serves a request awaits one (rate limits settle in rounds, see
 * proxy/rate-limit.ts). In a Fulcrum with workers this lives in the primary;
 * workers reach it over the node:cluster channel (cluster/protocol.ts).
 */

/** What the replica needs from its Fulcrum. */
export interface ReplicaHost {
  readonly logger: Logger;
  /** The admin API's host:port, as other replicas' /api/cluster shows it. */
  adminAddress(): string;
  /** sha256 of the running config (see configHash). */
  configHash(): string;
  /** Apply an admin action another replica took (or this one, before a restart). */
  applyAction(a: AdminAction, origin: string | undefined): void;
  /** Eject a backend until `until` (epoch ms): another replica's ejection. */
  applyEjection(pool: string, backend: string, until: number, reason: string): void;
}

export type { ClusterJson, ReplicaJson } from '../admin/api-json';

interface StoredAction {
  readonly value: AdminAction['value'];
  /** Epoch ms: the last write wins. */
  readonly t: number;
  readonly by: string;
}

interface StoredEjection {
  readonly until: number;
  readonly reason: string;
  readonly by: string;
}

type Event =
  | { readonly type: 'action'; readonly field: string; readonly rec: StoredAction }
  | { readonly type: 'eject'; readonly field: string; readonly rec: StoredEjection };

const HEARTBEAT_MS = 1000;
/** SPEC section 10: a replica that stops heart-beating is gone within 5 s. */
const GONE_MS = 5000;
/** Heartbeats older than this are deleted from Redis (a replica that is gone for good). */
const FORGET_MS = 10 * 60_000;
/** No Redis call may hold anything up for longer (it is never a request's). */
const COMMAND_TIMEOUT_MS = 500;
/** Keys of one rate-limit round per script call. */
const BUCKET_CHUNK = 500;

type BucketsCommand = (numKeys: number, ...args: (string | number)[]) => Promise<string[]>;
type ActionCommand = (...args: (string | number)[]) => Promise<number>;

export class Replica implements SharedBuckets {
  /** This replica's name. */
  readonly name: string;
  readonly config: ClusterConfig;
  readonly #host: ReplicaHost;
  readonly #version: string;
  readonly #prefix: string;
  readonly #redis: Redis;
  readonly #sub: Redis;
  #up = false;
  /** Whether the catch-up after (re)connecting has run. */
  #caughtUp = false;
  /** The warn line for a lost Redis is written once per loss. */
  #lostLogged = false;
  #everUp = false;
  #stopped = false;
  readonly #heartbeat: NodeJS.Timeout;
  /** The newest record of each action field, this replica's or another's. */
  readonly #known = new Map<string, StoredAction>();
  /** This replica's records not yet written (Redis was away). */
  readonly #unsent = new Set<string>();
  /** Ejections decided here that still stand, to write after an outage. */
  readonly #ejections = new Map<string, StoredEjection>();
  /** The replicas as of the last heartbeat. */
  #replicas: ReplicaJson[] = [];

  constructor(config: ClusterConfig, host: ReplicaHost, version: string) {
    this.config = config;
    this.name = config.replica ?? `${hostname()}:${process.pid}`;
    this.#host = host;
    this.#version = version;
    this.#prefix = `fulcrum:${config.name}:`;
    const common = {
      connectTimeout: 1000,
      // Reconnect for ever, at most a second apart: a replica always comes back to its cluster.
      retryStrategy: (times: number) => Math.min(50 * times, 1000),
      lazyConnect: true,
    };
    const RedisClient = redisClass();
    this.#redis = new RedisClient(config.redis, {
      ...common,
      // Fail at once while Redis is away: nothing waits for it (SPEC section 10).
      enableOfflineQueue: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
    });
    this.#redis.defineCommand('fulcrumBuckets', { lua: BUCKETS_LUA });
    this.#redis.defineCommand('fulcrumAction', { lua: ACTION_LUA, numberOfKeys: 2 });
    // Subscribing waits for the connection: its queue holds the one SUBSCRIBE, never a request's command.
    this.#sub = new RedisClient(config.redis, { ...common, autoResubscribe: true, maxRetriesPerRequest: null });
    this.#redis.on('error', () => undefined);
    this.#sub.on('error', () => undefined);
    this.#redis.on('ready', () => {
      this.#caughtUp = false;
      void this.#beat();
    });
    this.#redis.on('close', () => this.#setUp(false));
    this.#sub.on('ready', () => {
      // Events published while the subscriber was away are in the hashes: read them again.
      this.#caughtUp = false;
    });
    this.#sub.on('message', (_channel: string, text: string) => this.#onEvent(text));
    this.#heartbeat = setInterval(() => void this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  /** Connect (in the background: a replica serves whether or not Redis answers). */
  start(): void {
    this.#redis.connect().catch(() => this.#lost());
    this.#sub.connect().catch(() => undefined);
    this.#sub.subscribe(this.#key('events')).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    this.#redis.disconnect();
    this.#sub.disconnect();
  }

  get redisUp(): boolean {
    return this.#up;
  }

  /** Replicas alive (heard from within 5 s), this one included. */
  alive(): number {
    return this.json().replicas.length;
  }

  json(): ClusterJson {
    const now = Date.now();
    const self = this.#self(now);
    const replicas = [self, ...this.#replicas.filter((r) => r.name !== this.name && now - r.lastSeen <= GONE_MS)]
      .sort((a, b) => a.name.localeCompare(b.name));
    const agree = replicas.every((r) => r.configHash === self.configHash);
    return { name: this.config.name, redis: this.#up ? 'up' : 'down', replicas, ...(agree ? {} : { configsAgree: false as const }) };
  }

  /** An admin action taken on this replica: stored and published now, or when Redis is back. */
  share(a: AdminAction): void {
    const field = JSON.stringify([a.pool, a.backend, a.kind]);
    this.#known.set(field, { value: a.value, t: Date.now(), by: this.name });
    this.#unsent.add(field);
    if (this.#up) void this.#write(field);
  }

  /** The actions that stand now, by field (a reload writes "as the file says" over some of them). */
  standing(): AdminAction[] {
    return [...this.#known].map(([field, rec]) => {
      const [pool, backend, kind] = JSON.parse(field) as [string, string, AdminAction['kind']];
      return { kind, pool, backend, value: rec.value } as AdminAction;
    });
  }

  /** An ejection decided here (`outlierDetection.scope: cluster`): every replica applies it until `until`. */
  shareEjection(pool: string, backend: string, until: number, reason: string): void {
    const field = JSON.stringify([pool, backend]);
    const rec: StoredEjection = { until, reason, by: this.name };
    this.#ejections.set(field, rec);
    if (this.#up) void this.#writeEjection(field, rec);
  }

  /** SharedBuckets (rateLimit.scope cluster): one script call per round and chunk, atomic in Redis. */
  async settle(bucketSet: string, ratePerMs: number, burst: number, keys: readonly string[], used: readonly number[]): Promise<readonly number[] | undefined> {
    if (!this.#up) return undefined;
    const prefix = this.#key(`rl:${bucketSet}:`);
    // A bucket idle long enough to be full again is the same as none.
    const ttl = Math.ceil(burst / ratePerMs) + 1000;
    const run = (this.#redis as unknown as { fulcrumBuckets: BucketsCommand }).fulcrumBuckets;
    try {
      const out: number[] = [];
      for (let i = 0; i < keys.length; i += BUCKET_CHUNK) {
        const ks = keys.slice(i, i + BUCKET_CHUNK);
        const left = await run.call(this.#redis, ks.length, ...ks.map((k) => prefix + k), ratePerMs, burst, ttl, ...used.slice(i, i + BUCKET_CHUNK));
        for (const v of left) out.push(Number(v));
      }
      return out;
    } catch {
      return undefined;
    }
  }

  #key(name: string): string {
    return this.#prefix + name;
  }

  #self(now: number): ReplicaJson {
    return { name: this.name, address: this.#host.adminAddress(), lastSeen: now, version: this.#version, configHash: this.#host.configHash() };
  }

  #setUp(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    if (up) {
      const fields = { redis: 'up', cluster: this.config.name, replica: this.name };
      if (this.#everUp || this.#lostLogged) this.#host.logger.info(fields, 'cluster: Redis is back: sharing state again');
      else this.#host.logger.info(fields, 'cluster: connected to Redis');
      this.#everUp = true;
      this.#lostLogged = false;
    } else {
      this.#caughtUp = false;
      this.#lost();
    }
  }

  /** One warn line per loss (at start or later); Redis's own retries say nothing more. */
  #lost(): void {
    if (this.#lostLogged || this.#stopped) return;
    this.#lostLogged = true;
    this.#host.logger.warn({ redis: 'down', cluster: this.config.name, replica: this.name }, 'cluster: Redis is lost: serving with local state');
  }

  /** Every second: this replica's heartbeat, everyone's, and the catch-up when one is due. */
  async #beat(): Promise<void> {
    if (this.#stopped || this.#redis.status !== 'ready') return;
    const now = Date.now();
    try {
      const res = await this.#redis.multi()
        .hset(this.#key('replicas'), this.name, JSON.stringify(this.#self(now)))
        .hgetall(this.#key('replicas'))
        .exec();
      const all = (res?.[1]?.[1] ?? {}) as Record<string, string>;
      const replicas: ReplicaJson[] = [];
      const forget: string[] = [];
      for (const [name, text] of Object.entries(all)) {
        const r = parseJson<ReplicaJson>(text);
        if (r === undefined || now - r.lastSeen > FORGET_MS) forget.push(name);
        else replicas.push(r);
      }
      this.#replicas = replicas;
      if (forget.length > 0) await this.#redis.hdel(this.#key('replicas'), ...forget);
      this.#setUp(true);
      if (!this.#caughtUp) await this.#catchUp();
      // A write that failed while Redis was up (a timeout) is tried again here.
      else for (const field of [...this.#unsent]) await this.#write(field);
    } catch {
      // Gone, or there but not answering in time (stopped, overloaded): down either way until a heartbeat passes.
      this.#setUp(false);
    }
  }

  /**
   * After (re)connecting: write what was decided here meanwhile (the script
   * keeps whichever write is newer), then read everyone's.
   */
  async #catchUp(): Promise<void> {
    for (const field of [...this.#unsent]) await this.#write(field);
    const now = Date.now();
    for (const [field, rec] of this.#ejections) {
      if (rec.until > now) await this.#writeEjection(field, rec);
      else this.#ejections.delete(field);
    }
    const actions = await this.#redis.hgetall(this.#key('actions'));
    for (const [field, text] of Object.entries(actions)) {
      const rec = parseJson<StoredAction>(text);
      if (rec !== undefined) this.#receiveAction(field, rec);
    }
    const ejections = await this.#redis.hgetall(this.#key('ejections'));
    const over: string[] = [];
    for (const [field, text] of Object.entries(ejections)) {
      const rec = parseJson<StoredEjection>(text);
      if (rec === undefined || rec.until <= now) over.push(field);
      else this.#receiveEjection(field, rec);
    }
    if (over.length > 0) await this.#redis.hdel(this.#key('ejections'), ...over);
    this.#caughtUp = true;
  }

  async #write(field: string): Promise<void> {
    const rec = this.#known.get(field);
    if (rec === undefined) return;
    const run = (this.#redis as unknown as { fulcrumAction: ActionCommand }).fulcrumAction;
    const event: Event = { type: 'action', field, rec };
    try {
      await run.call(this.#redis, this.#key('actions'), this.#key('events'), field, JSON.stringify(rec), rec.t, JSON.stringify(event));
      if (this.#known.get(field) === rec) this.#unsent.delete(field);
    } catch {
      // Still unsent: written at the next catch-up.
    }
  }

  async #writeEjection(field: string, rec: StoredEjection): Promise<void> {
    const event: Event = { type: 'eject', field, rec };
    try {
      await this.#redis.multi()
        .hset(this.#key('ejections'), field, JSON.stringify(rec))
        .publish(this.#key('events'), JSON.stringify(event))
        .exec();
    } catch {
      // Written at the next catch-up while it stands.
    }
  }

  #onEvent(text: string): void {
    const e = parseJson<Event>(text);
    if (e === undefined) return;
    if (e.type === 'action') this.#receiveAction(e.field, e.rec);
    else if (e.rec.by !== this.name) this.#receiveEjection(e.field, e.rec);
  }

  #receiveAction(field: string, rec: StoredAction): void {
    const cur = this.#known.get(field);
    if (cur !== undefined && cur.t >= rec.t) return;
    const parsed = parseJson<[string, string, AdminAction['kind']]>(field);
    if (parsed === undefined) return;
    this.#known.set(field, rec);
    this.#unsent.delete(field);
    const [pool, backend, kind] = parsed;
    this.#host.applyAction({ kind, pool, backend, value: rec.value } as AdminAction, rec.by === this.name ? undefined : rec.by);
  }

  #receiveEjection(field: string, rec: StoredEjection): void {
    const parsed = parseJson<[string, string]>(field);
    if (parsed === undefined || rec.until <= Date.now()) return;
    this.#host.applyEjection(parsed[0], parsed[1], rec.until, `ejected by replica ${rec.by} until ${new Date(rec.until).toISOString()}: ${rec.reason}`);
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/**
 * ioredis and its dependencies (about 60 modules, some 10 MB of RSS) are
 * loaded by the first replica: a Fulcrum without `cluster` never loads them.
 */
function redisClass(): typeof Redis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('ioredis') as typeof import('ioredis')).default;
}
