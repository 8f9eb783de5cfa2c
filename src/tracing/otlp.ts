/**
 * The OTLP trace export request (opentelemetry-proto,
 * opentelemetry/proto/collector/trace/v1/trace_service.proto and
 * trace/v1/trace.proto) in its two OTLP/HTTP encodings: binary protobuf and
 * JSON (https://opentelemetry.io/docs/specs/otlp/#otlphttp). Only the fields
 * Fulcrum's spans use are written; a receiver ignores what is absent.
 *
 * Written by hand rather than with protobufjs or the OpenTelemetry SDK's
 * exporter: a span is encoded when it ends, straight into the bytes of the
 * next export request, without an object per field or attribute (see README,
 * Design choices, for the figures).
 */

/** OTLP SpanKind. */
export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;
/** OTLP Status.StatusCode: UNSET (0) unless the span failed. */
export const STATUS_ERROR = 2;

export type AttributeValue = string | number;

/** Where a span writes its attributes: nothing is made for them but their bytes. */
export interface AttributeSink {
  str(key: string, value: string): void;
  /** The string `a + b`, without making it. */
  str2(key: string, a: string, b: string): void;
  /** A non-negative integer (int64). */
  int(key: string, value: number): void;
}

/**
 * A finished span, as the tracer hands it to the exporter: the tracer's own
 * span objects, so ending a span copies nothing.
 */
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
  writeAttributes(sink: AttributeSink): void;
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

/** One span in OTLP/JSON: ids as hex (not base64, unlike proto3's mapping), enums as numbers, nanoseconds as strings. */
function spanJson(s: SpanData): string {
  return JSON.stringify({
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId !== '' ? { parentSpanId: s.parentSpanId } : {}),
    ...(s.traceState !== '' ? { traceState: s.traceState } : {}),
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: String(nanos(s.startMs)),
    endTimeUnixNano: String(nanos(s.endMs)),
    attributes: jsonAttributes(s),
    status: s.error ? { code: STATUS_ERROR } : {},
  });
}

/**
 * Spans encoded as they end (so nothing of a request outlives it but its
 * bytes), and the export request made of them.
 */
export interface SpanBatch {
  /** Spans added since the last take(). */
  readonly count: number;
  add(s: SpanData): void;
  /** The export request of the spans added so far; the batch starts again empty. */
  take(): Buffer;
}

export class JsonBatch implements SpanBatch {
  count = 0;
  #spans: string[] = [];
  readonly #resource: Resource;

  constructor(resource: Resource) {
    this.#resource = resource;
  }

  add(s: SpanData): void {
    this.#spans.push(spanJson(s));
    this.count++;
  }

  take(): Buffer {
    const r = this.#resource;
    const resource = JSON.stringify({ attributes: resourceAttributes(r).map(([key, v]) => ({ key, value: jsonValue(v) })) });
    const scope = JSON.stringify({ name: SCOPE_NAME, version: r.version });
    const body = `{"resourceSpans":[{"resource":${resource},"scopeSpans":[{"scope":${scope},"spans":[${this.#spans.join(',')}]}]}]}`;
    this.#spans = [];
    this.count = 0;
    return Buffer.from(body, 'utf8');
  }
}

function jsonAttributes(s: SpanData): { key: string; value: Record<string, string> }[] {
  const out: { key: string; value: Record<string, string> }[] = [];
  s.writeAttributes({
    str: (key, v) => out.push({ key, value: jsonValue(v) }),
    str2: (key, a, b) => out.push({ key, value: jsonValue(a + b) }),
    int: (key, v) => out.push({ key, value: jsonValue(v) }),
  });
  return out;
}

function resourceAttributes(r: Resource): [string, AttributeValue][] {
  // process.pid: with workers, which process served (and exported) the span.
  return [['service.name', r.serviceName], ['service.version', r.version], ['process.pid', process.pid], ['telemetry.sdk.name', 'fulcrum'], ['telemetry.sdk.language', 'nodejs']];
}

// ---- protobuf --------------------------------------------------------------

/** Hex digit → value, by char code. */
const HEX = new Uint8Array(128);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = i;

/**
 * Epoch ms → unix ns as two uint32 (low, high). The product passes 2^53, so
 * it is made from parts that do not: whole ms = hi * 2^21 + lo, and
 * whole * 10^6 = (hi * 10^6) * 2^21 + lo * 10^6.
 */
function nanoParts(ms: number): [number, number] {
  const whole = Math.floor(ms);
  const frac = Math.round((ms - whole) * 1_000_000);
  const a = Math.floor(whole / 2_097_152) * 1_000_000;
  const b = (whole % 2_097_152) * 1_000_000 + frac;
  const low = (a % 2048) * 2_097_152 + b;
  return [low % 4_294_967_296, Math.floor(a / 2048) + Math.floor(low / 4_294_967_296)];
}

