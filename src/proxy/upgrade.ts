import http from 'node:http';
import type { ProxyRequest } from './message';
import type { Duplex } from 'node:stream';
import type { PickContext } from '../balancing/types';
import type { BackendPool } from '../pool/pool';
import { forwardRequestHeaders } from './headers';
import { blamesBackend, classifyUpstreamError } from '../upstream/errors';
import { LOCAL_MESSAGES } from './local-response';
import type { HeaderRules } from '../routes/header-rules';

/** Answer an upgrade request on the raw socket (no ProxyResponse exists for it) and close. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, extra = ''): void {
  if (!socket.writable) return;
  socket.end(localAnswer(status, message, extra));
}

/** A whole one-line answer after which the connection closes, as bytes to write on a socket. */
export function localAnswer(status: number, message: string, extra = ''): string {
  const body = `${message}\n`;
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

export interface UpgradeInit {
  readonly req: ProxyRequest;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly path: string;
  readonly ip: string;
  readonly proto: 'http' | 'https';
  readonly pool: BackendPool;
  readonly pick: PickContext;
  /** The route's requestHeaders, after Fulcrum's own passes. */
  readonly requestRules?: HeaderRules | null;
  /** Called once, when the tunnel closes or the upgrade fails; `requestId` is the X-Request-Id the backend got (or would have). */
  readonly onEnd: (status: number, backend: string, requestId: string, error?: string) => void;
}

/**
 * WebSocket over undici's `upgrade` (not http-proxy: its ws path has crashed
 * processes on socket errors, and undici already holds our backend pools).
 * The backend is picked by the pool's strategy; its 101 is relayed; then bytes
 * flow both ways with pipe's backpressure. Any error or close on either side
 * closes both, and nothing here can throw into the process.
 */
export function proxyUpgrade(u: UpgradeInit): void {
  const { pool, socket } = u;
  // Hop-by-hop headers go (undici sets Upgrade and Connection itself); the
  // Sec-WebSocket-* headers are end-to-end and stay.
  const fwd = forwardRequestHeaders(u.req.rawHeaders, u.ip, u.proto);
  const { requestId } = fwd;
  const headers = u.requestRules == null ? fwd.headers : u.requestRules.apply(fwd.headers);
  const backend = pool.pick(u.pick);
  if (backend === undefined) {
    refuseUpgrade(socket, 503, LOCAL_MESSAGES[503], 'retry-after: 1\r\n');
    u.onEnd(503, '', requestId, 'no backend available');
    return;
  }
  pool.acquire(backend);
  const started = performance.now();
  let ended = false;
  const end = (status: number, failure: string | undefined, counted: boolean, error?: string) => {
    if (ended) return;
    ended = true;
    pool.release(backend, status === 101 ? undefined : performance.now() - started, failure, counted);
    u.onEnd(status, backend.name, requestId, error);
  };
  const abort = new AbortController();
  socket.once('close', () => abort.abort());
  const { dispatcher, done } = backend.upgradeDispatcher(u.req.socket);
  dispatcher.upgrade({
    path: u.path,
    method: 'GET',
    headers,
    protocol: 'websocket',
    signal: abort.signal,
  }).then(({ headers: resHeaders, socket: upstream }) => {
    if (socket.destroyed) {
      upstream.destroy();
      end(101, undefined, false, 'client closed the connection');
      return;
    }
    let head = 'HTTP/1.1 101 Switching Protocols\r\n';
    for (const [name, value] of Object.entries(resHeaders)) {
      for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
    }
    socket.write(`${head}\r\n`);
    if (u.head.length > 0) upstream.write(u.head);
    const close = () => {
      socket.destroy();
      upstream.destroy();
      end(101, undefined, true);
    };
    // node:http sockets allow half-open TCP, so a FIN alone would leave both
    // sides hanging; WebSocket has its own close handshake, so either side
    // ending ends the tunnel (as nginx does).
    for (const s of [socket, upstream]) {
      s.on('error', close);
      s.on('end', close);
      s.on('close', close);
    }
    upstream.pipe(socket);
    socket.pipe(upstream);
  }, (err: Error) => {
    if (socket.destroyed) {
      end(499, undefined, false, 'client closed the connection');
      return;
    }
    if (err.message === 'bad upgrade') {
      // The backend answered, just not with 101: it does not speak WebSocket
      // on this path. That is not a failing backend.
      refuseUpgrade(socket, 502, 'bad gateway: the backend did not accept the WebSocket upgrade');
      end(502, undefined, false, 'backend did not accept the upgrade');
      return;
    }
    const f = classifyUpstreamError(err);
    refuseUpgrade(socket, f.status, f.message);
    const blame = blamesBackend(f.kind);
    end(f.status, blame ? f.kind : undefined, blame, `${f.kind}: ${err.message}`);
  }).finally(done);
}
