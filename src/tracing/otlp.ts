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
  str(key: AttributeKey, value: string): void;
  /** The string `a + b`, without making it. */
  str2(key: AttributeKey, a: string, b: string): void;
  /** A non-negative integer (int64). */
  int(key: AttributeKey, value: number): void;
  /** Attributes that always go together, encoded once. */
  block(block: AttributeBlock): void;
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
  /**
   * Where the tracer has an id's bytes (the ids it made itself, IdSource):
   * the buffer and the offset, copied instead of decoding the hex. Absent or
   * null: the hex string is decoded (ids that came in a client's traceparent).
   */
  readonly traceIdBytes?: Uint8Array | null;
  readonly traceIdAt?: number;
  readonly spanIdBytes?: Uint8Array | null;
  readonly spanIdAt?: number;
  readonly parentIdBytes?: Uint8Array | null;
  readonly parentIdAt?: number;
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
    str: (key, v) => out.push({ key: key.name, value: jsonValue(v) }),
    str2: (key, a, b) => out.push({ key: key.name, value: jsonValue(a + b) }),
    int: (key, v) => out.push({ key: key.name, value: jsonValue(v) }),
    block: (b) => {
      for (const [key, v] of b.attributes) out.push({ key: key.name, value: jsonValue(v) });
    },
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

/** Bytes of a varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Span.attributes is field 9, length-delimited: its tag byte. */
const ATTRIBUTE_TAG = (9 << 3) | 2;
/** KeyValue.value (field 2) and AnyValue's string_value (1) and int_value (3), as tag bytes. */
const VALUE_TAG = (2 << 3) | 2;
const STRING_VALUE_TAG = (1 << 3) | 2;
const INT_VALUE_TAG = 3 << 3;

/**
 * Protobuf wire format into one growing buffer, with no object per field.
 * A span's attributes are written with their lengths worked out first (a
 * KeyValue is small and its parts are known); the span itself, whose length
 * is known only at its end, reserves two bytes for it (a span is 128 to
 * 16383 bytes long, nearly always) and moves only when that guess was wrong.
 * Measured at about 0.5 µs a span; a Writer per message with BigInt varints
 * cost 26 to 95 µs, and moving every nested message back over five reserved
 * bytes about 2 µs.
 */
class Out {
  buf: Buffer;
  at = 0;
  /**
   * The last span's trace id, and where its bytes are in `buf`: a request's
   * client span and server span end one after the other, and the second
   * copies the id's 16 bytes instead of decoding 32 hex digits again.
   */
  traceId = '';
  traceIdAt = -1;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  raw(bytes: Uint8Array, length: number): void {
    this.room(length);
    this.buf.set(length === bytes.length ? bytes : bytes.subarray(0, length), this.at);
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
      b[this.at] = (field << 3) | 2;
      b[this.at + 1] = n;
      const end = ascii(b, this.at + 2, s);
      if (end !== -1) {
        this.at = end;
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
    let i = this.at;
    b[i++] = (field << 3) | 2;
    b[i++] = len;
    for (let j = 0; j < s.length; j += 2) b[i++] = (HEX[s.charCodeAt(j)]! << 4) | HEX[s.charCodeAt(j + 1)]!;
    this.at = i;
  }

  /** An id (`length` bytes) as field `field`, copied from `bytes` at `from`. */
  id(field: number, bytes: Uint8Array, from: number, length: number): void {
    this.room(2 + length);
    const b = this.buf;
    let i = this.at;
    b[i++] = (field << 3) | 2;
    b[i++] = length;
    for (let j = 0; j < length; j++) b[i++] = bytes[from + j]!;
    this.at = i;
  }

  /** Span.trace_id (field 1), the bytes of the last one written (see traceId). */
  copyTraceId(): void {
    this.room(18);
    const b = this.buf;
    const from = this.traceIdAt;
    let i = this.at;
    b[i++] = (1 << 3) | 2;
    b[i++] = 16;
    for (let j = 0; j < 16; j++) b[i++] = b[from + j]!;
    this.at = i;
  }

  /** A new request body from `at`: what was written before is no longer there to copy. */
  restart(at: number): void {
    this.at = at;
    this.traceId = '';
    this.traceIdAt = -1;
  }

  /**
   * Epoch ms as unix nanoseconds, fixed64 little-endian, exactly and without
   * a BigInt or an array: the product passes 2^53, so it is made from parts
   * that do not: whole ms = q * 2^21 + r, whole * 10^6 = (q * 10^6) * 2^21 + r * 10^6,
   * and (q * 10^6) * 2^21 = (q * 10^6 div 2048) * 2^32 + (q * 10^6 mod 2048) * 2^21.
   */
  fixed64(field: number, ms: number): void {
    this.room(9);
    const whole = Math.floor(ms);
    const frac = Math.round((ms - whole) * 1_000_000);
    // x mod 2^k as x - floor(x / 2^k) * 2^k: exact here, and no call to fmod (what % on doubles costs).
    const q = Math.floor(whole / 2_097_152);
    const a = q * 1_000_000;
    const aHigh = Math.floor(a / 2048);
    const low = (a - aHigh * 2048) * 2_097_152 + (whole - q * 2_097_152) * 1_000_000 + frac;
    const carry = Math.floor(low / 4_294_967_296);
    const lo = low - carry * 4_294_967_296;
    const hi = aHigh + carry;
    const b = this.buf;
    const i = this.at;
    b[i] = (field << 3) | 1;
    b[i + 1] = lo;
    b[i + 2] = lo >>> 8;
    b[i + 3] = lo >>> 16;
    b[i + 4] = lo >>> 24;
    b[i + 5] = hi;
    b[i + 6] = hi >>> 8;
    b[i + 7] = hi >>> 16;
    b[i + 8] = hi >>> 24;
    this.at = i + 9;
  }

  /**
   * Opens a length-delimited field, `reserve` bytes kept for its length;
   * returns where, for end().
   */
  begin(field: number, reserve = 5): number {
    this.tag(field, 2);
    this.room(reserve);
    const start = this.at;
    this.at += reserve;
    return start;
  }

  /** Closes what begin() opened: its length goes in front, the body moves only if the length took other than `reserve` bytes. */
  end(start: number, reserve = 5): void {
    const len = this.at - start - reserve;
    const size = varintSize(len);
    if (size !== reserve) {
      if (size > reserve) this.room(size - reserve);
      this.buf.copyWithin(start + size, start + reserve, this.at);
      this.at += size - reserve;
      if (this.traceIdAt > start) this.traceIdAt += size - reserve;
    }
    const end = this.at;
    this.at = start;
    this.varint(len);
    this.at = end;
  }
}

/** `s` into `b` from `i` if it is all ASCII: where it ends, or -1 (then what was written is garbage, to be overwritten). */
function ascii(b: Buffer, i: number, s: string): number {
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c > 0x7f) return -1;
    b[i++] = c;
  }
  return i;
}

