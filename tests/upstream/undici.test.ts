/**
 * UndiciUpstream (src/upstream/undici.ts): the Upstream that https://
 * backends use, and plain ones when Node's parser binding is not supported.
 * It is the same interface as UpstreamClient, so the same handler must see
 * the same things through it: headers as strings, bodies, backpressure,
 * abort, a precise response timeout, and error codes the proxy classifies.
 * Real node:http backends on loopback.
 */
import { Pool } from 'undici';
import { Readable } from 'node:stream';
import { useTeardown } from '../helpers/teardown';
import { UndiciUpstream } from '../../src/upstream/undici';
import type { UpstreamCall, UpstreamRequest } from '../../src/upstream/types';
import { classifyUpstreamError } from '../../src/upstream/errors';

const { cleanups, backend } = useTeardown();

interface Outcome {
  status?: number;
  headers?: readonly string[];
  body: Buffer;
  error?: Error;
}

function upstream(url: string, responseMs = 5000): UndiciUpstream {
  const u = new UndiciUpstream(new Pool(url, { connections: null, pipelining: 1, headersTimeout: responseMs, bodyTimeout: 0 }), responseMs);
  cleanups.push(() => u.pool.destroy());
  return u;
}

function send(u: UndiciUpstream, request: UpstreamRequest, onData?: (chunk: Buffer, call: UpstreamCall) => boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const out: Outcome = { body: Buffer.alloc(0) };
    const call: UpstreamCall = u.dispatch(request, {
      onHeaders(status, headers) {
        out.status = status;
        out.headers = headers;
      },
      onData(chunk) {
        chunks.push(chunk);
        return onData === undefined ? true : onData(chunk, call);
      },
      onComplete() {
        out.body = Buffer.concat(chunks);
        resolve(out);
      },
      onError(err) {
        out.body = Buffer.concat(chunks);
        out.error = err;
        resolve(out);
      },
    });
  });
}

test('headers arrive as latin1 strings with case and repeats kept; 1xx is skipped; the body streams', async () => {
  const b = await backend('b', (req, res) => {
    res.writeEarlyHints({ link: '</a.css>; rel=preload' });
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('X-Latin', 'caf\u00e9'); // node:http sends it as UTF-8 bytes
    res.end(`${req.method} ${req.url}`);
  });
  const out = await send(upstream(b.url), { method: 'GET', path: '/x?y=1', headers: ['x-test', '1'], body: null });
  expect(out.error).toBeUndefined();
  expect(out.status).toBe(200);
  const h = out.headers!;
  expect(h.filter((_, i) => i % 2 === 0 && /set-cookie/i.test(h[i])).length).toBe(2);
  // One latin1 character per byte: the bytes go on to the client as they came.
  expect(Buffer.from(h[h.findIndex((n) => /^x-latin$/i.test(n)) + 1], 'latin1')).toEqual(Buffer.from('caf\u00e9', 'utf8'));
  expect(out.body.toString()).toBe('GET /x?y=1');
});

test('a request body streams up with its Content-Length', async () => {
  const b = await backend('b', (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => res.end(`${n} ${req.headers['content-length']}`));
  });
  const body = Readable.from([Buffer.alloc(1000, 1), Buffer.alloc(500, 2)]);
  const out = await send(upstream(b.url), { method: 'POST', path: '/', headers: ['content-length', '1500'], body });
  expect(out.body.toString()).toBe('1500 1500');
});

test('onData returning false pauses the response until resume()', async () => {
  const b = await backend('b', (_req, res) => {
    res.write(Buffer.alloc(64 * 1024, 1));
    setImmediate(() => res.end(Buffer.alloc(64 * 1024, 2)));
  });
  let paused = 0;
  const out = await send(upstream(b.url), { method: 'GET', path: '/', headers: [], body: null }, (_chunk, call) => {
    paused++;
    setImmediate(() => call.resume());
    return false;
  });
  expect(out.error).toBeUndefined();
  expect(paused).toBeGreaterThan(0);
  expect(out.body.length).toBe(128 * 1024);
});

test('abort() ends the attempt with the given error', async () => {
  const b = await backend('b', (_req, res) => {
    res.write('first');
    // Never ends.
  });
  const reason = Object.assign(new Error('client left'), { code: 'TEST_ABORT' });
  const out = await send(upstream(b.url), { method: 'GET', path: '/', headers: [], body: null }, (_chunk, call) => {
    call.abort(reason);
    return true;
  });
  expect(out.error).toBe(reason);
});

test('the response timeout is precise (a native timer below 10 s) and classified as a timeout', async () => {
  const b = await backend('b', () => undefined);
  const started = performance.now();
  const out = await send(upstream(b.url, 300), { method: 'GET', path: '/', headers: [], body: null });
  const elapsed = performance.now() - started;
  expect(classifyUpstreamError(out.error).kind).toBe('timeout');
  expect(elapsed).toBeGreaterThanOrEqual(290);
  expect(elapsed).toBeLessThan(900);
});

test('a refused connection is a connect failure', async () => {
  const b = await backend('b');
  const url = b.url;
  await b.close();
  const out = await send(upstream(url), { method: 'GET', path: '/', headers: [], body: null });
  expect(classifyUpstreamError(out.error).kind).toBe('connect-failure');
});
