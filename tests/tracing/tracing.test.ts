/**
 * SPEC section 12 end to end: real backends, an in-process Fulcrum, and a real
 * OTLP/HTTP receiver (tests/helpers/otlp.ts) decoding what Fulcrum exports.
 */
import http from 'node:http';
import { parseConfig } from '../../src/config';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp';
import { useTeardown } from '../helpers/teardown';
import type { TestBackend } from '../helpers/backends';

const { cleanups, backend } = useTeardown();

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

async function receiver(mode: 'ok' | 'fail' | 'hang' = 'ok'): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver(mode);
  cleanups.push(() => r.close());
  return r;
}

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

function yaml(backends: readonly TestBackend[], tracing: string, pool = ''): string {
  return `
log: { level: warn, access: true }
admin: { listen: 127.0.0.1:0 }
${tracing}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /other/ }
        pool: web
      - pool: web
pools:
  web:
${pool}
    backends:
${backends.map((b) => `      - { url: ${b.url}, name: ${b.name} }`).join('\n')}
`;
}

const tracing = (r: OtlpReceiver, extra = '', encoding = 'protobuf') => `tracing:
  otlp: { endpoint: ${r.url}, encoding: ${encoding}, headers: { authorization: Bearer t0ken } }
${extra}`;

const traceparentOf = (b: TestBackend, i: number) => b.seen[i]!.headers.traceparent as string | undefined;

function spansOf(r: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return r.spans().filter((s) => s.traceId === traceId);
}

async function metric(f: RunningFulcrum, name: string): Promise<number> {
  return sum(parseProm((await request(`${f.adminUrl}/metrics`)).body), name);
}

