import type { TracingConfig } from '../config/types';
import { JsonBatch, ProtobufBatch, type Resource, type SpanBatch, type SpanData } from './otlp';
import { exportTransport, type ExportTransport } from './transport';

/** How often waiting spans go out (SPEC: at least every 5 s). */
export const EXPORT_INTERVAL_MS = 1000;
/**
 * An export goes as soon as this many spans wait (or maxQueueSize, if less).
 * Larger than the OpenTelemetry SDK's 512: each export request has a cost of
 * its own (transport.ts), so fewer, larger ones are cheaper per span; the spans of the export in flight do not count against
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
  readonly #transport: ExportTransport;
  readonly #onDropped: (n: number) => void;
  readonly #timer: NodeJS.Timeout;
  /** The export in flight; resolves when it has ended, whatever the outcome. */
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(config: TracingConfig, resource: Resource, onDropped: (n: number) => void) {
    this.#max = config.maxQueueSize;
    this.#batch = Math.min(MAX_BATCH, config.maxQueueSize);
    const json = config.otlp.encoding === 'json';
    this.#newBatch = json ? () => new JsonBatch(resource) : () => new ProtobufBatch(resource);
    this.#queue = this.#newBatch();
    this.#transport = exportTransport(config.otlp.endpoint, { ...config.otlp.headers, 'content-type': json ? 'application/json' : 'application/x-protobuf' });
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
    // A full batch is taken now (the queue empties at once: with the default
    // maxQueueSize a batch is the whole queue, and the spans ending before a
    // later take were dropped, 1.6% of them at 10k requests/s); its POST
    // goes out after this turn of the event loop. After close, every
    // straggler goes at once (no timer is left).
    if ((q.count >= this.#batch || this.#closed) && this.#inFlight === undefined) this.#export();
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
    this.#transport.close();
  }

  /** The queue becomes the export in flight; its POST starts off the request path (setImmediate). */
  #export(timeoutMs = EXPORT_TIMEOUT_MS): void {
    if (this.#inFlight !== undefined || this.#queue.count === 0) return;
    const count = this.#queue.count;
    const body = this.#queue.take();
    const timeout = Math.min(timeoutMs, EXPORT_TIMEOUT_MS);
    this.#inFlight = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#transport.post(body, timeout)).then((ok) => {
      if (!ok) this.#onDropped(count);
      this.#inFlight = undefined;
      // A batch filled while this one was out: it goes now rather than at the next tick.
      if (this.#queue.count >= this.#batch || (this.#closed && this.#queue.count > 0)) this.#export();
    });
  }
}
