import type { HistoryJson, HistorySeriesJson, StatusClassJson } from '../admin/api-json';
import { DURATION_BUCKETS } from './index';

/**
 * The dashboard's charts (SPEC section 12): request rate, error rate and p99
 * latency per pool and per backend, and the status-code mix per listener,
 * over the last 15 minutes. Kept in Fulcrum, so a page reload (or a second
 * browser) sees the same history: every `intervalMs` the cumulative figures
 * of the request metrics are read and the change since the last sample goes
 * into fixed-size ring buffers (memory bounded by the number of series, never
 * by traffic). With workers the primary samples the sums over its workers,
 * as /metrics does.
 */

export const HISTORY_WINDOW_MS = 15 * 60_000;
export const HISTORY_INTERVAL_MS = 5000;
export const STATUS_CLASSES: readonly StatusClassJson[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** One (pool, backend) pair's figures since start, summed over listeners; backend "" is Fulcrum's own answers. */
export interface BackendTraffic {
  readonly pool: string;
  readonly backend: string;
  readonly requests: number;
  /** Answers with a 5xx status. */
  readonly errors: number;
  /** Latency observations per bucket of DURATION_BUCKETS (not cumulative; the last is +Inf). */
  readonly buckets: readonly number[];
}

/** Cumulative figures of one process (or the sum over workers). */
export interface TrafficSnapshot {
  readonly backends: readonly BackendTraffic[];
  /** Requests per listener by status class, 1xx..5xx. */
  readonly listeners: readonly { readonly listener: string; readonly codes: readonly number[] }[];
}

/** The snapshots of several workers as one. */
export function sumTraffic(snaps: readonly TrafficSnapshot[]): TrafficSnapshot {
  const backends = new Map<string, { pool: string; backend: string; requests: number; errors: number; buckets: number[] }>();
  const listeners = new Map<string, number[]>();
  for (const s of snaps) {
    for (const b of s.backends) {
      const key = `${b.pool}\n${b.backend}`;
      let acc = backends.get(key);
      if (acc === undefined) backends.set(key, (acc = { pool: b.pool, backend: b.backend, requests: 0, errors: 0, buckets: b.buckets.map(() => 0) }));
      acc.requests += b.requests;
      acc.errors += b.errors;
      for (let i = 0; i < acc.buckets.length; i++) acc.buckets[i]! += b.buckets[i] ?? 0;
    }
    for (const l of s.listeners) {
      const acc = listeners.get(l.listener) ?? STATUS_CLASSES.map(() => 0);
      for (let i = 0; i < acc.length; i++) acc[i]! += l.codes[i] ?? 0;
      listeners.set(l.listener, acc);
    }
  }
  return { backends: [...backends.values()], listeners: [...listeners].map(([listener, codes]) => ({ listener, codes })) };
}

/** Prometheus' histogram_quantile over one interval's bucket counts, in ms; null without observations. */
export function quantileMs(q: number, counts: readonly number[], bounds: readonly number[] = DURATION_BUCKETS): number | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (below + c >= rank && c > 0) {
      // Past the last bound (+Inf) the best estimate is the last bound, as Prometheus says.
      if (i >= bounds.length) return bounds[bounds.length - 1]! * 1000;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return (lower + (bounds[i]! - lower) * ((rank - below) / c)) * 1000;
    }
    below += c;
  }
  return bounds[bounds.length - 1]! * 1000;
}

/** Configured names: what the charts show (series of removed pools and backends are let go). */
export interface HistoryNames {
  readonly pools: readonly { readonly name: string; readonly backends: readonly string[] }[];
  readonly listeners: readonly string[];
}

/** Three rings of one pool or backend. NaN is "no value" (null in the JSON). */
interface Rings {
  readonly rate: Float64Array;
  readonly err: Float64Array;
  readonly p99: Float64Array;
}

const round = (v: number) => (Number.isNaN(v) ? null : Math.round(v * 1000) / 1000);

export class TrafficHistory {
  readonly intervalMs: number;
  readonly #size: number;
  readonly #source: () => TrafficSnapshot | Promise<TrafficSnapshot>;
  readonly #names: () => HistoryNames;
  readonly #times: Float64Array;
  /** "pool\n" for a pool's total, "pool\nbackend" for a backend. */
  readonly #series = new Map<string, Rings>();
  /** listener → one ring per status class (requests per second). */
  readonly #codes = new Map<string, Float64Array[]>();
  /** Next slot to write; #count slots hold samples. */
  #head = 0;
  #count = 0;
  #last: { time: number; snap: TrafficSnapshot } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;

  /** Epoch ms (tests give their own clock). */
  readonly #now: () => number;

  constructor(source: () => TrafficSnapshot | Promise<TrafficSnapshot>, names: () => HistoryNames, intervalMs = HISTORY_INTERVAL_MS, now: () => number = Date.now) {
    this.intervalMs = intervalMs;
    this.#now = now;
    this.#size = Math.max(2, Math.ceil(HISTORY_WINDOW_MS / intervalMs));
    this.#source = source;
    this.#names = names;
    this.#times = new Float64Array(this.#size);
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Read the figures now; the change since the last sample becomes one point. */
  async sample(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const snap = await this.#source();
      const time = this.#now();
      const last = this.#last;
      this.#last = { time, snap };
      if (last !== undefined && time > last.time) this.#push(time, (time - last.time) / 1000, last.snap, snap);
    } finally {
      this.#sampling = false;
    }
  }

