/**
 * The access line written straight into the log sink's chunk (src/access-log.ts)
 * is byte for byte the string line, for any record; the lines it declines
 * (non-ASCII, a URL or request id JSON must escape) go the string way, in
 * order, through the real stdout sink to a real file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { AccessLineEncoder, accessLine, accessLineBound } from '../src/access-log';
import { LogSink } from '../src/log-sink';
import type { RequestRecord } from '../src/proxy/exchange';
import type { ServerTrace } from '../src/tracing/tracer';

const PID = 4242;
/** One encoder for every test, as the observer keeps one: what it keeps from line to line must never leak into the next. */
const encoder = new AccessLineEncoder(PID);

function encoded(r: RequestRecord, time: number): Buffer | undefined {
  const bound = accessLineBound(r);
  const buf = Buffer.alloc(bound + 1, 0x7e);
  const end = encoder.encode(buf, 0, r, time);
  // Never past the bound it promised.
  expect(buf[bound]).toBe(0x7e);
  return end < 0 ? undefined : buf.subarray(0, end);
}

const base: RequestRecord = {
  listener: 'public', method: 'GET', url: '/', requestId: '6f1c0b7e-6a57-4d0c-9d0a-2b3f5b7c1e9a', remoteAddress: '127.0.0.1',
  pool: 'web', backend: '127.0.0.1:9001', status: 200, durationMs: 0.4567, bytes: 3, retries: 0,
};

/** Plain ASCII text, JSON escapes and characters beyond ASCII, mixed. */
const text = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'/abz09-_.~?&=%:@!$\'()*+,;'.split('')) }),
  fc.string({ unit: 'binary-ascii' }),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
);
const duration = fc.oneof(
  fc.double({ min: 0, max: 10, noNaN: true }),
  fc.double({ min: 0, max: 1e7, noNaN: true }),
  fc.double({ min: 0, max: 1e13, noNaN: true }),
  fc.maxSafeNat().map((us) => us / 1000),
  fc.nat(2_000_000).map((k) => (2 ** 52 - 1_000_000 + k) / 1000),
  fc.integer({ min: 0, max: 100_000 }).map((us) => us / 1000),
  fc.constantFrom(0, -0, 0.0005, 0.0015, 1.9995, 2 ** 53, Number.MAX_VALUE, Infinity, NaN),
);
const counter = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, -0, 2 ** 60, -1, 1.5));

const record = fc.record({
  listener: fc.oneof(fc.constant('public'), text),
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'CONNECT'),
  url: text,
  requestId: fc.oneof(fc.uuid(), text),
  remoteAddress: fc.constantFrom('127.0.0.1', '::1', '2001:db8::7'),
  pool: fc.oneof(fc.constant(''), fc.constant('web')),
  backend: fc.oneof(fc.constant(''), fc.constant('127.0.0.1:9001')),
  status: fc.oneof(fc.constantFrom(200, 404, 499, 502), counter),
  durationMs: duration,
  bytes: counter,
  retries: counter,
  error: fc.option(text, { nil: undefined }),
  grpcStatus: fc.option(fc.constantFrom('0', '14', ''), { nil: undefined }),
  trace: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 32, maxLength: 32 }).map((traceId: string): ServerTrace => ({ traceId }) as unknown as ServerTrace), { nil: undefined }),
}, { requiredKeys: ['listener', 'method', 'url', 'requestId', 'remoteAddress', 'pool', 'backend', 'status', 'durationMs', 'bytes', 'retries'] });

test('the encoded line is the string line, byte for byte, or declined', () => {
  fc.assert(fc.property(record, fc.oneof(fc.nat(), fc.constant(1_796_317_018_053)), (r, time) => {
    const bytes = encoded(r, time);
    if (bytes !== undefined) expect(bytes.toString('latin1')).toBe(Buffer.from(accessLine(r, time, PID)).toString('latin1'));
  }), { numRuns: 3000 });
});

test('an ordinary request is encoded (not declined), durations to the thousandth', () => {
  for (const durationMs of [0, 0.4567, 1.0004, 1.9995, 12.5, 999.999, 65_000.25, 3_600_000.001]) {
    const r = { ...base, durationMs, error: 'reset: other side closed', trace: { traceId: 'ab'.repeat(16) } as unknown as ServerTrace, grpcStatus: '0' };
    for (const rec of [r, { ...base, durationMs }]) {
      const bytes = encoded(rec, 1_796_317_018_053);
      expect(bytes?.toString()).toBe(accessLine(rec, 1_796_317_018_053, PID));
      expect(JSON.parse(bytes!.toString()).durationMs).toBe(Math.round(durationMs * 1000) / 1000);
    }
  }
});

test('lines that need escapes or hold non-ASCII are declined', () => {
  for (const r of [{ ...base, url: '/a"b' }, { ...base, url: '/caf\u00e9' }, { ...base, requestId: 'a\\b' }, { ...base, requestId: 'x\u0001' },
    { ...base, error: 'd\u00e9j\u00e0' }, { ...base, durationMs: NaN }, { ...base, bytes: -1 }]) {
    expect(encoded(r, 1)).toBeUndefined();
  }
});

describe('through the stdout sink', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-access-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('encoded and string lines reach the file whole and in order, across chunks', () => {
    const file = path.join(dir, 'out.log');
    const fd = fs.openSync(file, 'w');
    const sink = new LogSink(fd);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const r = { ...base, url: i % 7 === 0 ? `/caf\u00e9/${i}` : i % 11 === 0 ? `/"${i}"` : `/p/${i}`, durationMs: i / 7, bytes: i };
      const encode = (buf: Buffer, at: number, rec: RequestRecord) => encoder.encode(buf, at, rec, 1000 + (i >> 4));
      if (!sink.writeWith(accessLineBound(r), encode, r)) sink.write(accessLine(r, 1000 + (i >> 4), PID));
      expected.push(accessLine(r, 1000 + (i >> 4), PID));
    }
    sink.flushSync();
    fs.closeSync(fd);
    expect(fs.readFileSync(file, 'utf8')).toBe(expected.join(''));
  });
});
