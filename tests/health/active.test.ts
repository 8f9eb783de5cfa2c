/**
 * The active health checker alone, against real node:http servers on
 * loopback (port 0) that answer from a script, one entry per probe in order.
 * The checker sends probes to a backend one after another, so the order of
 * what it saw and what it decided is exact whatever the timing; tests wait
 * on counts with a deadline, never sleep.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HealthChecker, probe } from '../../src/health/active';
import { BackendPool } from '../../src/pool/pool';
import type { TestBackend } from '../helpers/backends';
import { clock, poolConfig } from '../helpers/pools';
import { useTeardown } from '../helpers/teardown';
import { waitFor } from '../helpers/wait';

const td = useTeardown();

type Answer = number | 'hang' | 'hold';

/**
 * A backend answering its n-th request with `script[n]`, then `then`; 'hang'
 * never answers, 'hold' keeps the response in `held` for the test to answer.
 */
async function scripted(name: string, script: readonly Answer[], then: Answer = 200): Promise<TestBackend & { held: ServerResponse[] }> {
  let n = 0;
  const held: ServerResponse[] = [];
  const b = await td.backend(name, (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const answer = script[n++] ?? then;
    if (answer === 'hold') held.push(res);
    else if (answer !== 'hang') res.writeHead(answer).end();
  });
  return Object.assign(b, { held });
}

interface Checked {
  readonly pool: BackendPool;
  readonly checker: HealthChecker;
  /** What the checker saw and decided, in order: "a fail status 500", "a up->down: reason". */
  readonly events: string[];
  probes(name: string): number;
}

function check(backends: readonly TestBackend[], healthCheck: string, options: { random?: () => number; now?: () => number } = {}): Checked {
  const lines = ['backends:', ...backends.flatMap((b) => [`  - url: ${b.url}`, `    name: ${b.name}`]), `healthCheck: ${healthCheck}`];
  const pool = new BackendPool(poolConfig(...lines), { now: options.now });
  const events: string[] = [];
  pool.onStateChange((b, from, to, reason) => events.push(`${b.name} ${from}->${to}: ${reason}`));
  const checker = new HealthChecker(pool, pool.config.healthCheck!, {
    random: options.random ?? (() => 0.5),
    onProbe: (p, b, o) => {
      expect(p).toBe(pool);
      events.push(`${b.name} ${o.ok ? 'ok' : 'fail'} ${o.ok ? o.status : o.error}`);
    },
  });
  td.cleanups.push(async () => {
    checker.stop();
    await pool.close();
  });
  const probes = (name: string) => events.filter((e) => e.startsWith(`${name} ok`) || e.startsWith(`${name} fail`)).length;
  return { pool, checker, events, probes };
}

const FAST = '{ path: /health, interval: 10ms, timeout: 1s, rise: 2, fall: 3 }';

