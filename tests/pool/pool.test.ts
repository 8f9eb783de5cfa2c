/**
 * BackendPool alone: how a backend's state is derived from its conditions
 * (transition(), the one way in), which backends are available (backups,
 * panic), picks, in-flight counts, what reaches outlier detection, weights,
 * run-time membership and a reload's take-over. No sockets: nothing here
 * sends a request, and the clock is injected.
 */
import type { BackendState, StateEvent } from '../../src/pool/backend';
import { BackendPool } from '../../src/pool/pool';
import { backendLines, clock, poolConfig, recordingStrategy } from '../helpers/pools';

const pools: BackendPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function makePool(lines: string[], options: ConstructorParameters<typeof BackendPool>[1] = {}): BackendPool {
  const pool = new BackendPool(poolConfig(...lines), options);
  pools.push(pool);
  return pool;
}

function names(list: readonly { name: string }[]): string {
  return list.map((b) => b.name).join(' ');
}

function at(pool: BackendPool, name: string) {
  const b = pool.get(name);
  if (b === undefined) throw new Error(`no backend ${name}`);
  return b;
}

describe('state: derived from every condition, draining > ejected > down > up', () => {
  test.each<[StateEvent[], BackendState]>([
    [[], 'up'],
    [['health-down'], 'down'],
    [['health-down', 'health-up'], 'up'],
    [['eject'], 'ejected'],
    [['health-down', 'eject'], 'ejected'],
    [['eject', 'health-down', 'uneject'], 'down'],
    [['eject', 'uneject'], 'up'],
    [['drain'], 'draining'],
    [['drain', 'health-down', 'eject'], 'draining'],
    // A passing probe never cancels an admin drain.
    [['drain', 'health-down', 'health-up'], 'draining'],
    // "enable" hands the backend back to the health checker's verdict...
    [['health-down', 'drain', 'enable'], 'down'],
    // ...and to outlier detection's.
    [['eject', 'drain', 'enable'], 'ejected'],
    [['drain', 'enable'], 'up'],
  ])('%p → %s', (events, state) => {
    const pool = makePool(backendLines('a'));
    const a = at(pool, 'a');
    for (const e of events) pool.transition(a, e, e);
    expect(a.state).toBe(state);
    expect(a.deriveState()).toBe(state);
  });

  test('a change is told to listeners once, with its reason, and recorded at the pool clock', () => {
    const c = clock(5000);
    const pool = makePool(backendLines('ab'), { now: c.now });
    const seen: string[] = [];
    pool.onStateChange((b, from, to, reason) => seen.push(`${b.name} ${from}->${to} ${reason}`));
    const a = at(pool, 'a');

    expect(pool.transition(a, 'health-down', 'probe failed')).toBe(true);
    c.advance(250);
    expect(pool.transition(a, 'eject', 'too many 502')).toBe(true);
    // Conditions that do not change the derived state: no event, no history.
    expect(pool.transition(a, 'health-down', 'again')).toBe(false);
    expect(pool.transition(a, 'health-up', 'hidden under the ejection')).toBe(false);
    c.advance(250);
    expect(pool.transition(a, 'uneject', 'time over')).toBe(true);

    expect(seen).toEqual(['a up->down probe failed', 'a down->ejected too many 502', 'a ejected->up time over']);
    expect(a.history).toEqual([
      { time: 5000, from: 'up', to: 'down', reason: 'probe failed' },
      { time: 5250, from: 'down', to: 'ejected', reason: 'too many 502' },
      { time: 5500, from: 'ejected', to: 'up', reason: 'time over' },
    ]);
    expect(at(pool, 'b').history).toEqual([]);
  });

  test('setConditions() takes over another process\'s conditions through the same derivation', () => {
    const pool = makePool(backendLines('ab'));
    const seen: string[] = [];
    pool.onStateChange((b, from, to, reason) => seen.push(`${b.name} ${from}->${to} ${reason}`));
    const a = at(pool, 'a');
    pool.setConditions(a, { healthy: false, ejected: true, drained: false }, 'primary');
    pool.setConditions(a, { healthy: false, ejected: true, drained: false }, 'primary again');
    pool.setConditions(a, { healthy: false, ejected: false, drained: false }, 'primary: time over');
    expect(seen).toEqual(['a up->ejected primary', 'a ejected->down primary: time over']);
    expect(names(pool.available)).toBe('b');
  });
});

