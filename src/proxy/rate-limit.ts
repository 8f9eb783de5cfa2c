import type { ProxyRequest } from './message';
import type { RateLimitConfig } from '../config/types';

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  last: number;
}

/**
 * SPEC section 10, `rateLimit.scope: cluster`: one bucket per key for every
 * replica and worker together, kept in Redis (src/replicas/). `settle` takes
 * the tokens this process used per key since its last round and answers each
 * key's tokens left in the cluster bucket, or undefined when Redis cannot
 * answer now (the local buckets go on alone).
 */
export interface SharedBuckets {
  settle(bucketSet: string, ratePerMs: number, burst: number, keys: readonly string[], used: readonly number[]): Promise<readonly number[] | undefined>;
}

/** SPEC section 10: replicas sync in rounds of at most 100 ms. */
export const SYNC_ROUND_MS = 50;

/** Enough distinct clients for any real listener; a flood of addresses beyond it evicts the oldest. */
const MAX_BUCKETS = 100_000;

/**
 * Token bucket per key (client address or a header): `burst` tokens, refilled
 * at `requestsPerSecond`. Memory stays bounded two ways: a bucket that has
 * been idle long enough to be full again is the same as no bucket, so a sweep
 * drops it; and past MAX_BUCKETS the oldest buckets are evicted (Map keeps
 * insertion order), so a flood of distinct addresses cannot grow it.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #keyOf: (req: ProxyRequest, ip: string) => string;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #idleMs: number;
  readonly #sweeper: NodeJS.Timeout;
  /** Cluster scope only (null otherwise: the hot path pays one null check). */
  readonly #shared: { readonly buckets: SharedBuckets; readonly set: string; readonly used: Map<string, number>; readonly timer: NodeJS.Timeout; busy: boolean } | null = null;

  /**
   * `shared`: with `scope: cluster`, where the cluster's buckets are and this
   * limiter's name among them (its listener). Decisions stay local and never
   * wait: every round the tokens used here go to the cluster bucket, and the
   * local bucket becomes what is left there, less what was used meanwhile.
   */
  constructor(config: RateLimitConfig, now: () => number = () => performance.now(), shared?: { buckets: SharedBuckets; set: string }) {
    this.#rate = config.requestsPerSecond / 1000;
    this.#burst = config.burst;
    this.#now = now;
    const key = config.key;
    this.#keyOf = key.kind === 'ip'
      ? (_req, ip) => ip
      : (req, ip) => {
        const v = req.headers[key.name];
        // Without the header, clients are told apart by address.
        return v === undefined ? `ip:${ip}` : `h:${Array.isArray(v) ? v.join(',') : v}`;
      };
    this.#idleMs = Math.ceil(this.#burst / this.#rate);
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, this.#idleMs)));
    this.#sweeper.unref();
    if (shared !== undefined && config.scope === 'cluster') {
      const timer = setInterval(() => void this.#sync(), SYNC_ROUND_MS);
      timer.unref();
      this.#shared = { buckets: shared.buckets, set: shared.set, used: new Map(), timer, busy: false };
    }
  }

  /** 0 when the request may pass, else the seconds to wait (for Retry-After). */
  take(req: ProxyRequest, ip: string): number {
    const key = this.#keyOf(req, ip);
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#evict();
      b = { tokens: this.#burst, last: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.last) * this.#rate);
      b.last = now;
    }
    const shared = this.#shared;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      if (shared !== null) shared.used.set(key, (shared.used.get(key) ?? 0) + 1);
      return 0;
    }
    // A refused key is synced too: it learns when the cluster bucket refills.
    if (shared !== null && !shared.used.has(key)) shared.used.set(key, 0);
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate / 1000));
  }

  /**
   * One round: hand the tokens used here to the cluster bucket, then set each
   * local bucket to what the cluster has left, less what was used here while
   * the answer was on its way. Rounds do not overlap: a slow Redis skips rounds.
   */
  async #sync(): Promise<void> {
    const shared = this.#shared!;
    if (shared.busy || shared.used.size === 0) return;
    shared.busy = true;
    const keys = [...shared.used.keys()];
    const used = keys.map((k) => shared.used.get(k)!);
    shared.used.clear();
    try {
      const left = await shared.buckets.settle(shared.set, this.#rate, this.#burst, keys, used);
      if (left === undefined) return;
      const now = this.#now();
      keys.forEach((k, i) => {
        const b = this.#buckets.get(k);
        if (b === undefined) return;
        b.tokens = Math.min(this.#burst, left[i]! - (shared.used.get(k) ?? 0));
        b.last = now;
      });
    } finally {
      shared.busy = false;
    }
  }

  /** Drop buckets that have refilled completely: they hold no information. */
  sweep(): void {
    const cutoff = this.#now() - this.#idleMs;
    for (const [k, b] of this.#buckets) if (b.last <= cutoff) this.#buckets.delete(k);
  }

  get size(): number {
    return this.#buckets.size;
  }

  stop(): void {
    clearInterval(this.#sweeper);
    if (this.#shared !== null) clearInterval(this.#shared.timer);
  }

  #evict(): void {
    let n = Math.ceil(MAX_BUCKETS / 10);
    for (const k of this.#buckets.keys()) {
      this.#buckets.delete(k);
      if (--n === 0) break;
    }
  }
}
