/**
 * Passive outlier detection alone: the detector is fed through the pool's
 * release() (as the proxy feeds it), the clock is the pool's, and the ejector
 * (in production health/ejections.ts, here or in the primary) is a recorder, so
 * ejections end when the test says.
 */
import { OutlierDetector, mayEject, type Ejector } from '../../src/health/outlier';
import type { Backend } from '../../src/pool/backend';
import { BackendPool } from '../../src/pool/pool';
import { backendLines, clock, poolConfig } from '../helpers/pools';

const pools: BackendPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

interface Ejection {
  readonly backend: string;
  readonly ms: number;
  readonly reason: string;
  /** Ends it, as Ejections' timer does: uneject, then the detector's onReturn. */
  end(): void;
}

function setup(names: string, outlier: string, options: { answer?: (b: Backend) => boolean | Promise<boolean> } = {}) {
  const c = clock(1_000_000);
  const pool = new BackendPool(poolConfig(...backendLines(names), `outlierDetection: ${outlier}`), { now: c.now });
  pools.push(pool);
  const ejections: Ejection[] = [];
  const ejector: Ejector = (backend, ms, reason, onReturn) => {
    const answer = options.answer?.(backend) ?? true;
    const carryOut = () => {
      pool.transition(backend, 'eject', reason);
      ejections.push({
        backend: backend.name, ms, reason,
        end: () => {
          pool.transition(backend, 'uneject', `ejection time of ${ms}ms over`);
          onReturn();
        },
      });
    };
    if (answer instanceof Promise) {
      return answer.then((ok) => {
        if (ok) carryOut();
        return ok;
      });
    }
    if (answer) carryOut();
    return answer;
  };
  const ejectedEvents: string[] = [];
  const detector = new OutlierDetector(pool, pool.config.outlierDetection!, {
    ejector,
    onEject: (p, b) => ejectedEvents.push(`${p.name}/${b.name}`),
  });
  /** One request on `name` that ends with `failure` (undefined = success). */
  const request = (name: string, failure?: string, counted = true) => {
    const b = pool.get(name)!;
    pool.acquire(b);
    pool.release(b, failure === undefined ? 5 : undefined, failure, counted);
  };
  return { c, pool, detector, ejections, ejectedEvents, request, state: (n: string) => pool.get(n)!.state };
}

describe('consecutive failures', () => {
  test('ejects at the threshold, not before, with the count, the last failure and the time in the reason', () => {
    const t = setup('ab', '{ consecutiveFailures: 3, baseEjectionTime: 10s }');
    t.request('a', 'connect-failure');
    t.request('a', '502');
    expect(t.ejections).toEqual([]);
    expect(t.state('a')).toBe('up');
    t.request('a', 'reset');
    expect(t.ejections.map(({ backend, ms, reason }) => ({ backend, ms, reason }))).toEqual([
      { backend: 'a', ms: 10_000, reason: 'ejected after 3 consecutive failures (last: reset) for 10000ms' },
    ]);
    expect(t.state('a')).toBe('ejected');
    expect(t.ejectedEvents).toEqual(['web/a']);
    expect(t.state('b')).toBe('up');
  });

  test('a success resets the count', () => {
    const t = setup('ab', '{ consecutiveFailures: 3 }');
    for (const f of ['502', '503', undefined, '504', 'timeout', undefined, '502', '502']) t.request('a', f);
    expect(t.ejections).toHaveLength(0);
    t.request('a', '502');
    expect(t.ejections).toHaveLength(1);
  });

  test('each backend has its own count', () => {
    const t = setup('ab', '{ consecutiveFailures: 2, maxEjectionPercent: 100 }');
    t.request('a', '502');
    t.request('b', '502');
    t.request('b', undefined);
    t.request('a', '502');
    expect(t.ejections.map((e) => e.backend)).toEqual(['a']);
  });

  test('every failure the pool is told of counts, whatever its words; outcomes the proxy does not count never arrive', () => {
    // The proxy passes counted=false for what says nothing about the backend:
    // 'unavailable' (our dispatcher closed), 'invalid-request', a client that left
    // (src/proxy/exchange.ts with blamesBackend, pinned in tests/upstream/errors.test.ts).
    const t = setup('ab', '{ consecutiveFailures: 2 }');
    for (let i = 0; i < 10; i++) t.request('a', undefined, false);
    t.request('a', 'connect-failure');
    for (let i = 0; i < 10; i++) t.request('a', undefined, false);
    expect(t.ejections).toHaveLength(0);
    t.request('a', '500');
    expect(t.ejections.map((e) => e.reason)).toEqual(['ejected after 2 consecutive failures (last: 500) for 30000ms']);
  });

  test('failures while ejected do not eject again; the count starts over at the ejection', () => {
    const t = setup('ab', '{ consecutiveFailures: 3, baseEjectionTime: 1s }');
    for (let i = 0; i < 3; i++) t.request('a', '502');
    expect(t.ejections).toHaveLength(1);
    // Requests in flight when it was ejected end later, and count from zero.
    t.request('a', '502');
    t.request('a', '502');
    expect(t.ejections).toHaveLength(1);
    t.ejections[0]!.end();
    t.request('a', '502');
    expect(t.ejections).toHaveLength(2);
    expect(t.pool.get('a')!.failures).toBe(6);
  });

  test('stop() detaches it from the pool', () => {
    const t = setup('ab', '{ consecutiveFailures: 1 }');
    t.detector.stop();
    t.request('a', '502');
    expect(t.ejections).toHaveLength(0);
    expect(t.state('a')).toBe('up');
  });
});

