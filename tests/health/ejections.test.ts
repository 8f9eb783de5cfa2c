/**
 * Ejections alone: the timers that carry outlier ejections out and let the
 * backend back. They belong to the Fulcrum, not to one config: a timer that
 * ends after a reload lets back the backend of that name in the new pools.
 * Fake timers; no sockets.
 */
import { Ejections } from '../../src/health/ejections';
import { BackendPool } from '../../src/pool/pool';
import { backendLines, poolConfig } from '../helpers/pools';

const pools: BackendPool[] = [];
afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function makePools(names: string, outlier = '{ maxEjectionPercent: 50 }', previous?: BackendPool): Map<string, BackendPool> {
  const pool = new BackendPool(poolConfig(...backendLines(names), `outlierDetection: ${outlier}`), {
    previous: (n) => previous?.get(n),
  });
  pools.push(pool);
  return new Map([[pool.name, pool]]);
}

test('ejects for ms, then lets the backend back and calls onReturn', () => {
  jest.useFakeTimers();
  const current = makePools('abcd');
  const ejections = new Ejections(() => current);
  const returned: string[] = [];
  expect(ejections.eject('web', 'a', 1000, 'too many 502', () => returned.push('a'))).toBe(true);
  const a = current.get('web')!.get('a')!;
  expect(a.state).toBe('ejected');
  expect(a.history.at(-1)?.reason).toBe('too many 502');
  jest.advanceTimersByTime(999);
  expect(a.state).toBe('ejected');
  jest.advanceTimersByTime(1);
  expect(returned).toEqual(['a']);
  expect(a.state).toBe('up');
  expect(a.history.at(-1)?.reason).toBe('ejection time of 1000ms over');
});

test('refuses a backend already ejected, an unknown one, and one past maxEjectionPercent', () => {
  jest.useFakeTimers();
  const current = makePools('abcd');
  const ejections = new Ejections(() => current);
  expect(ejections.eject('web', 'a', 1000, 'x')).toBe(true);
  expect(ejections.eject('web', 'a', 1000, 'again')).toBe(false);
  expect(ejections.eject('web', 'zz', 1000, 'x')).toBe(false);
  expect(ejections.eject('nope', 'a', 1000, 'x')).toBe(false);
  expect(ejections.eject('web', 'b', 1000, 'x')).toBe(true); // 1 of 4 ejected: below 50%
  expect(ejections.eject('web', 'c', 1000, 'x')).toBe(false); // 2 of 4: the cap
  ejections.stop();
});

test('a pool without outlier detection ejects nothing', () => {
  const pool = new BackendPool(poolConfig(...backendLines('ab')));
  pools.push(pool);
  const ejections = new Ejections(() => new Map([[pool.name, pool]]));
  expect(ejections.eject('web', 'a', 1000, 'x')).toBe(false);
});

test('the timer outlives a reload: it lets back the backend of that name in the pools of the moment', () => {
  jest.useFakeTimers();
  let current = makePools('abcd');
  const ejections = new Ejections(() => current);
  expect(ejections.eject('web', 'a', 1000, 'x')).toBe(true);
  current = makePools('abcd', '{ maxEjectionPercent: 50 }', current.get('web'));
  const a = current.get('web')!.get('a')!;
  expect(a.state).toBe('ejected'); // taken over with its conditions
  jest.advanceTimersByTime(1000);
  expect(a.state).toBe('up');
});

test('stop() clears the timers: nothing comes back after', () => {
  jest.useFakeTimers();
  const current = makePools('abcd');
  const ejections = new Ejections(() => current);
  const returned: string[] = [];
  ejections.eject('web', 'a', 1000, 'x', () => returned.push('a'));
  ejections.stop();
  jest.advanceTimersByTime(5000);
  expect(returned).toEqual([]);
  expect(current.get('web')!.get('a')!.state).toBe('ejected');
});

test('ejectorFor: here by default, through the remote ejector in a worker', async () => {
  jest.useFakeTimers();
  const current = makePools('abcd');
  const pool = current.get('web')!;
  const local = new Ejections(() => current).ejectorFor(pool);
  expect(local(pool.get('a')!, 1000, 'x', () => undefined)).toBe(true);
  expect(pool.get('a')!.ejected).toBe(true);

  const asked: string[] = [];
  const remote = new Ejections(() => current, async (p, b, ms, reason) => {
    asked.push(`${p.name}/${b.name} ${ms} ${reason}`);
    return false;
  }).ejectorFor(pool);
  await expect(remote(pool.get('b')!, 2000, 'y', () => undefined)).resolves.toBe(false);
  expect(asked).toEqual(['web/b 2000 y']);
  expect(pool.get('b')!.ejected).toBe(false);
});
