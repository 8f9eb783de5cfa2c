import http from 'node:http';
import https from 'node:https';
import type { TracingConfig } from '../config/types';
import { JsonBatch, ProtobufBatch, type Resource, type SpanBatch, type SpanData } from './otlp';

/** How often waiting spans go out (SPEC: at least every 5 s). */
export const EXPORT_INTERVAL_MS = 1000;
/**
 * An export goes as soon as this many spans wait (or maxQueueSize, if less).
 * Larger than the OpenTelemetry SDK's 512: each export request costs about a
 * tenth of a millisecond of CPU in node:http, so fewer, larger ones are
 * cheaper per span; the spans of the export in flight do not count against
 * maxQueueSize, so the next batch has all of it.
 */
export const MAX_BATCH = 2048;
/** An export that has not been answered by then failed (the SDK's default). */
export const EXPORT_TIMEOUT_MS = 10_000;

/**
 * Finished spans on their way to an OTLP/HTTP collector, in batches: every
 * EXPORT_INTERVAL_MS, or as soon as MAX_BATCH spans wait. Each span is
 * encoded when it ends, into the batch that waits (its objects die young, and
 * the queue is bytes). A collector that is slow, down or never answers costs
 * the request path nothing: at most maxQueueSize spans wait, at most one
 * export is in flight, each has a timeout, and what does not fit or fails is
 * dropped and counted (`onDropped`).
 */
export class OtlpExporter {
  #queue: SpanBatch;
  readonly #newBatch: () => SpanBatch;
  readonly #max: number;
  readonly #batch: number;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
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
    this.#newBatch = json ? () => new JsonBatch(resource) : () => new ProtobufBatch(resource);
    this.#queue = this.#newBatch();
    this.#headers = { ...config.otlp.headers, 'content-type': json ? 'application/json' : 'application/x-protobuf' };
    const secure = this.#url.protocol === 'https:';
    this.#agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
    this.#onDropped = onDropped;
    this.#timer = setInterval(() => this.#export(), EXPORT_INTERVAL_MS).unref();
  }

  /** A finished span; dropped (and counted) when the queue is full. */
  add(span: SpanData): void {
    const q = this.#queue;
    if (q.count >= this.#max) {
      this.#onDropped(1);
      return;
    }
    q.add(span);
    // A full batch goes now; after close, every straggler goes at once (no timer is left).
    if ((q.count >= this.#batch || this.#closed) && !this.#soon && this.#inFlight === undefined) {
      this.#soon = true;
      setImmediate(() => {
        this.#soon = false;
        this.#export();
      });
    }
  }

  /** Spans waiting (tests, and flush). */
  get queued(): number {
    return this.#queue.count;
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
    while (Date.now() < deadline && (this.#queue.count > 0 || this.#inFlight !== undefined)) {
      if (this.#inFlight === undefined) this.#export(deadline - Date.now());
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#inFlight, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    if (this.#queue.count > 0) {
      this.#onDropped(this.#queue.count);
      this.#queue = this.#newBatch();
    }
    this.#agent.destroy();
  }

  #export(timeoutMs = EXPORT_TIMEOUT_MS): void {
    if (this.#inFlight !== undefined || this.#queue.count === 0) return;
    const count = this.#queue.count;
    const body = this.#queue.take();
    this.#inFlight = this.#post(body, Math.min(timeoutMs, EXPORT_TIMEOUT_MS)).then((ok) => {
      if (!ok) this.#onDropped(count);
      this.#inFlight = undefined;
      // A batch filled while this one was out: it goes now rather than at the next tick.
      if (this.#queue.count >= this.#batch || (this.#closed && this.#queue.count > 0)) this.#export();
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