describe('available: up primaries, backups only when no primary is up', () => {
  // a, b primaries; c, d backups.
  const lines = backendLines('abcd', { c: 'backup: true', d: 'backup: true' });

  test.each<[string, Record<string, StateEvent>, string]>([
    ['all up', {}, 'a b'],
    ['a down', { a: 'health-down' }, 'b'],
    ['a ejected', { a: 'eject' }, 'b'],
    ['a drained', { a: 'drain' }, 'b'],
    ['no primary up: the backups', { a: 'health-down', b: 'drain' }, 'c d'],
    ['no primary up, one backup down', { a: 'eject', b: 'health-down', c: 'health-down' }, 'd'],
    ['nothing up', { a: 'health-down', b: 'health-down', c: 'eject', d: 'drain' }, ''],
    ['a backup down while primaries are up changes nothing', { c: 'health-down' }, 'a b'],
  ])('%s', (_what, events, expected) => {
    const pool = makePool(lines);
    for (const [name, e] of Object.entries(events)) pool.transition(at(pool, name), e, 'test');
    expect(names(pool.available)).toBe(expected);
    expect(Object.isFrozen(pool.available)).toBe(true);
  });

  test('one primary back takes over from the backups at once', () => {
    const pool = makePool(lines);
    pool.transition(at(pool, 'a'), 'health-down', 'test');
    pool.transition(at(pool, 'b'), 'health-down', 'test');
    expect(names(pool.available)).toBe('c d');
    pool.transition(at(pool, 'b'), 'health-up', 'test');
    expect(names(pool.available)).toBe('b');
  });
});

describe('panicThreshold: too few primaries up spreads over all of them but the drained', () => {
  test.each<[string, string[], Record<string, StateEvent>, string]>([
    ['off (0): only the survivor', [], { a: 'health-down', b: 'health-down', c: 'eject' }, 'd'],
    ['50% up is not below 50', ['panicThreshold: 50'], { a: 'health-down', b: 'eject' }, 'c d'],
    ['25% up is below 50: every primary', ['panicThreshold: 50'], { a: 'health-down', b: 'eject', c: 'health-down' }, 'a b c d'],
    ['never onto a drained one', ['panicThreshold: 50'], { a: 'drain', b: 'health-down', c: 'health-down' }, 'b c d'],
    ['none up, one drained', ['panicThreshold: 50'], { a: 'drain', b: 'health-down', c: 'health-down', d: 'eject' }, 'b c d'],
    ['75% up is below 80', ['panicThreshold: 80'], { a: 'health-down' }, 'a b c d'],
  ])('%s', (_what, extra, events, expected) => {
    const pool = makePool([...backendLines('abcd'), ...extra]);
    for (const [name, e] of Object.entries(events)) pool.transition(at(pool, name), e, 'test');
    expect(names(pool.available)).toBe(expected);
  });

  test('an up backup still takes over from zero primaries; below the threshold with one primary up, the backup stays out', () => {
    const pool = makePool([...backendLines('abcde', { e: 'backup: true' }), 'panicThreshold: 50']);
    for (const n of 'abc') pool.transition(at(pool, n), 'health-down', 'test');
    expect(names(pool.available)).toBe('a b c d');
    pool.transition(at(pool, 'd'), 'health-down', 'test');
    expect(names(pool.available)).toBe('e');
    pool.transition(at(pool, 'e'), 'eject', 'test');
    // No backup up either: panic over the primaries.
    expect(names(pool.available)).toBe('a b c d');
  });
});

