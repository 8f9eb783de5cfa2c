import type { TracingConfig } from '../config/types';
import type { RequestRecord } from '../proxy/exchange';
import { IdSource, formatTraceparent, parseTraceparent } from './context';
import { OtlpExporter } from './exporter';
import { AttributeBlock, AttributeKey, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, type AttributeSink, type Resource, type SpanData } from './otlp';

/**
 * SPEC section 12: one server span per request, one client span per attempt
 * on a backend (child of the server span, so a retry shows as two), W3C
 * trace context continued from the client or started here.
 *
 * Built only when `tracing` is configured: without it the listener and the
 * exchange see `undefined` and do nothing more than that one check.
 */

const ORIGIN = performance.timeOrigin;

/** The attributes' keys (OpenTelemetry HTTP semantic conventions, and Fulcrum's), encoded once; with few values, each value's too. */
const REPEATS = { repeats: true };
const METHOD = new AttributeKey('http.request.method', REPEATS);
const URL_PATH = new AttributeKey('url.path');
const URL_FULL = new AttributeKey('url.full');
const STATUS_CODE = new AttributeKey('http.response.status_code', REPEATS);
const CLIENT_ADDRESS = new AttributeKey('client.address', REPEATS);
const SERVER_ADDRESS = new AttributeKey('server.address', REPEATS);
const SERVER_PORT = new AttributeKey('server.port', REPEATS);
const ERROR_TYPE = new AttributeKey('error.type');
const ROUTE = new AttributeKey('fulcrum.route', REPEATS);
const POOL = new AttributeKey('fulcrum.pool', REPEATS);
const BACKEND = new AttributeKey('fulcrum.backend', REPEATS);

/** The header-list names Fulcrum replaces; tracestate is passed on untouched. */
const TRACEPARENT = 'traceparent';

/**
 * A backend's client-span attributes that depend on it alone (server.address
 * and server.port from its URL, an origin normalised with a port; its name),
 * encoded once per backend.
 */
const backendBlocks = new Map<string, { readonly name: string; readonly block: AttributeBlock }>();
function backendBlock(backend: { readonly name: string; readonly url: string }): AttributeBlock {
  const url = backend.url;
  let b = backendBlocks.get(url);
  if (b === undefined || b.name !== backend.name) {
    const colon = url.lastIndexOf(':');
    const block = new AttributeBlock([[SERVER_ADDRESS, url.slice(url.indexOf('//') + 2, colon)], [SERVER_PORT, Number(url.slice(colon + 1))], [BACKEND, backend.name]]);
    b = { name: backend.name, block };
    if (backendBlocks.size >= 10_000) backendBlocks.clear();
    backendBlocks.set(url, b);
  }
  return b.block;
}

/** A server span's fulcrum.route, fulcrum.pool and fulcrum.backend, encoded once per backend (and its route and pool). */
const routeBlocks = new Map<string, { readonly route: number; readonly pool: string; readonly block: AttributeBlock }>();
function routeBlock(route: number, pool: string, backend: string): AttributeBlock {
  let b = routeBlocks.get(backend);
  if (b === undefined || b.route !== route || b.pool !== pool) {
    b = { route, pool, block: new AttributeBlock([[ROUTE, route], [POOL, pool], [BACKEND, backend]]) };
    if (routeBlocks.size >= 10_000) routeBlocks.clear();
    routeBlocks.set(backend, b);
  }
  return b.block;
}

/** The trace of one client request: its server span, and the attempts' client spans. */
export class ServerTrace implements SpanData {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly sampled: boolean;
  readonly kind = SPAN_KIND_SERVER;
  /** The ids' bytes in the tracer's IdSource (SpanData): null for a trace the client started. */
  readonly traceIdBytes: Uint8Array | null;
  readonly traceIdAt: number;
  readonly spanIdBytes: Uint8Array;
  readonly spanIdAt: number;
  readonly parentIdBytes = null;
  readonly parentIdAt = 0;
  readonly #tracer: Tracer;
  /** performance.now() when the request came (the exchange's startedAt, from which it measures durationMs). */
  readonly startedAt: number;
  /** The route's index in its listener; -1 when no route matched. */
  readonly #route: number;
  /** Where in the forwarded header list the traceparent value sits (-1 until bindHeaders). */
  #at = -1;
  /** The finished request (set by end). */
  #record: RequestRecord | undefined;