describe('maxEjectionPercent', () => {
  // Envoy's rule: eject while the share already ejected is below the cap.
  test.each<[number, number, number, boolean]>([
    [2, 0, 50, true],
    [2, 1, 50, false],
    [4, 1, 50, true],
    [4, 2, 50, false],
    [10, 0, 10, true],
    [10, 1, 10, false],
    // At least one whenever the cap is above 0...
    [3, 0, 10, true],
    [1, 0, 100, true],
    // ...and none when it is 0.
    [3, 0, 0, false],
    [1, 1, 100, false],
  ])('%i backends, %i ejected, cap %i%%: may eject %p', (total, ejected, cap, expected) => {
    const pool = new BackendPool(poolConfig(...backendLines('abcdefghij'.slice(0, total)), 'outlierDetection: {}'));
    pools.push(pool);
    for (const b of pool.backends.slice(0, ejected)) pool.transition(b, 'eject', 'test');
    expect(mayEject(pool, cap)).toBe(expected);
  });

  test('the detector stops at the cap and ejects again once one is back', () => {
    const t = setup('abcd', '{ consecutiveFailures: 1, maxEjectionPercent: 50 }');
    for (const n of 'abc') t.request(n, '502');
    expect(t.ejections.map((e) => e.backend)).toEqual(['a', 'b']);
    expect(t.state('c')).toBe('up');
    expect(t.ejectedEvents).toEqual(['web/a', 'web/b']);
    t.ejections[0]!.end();
    t.request('c', '502');
    expect(t.ejections.map((e) => e.backend)).toEqual(['a', 'b', 'c']);
    expect(['a', 'b', 'c', 'd'].map(t.state)).toEqual(['up', 'ejected', 'ejected', 'up']);
  });

  test('backups count in the pool\'s size', () => {
    const pool = new BackendPool(poolConfig(...backendLines('ab', { b: 'backup: true' }), 'outlierDetection: {}'));
    pools.push(pool);
    expect(mayEject(pool, 50)).toBe(true);
    pool.transition(pool.get('a')!, 'eject', 'test');
    expect(mayEject(pool, 50)).toBe(false);
  });
});

describe('ejection time: baseEjectionTime × times ejected, capped, forgotten after a quiet spell', () => {
  const eject = (t: ReturnType<typeof setup>) => {
    t.request('a', '502');
    t.request('a', '502');
    return t.ejections.at(-1)!;
  };

  test('grows by the base each time the backend fails again soon after coming back', () => {
    const t = setup('ab', '{ consecutiveFailures: 2, baseEjectionTime: 1s }');
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const e = eject(t);
      times.push(e.ms);
      t.c.advance(e.ms);
      e.end();
      t.c.advance(10);
    }
    expect(times).toEqual([1000, 2000, 3000, 4000]);
  });

  test('a backend that stayed in for as long as its last ejection lasted starts over (boundary exact)', () => {
    const t = setup('ab', '{ consecutiveFailures: 2, baseEjectionTime: 1s }');
    let e = eject(t);
    e.end();
    t.c.advance(1000); // exactly as long: still remembered
    e = eject(t);
    expect(e.ms).toBe(2000);
    e.end();
    t.c.advance(1500); // longer than the base, shorter than the 2 s it lasted: remembered
    e = eject(t);
    expect(e.ms).toBe(3000);
    e.end();
    t.c.advance(3001); // longer than the 3 s it lasted: forgotten
    e = eject(t);
    expect(e.ms).toBe(1000);
  });

  test('capped at 300 s (Envoy\'s max_ejection_time), or the base when the base is longer', () => {
    const short = setup('ab', '{ consecutiveFailures: 2, baseEjectionTime: 2m }');
    const long = setup('ab', '{ consecutiveFailures: 2, baseEjectionTime: 10m }');
    for (const [t, expected] of [[short, [120_000, 240_000, 300_000, 300_000]], [long, [600_000, 600_000, 600_000]]] as const) {
      const times: number[] = [];
      for (let i = 0; i < expected.length; i++) {
        const e = eject(t);
        times.push(e.ms);
        e.end();
      }
      expect(times).toEqual(expected);
    }
  });

  test('an ejection the ejector refuses (cap reached elsewhere, or already ejected) does not count', () => {
    let refuse = true;
    const t = setup('ab', '{ consecutiveFailures: 2, baseEjectionTime: 1s }', { answer: () => !refuse });
    t.request('a', '502');
    t.request('a', '502');
    expect(t.ejections).toHaveLength(0);
    expect(t.ejectedEvents).toEqual([]);
    refuse = false;
    // The refused attempt reset the count: two more failures to decide again.
    t.request('a', '502');
    expect(t.ejections).toHaveLength(0);
    t.request('a', '502');
    expect(t.ejections.map((e) => e.ms)).toEqual([1000]);
  });

  test('an asynchronous answer (a worker asking the primary) counts once it says yes', async () => {
    const answers: ((ok: boolean) => void)[] = [];
    const t = setup('ab', '{ consecutiveFailures: 1, baseEjectionTime: 1s, maxEjectionPercent: 100 }', {
      answer: () => new Promise<boolean>((resolve) => answers.push(resolve)),
    });
    t.request('a', '502');
    t.request('b', '502');
    expect(answers).toHaveLength(2);
    expect(t.ejectedEvents).toEqual([]);
    answers[0]!(true);
    answers[1]!(false);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(t.ejectedEvents).toEqual(['web/a']);
    expect(t.ejections.map((e) => e.backend)).toEqual(['a']);
    // a's second ejection is its second: twice the base. b's refused one was never counted.
    const first = t.ejections[0]!;
    first.end();
    t.request('a', '502');
    t.request('b', '502');
    answers[2]!(true);
    answers[3]!(true);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(t.ejections.slice(1).map((e) => `${e.backend}:${e.ms}`)).toEqual(['a:2000', 'b:1000']);
  });
});