describe('pick', () => {
  test('round-robin over the available set; undefined when nothing is available', () => {
    const pool = makePool(backendLines('abc'));
    const picks = () => Array.from({ length: 4 }, () => pool.pick({})?.name ?? '-').join(' ');
    expect(picks()).toBe('a b c a');
    for (const n of 'abc') pool.transition(at(pool, n), 'health-down', 'test');
    expect(pool.pick({})).toBeUndefined();
    expect(pool.pick({}, new Set([at(pool, 'a')]))).toBeUndefined();
  });

  test('a retry goes to a backend it has not tried, while there is one', () => {
    const pool = makePool(backendLines('abc'));
    const [a, b, c] = ['a', 'b', 'c'].map((n) => at(pool, n));
    for (let i = 0; i < 6; i++) expect(pool.pick({}, new Set([a!]))?.name).not.toBe('a');
    for (let i = 0; i < 6; i++) expect(pool.pick({}, new Set([a!, c!]))).toBe(b);
  });

  test('when every available backend was tried, a retry may go back to one', () => {
    const strategy = recordingStrategy();
    const pool = makePool(backendLines('abc'), { strategy });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => at(pool, n));
    pool.transition(c!, 'drain', 'test');
    // Tried a and b; c is drained: back to the first of the available ones.
    expect(pool.pick({}, new Set([a!, b!]))).toBe(a);
    expect(pool.pick({}, new Set([a!, b!, c!]))).toBe(a);
  });

  test('maxConnectionsPerBackend: a full backend is skipped; all full is undefined', () => {
    const pool = makePool([...backendLines('ab'), 'maxConnectionsPerBackend: 1']);
    const [a, b] = ['a', 'b'].map((n) => at(pool, n));
    pool.acquire(a!);
    expect([pool.pick({}), pool.pick({}), pool.pick({})]).toEqual([b, b, b]);
    pool.acquire(b!);
    expect(pool.pick({})).toBeUndefined();
    // A retry that tried b cannot go back to a full a.
    expect(pool.pick({}, new Set([b!]))).toBeUndefined();
    pool.release(a!, 3, undefined);
    expect(pool.pick({})).toBe(a);
    expect(pool.pick({}, new Set([a!]))).toBe(a);
  });

  test('maxConnectionsPerBackend 0 is unlimited', () => {
    const pool = makePool(backendLines('a'));
    const a = at(pool, 'a');
    for (let i = 0; i < 1000; i++) pool.acquire(a);
    expect(pool.pick({})).toBe(a);
    expect(a.inFlight).toBe(1000);
  });
});

