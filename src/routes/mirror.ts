import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { MirrorConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
import type { Backend } from '../pool/backend';
import type { PickContext } from '../balancing/types';
import type { UpstreamHandler } from '../upstream/types';
import { blamesBackend, classifyUpstreamError } from '../upstream/errors';
import { reportInternalError } from '../internal-errors';

/** `result` of fulcrum_mirror_requests_total (SPEC 8.2). */
export type MirrorResult = 'sent' | 'failed' | 'skipped';

/**
 * Memory a process gives mirrors, whatever the config says: copies in flight
 * and body bytes held for them. Beyond either, a copy is skipped (counted),
 * never queued: a slow mirror pool cannot make the client side hold more.
 */
export const MIRROR_LIMITS = { inFlight: 1000, bufferedBytes: 64 * 1024 * 1024 };
let inFlight = 0;
let buffered = 0;

/** Mirrors in flight in this process (tests). */
export function mirrorsInFlight(): number {
  return inFlight;
}

export interface MirrorDeps {
  readonly random: () => number;
  readonly onResult: (pool: string, result: MirrorResult) => void;
}

/** What one request's copy needs from the request going to the real backend. */
export interface MirrorRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly string[];
  readonly pick: PickContext;
}

/**
 * A route's `mirror` (SPEC 8.2): a copy of a share of its requests goes to
 * another pool, and the answer is read and thrown away. The client's request
 * does not wait for it and cannot fail by it: a request without a body is
 * copied at once; one with a body passes through a tap that keeps a copy (up
 * to maxBodySize) and sends it when the body has arrived. The copy has no
 * retries and the mirror pool's own timeouts.
 */
export class Mirror {
  readonly pool: BackendPool;
  readonly #config: MirrorConfig;
  readonly #deps: MirrorDeps;

  constructor(config: MirrorConfig, pool: BackendPool, deps: MirrorDeps) {
    this.#config = config;
    this.pool = pool;
    this.#deps = deps;
  }

  /**
   * Maybe copy this request. Returns the body the real request must read from
   * now on: `body` itself, or the tap in front of it.
   */
  copy(request: MirrorRequest, body: Readable | null, contentLength: string | undefined): Readable | null {
    const { percent, maxBodySize } = this.#config;
    if (percent < 100 && this.#deps.random() * 100 >= percent) return body;
    if (body === null) {
      this.#send(request, null);
      return body;
    }
    if (contentLength !== undefined && Number(contentLength) > maxBodySize) {
      this.#deps.onResult(this.pool.name, 'skipped');
      return body;
    }
    const tap = new Tap(maxBodySize, (copy) => {
      if (copy === undefined) this.#deps.onResult(this.pool.name, 'skipped');
      else this.#send(request, copy);
    });
    // pipe() passes no errors on: a body that breaks must fail the tap (and so the real request).
    body.on('error', (err) => tap.destroy(err));
    return body.pipe(tap);
  }

  #send(request: MirrorRequest, body: Buffer | null): void {
    const { pool } = this;
    const size = body?.length ?? 0;
    if (inFlight >= MIRROR_LIMITS.inFlight || buffered + size > MIRROR_LIMITS.bufferedBytes) {
      this.#deps.onResult(pool.name, 'skipped');
      return;
    }
    const backend = pool.pick(request.pick);
    if (backend === undefined) {
      this.#deps.onResult(pool.name, 'skipped');
      return;
    }
    inFlight++;
    buffered += size;
    const call = new MirrorCall(pool, backend, size, this.#deps.onResult);
    try {
      pool.acquire(backend);
      backend.upstream.dispatch({
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: body === null ? null : Readable.from([body]),
      }, call);
    } catch (err) {
      // A bug here costs the copy, never the client's request.
      reportInternalError(err, 'mirror');
      call.onError(err as Error);
    }
  }
}

/** The copy's answer: read and thrown away; counted once. */
class MirrorCall implements UpstreamHandler {
  readonly #pool: BackendPool;
  readonly #backend: Backend;
  readonly #size: number;
  readonly #onResult: MirrorDeps['onResult'];
  readonly #started = performance.now();
  #status = 0;
  #latencyMs: number | undefined;
  #done = false;

  constructor(pool: BackendPool, backend: Backend, size: number, onResult: MirrorDeps['onResult']) {
    this.#pool = pool;
    this.#backend = backend;
    this.#size = size;
    this.#onResult = onResult;
  }

  onHeaders(status: number): void {
    this.#status = status;
    this.#latencyMs = performance.now() - this.#started;
  }

  onData(): boolean {
    return true;
  }

  onComplete(): void {
    if (!this.#end()) return;
    this.#pool.release(this.#backend, this.#latencyMs, this.#status >= 500 ? String(this.#status) : undefined);
    this.#onResult(this.#pool.name, 'sent');
  }

  onError(err: Error): void {
    if (!this.#end()) return;
    const f = classifyUpstreamError(err);
    const blame = blamesBackend(f.kind);
    this.#pool.release(this.#backend, this.#latencyMs, blame ? f.kind : undefined, blame);
    // An answer that broke after its headers still was an answer.
    this.#onResult(this.#pool.name, this.#status !== 0 ? 'sent' : 'failed');
  }

  #end(): boolean {
    if (this.#done) return false;
    this.#done = true;
    inFlight--;
    buffered -= this.#size;
    return true;
  }
}

/**
 * Passes the request body through unchanged, keeping a copy while it is at
 * most `max` bytes; at its end hands the copy over (undefined: too large, or
 * the body failed).
 */
class Tap extends Transform {
  readonly #max: number;
  readonly #done: (copy: Buffer | undefined) => void;
  #chunks: Buffer[] | null = [];
  #size = 0;
  #reported = false;

  constructor(max: number, done: (copy: Buffer | undefined) => void) {
    super();
    this.#max = max;
    this.#done = done;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#chunks !== null) {
      this.#size += chunk.length;
      if (this.#size > this.#max) this.#chunks = null;
      else this.#chunks.push(chunk);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#report(this.#chunks === null ? undefined : Buffer.concat(this.#chunks, this.#size));
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#report(undefined);
    callback(err);
  }

  #report(copy: Buffer | undefined): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#chunks = null;
    this.#done(copy);
  }
}