describe('rise and fall', () => {
  test('down after exactly `fall` failures, up after exactly `rise` passes', async () => {
    const a = await scripted('a', [500, 500, 500, 200, 200]);
    const t = check([a], FAST);
    t.checker.start();
    await waitFor(() => t.probes('a') >= 6, 5000, '6 probes');
    t.checker.stop();
    expect(t.events.slice(0, 8)).toEqual([
      'a fail status 500',
      'a fail status 500',
      'a fail status 500',
      'a up->down: health check failed 3 times: status 500',
      'a ok 200',
      'a ok 200',
      'a down->up: health check passed 2 times',
      'a ok 200',
    ]);
  });

  test('a pass breaks a run of failures, and a failure a run of passes', async () => {
    const a = await scripted('a', [500, 503, 200, 500, 500, 500, 200, 503, 200, 200]);
    const t = check([a], FAST);
    t.checker.start();
    await waitFor(() => t.probes('a') >= 10, 5000, '10 probes');
    t.checker.stop();
    expect(t.events.slice(0, 12)).toEqual([
      'a fail status 500',
      'a fail status 503',
      'a ok 200',
      'a fail status 500',
      'a fail status 500',
      'a fail status 500',
      'a up->down: health check failed 3 times: status 500',
      'a ok 200',
      'a fail status 503',
      'a ok 200',
      'a ok 200',
      'a down->up: health check passed 2 times',
    ]);
  });

  test('rise 1, fall 1: every change of verdict is a change of state', async () => {
    const a = await scripted('a', [200, 404, 404, 204]);
    const t = check([a], '{ path: /health, interval: 10ms, rise: 1, fall: 1 }');
    t.checker.start();
    await waitFor(() => t.probes('a') >= 4, 5000, '4 probes');
    t.checker.stop();
    expect(t.events.slice(0, 6)).toEqual([
      'a ok 200',
      'a fail status 404',
      'a up->down: health check failed 1 time: status 404',
      'a fail status 404',
      'a ok 204',
      'a down->up: health check passed 1 time',
    ]);
  });

  test('a probe that times out is a failure', async () => {
    const a = await scripted('a', ['hang', 200]);
    const t = check([a], '{ path: /health, interval: 10ms, timeout: 50ms, rise: 1, fall: 1 }');
    t.checker.start();
    await waitFor(() => t.probes('a') >= 2, 5000, '2 probes');
    t.checker.stop();
    expect(t.events.slice(0, 4)).toEqual([
      'a fail timed out after 50ms',
      'a up->down: health check failed 1 time: timed out after 50ms',
      'a ok 200',
      'a down->up: health check passed 1 time',
    ]);
  });

  test('each backend is judged on its own probes', async () => {
    const a = await scripted('a', [], 500);
    const b = await scripted('b', [], 200);
    const t = check([a, b], '{ path: /health, interval: 10ms, rise: 1, fall: 2 }');
    t.checker.start();
    await waitFor(() => t.probes('a') >= 3 && t.probes('b') >= 3, 5000, '3 probes each');
    t.checker.stop();
    expect(t.events.filter((e) => e.startsWith('a ')).slice(0, 4)).toEqual([
      'a fail status 500', 'a fail status 500', 'a up->down: health check failed 2 times: status 500', 'a fail status 500',
    ]);
    expect(t.events.filter((e) => e.startsWith('b ')).slice(0, 3)).toEqual(['b ok 200', 'b ok 200', 'b ok 200']);
    expect([t.pool.get('a')!.state, t.pool.get('b')!.state]).toEqual(['down', 'up']);
  });

  test('probes are recorded on the backend at the pool clock, the last ten kept', async () => {
    const c = clock(7000);
    const a = await scripted('a', [500]);
    const t = check([a], '{ path: /health, interval: 10ms, rise: 1, fall: 5 }', { now: c.now });
    t.checker.start();
    await waitFor(() => t.probes('a') >= 12, 5000, '12 probes');
    t.checker.stop();
    const probes = t.pool.get('a')!.probes;
    expect(probes).toHaveLength(10);
    expect(probes.map((p) => [p.time, p.ok, p.status])).toEqual(Array.from({ length: 10 }, () => [7000, true, 200]));
    expect(t.events.slice(0, 2)).toEqual(['a fail status 500', 'a ok 200']);
  });
});

describe('probe()', () => {
  const config = (expectStatus: string, path = '/health', timeout = '1s') =>
    poolConfig('backends:', '  - url: http://127.0.0.1:1', `healthCheck: { path: ${path}, timeout: ${timeout}, expectStatus: "${expectStatus}" }`).healthCheck!;

  test.each<[string, number, boolean]>([
    ['200-399', 200, true],
    ['200-399', 399, true],
    ['200-399', 301, true],
    ['200-399', 400, false],
    ['300-399', 299, false],
    ['200,204', 204, true],
    ['200,204', 201, false],
    ['200-299,404', 404, true],
    ['200-299,404', 403, false],
    ['500-599', 503, true],
    ['500-599', 200, false],
  ])('expectStatus %s: %i is ok %p', async (expectStatus, status, ok) => {
    const b = await td.backend('s', (req, res) => {
      req.resume();
      res.writeHead(Number(req.url!.split('/').pop())).end();
    });
    const outcome = await probe(b.url, config(expectStatus, `/status/${status}`));
    expect({ ok: outcome.ok, status: outcome.status, error: outcome.error }).toEqual(
      ok ? { ok, status, error: undefined } : { ok, status, error: `status ${status}` },
    );
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
  });

  test('one GET on the health path, on its own connection, with the backend\'s Host', async () => {
    const b = await scripted('a', [204]);
    const outcome = await probe(b.url, config('200-399', '/healthz?deep=1'));
    expect(outcome).toMatchObject({ ok: true, status: 204 });
    expect(b.seen).toHaveLength(1);
    const req = b.seen[0]!;
    expect([req.method, req.url]).toEqual(['GET', '/healthz?deep=1']);
    expect(req.headers).toMatchObject({ host: `127.0.0.1:${b.port}`, 'user-agent': 'fulcrum-health-check', connection: 'close' });
  });

  test('no answer within the timeout', async () => {
    const b = await scripted('a', ['hang']);
    const outcome = await probe(b.url, config('200-399', '/health', '50ms'));
    expect({ ok: outcome.ok, status: outcome.status, error: outcome.error }).toEqual({ ok: false, status: undefined, error: 'timed out after 50ms' });
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(45);
  });

  test('nothing listening', async () => {
    const b = await scripted('a', []);
    await b.close();
    const outcome = await probe(b.url, config('200-399'));
    expect({ ok: outcome.ok, error: outcome.error }).toEqual({ ok: false, error: 'connect refused' });
  });
});