/** Bytes of a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * Protobuf wire format into one growing buffer, with no object per field: a
 * nested message reserves five bytes for its length, is written in place,
 * then its length goes in front and the body moves back over the unused
 * bytes (tens to hundreds of bytes: cheaper than sizing every message first).
 * Measured at about 1 µs a span where a Writer per message with BigInt
 * varints cost 26 to 95 µs.
 */
class Out {
  buf: Buffer;
  at = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  raw(bytes: Buffer, length: number): void {
    this.room(length);
    bytes.copy(this.buf, this.at, 0, length);
    this.at += length;
  }

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  /** Non-negative integers below 2^53. */
  varint(n: number): void {
    this.room(10);
    const b = this.buf;
    while (n >= 0x80) {
      b[this.at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    b[this.at++] = n;
  }

  tag(field: number, wire: number): void {
    this.room(1);
    this.buf[this.at++] = (field << 3) | wire;
  }

  uint(field: number, n: number): void {
    this.tag(field, 0);
    this.varint(n);
  }

  /** Short ASCII strings (nearly all of a span's) byte by byte: cheaper than a call into C++ for each. */
  string(field: number, s: string): void {
    const n = s.length;
    if (n < 128) {
      this.room(2 + n);
      const b = this.buf;
      const start = this.at;
      b[start] = (field << 3) | 2;
      b[start + 1] = n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[start + 2 + i] = c;
      }
      if (i === n) {
        this.at = start + 2 + n;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.tag(field, 2);
    this.varint(len);
    this.room(len);
    this.at += this.buf.write(s, this.at, len, 'utf8');
  }

  /** Lower-case hex ids (the tracer makes them so) as their bytes. */
  hex(field: number, s: string): void {
    const len = s.length >> 1;
    this.room(2 + len);
    const b = this.buf;
    b[this.at++] = (field << 3) | 2;
    b[this.at++] = len;
    for (let i = 0; i < len; i++) b[this.at++] = (HEX[s.charCodeAt(2 * i)]! << 4) | HEX[s.charCodeAt(2 * i + 1)]!;
  }

  /** Epoch ms as unix nanoseconds, little-endian, exactly and without a BigInt (see nanoParts). */
  fixed64(field: number, ms: number): void {
    this.tag(field, 1);
    this.room(8);
    const [lo, hi] = nanoParts(ms);
    this.buf.writeUInt32LE(lo, this.at);
    this.buf.writeUInt32LE(hi, this.at + 4);
    this.at += 8;
  }

  /** Opens a length-delimited field; returns where, for end(). */
  begin(field: number): number {
    this.tag(field, 2);
    this.room(5);
    const start = this.at;
    this.at += 5;
    return start;
  }

  end(start: number): void {
    const len = this.at - start - 5;
    const size = varintSize(len);
    if (size < 5) this.buf.copyWithin(start + size, start + 5, this.at);
    const end = this.at - (5 - size);
    this.at = start;
    this.varint(len);
    this.at = end;
  }
}

/**
 * The usual attribute, an ASCII key and a short ASCII string `a + b`, with
 * its lengths known up front (one byte each); false (nothing written) otherwise.
 */
function shortKeyValue(out: Out, field: number, key: string, a: string, b: string): boolean {
  const kl = key.length;
  const vl = a.length + b.length;
  const anyLen = 2 + vl;
  const kvLen = 2 + kl + 2 + anyLen;
  if (kvLen > 127) return false;
  out.room(2 + kvLen);
  const buf = out.buf;
  let i = out.at;
  buf[i++] = (field << 3) | 2;
  buf[i++] = kvLen;
  buf[i++] = 0x0a;
  buf[i++] = kl;
  for (let j = 0; j < kl; j++) {
    const c = key.charCodeAt(j);
    if (c > 0x7f) return false;
    buf[i++] = c;
  }
  buf[i++] = 0x12;
  buf[i++] = anyLen;
  buf[i++] = 0x0a;
  buf[i++] = vl;
  for (let j = 0; j < a.length; j++) {
    const c = a.charCodeAt(j);
    if (c > 0x7f) return false;
    buf[i++] = c;
  }
  for (let j = 0; j < b.length; j++) {
    const c = b.charCodeAt(j);
    if (c > 0x7f) return false;
    buf[i++] = c;
  }
  out.at = i;
  return true;
}

/** common.v1.KeyValue { key = 1; AnyValue value = 2 }; AnyValue { string_value = 1; int_value = 3 }. */
function keyValue(out: Out, field: number, key: string, v: AttributeValue): void {
  const kv = out.begin(field);
  out.string(1, key);
  const any = out.begin(2);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out.uint(3, v);
  else out.string(1, String(v));
  out.end(any);
  out.end(kv);
}

/** Span.attributes (field 9) into an Out. */
class ProtobufAttributes implements AttributeSink {
  out!: Out;

  str(key: string, v: string): void {
    if (!shortKeyValue(this.out, 9, key, v, '')) keyValue(this.out, 9, key, v);
  }

  str2(key: string, a: string, b: string): void {
    if (!shortKeyValue(this.out, 9, key, a, b)) keyValue(this.out, 9, key, a + b);
  }

  int(key: string, v: number): void {
    keyValue(this.out, 9, key, v);
  }
}

const attributeSink = new ProtobufAttributes();

/**
 * trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8,
 * attributes 9, status 15 (Status.code = 3).
 */
function span(out: Out, s: SpanData): void {
  const at = out.begin(2);
  out.hex(1, s.traceId);
  out.hex(2, s.spanId);
  if (s.traceState !== '') out.string(3, s.traceState);
  if (s.parentSpanId !== '') out.hex(4, s.parentSpanId);
  out.string(5, s.name);
  out.uint(6, s.kind);
  out.fixed64(7, s.startMs);
  out.fixed64(8, s.endMs);
  attributeSink.out = out;
  s.writeAttributes(attributeSink);
  if (s.error) {
    const st = out.begin(15);
    out.uint(3, STATUS_ERROR);
    out.end(st);
  }
  out.end(at);
}

/**
 * ExportTraceServiceRequest { resource_spans = 1 } → ResourceSpans
 * { resource = 1 (Resource { attributes = 1 }); scope_spans = 2 } →
 * ScopeSpans { scope = 1 (InstrumentationScope { name = 1; version = 2 }); spans = 2 }.
 * Each span is written as ScopeSpans' field 2 when it is added; take() puts
 * the envelope around them.
 */
export class ProtobufBatch implements SpanBatch {
  count = 0;
  /** Two buffers in turn: one may still be on its way to the collector (at most one export is in flight) while the other fills. */
  readonly #outs: [Out, Out];
  #current = 0;
  /** ResourceSpans.resource and ScopeSpans.scope, the same in every request. */
  readonly #resource: Buffer;
  readonly #scope: Buffer;
  /** Bytes kept free before the spans for the envelope (tags, two lengths, resource, scope). */
  readonly #headroom: number;

  constructor(resource: Resource) {
    const r = new Out(1024);
    const res = r.begin(1);
    for (const [k, v] of resourceAttributes(resource)) keyValue(r, 1, k, v);
    r.end(res);
    this.#resource = Buffer.from(r.buf.subarray(0, r.at));
    const sc = new Out(256);
    const scope = sc.begin(1);
    sc.string(1, SCOPE_NAME);
    sc.string(2, resource.version);
    sc.end(scope);
    this.#scope = Buffer.from(sc.buf.subarray(0, sc.at));
    this.#headroom = 2 * 6 + this.#resource.length + this.#scope.length;
    this.#outs = [new Out(), new Out()];
    for (const o of this.#outs) o.at = this.#headroom;
  }

  add(s: SpanData): void {
    span(this.#outs[this.#current], s);
    this.count++;
  }

  /** The envelope goes in the headroom, right before the spans: no copy of them. */
  take(): Buffer {
    const out = this.#outs[this.#current];
    const scopeSpans = this.#scope.length + (out.at - this.#headroom);
    const resourceSpans = this.#resource.length + 1 + varintSize(scopeSpans) + scopeSpans;
    const prefix = 1 + varintSize(resourceSpans) + this.#resource.length + 1 + varintSize(scopeSpans) + this.#scope.length;
    const end = out.at;
    out.at = this.#headroom - prefix;
    const start = out.at;
    out.tag(1, 2);
    out.varint(resourceSpans);
    out.raw(this.#resource, this.#resource.length);
    out.tag(2, 2);
    out.varint(scopeSpans);
    out.raw(this.#scope, this.#scope.length);
    const body = out.buf.subarray(start, end);
    this.#current = 1 - this.#current;
    this.#outs[this.#current].at = this.#headroom;
    this.count = 0;
    return body;
  }
}

/** A whole export request (tests, one-off use). */
export function encodeSpans(encoding: 'protobuf' | 'json', spans: readonly SpanData[], resource: Resource): Buffer {
  const batch = encoding === 'json' ? new JsonBatch(resource) : new ProtobufBatch(resource);
  for (const s of spans) batch.add(s);
  return batch.take();
}
