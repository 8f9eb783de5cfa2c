import http from 'node:http';
import https from 'node:https';
import { PassThrough } from 'node:stream';
import { UpstreamClient } from '../http1/client';
import { llhttpAvailable } from '../http1/parser';

/**
 * How an export request reaches the collector: one POST at a time over one
 * keep-alive connection. For an http:// collector, Fulcrum's own HTTP/1.1
 * client (the one that carries proxied requests, src/http1/client.ts): a
 * node:http request cost about a millisecond of CPU per export on the 2-vCPU
 * bench VM (ClientRequest, OutgoingMessage, the agent, IncomingMessage, all
 * run too rarely to be optimised), a microsecond per traced request at
 * 10k requests/s. node:https for https:// collectors, and node:http when
 * Node's parser binding is unavailable (FULCRUM_HTTP1=node), as for backends.
 */
export interface ExportTransport {
  /** One POST; true on a 2xx answer. Never rejects; gives up after `timeoutMs`, body and answer included. */
  post(body: Buffer, timeoutMs: number): Promise<boolean>;
  /** Closes the connection (an export in flight still ends, by its answer or its timeout). */
  close(): void;
}

/** An idle connection to the collector is kept this long (exports come at least every second while spans end). */
const IDLE_MS = 30_000;

/** `headers` (lower-cased names) and the body's type, for a collector at `endpoint`. */
export function exportTransport(endpoint: string, headers: Readonly<Record<string, string>>): ExportTransport {
  const url = new URL(endpoint);
  return url.protocol === 'http:' && llhttpAvailable ? new FulcrumTransport(url, headers) : new NodeTransport(url, headers);
}

class FulcrumTransport implements ExportTransport {
  readonly #client: UpstreamClient;
  readonly #path: string;
  /** Flat [name, value, ...], the same for every export but for content-length. */
  readonly #headers: readonly string[];

  constructor(url: URL, headers: Readonly<Record<string, string>>) {
    // responseMs 0: post()'s own timer bounds the whole exchange, a collector that trickles its answer included.
    this.#client = new UpstreamClient(url.origin, { connections: 1, idleMs: IDLE_MS, connectMs: 0, responseMs: 0 });
    this.#path = url.pathname + url.search;
    this.#headers = Object.entries(headers).flat();
  }

  post(body: Buffer, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let status = 0;
      const stream = new PassThrough();
      stream.end(body);
      const call = this.#client.dispatch({ method: 'POST', path: this.#path, headers: [...this.#headers, 'content-length', String(body.length)], body: stream }, {
        onHeaders: (s) => {
          status = s;
        },
        onData: () => true,
        onComplete: () => {
          clearTimeout(timer);
          resolve(status >= 200 && status < 300);
        },
        onError: () => {
          clearTimeout(timer);
          resolve(false);
        },
      });
      const timer = setTimeout(() => call.abort(new Error('export timed out')), timeoutMs);
      timer.unref();
    });
  }

  close(): void {
    void this.#client.close();
  }
}

class NodeTransport implements ExportTransport {
  readonly #url: URL;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #agent: http.Agent;
  readonly #send: typeof http.request;

  constructor(url: URL, headers: Readonly<Record<string, string>>) {
    this.#url = url;
    this.#headers = headers;
    const secure = url.protocol === 'https:';
    this.#agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
    this.#send = secure ? https.request : http.request;
  }

  post(body: Buffer, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const req = this.#send(this.#url, {
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

  close(): void {
    this.#agent.destroy();
  }
}
