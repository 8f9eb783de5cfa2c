/**
 * SPEC section 12 with the real CLI: each worker of `workers: 2` exports its
 * own spans, and a SIGTERM right after the traffic loses none of them (the
 * queue is flushed within shutdownTimeout), with one process or with workers.
 */
import { configYaml, freePort, startCli, tempDir, waitFor, writeFile } from '../cli/harness';
import type { HistoryJson } from '../../src/admin/api-json';
import { request } from '../helpers/http';
import { startOtlpReceiver } from '../helpers/otlp';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown({ blackBox: true });

describe('tracing from the CLI', () => {
  test.each([1, 2])('workers: %i: every span reaches the collector, flushed on SIGTERM', async (workers) => {
    const r = await startOtlpReceiver();
    cleanups.push(() => r.close());
    const a = await backend('a');
    const port = await freePort();
    const adminPort = await freePort();
    const top = `workers: ${workers}\nshutdownTimeout: 5s\ntracing:\n  otlp: { endpoint: ${r.url} }`;
    const dir = tempDir();
    const file = writeFile(dir, 'fulcrum.yaml', configYaml({ backends: [{ name: 'a', url: a.url }], listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${adminPort}`, top }));
    const p = startCli(['--config', file], { cwd: dir });
    await p.waitForLog((l) => l.msg === (workers > 1 ? 'workers listening' : 'listening'), 15_000, 'listening');
    const N = 30;
    for (let i = 0; i < N; i += 6) {
      // No keep-alive: connections are handed to the workers in turn.
      const replies = await Promise.all(Array.from({ length: 6 }, () => request(`http://127.0.0.1:${port}/w`)));
      expect(replies.map((x) => x.status)).toEqual(Array(6).fill(200));
    }
    if (workers > 1) {
      // The dashboard's history is the sum over the workers, as /metrics is: once a
      // sample (every 5 s) has passed, its rates add up to every request sent.
      let seen = 0;
      await waitFor(async () => {
        const h = JSON.parse((await request(`http://127.0.0.1:${adminPort}/api/history`)).body) as HistoryJson;
        const rates = h.pools[0]!.requestRate;
        seen = rates.reduce<number>((n, r, i) => n + (r ?? 0) * ((i === 0 ? h.intervalMs : h.times[i]! - h.times[i - 1]!) / 1000), 0);
        return Math.round(seen) >= N;
      }, 12_000, 'the history to count every request').catch((e: Error) => {
        throw new Error(`${e.message} (counted ${seen} of ${N})`);
      });
      expect(Math.round(seen)).toBeLessThanOrEqual(N + 1);
    }
    p.signal('SIGTERM');
    expect(await p.waitForExit(10_000)).toEqual({ code: 0, signal: null });

    const lines = p.logs.filter((l) => l.msg === 'request');
    expect(lines).toHaveLength(N);
    const traceIds = lines.map((l) => String(l.traceId));
    expect(new Set(traceIds).size).toBe(N);
    // Exported before the exit: nothing is waiting in any queue.
    const spans = r.spans();
    expect(spans.filter((s) => s.kind === 2).map((s) => s.traceId).sort()).toEqual([...traceIds].sort());
    expect(spans.filter((s) => s.kind === 3)).toHaveLength(N);
    if (workers > 1) {
      // Both workers served, and each exported its own spans (process.pid of the resource).
      expect(new Set(lines.map((l) => Number(l.pid))).size).toBe(2);
    }
    const pidOf = new Map(lines.map((l) => [String(l.traceId), Number(l.pid)]));
    for (const s of spans) expect(s.resource['process.pid']).toBe(pidOf.get(s.traceId));
  });
});
