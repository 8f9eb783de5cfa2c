import fc from 'fast-check';
import { AttributeKey, encodeSpans, type AttributeSink, type SpanData } from '../../src/tracing/otlp';
import { decodeJson, decodeProtobuf } from '../helpers/otlp';

/**
 * The encoder writes lengths it works out before writing (attributes) or
 * guesses (a span's two bytes): spans of every size and content, decoded by
 * the independent decoder of tests/helpers/otlp.ts, must come back as they went.
 */

type Attribute = { kind: 'str'; key: string; a: string; b: string } | { kind: 'int'; key: string; v: number };

interface Case {
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
}

const hexId = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
// Short ASCII (the fast path), long (varint lengths), and any Unicode (UTF-8 lengths).
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: 100, maxLength: 20_000 }), fc.string({ unit: 'grapheme', maxLength: 60 }));
const key = fc.oneof(fc.constantFrom('http.request.method', 'url.full', 'server.port'), fc.string({ minLength: 1, maxLength: 30 }));
const attribute: fc.Arbitrary<Attribute> = fc.oneof(
  fc.record({ kind: fc.constant('str' as const), key, a: text, b: fc.oneof(fc.constant(''), text) }),
  fc.record({ kind: fc.constant('int' as const), key, v: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.maxSafeNat()) }),
);
const spanCase: fc.Arbitrary<Case> = fc.record({
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
});

function spanOf(c: Case): SpanData {
  const keys = c.attributes.map((a) => new AttributeKey(a.key));
  return {
    ...c,
    endMs: c.startMs + c.durationMs,
    writeAttributes(sink: AttributeSink) {
      c.attributes.forEach((a, i) => {
        if (a.kind === 'int') sink.int(keys[i]!, a.v);
        else if (a.b === '') sink.str(keys[i]!, a.a);
        else sink.str2(keys[i]!, a.a, a.b);
      });
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
  for (const a of c.attributes) attributes[a.key] = a.kind === 'int' ? a.v : a.a + a.b;
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
  test.each(['protobuf', 'json'] as const)('spans of any size and content decode as they were encoded (%s)', (encoding) => {
    fc.assert(fc.property(fc.array(spanCase, { minLength: 1, maxLength: 20 }), (cases) => {
      const body = encodeSpans(encoding, cases.map(spanOf), resource);
      const spans = encoding === 'json' ? decodeJson(body) : decodeProtobuf(body);
      expect(spans.map(({ resource: _r, scope: _s, ...s }) => s)).toEqual(cases.map(expected));
      expect(spans[0]!.resource).toMatchObject({ 'service.name': 'svc-é', 'service.version': '1.2.3', 'process.pid': process.pid });
      expect(spans[0]!.scope).toBe('fulcrum');
    }), { numRuns: 150 });
  });

  test('an attribute key longer than 100 bytes is refused when the tracer defines it', () => {
    expect(() => new AttributeKey('k'.repeat(101))).toThrow(RangeError);
  });
});