  constructor(tracer: Tracer, headers: Readonly<Record<string, string | string[] | undefined>>, startedAt: number, route: number) {
    this.#tracer = tracer;
    const parent = parseTraceparent(headers.traceparent);
    const state = headers.tracestate;
    this.traceState = typeof state === 'string' ? state : Array.isArray(state) ? state.join(',') : '';
    const ids = tracer.ids;
    if (parent !== undefined) {
      this.traceId = parent.traceId;
      this.traceIdBytes = null;
      this.traceIdAt = 0;
      this.parentSpanId = parent.spanId;
      this.sampled = parent.sampled;
    } else {
      this.traceId = ids.traceId();
      this.traceIdBytes = ids.bytes;
      this.traceIdAt = ids.at;
      this.parentSpanId = '';
      this.sampled = tracer.sample();
    }
    this.spanId = ids.spanId();
    this.spanIdBytes = ids.bytes;
    this.spanIdAt = ids.at;
    this.startedAt = startedAt;
    this.#route = route;
  }

  /**
   * The forwarded header list gets exactly one traceparent, whose value each
   * attempt sets (its own client span is the backend's parent); the client's,
   * valid or not, is not passed on. tracestate stays as the client sent it.
   */
  bindHeaders(headers: string[]): void {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      const name = headers[i]!;
      if (name.length === TRACEPARENT.length && name.toLowerCase() === TRACEPARENT) headers.splice(i, 2);
    }
    headers.push(TRACEPARENT, '');
    this.#at = headers.length - 1;
  }

  /** A new attempt, started at `now` (performance.now()): its client span, and the traceparent that names it in `headers`. */
  attempt(backend: { readonly name: string; readonly url: string }, method: string, path: string, headers: string[], now: number): ClientSpan {
    const ids = this.#tracer.ids;
    const span = new ClientSpan(this, ids.spanId(), ids.bytes, ids.at, backend, method, path, now);
    if (this.#at !== -1) headers[this.#at] = formatTraceparent(this.traceId, span.spanId, this.sampled);
    return span;
  }

  /** The request is over (the observers' onRequestEnd): the server span goes to the exporter, if sampled. */
  end(r: RequestRecord): void {
    if (!this.sampled || this.#record !== undefined) return;
    this.#record = r;
    this.#tracer.record(this);
  }

  /** @internal ClientSpan's way to the exporter. */
  recordClient(span: ClientSpan): void {
    this.#tracer.record(span);
  }

  get name(): string {
    return this.#record!.method;
  }

  get startMs(): number {
    return ORIGIN + this.startedAt;
  }

  get endMs(): number {
    return ORIGIN + this.startedAt + this.#record!.durationMs;
  }

  get error(): boolean {
    return this.#record!.status >= 500;
  }

  /** OpenTelemetry's HTTP server attributes, and Fulcrum's route, pool and backend. */
  writeAttributes(a: AttributeSink): void {
    const r = this.#record!;
    const q = r.url.indexOf('?');
    a.str(METHOD, r.method);
    a.str(URL_PATH, q === -1 ? r.url : r.url.slice(0, q));
    a.int(STATUS_CODE, r.status);
    a.str(CLIENT_ADDRESS, r.remoteAddress);
    if (this.#route !== -1 && r.pool !== '' && r.backend !== '') a.block(routeBlock(this.#route, r.pool, r.backend));
    else {
      if (this.#route !== -1) a.int(ROUTE, this.#route);
      if (r.pool !== '') a.str(POOL, r.pool);
      if (r.backend !== '') a.str(BACKEND, r.backend);
    }
    if (r.status >= 500) a.str(ERROR_TYPE, String(r.status));
  }
}

/** One attempt on a backend. */
export class ClientSpan implements SpanData {
  readonly spanId: string;
  readonly spanIdBytes: Uint8Array;
  readonly spanIdAt: number;
  readonly kind = SPAN_KIND_CLIENT;
  /** The backend's status, once its headers came. */
  status = 0;
  /** Why the attempt failed, when it did without a status (the error's code). */
  failure: string | undefined;
  readonly #trace: ServerTrace;
  readonly #backend: { readonly name: string; readonly url: string };
  readonly #method: string;
  readonly #path: string;
  readonly #start: number;
  #end = 0;

  constructor(trace: ServerTrace, spanId: string, spanIdBytes: Uint8Array, spanIdAt: number, backend: { readonly name: string; readonly url: string }, method: string, path: string, start: number) {
    this.#trace = trace;
    this.#start = start;
    this.spanId = spanId;
    this.spanIdBytes = spanIdBytes;
    this.spanIdAt = spanIdAt;
    this.#backend = backend;
    this.#method = method;
    this.#path = path;
  }

  /** The attempt failed with `code` (ECONNREFUSED, a timeout's code...). */
  fail(code: string): void {
    this.failure = code;
  }

  /** The attempt is over at `now` (performance.now(), which the exchange reads anyway). */
  end(now: number): void {
    if (this.#end !== 0) return;
    this.#end = now;
    if (this.#trace.sampled) this.#trace.recordClient(this);
  }

  get traceId(): string {
    return this.#trace.traceId;
  }

  get parentSpanId(): string {
    return this.#trace.spanId;
  }

  get traceIdBytes(): Uint8Array | null {
    return this.#trace.traceIdBytes;
  }

  get traceIdAt(): number {
    return this.#trace.traceIdAt;
  }

  get parentIdBytes(): Uint8Array {
    return this.#trace.spanIdBytes;
  }

  get parentIdAt(): number {
    return this.#trace.spanIdAt;
  }

  get traceState(): string {
    return this.#trace.traceState;
  }

  get name(): string {
    return this.#method;
  }

  // Epoch times made as the server span's are, (ORIGIN + its start) + an
  // offset: the exchange hands the same clock read to this span's end and to
  // the record's durationMs, and only the same arithmetic keeps this span
  // within its parent once rounded to nanoseconds.
  get startMs(): number {
    const from = this.#trace.startedAt;
    return ORIGIN + from + (this.#start - from);
  }

  get endMs(): number {
    const from = this.#trace.startedAt;
    return ORIGIN + from + (this.#end - from);
  }

  get error(): boolean {
    return this.failure !== undefined || this.status >= 500;
  }

  /** OpenTelemetry's HTTP client attributes, and the backend's name. */
  writeAttributes(a: AttributeSink): void {
    a.str(METHOD, this.#method);
    a.str2(URL_FULL, this.#backend.url, this.#path);
    a.block(backendBlock(this.#backend));
    if (this.status !== 0) a.int(STATUS_CODE, this.status);
    if (this.error) a.str(ERROR_TYPE, this.failure ?? String(this.status));
  }
}

/** One `tracing` config's sampler, ids and exporter. */
export class Tracer {
  readonly ids = new IdSource();
  readonly config: TracingConfig;
  readonly #exporter: OtlpExporter;
  readonly #random: () => number;

  constructor(config: TracingConfig, options: { version: string; onDropped: (n: number) => void; random?: () => number }) {
    this.config = config;
    this.#random = options.random ?? Math.random;
    const resource: Resource = { serviceName: config.serviceName, version: options.version };
    this.#exporter = new OtlpExporter(config, resource, options.onDropped);
  }

  /** A request's trace; `route` is its route's index in the listener (-1: none matched). */
  begin(headers: Readonly<Record<string, string | string[] | undefined>>, startedAt: number, route: number): ServerTrace {
    return new ServerTrace(this, headers, startedAt, route);
  }

  /** For a trace Fulcrum starts: sampled with sampleRatio. */
  sample(): boolean {
    const r = this.config.sampleRatio;
    return r >= 1 || (r > 0 && this.#random() < r);
  }

  record(span: SpanData): void {
    this.#exporter.add(span);
  }

  /** Export what is queued within `timeoutMs`, then stop. */
  close(timeoutMs: number): Promise<void> {
    return this.#exporter.close(timeoutMs);
  }
}

/**
 * What the listeners hold: the current Tracer, or null without `tracing`.
 * A reload swaps it here, once for every listener.
 */
export interface Tracing {
  tracer: Tracer | null;
}