/**
 * An attribute's key, encoded once (KeyValue.key, field 1: tag, length,
 * UTF-8) to be copied into every span: the tracer's keys are constants, so
 * a span pays for its values' bytes only.
 */
export class AttributeKey {
  readonly name: string;
  readonly bytes: Uint8Array;
  /**
   * With `repeats` (a key whose values are few: methods, pools, backends,
   * addresses): each value's whole KeyValue, encoded once and copied after.
   */
  readonly encoded: Map<string, Uint8Array> | null;
  /** With `repeats`, the same for integer values below MAX_CACHED_INT (status codes, ports), by value. */
  readonly ints: (Uint8Array | undefined)[] | null;

  constructor(name: string, options: { repeats?: boolean } = {}) {
    const utf8 = Buffer.from(name, 'utf8');
    // Short enough that a KeyValue with an int value has one-byte lengths.
    if (utf8.length > 100) throw new RangeError(`attribute key too long: ${name}`);
    this.name = name;
    this.bytes = Uint8Array.of(0x0a, utf8.length, ...utf8);
    this.encoded = options.repeats === true ? new Map() : null;
    this.ints = options.repeats === true ? [] : null;
  }
}

/** Integer values a `repeats` key keeps encoded (status codes, ports below it). */
const MAX_CACHED_INT = 65_536;

/** Values kept per `repeats` key; past it the cache starts again (many client addresses, say). */
const MAX_ENCODED_VALUES = 1024;

/**
 * Span.attributes (field 9): KeyValue { key = 1; AnyValue value = 2 },
 * AnyValue { string_value = 1; int_value = 3 }, each written in one go with
 * its lengths worked out first.
 */
class ProtobufAttributes implements AttributeSink {
  out!: Out;

  str(key: AttributeKey, v: string): void {
    const cache = key.encoded;
    if (cache === null) {
      stringAttribute(this.out, key, v, '');
      return;
    }
    const out = this.out;
    const bytes = cache.get(v);
    if (bytes !== undefined) {
      out.raw(bytes, bytes.length);
      return;
    }
    const start = out.at;
    stringAttribute(out, key, v, '');
    if (cache.size >= MAX_ENCODED_VALUES) cache.clear();
    cache.set(v, new Uint8Array(out.buf.subarray(start, out.at)));
  }

  str2(key: AttributeKey, a: string, b: string): void {
    stringAttribute(this.out, key, a, b);
  }

  int(key: AttributeKey, v: number): void {
    if (!(Number.isInteger(v) && v >= 0)) {
      stringAttribute(this.out, key, String(v), '');
      return;
    }
    const ints = key.ints;
    const out = this.out;
    if (ints === null || v >= MAX_CACHED_INT) {
      intAttribute(out, key, v);
      return;
    }
    const bytes = ints[v];
    if (bytes !== undefined) {
      out.raw(bytes, bytes.length);
      return;
    }
    const start = out.at;
    intAttribute(out, key, v);
    ints[v] = new Uint8Array(out.buf.subarray(start, out.at));
  }

  block(b: AttributeBlock): void {
    this.out.raw(b.bytes, b.bytes.length);
  }
}

