/**
 * Health checks of http2 pools (SPEC 9.1): grpc.health.v1.Health/Check
 * against a real @grpc/grpc-js backend (SERVING passes, with rise and fall),
 * and `path` checks as GETs over HTTP/2.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startFulcrum } from '../helpers/fulcrum';
import { startGrpcBackend } from '../helpers/grpc';
import { backendsOf, metricsOf } from '../helpers/admin';
import { sum } from '../helpers/prom';
import { waitFor } from '../helpers/wait';

jest.setTimeout(20_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

test('grpc health: SERVING passes, NOT_SERVING and an unknown service fail, after fall and rise', async () => {
  const b = await startGrpcBackend('g1');
  cleanups.push(() => b.close());
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: echo }] }
pools:
  echo:
    protocol: http2
    backends: [{ url: ${b.url}, name: g1 }]
    healthCheck: { grpc: { service: fulcrum.test.Echo }, interval: 100ms, timeout: 1s, rise: 2, fall: 2 }
  other:
    protocol: http2
    backends: [{ url: ${b.url}, name: g1 }]
    healthCheck: { grpc: { service: no.such.Service }, interval: 100ms, fall: 1 }
`);
  cleanups.push(() => f.stop());
  const state = async (pool: string) => (await backendsOf(f.adminUrl, pool)).g1!.state;
  await waitFor(async () => (await state('other')) === 'down', 5000, 'the unknown service down');
  expect(await state('echo')).toBe('up');
  await waitFor(async () => sum(await metricsOf(f.adminUrl), 'fulcrum_health_checks_total', { pool: 'echo', result: 'success' }) >= 2, 5000, 'two passes');

  b.health = 'NOT_SERVING';
  await waitFor(async () => (await state('echo')) === 'down', 5000, 'down after NOT_SERVING');
  const explain = await (await fetch(`${f.adminUrl}/api/pools/echo/backends/g1`)).json() as { probes: { ok: boolean; error?: string }[] };
  expect(explain.probes.some((p) => p.error === 'health: NOT_SERVING')).toBe(true);
  const other = await (await fetch(`${f.adminUrl}/api/pools/other/backends/g1`)).json() as { probes: { ok: boolean; error?: string }[] };
  expect(other.probes[0]!.error).toBe('grpc-status 5: unknown service');

  b.health = 'SERVING';
  await waitFor(async () => (await state('echo')) === 'up', 5000, 'up again after rise');
});

test('a path check on an http2 pool is a GET over HTTP/2', async () => {
  const seen: { method: string; path: string; version: string }[] = [];
  let status = 200;
  const server = http2.createServer((req, res) => {
    seen.push({ method: req.method, path: req.url, version: req.httpVersion });
    res.writeHead(status).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: web }] }
pools:
  web:
    protocol: http2
    backends: [{ url: http://127.0.0.1:${port}, name: b1 }]
    healthCheck: { path: /healthz, interval: 100ms, fall: 1, rise: 1 }
`);
  cleanups.push(() => f.stop());
  await waitFor(() => seen.length >= 1, 5000, 'a probe');
  expect(seen[0]).toEqual({ method: 'GET', path: '/healthz', version: '2.0' });
  status = 503;
  await waitFor(async () => (await backendsOf(f.adminUrl, 'web')).b1!.state === 'down', 5000, 'down on 503');
});
