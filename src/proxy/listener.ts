import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { HashOn, ListenerConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
import type { PickContext } from '../balancing/types';
import { Sticky, readCookie } from '../pool/sticky';
import { Router, stripPathPrefix } from './router';
import { clientAddress, forwardRequestHeaders } from './headers';
import { Exchange, type RequestObserver } from './exchange';
import { LOCAL_MESSAGES, sendLocal } from './local-response';
import { randomUUID } from 'node:crypto';

/** What a route leads to: the pool plus what was precomputed for it. */
export interface PoolTarget {
  readonly pool: BackendPool;
  /** consistent-hash only: how to get the key from a request; null otherwise. */
  readonly hashKey: ((req: IncomingMessage, clientIp: string, path: string) => string | undefined) | null;
  readonly sticky?: Sticky;
}

const NO_KEY: PickContext = {};

export function poolTarget(pool: BackendPool): PoolTarget {
  const { config } = pool;
  return {
    pool,
    hashKey: config.strategy === 'consistent-hash' ? hashKeyExtractor(config.hashOn ?? { kind: 'ip' }) : null,
    sticky: config.sticky !== undefined ? new Sticky(pool, config.sticky.cookie) : undefined,
  };
}

function hashKeyExtractor(on: HashOn): (req: IncomingMessage, clientIp: string, path: string) => string | undefined {
  switch (on.kind) {
    case 'ip': return (_req, ip) => ip;
    case 'path': return (_req, _ip, path) => {
      const q = path.indexOf('?');
      return q === -1 ? path : path.slice(0, q);
    };
    case 'header': {
      const name = on.name;
      return (req) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(',') : v;
      };
    }
    case 'cookie': {
      const name = on.name;
      return (req) => (req.headers.cookie === undefined ? undefined : readCookie(req.headers.cookie, name));
    }
  }
}

/**
 * One listener: a node:http server whose request handler matches the
 * precomputed routes and hands the request to an Exchange.
 */
export class ProxyListener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly server: Server;
  readonly #router: Router<PoolTarget>;
  readonly #observer: RequestObserver;
  readonly #proto: 'http' | 'https';

  constructor(config: ListenerConfig, targets: ReadonlyMap<string, PoolTarget>, observer: RequestObserver) {
    this.name = config.name;
    this.config = config;
    this.#observer = observer;
    this.#proto = config.tls !== undefined ? 'https' : 'http';
    this.#router = new Router(config.routes, (name) => targets.get(name)!);
    this.server = http.createServer({
      headersTimeout: config.limits.headersTimeoutMs,
      // The whole-request timeout would cut off long uploads; slow headers are
      // what headersTimeout is for.
      requestTimeout: 0,
      // How often node:http looks for connections past headersTimeout (default 30s).
      connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
      keepAliveTimeout: 65_000,
      noDelay: true,
    }, this.#handle);
  }

  #handle = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    const ip = clientAddress(req.socket.remoteAddress);
    let url = req.url!;
    if (url.charCodeAt(0) !== 47 /* / */) {
      // RFC 9112 §3.2.2 absolute-form: route and forward on the path only, to
      // one of our own backends, whatever host the target names.
      const path = originForm(url);
      if (path === undefined) {
        this.#answer(req, res, ip, startedAt, 400, LOCAL_MESSAGES[400]);
        return;
      }
      url = path;
    }
    const route = this.#router.match(req.headers.host, url);
    if (route === undefined) {
      this.#answer(req, res, ip, startedAt, 404, LOCAL_MESSAGES[404]);
      return;
    }
    const target = route.pool;
    const fwd = forwardRequestHeaders(req.rawHeaders, ip, this.#proto);
    const path = route.stripPrefix && route.pathPrefix !== undefined ? stripPathPrefix(url, route.pathPrefix) : url;
    new Exchange({
      listener: this.name,
      observer: this.#observer,
      pool: target.pool,
      req,
      res,
      path,
      headers: fwd.headers,
      requestId: fwd.requestId,
      remoteAddress: ip,
      pick: target.hashKey === null ? NO_KEY : { hashKey: target.hashKey(req, ip, url) },
      sticky: target.sticky,
      preferred: target.sticky?.preferred(req.headers.cookie),
      startedAt,
    }).start();
  };

  /** Fulcrum answers itself (404, 400): logged and counted like any request. */
  #answer(req: IncomingMessage, res: ServerResponse, ip: string, startedAt: number, status: number, message: string): void {
    const sent = req.headers['x-request-id'];
    const requestId = typeof sent === 'string' ? sent : randomUUID();
    const bytes = sendLocal(res, status, message);
    this.#observer.onRequestEnd({
      listener: this.name,
      method: req.method!,
      url: req.url!,
      requestId,
      remoteAddress: ip,
      pool: '',
      backend: '',
      status,
      durationMs: performance.now() - startedAt,
      bytes,
      retries: 0,
      error: message,
    });
  }
}

/** "http://host/a?b" → "/a?b"; "*" and anything unparsable → undefined. */
function originForm(target: string): string | undefined {
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return undefined;
  }
}