/**
 * Attributes with values that go together (a backend's address, port and
 * name; a route, its pool and the backend), written in the order given and
 * encoded once: a span copies their bytes in one go.
 */
export class AttributeBlock {
  readonly attributes: readonly (readonly [AttributeKey, AttributeValue])[];
  readonly bytes: Uint8Array;

  constructor(attributes: readonly (readonly [AttributeKey, AttributeValue])[]) {
    this.attributes = attributes;
    const sink = new ProtobufAttributes();
    sink.out = new Out(256);
    for (const [key, v] of attributes) {
      if (typeof v === 'number') sink.int(key, v);
      else sink.str(key, v);
    }
    this.bytes = new Uint8Array(sink.out.buf.subarray(0, sink.out.at));
  }
}

/** A string value `a + b` (without making it when it is short ASCII, the usual case: every length one byte). */
function stringAttribute(out: Out, key: AttributeKey, a: string, b: string): void {
  const k = key.bytes;
  const vl = a.length + b.length;
  const kvLen = k.length + 4 + vl;
  if (kvLen <= 127) {
    out.room(2 + kvLen);
    const buf = out.buf;
    let i = out.at;
    buf[i++] = ATTRIBUTE_TAG;
    buf[i++] = kvLen;
    for (let j = 0; j < k.length; j++) buf[i++] = k[j]!;
    buf[i++] = VALUE_TAG;
    buf[i++] = 2 + vl;
    buf[i++] = STRING_VALUE_TAG;
    buf[i++] = vl;
    i = ascii(buf, i, a);
    if (i !== -1) i = ascii(buf, i, b);
    if (i !== -1) {
      out.at = i;
      return;
    }
  }
  // Long or not ASCII: the UTF-8 length first, varint lengths.
  const v = b === '' ? a : a + b;
  const bytes = Buffer.byteLength(v, 'utf8');
  const anyLen = 1 + varintSize(bytes) + bytes;
  const kv = k.length + 1 + varintSize(anyLen) + anyLen;
  out.tag(9, 2);
  out.varint(kv);
  out.raw(k, k.length);
  out.tag(2, 2);
  out.varint(anyLen);
  out.tag(1, 2);
  out.varint(bytes);
  out.room(bytes);
  out.at += out.buf.write(v, out.at, bytes, 'utf8');
}

/** A non-negative integer value: one-byte lengths (the key is at most 100 bytes, the varint at most 8). */
function intAttribute(out: Out, key: AttributeKey, v: number): void {
  const k = key.bytes;
  const anyLen = 1 + varintSize(v);
  out.room(5 + k.length);
  const buf = out.buf;
  let i = out.at;
  buf[i++] = ATTRIBUTE_TAG;
  buf[i++] = k.length + 2 + anyLen;
  for (let j = 0; j < k.length; j++) buf[i++] = k[j]!;
  buf[i++] = VALUE_TAG;
  buf[i++] = anyLen;
  buf[i++] = INT_VALUE_TAG;
  out.at = i;
  out.varint(v);
}

/** common.v1.KeyValue { key = 1; AnyValue value = 2 } in any message (the resource's, made once). */
function keyValue(out: Out, field: number, key: string, v: AttributeValue): void {
  const kv = out.begin(field);
  out.string(1, key);
  const any = out.begin(2);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out.uint(3, v);
  else out.string(1, String(v));
  out.end(any);
  out.end(kv);
}

const attributeSink = new ProtobufAttributes();

/** Status { code = 3 } with code ERROR, as Span.status (field 15). */
const ERROR_STATUS = Uint8Array.of((15 << 3) | 2, 2, 3 << 3, STATUS_ERROR);

/**
 * trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8,
 * attributes 9, status 15 (Status.code = 3).
 */
function span(out: Out, s: SpanData): void {
  const at = out.begin(2, 2);
  const traceId = s.traceId;
  if (traceId === out.traceId) out.copyTraceId();
  else {
    out.traceId = traceId;
    out.traceIdAt = out.at + 2;
    const bytes = s.traceIdBytes;
    if (bytes != null) out.id(1, bytes, s.traceIdAt!, 16);
    else out.hex(1, traceId);
  }
  const spanBytes = s.spanIdBytes;
  if (spanBytes != null) out.id(2, spanBytes, s.spanIdAt!, 8);
  else out.hex(2, s.spanId);
  if (s.traceState !== '') out.string(3, s.traceState);
  if (s.parentSpanId !== '') {
    const parentBytes = s.parentIdBytes;
    if (parentBytes != null) out.id(4, parentBytes, s.parentIdAt!, 8);
    else out.hex(4, s.parentSpanId);
  }
  out.string(5, s.name);
  out.uint(6, s.kind);
  out.fixed64(7, s.startMs);
  out.fixed64(8, s.endMs);
  attributeSink.out = out;
  s.writeAttributes(attributeSink);
  if (s.error) out.raw(ERROR_STATUS, ERROR_STATUS.length);
  out.end(at, 2);
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
    for (const o of this.#outs) o.restart(this.#headroom);
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
    this.#outs[this.#current].restart(this.#headroom);
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
