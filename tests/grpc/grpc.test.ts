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