  #push(time: number, seconds: number, before: TrafficSnapshot, now: TrafficSnapshot): void {
    const slot = this.#head;
    this.#times[slot] = time;
    const names = this.#names();
    const was = new Map(before.backends.map((b) => [`${b.pool}\n${b.backend}`, b]));
    const live = new Set<string>();
    // A counter that went down (a worker restarted) counts from zero again.
    const delta = (a: number, b: number | undefined) => (b === undefined || a < b ? a : a - b);
    const byKey = new Map<string, { requests: number; errors: number; buckets: number[] }>();
    const add = (key: string, requests: number, errors: number, buckets: readonly number[]) => {
      let acc = byKey.get(key);
      if (acc === undefined) byKey.set(key, (acc = { requests: 0, errors: 0, buckets: buckets.map(() => 0) }));
      acc.requests += requests;
      acc.errors += errors;
      for (let i = 0; i < buckets.length; i++) acc.buckets[i]! += buckets[i]!;
    };
    for (const b of now.backends) {
      const p = was.get(`${b.pool}\n${b.backend}`);
      const buckets = b.buckets.map((c, i) => delta(c, p?.buckets[i]));
      const requests = delta(b.requests, p?.requests);
      const errors = delta(b.errors, p?.errors);
      add(`${b.pool}\n`, requests, errors, buckets);
      if (b.backend !== '') add(`${b.pool}\n${b.backend}`, requests, errors, buckets);
    }
    for (const pool of names.pools) {
      for (const key of [`${pool.name}\n`, ...pool.backends.map((b) => `${pool.name}\n${b}`)]) {
        live.add(key);
        const rings = this.#rings(key);
        const d = byKey.get(key);
        rings.rate[slot] = d === undefined ? 0 : d.requests / seconds;
        rings.err[slot] = d === undefined || d.requests === 0 ? NaN : (d.errors * 100) / d.requests;
        rings.p99[slot] = d === undefined ? NaN : quantileMs(0.99, d.buckets) ?? NaN;
      }
    }
    for (const key of [...this.#series.keys()]) if (!live.has(key)) this.#series.delete(key);

    const codesBefore = new Map(before.listeners.map((l) => [l.listener, l.codes]));
    const codesNow = new Map(now.listeners.map((l) => [l.listener, l.codes]));
    for (const name of names.listeners) {
      let rings = this.#codes.get(name);
      if (rings === undefined) this.#codes.set(name, (rings = STATUS_CLASSES.map(() => new Float64Array(this.#size).fill(NaN))));
      const c = codesNow.get(name);
      const p = codesBefore.get(name);
      for (let i = 0; i < rings.length; i++) rings[i]![slot] = c === undefined ? 0 : delta(c[i] ?? 0, p?.[i]) / seconds;
    }
    for (const name of [...this.#codes.keys()]) if (!names.listeners.includes(name)) this.#codes.delete(name);

    this.#head = (slot + 1) % this.#size;
    this.#count = Math.min(this.#count + 1, this.#size);
  }

  #rings(key: string): Rings {
    let r = this.#series.get(key);
    if (r === undefined) {
      const ring = () => new Float64Array(this.#size).fill(NaN);
      r = { rate: ring(), err: ring(), p99: ring() };
      this.#series.set(key, r);
    }
    return r;
  }

  /** Oldest sample first. */
  #read(ring: Float64Array): (number | null)[] {
    const out: (number | null)[] = [];
    const start = (this.#head - this.#count + this.#size) % this.#size;
    for (let i = 0; i < this.#count; i++) out.push(round(ring[(start + i) % this.#size]!));
    return out;
  }

  #seriesJson(key: string): HistorySeriesJson {
    const r = this.#series.get(key);
    if (r === undefined) {
      const none = Array<null>(this.#count).fill(null);
      return { requestRate: none, errorRate: none, p99Ms: none };
    }
    return { requestRate: this.#read(r.rate), errorRate: this.#read(r.err), p99Ms: this.#read(r.p99) };
  }

  /** `GET /api/history`. */
  json(): HistoryJson {
    const names = this.#names();
    const start = (this.#head - this.#count + this.#size) % this.#size;
    const times: number[] = [];
    for (let i = 0; i < this.#count; i++) times.push(this.#times[(start + i) % this.#size]!);
    return {
      intervalMs: this.intervalMs,
      windowMs: HISTORY_WINDOW_MS,
      times,
      pools: names.pools.map((p) => ({
        name: p.name,
        ...this.#seriesJson(`${p.name}\n`),
        backends: p.backends.map((b) => ({ name: b, ...this.#seriesJson(`${p.name}\n${b}`) })),
      })),
      listeners: names.listeners.map((name) => {
        const rings = this.#codes.get(name);
        const codes = {} as Record<StatusClassJson, (number | null)[]>;
        STATUS_CLASSES.forEach((c, i) => (codes[c] = rings === undefined ? Array<null>(this.#count).fill(null) : this.#read(rings[i]!)));
        return { name, codes };
      }),
    };
  }
}
