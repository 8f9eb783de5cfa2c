/**
 * gRPC end to end (SPEC 9.1): @grpc/grpc-js clients, Fulcrum, @grpc/grpc-js
 * backends; the four call kinds with their trailers over a cleartext HTTP/2
 * listener (prior knowledge) and a TLS one (ALPN h2).
 */
import { selfSigned } from '../helpers/tls';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { echoClient, grpc, startGrpcBackend, unary, type GrpcBackend, type Msg } from '../helpers/grpc';
import { metricsOf } from '../helpers/admin';
import { sum } from '../helpers/prom';
import { waitFor } from '../helpers/wait';

jest.setTimeout(20_000);

const tls = selfSigned();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(backends: GrpcBackend[], extra: { pool?: string; listener?: string } = {}): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c:
    listen: 127.0.0.1:0
    http2: true
${extra.listener ?? ''}
    routes:
      - match: { pathPrefix: /fulcrum.test.Echo/ }
        pool: echo
  h2tls:
    listen: 127.0.0.1:0
    http2: true
    tls: { cert: ${tls.cert}, key: ${tls.key} }
    routes:
      - match: { pathPrefix: /fulcrum.test.Echo/ }
        pool: echo
pools:
  echo:
    protocol: http2
    backends:
${backends.map((b) => `      - { url: ${b.url}, name: ${b.name} }`).join('\n')}
${extra.pool ?? ''}
`);
  cleanups.push(() => f.stop());
  return f;
}

async function grpcBackend(name: string): Promise<GrpcBackend> {
  const b = await startGrpcBackend(name);
  cleanups.push(() => b.close());
  return b;
}

function client(f: RunningFulcrum, listener: 'h2c' | 'h2tls'): grpc.Client & Record<string, (...a: unknown[]) => unknown> {
  const c = echoClient(f.fulcrum.address(listener), listener === 'h2tls' ? tls.certPem : undefined);
  cleanups.push(() => c.close());
  return c;
}

function collect(c: grpc.Client, texts: string[]): Promise<{ reply?: Msg; error?: grpc.ServiceError; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    const out: { reply?: Msg; error?: grpc.ServiceError; trailers?: grpc.Metadata } = {};
    let pending = 2;
    const call = (c as unknown as Record<string, (...a: unknown[]) => grpc.ClientWritableStream<Msg>>).Collect!((error: grpc.ServiceError | null, reply: Msg) => {
      if (error) out.error = error;
      else out.reply = reply;
      if (--pending === 0) resolve(out);
    });
    call.on('status', (s: grpc.StatusObject) => {
      out.trailers = s.metadata;
      if (--pending === 0) resolve(out);
    });
    for (const t of texts) call.write({ text: t });
    call.end();
  });
}

function expand(c: grpc.Client, m: Msg, options: grpc.CallOptions = {}): { call: grpc.ClientReadableStream<Msg>; done: Promise<{ messages: Msg[]; status: grpc.StatusObject }> } {
  const call = (c as unknown as Record<string, (...a: unknown[]) => grpc.ClientReadableStream<Msg>>).Expand!(m, new grpc.Metadata(), options);
  const messages: Msg[] = [];
  call.on('data', (x: Msg) => messages.push(x));
  call.on('error', () => undefined);
  const done = new Promise<{ messages: Msg[]; status: grpc.StatusObject }>((resolve) => call.on('status', (status: grpc.StatusObject) => resolve({ messages, status })));
  return { call, done };
}

describe.each(['h2c', 'h2tls'] as const)('the four call kinds over the %s listener', (listener) => {
  test('unary, client streaming, server streaming and bidirectional streaming, with their trailers', async () => {
    const b = await grpcBackend('g1');
    const f = await setup([b]);
    const c = client(f, listener);

    const u = await unary(c, { text: 'hello' });
    expect(u.error).toBeUndefined();
    expect(u.reply!.text).toBe('g1:hello');
    expect(u.trailers!.get('x-backend')).toEqual(['g1']);

    const cs = await collect(c, ['a', 'b', 'c']);
    expect(cs.reply).toMatchObject({ text: 'g1:a,b,c', count: 3 });
    expect(cs.trailers!.get('x-backend')).toEqual(['g1']);

    const ss = await expand(c, { text: 'x', count: 5 }).done;
    expect(ss.status.code).toBe(grpc.status.OK);
    expect(ss.messages.map((m) => m.text)).toEqual([0, 1, 2, 3, 4].map((i) => `g1:x:${i}`));
    expect(ss.status.metadata.get('x-backend')).toEqual(['g1']);

    // Bidirectional: each answer arrives before the next message is sent.
    const chat = (c as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>).Chat!();
    const replies: string[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => chat.on('status', resolve));
    for (const t of ['one', 'two', 'three']) {
      const got = new Promise<Msg>((resolve) => chat.once('data', resolve));
      chat.write({ text: t });
      replies.push((await got).text!);
    }
    chat.end();
    expect(replies).toEqual(['g1:one', 'g1:two', 'g1:three']);
    const st = await status;
    expect(st.code).toBe(grpc.status.OK);
    expect(st.metadata.get('x-backend')).toEqual(['g1']);

    // A status the backend chose reaches the client as it was (grpc-status and grpc-message in trailers).
    const failed = await unary(c, { text: 'no', code: grpc.status.NOT_FOUND });
    expect(failed.error!.details).toBe('asked for 5');
    expect(failed.error!.code).toBe(grpc.status.NOT_FOUND);
    expect(failed.error!.details).toBe('asked for 5');
    const failedStream = await expand(c, { text: 'y', count: 2, code: grpc.status.RESOURCE_EXHAUSTED }).done;
    expect(failedStream.messages).toHaveLength(2);
    expect(failedStream.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);

    // Recorded with their grpc-status: access log and metrics (code stays the HTTP status).
    await waitFor(() => f.records.length >= 6, 5000, 'six records');
    expect(f.records.map((r) => r.grpcStatus)).toEqual(['0', '0', '0', '0', '5', '8']);
    const lines = f.logs.filter((l) => l.msg === 'request');
    expect(lines.map((l) => l.grpcStatus)).toEqual(['0', '0', '0', '0', '5', '8']);
    const samples = await metricsOf(f.adminUrl);
    expect(sum(samples, 'fulcrum_requests_total', { listener, pool: 'echo', backend: 'g1', code: '200', grpc_status: '0' })).toBe(4);
    expect(sum(samples, 'fulcrum_requests_total', { listener, pool: 'echo', backend: 'g1', code: '200', grpc_status: '5' })).toBe(1);
  });
});

describe('deadlines', () => {
  test('grpc-timeout bounds the whole call: DEADLINE_EXCEEDED for the client, the time left for the backend, nothing against the backend', async () => {
    const b = await grpcBackend('g1');
    const f = await setup([b], { pool: '    timeouts: { response: 30s }\n    outlierDetection: { consecutiveFailures: 1 }' });
    const c = client(f, 'h2c');
    const ok = await unary(c, { text: 'quick' }, { deadline: Date.now() + 3000 });
    expect(ok.reply!.text).toBe('g1:quick');
    // The backend heard about the time left, not more (and not nothing).
    expect(b.deadlines[0]).toBeLessThanOrEqual(3000);
    expect(b.deadlines[0]).toBeGreaterThan(1000);

    const slow = await unary(c, { text: 'slow', delayMs: 3000 }, { deadline: Date.now() + 300 });
    expect(slow.error!.code).toBe(grpc.status.DEADLINE_EXCEEDED);

    // grpc-js cancels at its own deadline too; a raw HTTP/2 client that does
    // not shows Fulcrum's own: DEADLINE_EXCEEDED, trailers-only, in time.
    const http2 = await import('node:http2');
    const session = http2.connect(`http://${f.fulcrum.address('h2c')}`);
    cleanups.push(() => session.destroy());
    const started = Date.now();
    const stream = session.request({ ':method': 'POST', ':path': '/fulcrum.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' });
    // Msg { text: "slow", delay_ms: 3000 }, length-prefixed.
    stream.end(Buffer.from([0, 0, 0, 0, 9, 0x0a, 4, 0x73, 0x6c, 0x6f, 0x77, 0x18, 0xb8, 0x17]));
    const headers = await new Promise<Record<string, unknown>>((resolve) => stream.on('response', resolve));
    expect(headers[':status']).toBe(200);
    expect(headers['grpc-status']).toBe('4');
    expect(Date.now() - started).toBeLessThan(2500);
    await waitFor(() => f.records.length >= 3, 5000, 'three records');
    expect(f.records[2]).toMatchObject({ status: 200, grpcStatus: '4', backend: '' });
    // The client's deadline says nothing about the backend: no outlier ejection.
    const api = await (await fetch(`${f.adminUrl}/api/pools`)).json() as { pools: { backends: { state: string }[] }[] };
    expect(api.pools[0]!.backends[0]!.state).toBe('up');
  });

  test('a server stream past its deadline ends with DEADLINE_EXCEEDED after the messages that made it', async () => {
    const b = await grpcBackend('g1');
    const f = await setup([b]);
    const c = client(f, 'h2c');
    const { done } = expand(c, { text: 's', count: 50, delayMs: 100 }, { deadline: Date.now() + 700 });
    const { messages, status } = await done;
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.length).toBeLessThan(50);
  });

  test('timeouts.response is capped by grpc-timeout, and its own expiry is DEADLINE_EXCEEDED too', async () => {
    const b = await grpcBackend('g1');
    const f = await setup([b], { pool: '    timeouts: { response: 300ms }' });
    const c = client(f, 'h2c');
    const r = await unary(c, { text: 'slow', delayMs: 2000 }, { deadline: Date.now() + 10_000 });
    expect(r.error!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => f.records.length >= 1, 5000, 'a record');
    expect(f.records[0]).toMatchObject({ status: 200, grpcStatus: '4' });
  });
});