describe('acquire and release', () => {
  test('in-flight, requests and failures counts; failures recorded at the pool clock', () => {
    const c = clock(10_000);
    const pool = makePool(backendLines('ab'), { now: c.now });
    const a = at(pool, 'a');
    pool.acquire(a);
    pool.acquire(a);
    expect([a.inFlight, a.requests, a.failures]).toEqual([2, 2, 0]);
    pool.release(a, 12, undefined);
    expect([a.inFlight, a.requests, a.failures]).toEqual([1, 2, 0]);
    c.advance(5);
    pool.release(a, undefined, 'connect-failure');
    expect([a.inFlight, a.requests, a.failures]).toEqual([0, 2, 1]);
    expect(a.recentFailures).toEqual([{ time: 10_005, reason: 'connect-failure' }]);
    expect(at(pool, 'b')).toMatchObject({ inFlight: 0, requests: 0, failures: 0 });
  });

  test('latencies feed the quantiles and the time-decayed average; no latency, no sample', () => {
    const c = clock(0);
    const pool = makePool(backendLines('a'), { now: c.now });
    const a = at(pool, 'a');
    expect(a.latencyQuantiles()).toBeNull();
    pool.acquire(a);
    pool.release(a, undefined, 'reset');
    expect(a.latencyQuantiles()).toBeNull();
    expect(a.latencyEwmaMs).toBe(0);

    c.set(1000);
    pool.acquire(a);
    pool.release(a, 100, undefined);
    expect(a.latencyEwmaMs).toBe(100); // the first sample is the average
    expect(a.lastLatencyAt).toBe(1000);
    c.set(11_000); // one decay constant (10 s) later
    pool.acquire(a);
    pool.release(a, 200, undefined);
    expect(a.latencyEwmaMs).toBeCloseTo(100 * Math.exp(-1) + 200 * (1 - Math.exp(-1)), 9);
    expect(a.latencyQuantiles()).toEqual({ p50: 200, p99: 200 });
  });

  test('what reaches outlier detection: every counted outcome, with its failure', () => {
    const pool = makePool(backendLines('ab'));
    const [a, b] = ['a', 'b'].map((n) => at(pool, n));
    const told: string[] = [];
    pool.onResult((backend, failure) => told.push(`${backend.name}:${failure ?? 'ok'}`));
    for (let i = 0; i < 6; i++) pool.acquire(i % 2 === 0 ? a! : b!);
    pool.release(a!, 5, undefined);
    pool.release(b!, 5, '502');
    pool.release(a!, undefined, 'connect-failure');
    // Not counted: the client left, or our own dispatcher closed (see exchange.ts).
    pool.release(b!, 5, undefined, false);
    pool.release(a!, undefined, undefined, false);
    pool.release(b!, undefined, 'reset');
    expect(told).toEqual(['a:ok', 'b:502', 'a:connect-failure', 'b:reset']);
    expect([a!.failures, b!.failures]).toEqual([1, 2]);

    pool.onResult(null);
    pool.acquire(a!);
    pool.release(a!, 5, '503');
    expect(told).toHaveLength(4);
  });
});

describe('weights', () => {
  test('setWeight sets both weights, tells listeners and rebuilds the schedule once', () => {
    const strategy = recordingStrategy();
    const pool = makePool(backendLines('ab', { b: 'weight: 2' }), { strategy });
    const heard: string[] = [];
    pool.onWeightChange((b, w) => heard.push(`${b.name}=${w}`));
    expect(strategy.updates).toEqual(['a:1 b:2']);
    const a = at(pool, 'a');
    pool.setWeight(a, 5);
    expect([a.configuredWeight, a.weight]).toEqual([5, 5]);
    expect(heard).toEqual(['a=5']);
    expect(strategy.updates).toEqual(['a:1 b:2', 'a:5 b:2']);
  });

  test('setEffectiveWeight (slow start) leaves the configured weight; the same weight rebuilds nothing', () => {
    const strategy = recordingStrategy();
    const pool = makePool(backendLines('ab', { a: 'weight: 10' }), { strategy });
    const heard: string[] = [];
    pool.onWeightChange((b, w) => heard.push(`${b.name}=${w}`));
    const a = at(pool, 'a');
    pool.setEffectiveWeight(a, 1);
    pool.setEffectiveWeight(a, 1);
    expect([a.configuredWeight, a.weight]).toEqual([10, 1]);
    expect(strategy.updates).toEqual(['a:10 b:1', 'a:1 b:1']);
    expect(heard).toEqual([]);
  });

  test('the schedule is rebuilt on each state change (even one that keeps the set), never for a no-op', () => {
    const strategy = recordingStrategy();
    const pool = makePool(backendLines('abc'), { strategy });
    const a = at(pool, 'a');
    pool.transition(a, 'health-down', 'test');
    pool.transition(a, 'health-down', 'test');
    pool.transition(a, 'eject', 'test'); // down → ejected: still out, but a state change
    pool.transition(at(pool, 'b'), 'health-up', 'test'); // already up
    pool.transition(a, 'uneject', 'test');
    pool.transition(a, 'health-up', 'test');
    expect(strategy.updates).toEqual(['a:1 b:1 c:1', 'b:1 c:1', 'b:1 c:1', 'b:1 c:1', 'a:1 b:1 c:1']);
  });

  test('the pool\'s own strategy follows the weights (smooth weighted round-robin)', () => {
    const pool = makePool(['strategy: weighted-round-robin', ...backendLines('ab')]);
    const picks = (n: number) => Array.from({ length: n }, () => pool.pick({})!.name).join(' ');
    expect(picks(4)).toBe('a b a b');
    pool.setWeight(at(pool, 'a'), 3);
    expect(picks(8)).toBe('a a b a a a b a');
  });
});

