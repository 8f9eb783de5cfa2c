import net, { type Socket } from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import type { Upstream, UpstreamCall, UpstreamHandler, UpstreamRequest } from './types';
import { encodeHeader, encodeLocal, type ProxyVersion } from '../proxy-protocol/header';
import { connectionEnds } from '../proxy/peer';
import { CONNECTION } from '../proxy-protocol/accept';

/**
 * Pool `proxyProtocol` (SPEC 9.3): each backend connection begins with a
 * PROXY header naming one client connection, so it may only ever carry that
 * client's requests. This Upstream keeps one inner Upstream (with its own
 * keep-alive connections) per client connection, made on its first request
 * and closed when that connection closes.
 */
export class PerClientUpstream implements Upstream {
  readonly #version: ProxyVersion;
  readonly #make: (prelude: Buffer) => Upstream;
  readonly #byClient = new Map<Socket, Upstream>();
  #local: Upstream | undefined;
  #closed = false;

  constructor(version: ProxyVersion, make: (prelude: Buffer) => Upstream) {
    this.#version = version;
    this.#make = make;
  }

  /** Client connections with an upstream of their own (tests). */
  get clients(): number {
    return this.#byClient.size;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    return this.#upstreamFor(request.client).dispatch(request, handler);
  }

  #upstreamFor(client: Socket | undefined): Upstream {
    // HTTP/2 requests hand a per-stream proxy of their session's socket: the socket itself is the key.
    const socket = client === undefined ? undefined : ((client as unknown as { [CONNECTION]?: Socket })[CONNECTION] ?? client);
    if (socket === undefined || this.#closed) return this.#shared();
    let up = this.#byClient.get(socket);
    if (up !== undefined) return up;
    up = this.#make(encodeHeader(this.#version, connectionEnds(socket)));
    this.#byClient.set(socket, up);
    const made = up;
    socket.once('close', () => {
      if (this.#byClient.get(socket) === made) this.#byClient.delete(socket);
      void made.close().catch(() => undefined);
    });
    return up;
  }

  /**
   * A request from no client connection (none today) goes out as Fulcrum's
   * own, under a LOCAL/UNKNOWN header; after close() this one is closed too,
   * so a late request fails as on any closed pool.
   */
  #shared(): Upstream {
    if (this.#local === undefined) {
      this.#local = this.#make(encodeLocal(this.#version));
      if (this.#closed) void this.#local.close().catch(() => undefined);
    }
    return this.#local;
  }

  close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#byClient.values(), ...(this.#local !== undefined ? [this.#local] : [])];
    this.#byClient.clear();
    return Promise.all(all.map((u) => u.close().catch(() => undefined))).then(() => undefined);
  }
}

/**
 * undici's connect for a backend whose connections begin with `prelude` (a
 * PROXY header): TCP, the header, then TLS over it for https://.
 */
export function preludeConnector(prelude: Buffer, tlsOptions: ConnectionOptions, timeoutMs: number) {
  return (opts: { hostname: string; port: string; protocol: string; servername?: string }, callback: (...args: [null, Socket] | [Error, null]) => void): Socket => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const raw = net.connect({ host, port, noDelay: true });
    if (prelude.length > 0) raw.write(prelude);
    const socket: Socket = opts.protocol === 'https:'
      ? tls.connect({ ...tlsOptions, socket: raw, ...(tlsOptions.servername === undefined && net.isIP(host) === 0 ? { servername: host } : {}), ALPNProtocols: ['http/1.1'] })
      : raw;
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err !== null) {
        socket.destroy();
        callback(err, null);
      } else callback(null, socket);
    };
    const timer = setTimeout(() => finish(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs);
    timer.unref();
    socket.once(opts.protocol === 'https:' ? 'secureConnect' : 'connect', () => finish(null));
    socket.once('error', (err) => finish(err));
    raw.once('error', (err) => finish(err));
    return socket;
  };
}