describe("Fulcrum's own answers are trailers-only, with gRPC's status mapping", () => {
  test('404 UNIMPLEMENTED, 503 UNAVAILABLE, 429 UNAVAILABLE, 502 UNAVAILABLE', async () => {
    const b = await grpcBackend('g1');
    const dead = await grpcBackend('dead');
    await dead.close();
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c:
    listen: 127.0.0.1:0
    http2: true
    routes:
      - { match: { host: none.test }, pool: empty }
      - { match: { host: dead.test }, pool: dead }
      - { match: { pathPrefix: /fulcrum.test.Echo/ }, pool: echo }
  limited:
    listen: 127.0.0.1:0
    http2: true
    limits: { rateLimit: { requestsPerSecond: 0.001, burst: 1 } }
    routes: [{ pool: echo }]
pools:
  echo: { protocol: http2, backends: [{ url: ${b.url} }] }
  dead: { protocol: http2, backends: [{ url: ${dead.url} }] }
  empty:
    protocol: http2
    backends: [{ url: ${b.url} }]
    healthCheck: { grpc: { service: nothing-here }, interval: 1m, fall: 1 }
`);
    cleanups.push(() => f.stop());
    const address = f.fulcrum.address('h2c');
    const c = echoClient(f.fulcrum.address('limited'));
    cleanups.push(() => c.close());
    // No route: the health service is not routed.
    const health = new (await import('../helpers/grpc')).HealthService(address, grpc.credentials.createInsecure());
    cleanups.push(() => health.close());
    const noRoute = await new Promise<grpc.ServiceError>((resolve) => (health as unknown as Record<string, (...a: unknown[]) => void>).Check!({ service: '' }, (e: grpc.ServiceError) => resolve(e)));
    expect(noRoute.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(noRoute.details).toBe('not found: no route matches this request');

    // No backend available (the only one failed its health check): 503 → UNAVAILABLE.
    await waitFor(async () => ((await (await fetch(`${f.adminUrl}/api/pools`)).json()) as { pools: { name: string; backends: { state: string }[] }[] })
      .pools.find((p) => p.name === 'empty')!.backends[0]!.state === 'down', 5000, 'the empty pool down');
    const noneClient = new (await import('../helpers/grpc')).EchoService(address, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'none.test' });
    cleanups.push(() => noneClient.close());
    const unavailable = await unary(noneClient, { text: 'x' });
    expect(unavailable.error!.code).toBe(grpc.status.UNAVAILABLE);
    expect(unavailable.error!.details).toBe('service unavailable: no backend available');

    // The backend refused the connection: 502 → UNAVAILABLE.
    const deadClient = new (await import('../helpers/grpc')).EchoService(address, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'dead.test' });
    cleanups.push(() => deadClient.close());
    const badGateway = await unary(deadClient, { text: 'x' });
    expect(badGateway.error!.code).toBe(grpc.status.UNAVAILABLE);
    expect(badGateway.error!.details).toBe('bad gateway: could not connect to the backend');

    // Rate limited: 429 → UNAVAILABLE.
    const md = new grpc.Metadata();
    const limited = await new Promise<grpc.ServiceError | null>((resolve) => {
      (c as unknown as Record<string, (...a: unknown[]) => void>).Unary!({ text: '1' }, md, () => {
        (c as unknown as Record<string, (...a: unknown[]) => void>).Unary!({ text: '2' }, md, (e: grpc.ServiceError | null) => resolve(e));
      });
    });
    expect(limited!.code).toBe(grpc.status.UNAVAILABLE);
    expect(limited!.details).toBe('too many requests');

    await waitFor(() => f.records.length >= 5, 5000, 'five records');
    const byUrl = f.records.map((r) => [r.status, r.grpcStatus]);
    expect(byUrl).toEqual([[200, '12'], [200, '14'], [200, '14'], [200, '0'], [200, '14']]);
    const samples = await metricsOf(f.adminUrl);
    expect(sum(samples, 'fulcrum_requests_total', { backend: '', code: '200', grpc_status: '14' })).toBe(3);
    expect(sum(samples, 'fulcrum_requests_total', { listener: 'h2c', backend: '', code: '200', grpc_status: '12' })).toBe(1);
  });

  test('the answer is one HEADERS frame with END_STREAM: HTTP 200, grpc-status and grpc-message', async () => {
    const b = await grpcBackend('g1');
    const f = await setup([b]);
    const http2 = await import('node:http2');
    const session = http2.connect(`http://${f.fulcrum.address('h2c')}`);
    cleanups.push(() => session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/nowhere.Service/Call', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) => stream.on('response', (h, fl) => resolve([h, fl])));
    let data = 0;
    stream.on('data', (d: Buffer) => { data += d.length; });
    await new Promise((resolve) => stream.on('close', resolve));
    expect(headers[':status']).toBe(200);
    expect(headers['grpc-status']).toBe('12');
    expect(headers['grpc-message']).toBe('not found: no route matches this request');
    expect(headers['content-type']).toBe('application/grpc');
    expect(flags & http2.constants.NGHTTP2_FLAG_END_STREAM).toBe(http2.constants.NGHTTP2_FLAG_END_STREAM);
    expect(data).toBe(0);
  });
});

describe('a backend killed mid-stream', () => {
  test('its streams end UNAVAILABLE, Fulcrum lives, the other backend’s streams go on', async () => {
    const a = await grpcBackend('ga');
    const bb = await grpcBackend('gb');
    const f = await setup([a, bb]);
    const c = client(f, 'h2c');
    // Round robin: the first stream goes to ga, the second to gb.
    const first = expand(c, { text: 'long', count: 40, delayMs: 50 });
    await waitFor(() => a.calls === 1, 5000, 'a call on ga');
    const second = expand(c, { text: 'long', count: 40, delayMs: 50 });
    await waitFor(() => bb.calls === 1, 5000, 'a call on gb');
    await new Promise((resolve) => first.call.once('data', resolve));
    a.kill();
    const broken = await first.done;
    expect(broken.status.code).toBe(grpc.status.UNAVAILABLE);
    expect(broken.messages.length).toBeGreaterThan(0);
    const whole = await second.done;
    expect(whole.status.code).toBe(grpc.status.OK);
    expect(whole.messages).toHaveLength(40);
    // And Fulcrum still serves: new calls go to the backend left.
    const after = await unary(c, { text: 'again' });
    expect(after.error).toBeUndefined();
    expect(after.reply!.text).toBe('gb:again');
    await waitFor(() => f.records.some((r) => r.grpcStatus === '14'), 5000, 'the broken call recorded');
  });
});
