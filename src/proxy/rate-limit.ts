import type { ProxyRequest } from './message';
import type { RateLimitConfig } from '../config/types';

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  last: number;
}

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

  constructor(config: RateLimitConfig, now: () => number = () => performance.now()) {
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
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate / 1000));
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
  }

  #evict(): void {
    let n = Math.ceil(MAX_BUCKETS / 10);
    for (const k of this.#buckets.keys()) {
      this.#buckets.delete(k);
      if (--n === 0) break;
    }
  }
}