describe('when probes run', () => {
  test('the next probe is intervalMs × (0.9 + 0.2 × random) after the last one ended', async () => {
    const a = await scripted('a', []);
    const draws = [0, 0.75, 0.5, 0.5, 0.5, 0.5];
    const t = check([a], '{ path: /health, interval: 100ms, timeout: 3s }', { random: () => draws.shift() ?? 0.5 });
    // The checker's own timers: set from active.ts, other than each probe's 3 s timeout.
    const delays: number[] = [];
    const real = global.setTimeout;
    const spy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      if (ms !== 3000 && new Error().stack?.includes('active.ts') === true) delays.push(ms ?? 0);
      return real(fn, ms);
    }) as typeof setTimeout);
    td.cleanups.push(async () => spy.mockRestore());
    t.checker.start();
    await waitFor(() => t.probes('a') >= 3, 5000, '3 probes');
    t.checker.stop();
    expect(delays.slice(0, 4)).toEqual([0, 90, 105, 100]);
  });

  test('unwatch: a removed backend is probed no more, and the outcome of a probe in flight is dropped', async () => {
    const a = await scripted('a', [200, 200, 'hold']);
    const b = await scripted('b', []);
    const t = check([a, b], FAST);
    t.checker.start();
    await waitFor(() => a.held.length === 1, 5000, 'a\'s third probe in flight');
    const backendA = t.pool.get('a')!;
    t.pool.remove(backendA);
    t.checker.unwatch(backendA);
    a.held[0]!.writeHead(500).end();
    const seenB = t.probes('b');
    await waitFor(() => t.probes('b') >= seenB + 5, 5000, 'b probed 5 more times');
    expect(t.events.filter((e) => e.startsWith('a '))).toEqual(['a ok 200', 'a ok 200']);
    expect(backendA.probes).toHaveLength(2);
    expect(a.seen).toHaveLength(3);
  });

  test('watch: a backend added at run time is probed from then on; watching it again starts no second round', async () => {
    const a = await scripted('a', []);
    const x = await scripted('x', ['hang']);
    const t = check([a], '{ path: /health, interval: 10ms, timeout: 5s }');
    t.checker.start();
    const added = t.pool.add({ url: x.url, name: 'x', weight: 1, backup: false });
    t.checker.watch(added);
    t.checker.watch(added);
    await waitFor(() => x.seen.length >= 1, 5000, 'x probed');
    const seenA = t.probes('a');
    await waitFor(() => t.probes('a') >= seenA + 5, 5000, 'a probed 5 more times');
    // x's first probe still hangs, and no other was sent.
    expect(x.seen).toHaveLength(1);
    expect(t.probes('x')).toBe(0);
  });

  test('stop: the outcome of a probe in flight is dropped, no probe follows, and none can be started again', async () => {
    const a = await scripted('a', [200, 200, 'hold']);
    const control = await scripted('control', []);
    const t = check([a], FAST);
    const other = check([control], FAST);
    t.checker.start();
    other.checker.start();
    await waitFor(() => a.held.length === 1, 5000, 'a\'s third probe in flight');
    t.checker.stop();
    a.held[0]!.writeHead(500).end();
    t.checker.start();
    t.checker.watch(t.pool.get('a')!);
    const seenControl = other.probes('control');
    await waitFor(() => other.probes('control') >= seenControl + 5, 5000, 'the control probed 5 more times');
    expect(t.events).toEqual(['a ok 200', 'a ok 200']);
    expect(a.seen).toHaveLength(3);
  });
});

test('units finding: unwatched and watched again while a probe is in flight, a backend still has one round of probes (the old round\'s answer is dropped)', async () => {
  // Probe 1 (old round) is held and then answers 500; probe 2 (new round) is held and answers 200; then 200s.
  const x = await scripted('x', ['hold', 'hold']);
  const t = check([x], '{ interval: 30ms, timeout: 5s, fall: 1 }');
  t.checker.start();
  await waitFor(() => x.held.length === 1, 5000, 'the first probe');
  const b = t.pool.get('x')!;
  t.checker.unwatch(b);
  t.checker.watch(b);
  await waitFor(() => x.held.length === 2, 5000, 'the new round\'s first probe');
  x.held[0]!.writeHead(500).end();
  x.held[1]!.writeHead(200).end();
  // One round: the probes after these two come one at a time, and the old round's 500 was never taken into account.
  await waitFor(() => t.probes('x') >= 4, 5000, 'more probes of the one round');
  expect(t.events.filter((e) => e.includes('500'))).toEqual([]);
  expect(b.state).toBe('up');
});
