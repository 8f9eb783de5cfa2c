/**
 * The OTLP trace export request (opentelemetry-proto,
 * opentelemetry/proto/collector/trace/v1/trace_service.proto and
 * trace/v1/trace.proto) in its two OTLP/HTTP encodings: binary protobuf and
 * JSON (https://opentelemetry.io/docs/specs/otlp/#otlphttp). Only the fields
 * Fulcrum's spans use are written; a receiver ignores what is absent.
 *
 * Written by hand rather than with protobufjs and the .proto files: it is
 * about a hundred lines, runs off the request path (once per batch), and
 * keeps the proxy free of a code generator (see README, Design choices).
 */

/** OTLP SpanKind. */
export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;
/** OTLP Status.StatusCode: UNSET (0) unless the span failed. */
export const STATUS_ERROR = 2;

export type AttributeValue = string | number;

/** A finished span, as the tracer hands it to the exporter. */
export interface SpanData {
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  /** The client's tracestate, as it came (§3.3). */
  readonly traceState: string;
  readonly name: string;
  readonly kind: number;
  /** Epoch milliseconds (fractional). */
  readonly startMs: number;
  readonly endMs: number;
  /** Integers are written as int64, everything else as strings. */
  readonly attributes: readonly (readonly [string, AttributeValue])[];
  readonly error: boolean;
}

export interface Resource {
  readonly serviceName: string;
  readonly version: string;
}

const SCOPE_NAME = 'fulcrum';

/** Epoch ms → unix nanoseconds, exactly (beyond 2^53, so as a bigint). */
function nanos(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1_000_000));
}

// ---- JSON ------------------------------------------------------------------

function jsonValue(v: AttributeValue): Record<string, string> {
  // OTLP/JSON writes int64 as a decimal string (proto3 JSON mapping).
  return typeof v === 'number' && Number.isInteger(v) ? { intValue: String(v) } : { stringValue: String(v) };
}

/** OTLP/JSON: ids as hex (not base64, unlike proto3's mapping), enums as numbers, nanoseconds as strings. */
export function encodeJson(spans: readonly SpanData[], resource: Resource): Buffer {
  const body = {
    resourceSpans: [{
      resource: { attributes: resourceAttributes(resource).map(([key, v]) => ({ key, value: jsonValue(v) })) },
      scopeSpans: [{
        scope: { name: SCOPE_NAME, version: resource.version },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId !== '' ? { parentSpanId: s.parentSpanId } : {}),
          ...(s.traceState !== '' ? { traceState: s.traceState } : {}),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: String(nanos(s.startMs)),
          endTimeUnixNano: String(nanos(s.endMs)),
          attributes: s.attributes.map(([key, v]) => ({ key, value: jsonValue(v) })),
          status: s.error ? { code: STATUS_ERROR } : {},
        })),
      }],
    }],
  };
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function resourceAttributes(r: Resource): [string, AttributeValue][] {
  // process.pid: with workers, which process served (and exported) the span.
  return [['service.name', r.serviceName], ['service.version', r.version], ['process.pid', process.pid], ['telemetry.sdk.name', 'fulcrum'], ['telemetry.sdk.language', 'nodejs']];
}

// ---- protobuf --------------------------------------------------------------

/** Protobuf wire format, appended to a growing buffer; a nested message is written to its own Writer first (its length goes before it). */
class Writer {
  #buf = Buffer.allocUnsafe(256);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  #varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    this.#room(10);
    while (n > 0x7fn) {
      this.#buf[this.#len++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.#buf[this.#len++] = Number(n);
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  uint(field: number, v: number | bigint): this {
    this.#tag(field, 0);
    this.#varint(v);
    return this;
  }

  fixed64(field: number, v: bigint): this {
    this.#tag(field, 1);
    this.#room(8);
    this.#buf.writeBigUInt64LE(v, this.#len);
    this.#len += 8;
    return this;
  }

  bytes(field: number, b: Buffer): this {
    this.#tag(field, 2);
    this.#varint(b.length);
    this.#room(b.length);
    b.copy(this.#buf, this.#len);
    this.#len += b.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  hex(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'hex'));
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }

  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

/** common.v1.KeyValue { key = 1; AnyValue value = 2 }; AnyValue { string_value = 1; int_value = 3 }. */
function keyValue(key: string, v: AttributeValue): Writer {
  const value = typeof v === 'number' && Number.isInteger(v) ? new Writer().uint(3, BigInt(v)) : new Writer().string(1, String(v));
  return new Writer().string(1, key).message(2, value);
}

/**
 * trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8,
 * attributes 9, status 15 (Status.code = 3).
 */
function span(s: SpanData): Writer {
  const w = new Writer().hex(1, s.traceId).hex(2, s.spanId);
  if (s.traceState !== '') w.string(3, s.traceState);
  if (s.parentSpanId !== '') w.hex(4, s.parentSpanId);
  w.string(5, s.name).uint(6, s.kind).fixed64(7, nanos(s.startMs)).fixed64(8, nanos(s.endMs));
  for (const [k, v] of s.attributes) w.message(9, keyValue(k, v));
  if (s.error) w.message(15, new Writer().uint(3, STATUS_ERROR));
  return w;
}

/**
 * ExportTraceServiceRequest { resource_spans = 1 } → ResourceSpans
 * { resource = 1 (Resource { attributes = 1 }); scope_spans = 2 } →
 * ScopeSpans { scope = 1 (InstrumentationScope { name = 1; version = 2 }); spans = 2 }.
 */
export function encodeProtobuf(spans: readonly SpanData[], resource: Resource): Buffer {
  const res = new Writer();
  for (const [k, v] of resourceAttributes(resource)) res.message(1, keyValue(k, v));
  const scope = new Writer().message(1, new Writer().string(1, SCOPE_NAME).string(2, resource.version));
  for (const s of spans) scope.message(2, span(s));
  const rs = new Writer().message(1, res).message(2, scope);
  return new Writer().message(1, rs).finish();
}
