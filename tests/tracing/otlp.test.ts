import fc from 'fast-check';
import { AttributeBlock, AttributeKey, JsonBatch, ProtobufBatch, type AttributeSink, type SpanBatch, type SpanData } from '../../src/tracing/otlp';
import { decodeJson, decodeProtobuf } from '../helpers/otlp';

/**
 * The encoder writes lengths it works out before writing (attributes) or
 * guesses (a span's two bytes), copies what it wrote before (a trace id
 * again, a value of a `repeats` key again), and reuses its two buffers in
 * turn: spans of every size and content, batch after batch, decoded by the
 * independent decoder of tests/helpers/otlp.ts, must come back as they went.
 * Ids come as hex, or (as the tracer's own) as bytes at some offset of a
 * buffer; attributes one by one, or in blocks encoded once and copied.
 */

type Single = { kind: 'str'; key: number; a: string; b: string } | { kind: 'int'; key: number; v: number };
type Attribute = Single | { kind: 'block'; parts: { key: number; v: string | number }[]; block: AttributeBlock };

interface Case {
  /** Same trace as the span before (a request's client and server spans). */
  sameTrace: boolean;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  startMs: number;
  durationMs: number;
  error: boolean;
  attributes: Attribute[];
  /** The ids handed over as bytes (SpanData.traceIdBytes...), not only as hex. */
  asBytes: boolean;
  /** Where in their buffer the ids' bytes are. */
  offset: number;
}

// Keys as the tracer has them: made once, some caching their values' bytes.
const KEYS = ['http.request.method', 'url.full', 'server.port', 'fulcrum.pool', 'k', 'é-key', 'x'.repeat(100)].flatMap((name) => [
  new AttributeKey(name), new AttributeKey(name, { repeats: true }),
]);

const hexId = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
// Short ASCII (the fast path), long (varint lengths), any Unicode (UTF-8 lengths), and a few that repeat (cached).
const text = fc.oneof(
  fc.string({ maxLength: 40 }), fc.string({ minLength: 100, maxLength: 20_000 }), fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.constantFrom('GET', 'pool-a', '127.0.0.1', 'ü', 'y'.repeat(130)),
);
const key = fc.integer({ min: 0, max: KEYS.length - 1 });
const intValue = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.maxSafeNat());
const single: fc.Arbitrary<Single> = fc.oneof(
  fc.record({ kind: fc.constant('str' as const), key, a: text, b: fc.oneof(fc.constant(''), text) }),
  fc.record({ kind: fc.constant('int' as const), key, v: intValue }),
);
const block = fc.array(fc.record({ key, v: fc.oneof(text, intValue) }), { minLength: 1, maxLength: 4 })
  .map((parts) => ({ kind: 'block' as const, parts, block: new AttributeBlock(parts.map((p) => [KEYS[p.key]!, p.v] as const)) }));
const attribute: fc.Arbitrary<Attribute> = fc.oneof(single, single, block);
const spanCase: fc.Arbitrary<Case> = fc.record({
  sameTrace: fc.boolean(),
  traceId: hexId(16),
  spanId: hexId(8),
  parentSpanId: fc.oneof(fc.constant(''), hexId(8)),
  traceState: fc.oneof(fc.constant(''), fc.string({ maxLength: 200 })),
  name: fc.constantFrom('GET', 'POST', 'PROPFIND'),
  kind: fc.constantFrom(2, 3),
  startMs: fc.double({ min: 1e12, max: 4e12, noNaN: true }),
  durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
  error: fc.boolean(),
  attributes: fc.array(attribute, { maxLength: 12 }),
  asBytes: fc.boolean(),
  offset: fc.integer({ min: 0, max: 64 }),
});
/** Cases with the trace ids of `sameTrace` ones taken from the span before. */
const batch = fc.array(spanCase, { minLength: 1, maxLength: 20 }).map((cases) => {
  for (let i = 1; i < cases.length; i++) if (cases[i]!.sameTrace) cases[i] = { ...cases[i]!, traceId: cases[i - 1]!.traceId };
  return cases;
});

/** `hex`'s bytes at `offset` of a buffer of random bytes, as the tracer's IdSource keeps them. */
function idBytes(hex: string, offset: number): { bytes: Buffer; at: number } {
  const bytes = Buffer.alloc(offset + hex.length / 2 + 8, 0xa5);
  Buffer.from(hex, 'hex').copy(bytes, offset);
  return { bytes, at: offset };
}

function spanOf(c: Case): SpanData {
  const trace = c.asBytes ? idBytes(c.traceId, c.offset) : undefined;
  const span = c.asBytes ? idBytes(c.spanId, c.offset) : undefined;
  const parent = c.asBytes && c.parentSpanId !== '' ? idBytes(c.parentSpanId, c.offset) : undefined;
  return {
    ...c,
    endMs: c.startMs + c.durationMs,
    traceIdBytes: trace?.bytes ?? null,
    traceIdAt: trace?.at ?? 0,
    spanIdBytes: span?.bytes ?? null,
    spanIdAt: span?.at ?? 0,
    parentIdBytes: parent?.bytes ?? null,
    parentIdAt: parent?.at ?? 0,
    writeAttributes(sink: AttributeSink) {
      for (const a of c.attributes) {
        if (a.kind === 'block') sink.block(a.block);
        else if (a.kind === 'int') sink.int(KEYS[a.key]!, a.v);
        else if (a.b === '') sink.str(KEYS[a.key]!, a.a);
        else sink.str2(KEYS[a.key]!, a.a, a.b);
      }
    },
  };
}

/** Epoch ms as exact unix nanoseconds: what both encodings must say. */
function nanos(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1_000_000));
}

function expected(c: Case): Record<string, unknown> {
  const attributes: Record<string, string | number> = {};
  // A key given twice: the decoders keep the last, as this does.
  for (const a of c.attributes) {
    if (a.kind === 'block') for (const p of a.parts) attributes[KEYS[p.key]!.name] = p.v;
    else attributes[KEYS[a.key]!.name] = a.kind === 'int' ? a.v : a.a + a.b;
  }
  return {
    traceId: c.traceId,
    spanId: c.spanId,
    parentSpanId: c.parentSpanId,
    traceState: c.traceState,
    name: c.name,
    kind: c.kind,
    start: nanos(c.startMs),
    end: nanos(c.startMs + c.durationMs),
    attributes,
    statusCode: c.error ? 2 : 0,
  };
}

const resource = { serviceName: 'svc-é', version: '1.2.3' };

describe('OTLP encoding', () => {
  test.each(['protobuf', 'json'] as const)('spans of any size and content, batch after batch, decode as they were encoded (%s)', (encoding) => {
    // One batch for every run, as the exporter keeps one: its buffers are reused.
    const spans: SpanBatch = encoding === 'json' ? new JsonBatch(resource) : new ProtobufBatch(resource);
    fc.assert(fc.property(batch, (cases) => {
      for (const c of cases) spans.add(spanOf(c));
      const body = spans.take();
      const got = encoding === 'json' ? decodeJson(body) : decodeProtobuf(body);
      expect(got.map(({ resource: _r, scope: _s, ...s }) => s)).toEqual(cases.map(expected));
      expect(got[0]!.resource).toMatchObject({ 'service.name': 'svc-é', 'service.version': '1.2.3', 'process.pid': process.pid });
      expect(got[0]!.scope).toBe('fulcrum');
    }), { numRuns: 200 });
  });

  test('an attribute key longer than 100 bytes is refused when the tracer defines it', () => {
    expect(() => new AttributeKey('k'.repeat(101))).toThrow(RangeError);
  });
});
