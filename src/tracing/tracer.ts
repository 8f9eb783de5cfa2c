import type { TracingConfig } from '../config/types';
import type { RequestRecord } from '../proxy/exchange';
import { IdSource, formatTraceparent, parseTraceparent } from './context';
import { OtlpExporter } from './exporter';
import { AttributeKey, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, type AttributeSink, type Resource, type SpanData } from './otlp';

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
const STATUS_CODE = new AttributeKey('http.response.status_code');
const CLIENT_ADDRESS = new AttributeKey('client.address', REPEATS);
const SERVER_ADDRESS = new AttributeKey('server.address', REPEATS);
const SERVER_PORT = new AttributeKey('server.port');
const ERROR_TYPE = new AttributeKey('error.type');
const ROUTE = new AttributeKey('fulcrum.route');
const POOL = new AttributeKey('fulcrum.pool', REPEATS);
const BACKEND = new AttributeKey('fulcrum.backend', REPEATS);

/** The header-list names Fulcrum replaces; tracestate is passed on untouched. */
const TRACEPARENT = 'traceparent';

/** A backend URL's host and port, worked out once per URL (backend URLs are origins, normalised with a port). */
const servers = new Map<string, { readonly address: string; readonly port: number }>();
function serverOf(url: string): { readonly address: string; readonly port: number } {
  let s = servers.get(url);
  if (s === undefined) {
    const colon = url.lastIndexOf(':');
    s = { address: url.slice(url.indexOf('//') + 2, colon), port: Number(url.slice(colon + 1)) };
    if (servers.size >= 10_000) servers.clear();
    servers.set(url, s);
  }
  return s;
}

/** The trace of one client request: its server span, and the attempts' client spans. */
export class ServerTrace implements SpanData {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly sampled: boolean;
  readonly kind = SPAN_KIND_SERVER;
  readonly #tracer: Tracer;
  readonly #startedAt: number;
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
    if (parent !== undefined) {
      this.traceId = parent.traceId;
      this.parentSpanId = parent.spanId;
      this.sampled = parent.sampled;
    } else {
      this.traceId = tracer.ids.traceId();
      this.parentSpanId = '';
      this.sampled = tracer.sample();
    }
    this.spanId = tracer.ids.spanId();
    this.#startedAt = startedAt;
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

  /** A new attempt: its client span, and the traceparent that names it in `headers`. */
  attempt(backend: { readonly name: string; readonly url: string }, method: string, path: string, headers: string[]): ClientSpan {
    const span = new ClientSpan(this, this.#tracer.ids.spanId(), backend, method, path);
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
    return ORIGIN + this.#startedAt;
  }

  get endMs(): number {
    return ORIGIN + this.#startedAt + this.#record!.durationMs;
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
    if (this.#route !== -1) a.int(ROUTE, this.#route);
    if (r.pool !== '') a.str(POOL, r.pool);
    if (r.backend !== '') a.str(BACKEND, r.backend);
    if (r.status >= 500) a.str(ERROR_TYPE, String(r.status));
  }
}

/** One attempt on a backend. */
export class ClientSpan implements SpanData {
  readonly spanId: string;
  readonly kind = SPAN_KIND_CLIENT;
  /** The backend's status, once its headers came. */
  status = 0;
  /** Why the attempt failed, when it did without a status (the error's code). */
  failure: string | undefined;
  readonly #trace: ServerTrace;
  readonly #backend: { readonly name: string; readonly url: string };
  readonly #method: string;
  readonly #path: string;
  readonly #start = performance.now();
  #end = 0;

  constructor(trace: ServerTrace, spanId: string, backend: { readonly name: string; readonly url: string }, method: string, path: string) {
    this.#trace = trace;
    this.spanId = spanId;
    this.#backend = backend;
    this.#method = method;
    this.#path = path;
  }

  /** The attempt failed with `code` (ECONNREFUSED, a timeout's code...). */
  fail(code: string): void {
    this.failure = code;
  }

  end(): void {
    if (this.#end !== 0) return;
    this.#end = performance.now();
    if (this.#trace.sampled) this.#trace.recordClient(this);
  }

  get traceId(): string {
    return this.#trace.traceId;
  }

  get parentSpanId(): string {
    return this.#trace.spanId;
  }

  get traceState(): string {
    return this.#trace.traceState;
  }

  get name(): string {
    return this.#method;
  }

  get startMs(): number {
    return ORIGIN + this.#start;
  }

  get endMs(): number {
    return ORIGIN + this.#end;
  }

  get error(): boolean {
    return this.failure !== undefined || this.status >= 500;
  }

  /** OpenTelemetry's HTTP client attributes, and the backend's name. */
  writeAttributes(a: AttributeSink): void {
    const url = this.#backend.url;
    const server = serverOf(url);
    a.str(METHOD, this.#method);
    a.str2(URL_FULL, url, this.#path);
    a.str(SERVER_ADDRESS, server.address);
    a.int(SERVER_PORT, server.port);
    a.str(BACKEND, this.#backend.name);
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
