/** The dashboard's history (src/metrics/history.ts): deltas into ring buffers, p99 from bucket deltas, sums over workers. */
import { DURATION_BUCKETS } from '../../src/metrics';
import { HISTORY_WINDOW_MS, TrafficHistory, quantileMs, sumTraffic, type TrafficSnapshot } from '../../src/metrics/history';

const buckets = (at: number, n: number) => DURATION_BUCKETS.map((_, i) => (i === at ? n : 0)).concat([0]);

function snap(requests: number, errors: number, bucketAt = 2): TrafficSnapshot {
  return {
    backends: [
      { pool: 'web', backend: 'a', requests, errors, buckets: buckets(bucketAt, requests) },
      { pool: 'web', backend: '', requests: Math.floor(requests / 50), errors: Math.floor(requests / 50), buckets: buckets(0, Math.floor(requests / 50)) },
    ],
    listeners: [{ listener: 'public', codes: [0, requests - errors, 0, 0, errors + Math.floor(requests / 50)] }],
  };
}

const names = { pools: [{ name: 'web', backends: ['a', 'b'] }], listeners: ['public'] };

describe('TrafficHistory', () => {
  test('rates, error share and p99 per interval, for the pool and each backend; null where nothing happened', async () => {
    const snaps = [snap(0, 0), snap(100, 10), snap(100, 10), snap(150, 10, 5)];
    let clock = 1_000_000;
    const h = new TrafficHistory(() => snaps.shift()!, () => names, 1000, () => clock);
    for (let i = 0; i < 4; i++) {
      await h.sample();
      clock += 1000;
    }
    const j = h.json();
    expect(j.times).toHaveLength(3);
    expect(j.windowMs).toBe(HISTORY_WINDOW_MS);
    const [pool] = j.pools;
    const a = pool!.backends.find((b) => b.name === 'a')!;
    const b = pool!.backends.find((x) => x.name === 'b')!;
    // 100 requests, then none, then 50, a second apart.
    expect(a.requestRate).toEqual([100, 0, 50]);
    expect(a.errorRate).toEqual([10, null, 0]);
    // Every one of a's observations fell in bucket 2 (5 ms], then bucket 5 (50 ms].
    expect(a.p99Ms[0]).toBeGreaterThan(2.5);
    expect(a.p99Ms[0]).toBeLessThanOrEqual(5);
    expect(a.p99Ms[1]).toBeNull();
    expect(a.p99Ms[2]).toBeGreaterThan(25);
    // b never answered; the pool also counts Fulcrum's own answers (backend ""): 2 more 5xx in the first interval.
    expect(b.requestRate).toEqual([0, 0, 0]);
    expect(pool!.errorRate[0]).toBeCloseTo((12 * 100) / 102, 1);
    expect(j.listeners[0]!.codes['5xx'][0]! > 0 && j.listeners[0]!.codes['2xx'][1] === 0).toBe(true);
  });

  test('a counter that goes down (a worker replaced) counts from zero again; removed backends are let go; the ring is bounded', async () => {
    const seq = [snap(100, 0), snap(30, 0)];
    let current = seq[0]!;
    let ns = names;
    let clock = 1_000_000;
    const h = new TrafficHistory(() => current, () => ns, HISTORY_WINDOW_MS / 3, () => clock);
    await h.sample();
    current = seq[1]!;
    clock += 1000;
    await h.sample();
    const a = h.json().pools[0]!.backends[0]!;
    expect(a.requestRate[0]).toBe(30); // 30 new in a second, not -70
    ns = { pools: [{ name: 'web', backends: ['a'] }], listeners: [] };
    for (let i = 0; i < 5; i++) {
      clock += 1000;
      await h.sample();
    }
    const j = h.json();
    expect(j.times).toHaveLength(3); // 15 min / 5 min
    expect(j.pools[0]!.backends.map((x) => x.name)).toEqual(['a']);
    expect(j.listeners).toEqual([]);
  });

  test('sums over workers and quantiles over buckets', () => {
    const sum = sumTraffic([snap(10, 1), snap(5, 0)]);
    expect(sum.backends.find((b) => b.backend === 'a')).toMatchObject({ requests: 15, errors: 1 });
    expect(sum.backends.find((b) => b.backend === '')).toMatchObject({ requests: 0, errors: 0 });
    expect(sum.listeners).toEqual([{ listener: 'public', codes: [0, 14, 0, 0, 1] }]);
    expect(quantileMs(0.99, buckets(0, 0))).toBeNull();
    // 100 observations in (1, 2.5] ms: p99 interpolates to 1 + 1.5 * 0.99.
    expect(quantileMs(0.99, buckets(1, 100))).toBeCloseTo(1 + 1.5 * 0.99, 6);
    // Beyond the last bound: the last bound, as Prometheus answers.
    expect(quantileMs(0.99, DURATION_BUCKETS.map(() => 0).concat([7]))).toBe(10_000);
  });
});
