import http from 'node:http';
import https from 'node:https';
import type { TracingConfig } from '../config/types';
import { encodeJson, encodeProtobuf, type Resource, type SpanData } from './otlp';

/** How often waiting spans go out (SPEC: at least every 5 s). */
export const EXPORT_INTERVAL_MS = 1000;
/** Spans per export request at most (the OpenTelemetry SDK's default batch). */
export const MAX_BATCH = 512;
/** An export that has not been answered by then failed (the SDK's default). */
export const EXPORT_TIMEOUT_MS = 10_000;

/**
 * Finished spans on their way to an OTLP/HTTP collector, in batches: every
 * EXPORT_INTERVAL_MS, or as soon as a batch is full. A collector that is slow,
 * down or never answers costs the request path nothing: `add` is a push onto
 * a bounded queue, at most one export is in flight, each has a timeout, and
 * what does not fit or fails is dropped and counted (`onDropped`).
 */
export class OtlpExporter {
  readonly #queue: SpanData[] = [];
  readonly #max: number;
  readonly #batch: number;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #encode: (spans: readonly SpanData[]) => Buffer;
  readonly #agent: http.Agent;
  readonly #onDropped: (n: number) => void;
  readonly #timer: NodeJS.Timeout;
  /** The export in flight; resolves when it has ended, whatever the outcome. */
  #inFlight: Promise<void> | undefined;
  #soon = false;
  #closed = false;

  constructor(config: TracingConfig, resource: Resource, onDropped: (n: number) => void) {
    this.#max = config.maxQueueSize;
    this.#batch = Math.min(MAX_BATCH, config.maxQueueSize);
    this.#url = new URL(config.otlp.endpoint);
    const json = config.otlp.encoding === 'json';
    this.#encode = json ? (s) => encodeJson(s, resource) : (s) => encodeProtobuf(s, resource);
    this.#headers = { ...config.otlp.headers, 'content-type': json ? 'application/json' : 'application/x-protobuf' };
    const secure = this.#url.protocol === 'https:';
    this.#agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
    this.#onDropped = onDropped;
    this.#timer = setInterval(() => this.#export(), EXPORT_INTERVAL_MS).unref();
  }

  /** A finished span; dropped (and counted) when the queue is full. */
  add(span: SpanData): void {
    const q = this.#queue;
    if (q.length >= this.#max) {
      this.#onDropped(1);
      return;
    }
    q.push(span);
    // A full batch goes now; after close, every straggler goes at once (no timer is left).
    if ((q.length >= this.#batch || this.#closed) && !this.#soon && this.#inFlight === undefined) {
      this.#soon = true;
      setImmediate(() => {
        this.#soon = false;
        this.#export();
      });
    }
  }

  /** Spans waiting (tests, and flush). */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Export everything queued, within `timeoutMs` (a clean stop: SIGTERM's
   * shutdownTimeout); then stop the timer. What is still queued at the
   * deadline is counted as dropped.
   */
  async close(timeoutMs: number): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (this.#queue.length > 0 || this.#inFlight !== undefined)) {
      if (this.#inFlight === undefined) this.#export(deadline - Date.now());
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#inFlight, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    if (this.#queue.length > 0) this.#onDropped(this.#queue.splice(0).length);
    this.#agent.destroy();
  }

  #export(timeoutMs = EXPORT_TIMEOUT_MS): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0) return;
    const spans = this.#queue.splice(0, this.#batch);
    this.#inFlight = this.#post(this.#encode(spans), Math.min(timeoutMs, EXPORT_TIMEOUT_MS)).then((ok) => {
      if (!ok) this.#onDropped(spans.length);
      this.#inFlight = undefined;
      // More than a batch was waiting: the next one goes now rather than at the next tick.
      if (this.#queue.length >= this.#batch || (this.#closed && this.#queue.length > 0)) this.#export();
    });
  }

  /** One POST; true on a 2xx answer. Never rejects. */
  #post(body: Buffer, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const send = this.#url.protocol === 'https:' ? https.request : http.request;
      const req = send(this.#url, {
        method: 'POST',
        agent: this.#agent,
        headers: { ...this.#headers, 'content-length': String(body.length) },
      }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => done(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300));
        res.on('error', () => done(false));
      });
      // Not req.setTimeout: that is idle time, and a collector that trickles
      // bytes would keep an export (and the spans behind it) forever.
      const timer = setTimeout(() => {
        req.destroy(new Error('export timed out'));
        done(false);
      }, timeoutMs);
      timer.unref();
      req.on('error', () => done(false));
      req.end(body);
    });
  }
}