describe('tracing', () => {
  test.each(['protobuf', 'json'])('a client traceparent is continued (%s): the backend\'s parent is the client span, tracestate unchanged', async (encoding) => {
    const r = await receiver();
    const a = await backend('a');
    const f = await fulcrum(yaml([a], tracing(r, '  serviceName: edge', encoding)));
    const reply = await request(`${f.url()}/other/x?q=1`, {
      headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=abc,other=1' },
    });
    expect(reply.status).toBe(200);

    const sent = TRACEPARENT.exec(traceparentOf(a, 0)!)!;
    expect(sent[1]).toBe(CLIENT_TRACE);
    expect(sent[3]).toBe('01');
    expect(a.seen[0]!.headers.tracestate).toBe('vendor=abc,other=1');

    await waitFor(() => spansOf(r, CLIENT_TRACE).length === 2, 5000, 'the server and client spans');
    const spans = spansOf(r, CLIENT_TRACE);
    const server = spans.find((s) => s.kind === 2)!;
    const client = spans.find((s) => s.kind === 3)!;
    expect(server.parentSpanId).toBe(CLIENT_SPAN);
    expect(client.parentSpanId).toBe(server.spanId);
    // The backend was told the client span is its parent.
    expect(sent[2]).toBe(client.spanId);
    expect(server.traceState).toBe('vendor=abc,other=1');
    expect(server.attributes).toEqual({
      'http.request.method': 'GET',
      'url.path': '/other/x',
      'http.response.status_code': 200,
      'client.address': '127.0.0.1',
      'fulcrum.route': 0,
      'fulcrum.pool': 'web',
      'fulcrum.backend': 'a',
    });
    expect(client.attributes).toEqual({
      'http.request.method': 'GET', 'fulcrum.backend': 'a', 'http.response.status_code': 200, 'url.full': `${a.url}/other/x?q=1`,
      'server.address': '127.0.0.1', 'server.port': Number(new URL(a.url).port),
    });
    expect(server.start <= client.start && client.end <= server.end).toBe(true);
    expect(server.end > server.start).toBe(true);
    expect(server.resource['service.name']).toBe('edge');
    expect(r.exports[0]!.contentType).toBe(encoding === 'json' ? 'application/json' : 'application/x-protobuf');
    expect(r.exports[0]!.headers.authorization).toBe('Bearer t0ken');

    // The access log line names the trace.
    const line = f.logs.find((l) => l.msg === 'request')!;
    expect(line.traceId).toBe(CLIENT_TRACE);
  });

  test('without a (valid) traceparent a trace is started and the second route has index 1', async () => {
    const r = await receiver();
    const a = await backend('a');
    const f = await fulcrum(yaml([a], tracing(r)));
    for (const bad of [undefined, `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra`, 'garbage', `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`]) {
      expect((await request(`${f.url()}/x`, { headers: bad === undefined ? {} : { traceparent: bad } })).status).toBe(200);
    }
    const ids = a.seen.map((s) => TRACEPARENT.exec(s.headers.traceparent as string)!);
    for (const m of ids) {
      expect(m[1]).not.toBe(CLIENT_TRACE);
      expect(m[3]).toBe('01'); // sampleRatio defaults to 1
    }
    expect(new Set(ids.map((m) => m[1])).size).toBe(ids.length);
    await waitFor(() => r.spans().length === 2 * ids.length, 5000, 'every span');
    for (const m of ids) {
      const server = spansOf(r, m[1]!).find((s) => s.kind === 2)!;
      expect(server.parentSpanId).toBe('');
      expect(server.attributes['fulcrum.route']).toBe(1);
    }
    expect(f.logs.filter((l) => l.msg === 'request').map((l) => l.traceId)).toEqual(ids.map((m) => m[1]));
  });

  test('a retry shows as two client spans under one server span; the backend sees the second', async () => {
    const r = await receiver();
    const dead = await backend('dead');
    await dead.close(); // connection refused: a connect-failure, retried
    const live = await backend('live');
    const f = await fulcrum(yaml([dead, live], tracing(r), '    retries: { attempts: 1, on: [connect-failure] }'));
    for (let i = 0; i < 4; i++) expect((await request(`${f.url()}/r`)).status).toBe(200);
    const retried = f.records.filter((x) => x.retries === 1);
    expect(retried.length).toBeGreaterThan(0);
    const traceId = retried[0]!.trace!.traceId;
    await waitFor(() => spansOf(r, traceId).length === 3, 5000, 'three spans of the retried request');
    const spans = spansOf(r, traceId);
    const server = spans.find((s) => s.kind === 2)!;
    const clients = spans.filter((s) => s.kind === 3).sort((x, y) => Number(x.start - y.start));
    expect(clients.map((c) => c.parentSpanId)).toEqual([server.spanId, server.spanId]);
    expect(clients.map((c) => c.attributes['fulcrum.backend'])).toEqual(['dead', 'live']);
    expect(clients[0]!.statusCode).toBe(2);
    expect(clients[0]!.attributes['error.type']).toBe('ECONNREFUSED');
    expect(clients[1]!.statusCode).toBe(0);
    expect(server.attributes['fulcrum.backend']).toBe('live');
    const seen = live.seen.map((s) => TRACEPARENT.exec(s.headers.traceparent as string)!).find((m) => m[1] === traceId)!;
    expect(seen[2]).toBe(clients[1]!.spanId);
  });

  test('sampleRatio 0: no spans, flag 00 still propagated; a client\'s sampled flag overrides; its 00 is honoured', async () => {
    const r = await receiver();
    const a = await backend('a');
    const f = await fulcrum(yaml([a], tracing(r, '  sampleRatio: 0')));
    for (let i = 0; i < 5; i++) expect((await request(`${f.url()}/u`)).status).toBe(200);
    const unsampled = `00-${'1'.repeat(32)}-${CLIENT_SPAN}-00`;
    expect((await request(`${f.url()}/u`, { headers: { traceparent: unsampled } })).status).toBe(200);
    expect((await request(`${f.url()}/s`, { headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } })).status).toBe(200);
    const flags = a.seen.map((s) => TRACEPARENT.exec(s.headers.traceparent as string)![3]);
    expect(flags).toEqual(['00', '00', '00', '00', '00', '00', '01']);
    expect(TRACEPARENT.exec(traceparentOf(a, 5)!)![1]).toBe('1'.repeat(32));
    // The sampled request went after the others: once its spans are in, any of theirs would be too.
    await waitFor(() => spansOf(r, CLIENT_TRACE).length === 2, 5000, 'the sampled request\'s spans');
    expect(r.spans().map((s) => s.traceId)).toEqual([CLIENT_TRACE, CLIENT_TRACE]);
  });

  test('health probes and admin calls make no spans; without tracing a traceparent passes unchanged', async () => {
    const r = await receiver();
    const a = await backend('a');
    const f = await fulcrum(yaml([a], tracing(r), '    healthCheck: { path: /healthz, interval: 100ms, timeout: 500ms }'));
    await waitFor(() => a.seen.some((s) => s.url === '/healthz'), 5000, 'a health probe');
    await request(`${f.adminUrl}/api/pools`);
    await request(`${f.adminUrl}/metrics`);
    expect((await request(`${f.url()}/only`)).status).toBe(200);
    await waitFor(() => r.spans().length === 2, 5000, 'the one request\'s spans');
    expect(a.seen.filter((s) => s.url === '/healthz').every((s) => s.headers.traceparent === undefined)).toBe(true);
    expect(r.spans().map((s) => s.attributes['url.path'] ?? s.attributes['url.full'])).toEqual(expect.arrayContaining(['/only', `${a.url}/only`]));

    // Off: the client's traceparent (and tracestate) reach the backend as sent, and the log line has no traceId.
    const b = await backend('b');
    const plain = await fulcrum(yaml([b], ''));
    const tp = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
    expect((await request(`${plain.url()}/`, { headers: { traceparent: tp, tracestate: 'k=v' } })).status).toBe(200);
    expect(b.seen[0]!.headers.traceparent).toBe(tp);
    expect(b.seen[0]!.headers.tracestate).toBe('k=v');
    const line = plain.logs.find((l) => l.msg === 'request')!;
    expect('traceId' in line).toBe(false);
    expect(await metric(plain, 'fulcrum_tracing_spans_dropped_total')).toBe(0);
    expect((await request(`${plain.adminUrl}/metrics`)).body).toContain('fulcrum_tracing_spans_dropped_total 0');
  });

  test.each([
    ['down', 'a closed port'],
    ['hang', 'a collector that never answers'],
    ['fail', 'a collector that answers 500'],
  ] as const)('collector %s (%s): every request succeeds and the drop counter rises', async (mode, _what) => {
    let url: string;
    if (mode === 'down') {
      const gone = await startOtlpReceiver();
      url = gone.url;
      await gone.close();
    } else {
      url = (await receiver(mode)).url;
    }
    const a = await backend('a');
    const f = await fulcrum(yaml([a], `tracing:\n  otlp: { endpoint: ${url} }\n  maxQueueSize: 4`));
    expect(await metric(f, 'fulcrum_tracing_spans_dropped_total')).toBe(0);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    cleanups.push(async () => agent.destroy());
    // 40 requests, 80 spans, a queue of 4: most are dropped whatever the collector does.
    for (let i = 0; i < 40; i += 4) {
      const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${f.url()}/c`, { agent })));
      expect(replies.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    }
    await waitFor(async () => (await metric(f, 'fulcrum_tracing_spans_dropped_total')) >= 70, 5000, 'dropped spans counted');
  });

  test('a reload turns tracing on and off and the diff says so', async () => {
    const r = await receiver();
    const a = await backend('a');
    const f = await fulcrum(yaml([a], ''));
    expect((await request(`${f.url()}/`)).status).toBe(200);
    expect(a.seen[0]!.headers.traceparent).toBeUndefined();
    const on = await f.fulcrum.apply(parseConfig(yaml([a], tracing(r)), 'test.yaml'));
    expect(on.changes).toContain('tracing changed');
    expect((await request(`${f.url()}/`)).status).toBe(200);
    expect(a.seen[1]!.headers.traceparent).toMatch(TRACEPARENT);
    await waitFor(() => r.spans().length === 2, 5000, 'spans after the reload');
    const off = await f.fulcrum.apply(parseConfig(yaml([a], ''), 'test.yaml'));
    expect(off.changes).toContain('tracing changed');
    expect((await request(`${f.url()}/`)).status).toBe(200);
    expect(a.seen[2]!.headers.traceparent).toBeUndefined();
  });
});