describe('membership at run time (DNS discovery)', () => {
  test('add: available at once, told once; the same name twice is the same backend', () => {
    const pool = makePool(backendLines('a'));
    const heard: string[] = [];
    pool.onMembership((b, change) => heard.push(`${b.name} ${change}`));
    const x = pool.add({ url: 'http://127.0.0.1:9100', name: 'x', weight: 1, backup: false });
    expect(pool.add({ url: 'http://127.0.0.1:9101', name: 'x', weight: 7, backup: false })).toBe(x);
    expect(x.url).toBe('http://127.0.0.1:9100');
    expect(pool.get('x')).toBe(x);
    expect(names(pool.backends)).toBe('a x');
    expect(names(pool.available)).toBe('a x');
    expect(heard).toEqual(['x added']);
  });

  test('remove: out of every list at once, told once, its connections closed', async () => {
    const pool = makePool(backendLines('abc'));
    const heard: string[] = [];
    pool.onMembership((b, change) => heard.push(`${b.name} ${change}`));
    const b = at(pool, 'b');
    const closed = jest.spyOn(b, 'close');
    pool.remove(b);
    pool.remove(b);
    expect(names(pool.backends)).toBe('a c');
    expect(names(pool.available)).toBe('a c');
    expect(pool.get('b')).toBeUndefined();
    expect(heard).toEqual(['b removed']);
    expect(closed).toHaveBeenCalledTimes(1);
    const picks = Array.from({ length: 4 }, () => pool.pick({})!.name);
    expect(picks).not.toContain('b');
  });
});

describe('reload: a backend that stays keeps its state and counters (SPEC section 6)', () => {
  const checked = [...backendLines('ab'), 'healthCheck: { interval: 1s }', 'outlierDetection: {}'];

  test('the same object when the new config allows it, with the new weight', () => {
    const before = makePool(checked);
    const a = at(before, 'a');
    before.transition(a, 'health-down', 'probe');
    before.acquire(a);
    const after = makePool([...backendLines('ab', { a: 'weight: 4' }), 'healthCheck: { interval: 1s }', 'outlierDetection: {}'], {
      previous: (n) => before.get(n),
    });
    expect(at(after, 'a')).toBe(a);
    expect(a).toMatchObject({ state: 'down', weight: 4, configuredWeight: 4, inFlight: 1, requests: 1 });
    expect(names(after.available)).toBe('b');
  });

  test('a new object that inherits them when the timeouts change', () => {
    const before = makePool(checked);
    const a = at(before, 'a');
    before.transition(a, 'eject', 'outliers');
    before.acquire(a);
    before.release(a, 9, '502');
    const after = makePool([...checked, 'timeouts: { connect: 1s }'], { previous: (n) => before.get(n) });
    const a2 = at(after, 'a');
    expect(a2).not.toBe(a);
    expect(a2).toMatchObject({ state: 'ejected', ejected: true, requests: 1, failures: 1, inFlight: 0 });
    expect(a2.history).toEqual(a.history);
    expect(a2.latencyQuantiles()).toEqual({ p50: 9, p99: 9 });
  });

  test('a condition whose source the new config turns off is lifted, with a reason', () => {
    const c = clock(42);
    const before = makePool(checked);
    before.transition(at(before, 'a'), 'health-down', 'probe');
    before.transition(at(before, 'b'), 'eject', 'outliers');
    const after = makePool(backendLines('ab'), { previous: (n) => before.get(n), now: c.now });
    expect(names(after.available)).toBe('a b');
    for (const n of ['a', 'b']) {
      expect(at(after, n).history.at(-1)).toEqual({
        time: 42, from: n === 'a' ? 'down' : 'ejected', to: 'up', reason: 'reload: its health checks or outlier detection are off',
      });
    }
  });
});
