import http from 'node:http';
import https from 'node:https';
import http2, { type Http2Session } from 'node:http2';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import type { HashOn, ListenerConfig, TlsConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
import type { PickContext } from '../balancing/types';
import { Sticky, readCookie } from '../pool/sticky';
import { Router } from './router';
import { compileRoute, redirectAnswer, type CompiledRoute } from '../routes/route';
import type { HeaderRules } from '../routes/header-rules';
import type { Redirect } from '../routes/redirect';
import { forwardRequestHeaders } from './headers';
import { newRequestId } from './request-id';
import { peerAddress } from './peer';
import { Exchange, type RequestObserver } from './exchange';
import { LOCAL_MESSAGES, sendLocal } from './local-response';
import { localAnswer, proxyUpgrade, refuseUpgrade } from './upgrade';
import { BodyLimit } from './body-limit';
import { BODY_TIMEOUT } from './exchange';
import { RateLimiter, type SharedBuckets } from './rate-limit';
import type { Readable } from 'node:stream';
import { Http1Server } from '../http1/server';
import { llhttpAvailable } from '../http1/parser';
import { bodyStream, type ProxyRequest, type ProxyResponse } from './message';
import { reportInternalError } from '../internal-errors';
import { ERRORS, fulcrumError } from '../errors';
import { deferClientError, trackChunkedBody, trackRequest } from '../http1/node-http';
import { PendingHandshakes } from './tls-handshake';
import { AddressSet, RouteAccess, clientBehindProxies, type Verdict } from '../access';
import { answerUpgradeRefusal, sendRefusal } from '../access/refusal';
import { Compression } from '../compress';
import type { ServerTrace, Tracing } from '../tracing/tracer';
import { guardConnections, type ProxyProtocolPolicy } from '../proxy-protocol/accept';
import { clientAuthOptions, clientCertHeader, watchClientCertificates } from '../tls/client-certs';
import { describeCertificate, type CertificateInfo, type KeyPair } from '../tls/certificates';
import type { AcmeManager } from '../acme/manager';
import type { ChallengeResponder } from '../acme/challenge';
import { isGrpc, sendGrpcLocal } from '../grpc/grpc';
import { serveH2c } from '../http2/h2c';
import { HTTP2_SETTINGS, tuneSession } from '../http2/server';
import { Http2Request, serveStreams } from '../http2/stream';
import { ListenerConnection } from '../http2/serve';
import { http2Engine } from '../http2/engine';

/** What a route leads to: the pool plus what was precomputed for it. */
export interface PoolTarget {
  readonly pool: BackendPool;
  /** consistent-hash only: how to get the key from a request; null otherwise. */
  readonly hashKey: ((req: ProxyRequest, clientIp: string, path: string) => string | undefined) | null;
  readonly sticky?: Sticky;
}

/** No bytes read yet: what a TLS connection that agreed on h2 brings to its HTTP/2 connection. */
const EMPTY = Buffer.alloc(0);
const NO_KEY: PickContext = {};

/** A route as this listener runs it, with its front door (SPEC 8.3, 8.5) precomputed: null where the route has none (one null check per request). */
type ListenerRoute = CompiledRoute<PoolTarget> & {
  readonly access: RouteAccess | null;
  readonly compress: Compression | null;
};

/** A listener made without a tracing switch (tests) never traces. */
const NO_TRACING: Tracing = { tracer: null };

/** A request-target HTTP/1.1 can carry (RFC 9112 §3.2, RFC 3986): visible ASCII only; anything else is percent-encoded by the client. */
const HTTP1_TARGET = /^[\x21-\x7e]*$/;

/** The method label of a request whose method is not forwarded (OpenTelemetry's spelling). */
const OTHER_METHOD = '_OTHER';

/** The methods that are forwarded: every one an HTTP/1.1 parser (llhttp) knows, none of RTSP's; CONNECT is refused by #connect. */
const HTTP1_METHODS: ReadonlySet<string> = new Set(http.METHODS.filter((m) => m !== 'CONNECT'));

/**
 * Marks a client connection refused for its framing. node:http parses every
 * request already in the socket's buffer and hands each to the handler, even
 * after a "Connection: close" answer to the first; a request smuggled behind
 * bad framing must die with its connection, not reach a backend.
 */
const POISONED = Symbol('fulcrum.poisoned');
type Marked = { [POISONED]?: true };

/** `stickyKey`: the running Fulcrum's key for sticky tokens, used where a pool has no `sticky.secret`. */
export function poolTarget(pool: BackendPool, stickyKey: Buffer): PoolTarget {
  const { config } = pool;
  return {
    pool,
    hashKey: config.strategy === 'consistent-hash' ? hashKeyExtractor(config.hashOn ?? { kind: 'ip' }) : null,
    sticky: config.sticky !== undefined ? new Sticky(pool, config.sticky.cookie, config.sticky.secret ?? stickyKey) : undefined,
  };
}

function hashKeyExtractor(on: HashOn): (req: ProxyRequest, clientIp: string, path: string) => string | undefined {
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

/** What a listener's edge features need from the process: ACME certificates and challenges (SPEC 9.4). */
export interface ListenerEdge {
  readonly acme?: AcmeManager;
}

type TlsOptions = { cert: Buffer | string; key: Buffer | string; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } & Pick<TlsConfig, 'minVersion' | 'ciphers'>;

/** The certificate files (or ACME's current pair) and client-certificate settings, read now (at start and at each reload). */
function tlsOptions(config: ListenerConfig, acme: KeyPair | undefined): TlsOptions | undefined {
  if (config.tls === undefined) return undefined;
  const { minVersion, ciphers, clientAuth, clientCa } = config.tls;
  const pair = acme ?? { cert: readFileSync(config.tls.cert!), key: readFileSync(config.tls.key!) };
  return { ...pair, ...clientAuthOptions(clientAuth, clientCa !== undefined ? readFileSync(clientCa) : undefined), minVersion, ciphers };
}

/** Plain listeners of a process where some listener uses ACME answer its HTTP-01 challenges. */
function challengesFor(config: ListenerConfig, edge: ListenerEdge): ChallengeResponder | null {
  return config.tls === undefined && edge.acme?.expected === true ? edge.acme.challenges : null;
}

function proxyPolicy(config: ListenerConfig): ProxyProtocolPolicy | null {
  const p = config.proxyProtocol;
  if (p === undefined) return null;
  return { trusted: p.trusted !== undefined ? new AddressSet(p.trusted) : null };
}

/** The Host a request names: Host for HTTP/1.1, :authority for HTTP/2. */
function hostOf(req: ProxyRequest): string | undefined {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined);
}

/**
 * One listener: a node:http (or https, or http2 with HTTP/1.1 fallback)
 * server whose handler matches precomputed routes and hands the request to an
 * Exchange. `update` swaps routes and certificates atomically (reload): a
 * request in flight keeps the pool it started with.
 */
export class ProxyListener {
  readonly name: string;
  config: ListenerConfig;
  readonly server: NetServer;
  /** TLS listeners: connections still in their handshake (closed after headersTimeout, or on drain). */
  readonly handshakes: PendingHandshakes | undefined;
  #router: Router<ListenerRoute>;
  /** `pools` and `mirror.percent` draw from it (injected in tests). */
  readonly #random: () => number;
  #limiter: RateLimiter | undefined;
  /** SPEC 8.4: null without trustedProxies (the client address is the peer, at no cost). */
  #trusted: AddressSet | null;
  readonly #observer: RequestObserver;
  /** Where `rateLimit.scope: cluster` keeps its buckets (SPEC section 10); undefined without a cluster. */
  readonly #sharedBuckets: SharedBuckets | undefined;
  /** The current tracer (null without `tracing`), shared with the Fulcrum that reloads it. */
  readonly #tracing: Tracing;
  readonly #proto: 'http' | 'https';
  /** HTTP/1.1 requests reach #handle through node:http's code (TLS listeners, the fallback): see src/http1/node-http.ts. */
  readonly #nodeHttp1: boolean;
  /** SPEC 9.3: null when connections do not begin with a PROXY header (read per connection). */
  #proxyPolicy: ProxyProtocolPolicy | null;
  /** Client certificates are asked for: requests carry X-Forwarded-Client-Cert. */
  #clientCerts: boolean;
  readonly #edge: ListenerEdge;
  /** Plain listeners of a process with ACME: HTTP-01 answers before routing; null otherwise (one check per request). */
  #challenges: ChallengeResponder | null;
  #certificate: CertificateInfo | undefined;

  constructor(config: ListenerConfig, targets: ReadonlyMap<string, PoolTarget>, observer: RequestObserver, edge: ListenerEdge = {}, tracing: Tracing = NO_TRACING, random: () => number = Math.random, sharedBuckets?: SharedBuckets) {
    this.name = config.name;
    this.config = config;
    this.#edge = edge;
    this.#proxyPolicy = proxyPolicy(config);
    this.#clientCerts = config.tls !== undefined && config.tls.clientAuth !== 'none';
    this.#challenges = challengesFor(config, this.#edge);
    this.#observer = observer;
    this.#tracing = tracing;
    this.#random = random;
    this.#sharedBuckets = sharedBuckets;
    this.#proto = config.tls !== undefined ? 'https' : 'http';
    this.#router = this.#compile(config, targets);
    this.#limiter = this.#makeLimiter(config);
    this.#trusted = trustedSet(config);
    const limits = config.limits;
    const common = {
      headersTimeout: limits.headersTimeoutMs,
      // The whole-request timeout would cut off long uploads; slow headers are
      // what headersTimeout is for.
      requestTimeout: 0,
      // How often node:http looks for connections past headersTimeout (default 30s).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs, limits.keepAliveTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      noDelay: true,
      // #serve answers a missing Host itself, logged and with a body like every other 400.
      requireHostHeader: false,
    };
    const tls = tlsOptions(config, this.#acmePair(config));
    this.#certificate = this.#describe(config, tls);
    if (tls !== undefined && config.http2 && http2Engine === 'fulcrum') {
      // ALPN offers h2 and http/1.1: h2 connections go to Fulcrum's own
      // HTTP/2, the rest (and clients without ALPN) to node:https as on any TLS listener.
      const secure = https.createServer({ ...common, ...tls, ALPNProtocols: ['h2', 'http/1.1'] }, this.#handle);
      const http1 = secure.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
      secure.removeAllListeners('secureConnection');
      secure.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2') this.#ownH2(socket, EMPTY);
        else for (const fn of http1) fn.call(secure, socket);
      });
      this.server = secure;
    } else if (tls !== undefined && config.http2) {
      // FULCRUM_HTTP2=node. ALPN offers h2 and http/1.1; HTTP/1.1 clients get the same handler.
      const secure = http2.createSecureServer({ ...tls, allowHTTP1: true, settings: HTTP2_SETTINGS });
      // HTTP/1.1 clients (ALPN http/1.1) are served through 'request'. Adding
      // that listener makes node:http2 put its compatibility layer on
      // 'stream' too; HTTP/2 streams are served without it (src/http2/stream.ts).
      secure.on('request', this.#handle);
      secure.removeAllListeners('stream');
      serveStreams(secure, this.#handle, this.#connect);
      this.server = secure;
      this.server.on('session', (session: Http2Session) => tuneSession(session, this.config.limits.headersTimeoutMs));
      // HTTP/1.1 clients on it are served by node:http's connection code,
      // which reads its limits off the server (before listen).
      Object.assign(this.server, common);
    } else if (tls !== undefined) {
      this.server = https.createServer({ ...common, ...tls }, this.#handle);
    } else if (llhttpAvailable) {
      this.server = new Http1Server(common, this.#handle);
    } else {
      this.server = http.createServer(common, this.#handle);
    }
    if (tls === undefined && config.http2) {
      // SPEC 9.2: HTTP/1.1 and HTTP/2 with prior knowledge on one port.
      const http1 = this.server;
      serveH2c(http1, http2Engine === 'node' ? this.#nodeH2c() : (socket, head) => this.#ownH2(socket, head), () => this.config.limits.headersTimeoutMs,
        http1 instanceof Http1Server ? (socket, head) => http1.accept(socket, head) : undefined);
    }
    this.#nodeHttp1 = tls !== undefined || !llhttpAvailable;
    // Before anything else hears of a connection: a PROXY header comes before TLS and HTTP.
    guardConnections(this.server, () => this.#proxyPolicy, () => this.config.limits.headersTimeoutMs, { resume: tls === undefined && !llhttpAvailable });
    if (tls !== undefined) watchClientCertificates(this.server, () => this.config.tls?.clientAuth ?? 'none');
    this.handshakes = tls !== undefined ? new PendingHandshakes(this.server, () => this.config.limits.headersTimeoutMs) : undefined;
    if (limits.maxConnections > 0) this.server.maxConnections = limits.maxConnections;
    this.server.on('upgrade', this.#upgrade);
    this.server.on('connect', this.#connect);
    // CONNECT is for forward proxies; a reverse proxy refuses it (no listener = socket closed).
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const text = status === 431 ? 'request header fields too large' : status === 408 ? LOCAL_MESSAGES[408] : LOCAL_MESSAGES[400];
      const answer = localAnswer(status, text);
      // The client's FIN cut a message short (node:http reports its parser's
      // EOF error here): nobody is left to answer, and what is in flight for
      // it must hear the connection close (as node:http's own rule does).
      if (err.code === 'HPE_INVALID_EOF_STATE' || socket.readableEnded) {
        socket.destroy();
        return;
      }
      // node:http: answers to earlier pipelined requests go first (Http1Server orders them itself).
      if (this.#nodeHttp1 && deferClientError(socket, answer)) {
        (socket as Marked)[POISONED] = true;
        return;
      }
      if ((socket as Marked)[POISONED] === true) {
        socket.destroy(); // already answered: the rest of its bytes are not ours to read
        return;
      }
      if (!socket.writable) return;
      socket.end(answer);
    });
  }

  #makeLimiter(config: ListenerConfig): RateLimiter | undefined {
    const rl = config.limits.rateLimit;
    if (rl === undefined) return undefined;
    const shared = this.#sharedBuckets;
    return new RateLimiter(rl, undefined, shared !== undefined ? { buckets: shared, set: config.name } : undefined);
  }

  /** Reload: new routes (and certificates) for requests from now on. */
  update(config: ListenerConfig, targets: ReadonlyMap<string, PoolTarget>): void {
    const router = this.#compile(config, targets);
    const tls = tlsOptions(config, this.#acmePair(config));
    if (tls !== undefined) (this.server as https.Server).setSecureContext(tls);
    this.#certificate = this.#describe(config, tls);
    this.#proxyPolicy = proxyPolicy(config);
    this.#clientCerts = config.tls !== undefined && config.tls.clientAuth !== 'none';
    this.#challenges = challengesFor(config, this.#edge);
    if (!isDeepStrictEqual(config.limits.rateLimit, this.config.limits.rateLimit)) {
      this.#limiter?.stop();
      this.#limiter = this.#makeLimiter(config);
    }
    this.server.maxConnections = config.limits.maxConnections > 0 ? config.limits.maxConnections : Infinity;
    const h1 = this.server as http.Server;
    if (typeof h1.headersTimeout === 'number') h1.headersTimeout = config.limits.headersTimeoutMs;
    h1.keepAliveTimeout = config.limits.keepAliveTimeoutMs;
    this.config = config;
    this.#router = router;
    this.#trusted = trustedSet(config);
  }

  /** SPEC 8.4: the TCP peer (or PROXY source), or behind trusted proxies the client they name. */
  #clientOf(peer: string, req: ProxyRequest): string {
    return this.#trusted === null ? peer : clientBehindProxies(peer, req.rawHeaders, this.#trusted);
  }

  /** The routes, compiled once per config (SPEC 8): matching, actions, header rules, mirrors. */
  #compile(config: ListenerConfig, targets: ReadonlyMap<string, PoolTarget>): Router<ListenerRoute> {
    const observer = this.#observer;
    return new Router(config.routes, (r, i): ListenerRoute => ({
      ...compileRoute(r, i, {
        target: (name) => targets.get(name)!,
        poolOf: (t) => t.pool,
        random: this.#random,
        onMirror: (pool, result) => observer.onMirror?.(pool, result),
      }),
      access: r.access !== undefined ? new RouteAccess(r.access) : null,
      compress: r.compress !== undefined ? new Compression(r.compress) : null,
    }));
  }

  /** Timers this listener owns (rate-limit sweeps, its ACME order). */
  stop(): void {
    this.#limiter?.stop();
    if (this.config.tls?.acme !== undefined) this.#edge.acme?.detach(this.name, this);
  }

  /** The certificate this TLS listener serves now (names, issuer, expiry); undefined for plain HTTP. */
  get certificate(): CertificateInfo | undefined {
    return this.#certificate;
  }

  /** ACME listeners: the pair to serve now (stored, or the placeholder), and new ones as they come. */
  #acmePair(config: ListenerConfig): KeyPair | undefined {
    const acme = config.tls?.acme;
    if (acme === undefined) return undefined;
    if (this.#edge.acme === undefined) throw new Error('tls.acme without an ACME manager');
    return this.#edge.acme.attach(this.name, acme, this, (pair) => {
      const tls = tlsOptions(this.config, pair);
      (this.server as https.Server).setSecureContext(tls!);
      this.#certificate = this.#describe(this.config, tls);
    });
  }

  #describe(config: ListenerConfig, tls: TlsOptions | undefined): CertificateInfo | undefined {
    if (tls === undefined) return undefined;
    const source = config.tls?.acme === undefined ? 'file' : this.#edge.acme!.source(this.name);
    try {
      return describeCertificate(tls.cert, source);
    } catch {
      return undefined; // a chain node:tls takes but X509Certificate cannot read: nothing to show
    }
  }

  /** The path a request is routed and forwarded on; undefined for a target that is no path (400). */
  static #pathOf(req: ProxyRequest): string | undefined {
    const url = req.url!;
    // RFC 9112 §3.2.2 absolute-form: route and forward on the path only, to
    // one of our own backends, whatever host the target names.
    return url.charCodeAt(0) === 47 /* / */ ? url : originForm(url);
  }

  /** The connection boundary: a bug while handling one request costs that request, never the process. */
  #handle = (req: ProxyRequest, res: ProxyResponse): void => {
    try {
      this.#serve(req, res);
    } catch (err) {
      fault(req, res, err);
    }
  };

  /** An h2c connection on Fulcrum's own HTTP/2 (src/http2/serve.ts); it counts as the listener's own for a drain (src/listen.ts). */
  #ownH2(socket: Socket, head: Buffer): void {
    const conn = new ListenerConnection(socket, head, this.#handle, this.#connect, { headersTimeoutMs: this.config.limits.headersTimeoutMs });
    this.server.emit('session', conn);
  }

  /** FULCRUM_HTTP2=node: node:http2's server takes h2c sockets. */
  #nodeH2c(): (socket: Socket, head: Buffer) => void {
    const h2c = http2.createServer({ settings: HTTP2_SETTINGS });
    serveStreams(h2c, this.#handle, this.#connect);
    h2c.on('session', (session: Http2Session) => {
      tuneSession(session, this.config.limits.headersTimeoutMs);
      this.server.emit('session', session);
    });
    return (socket, head) => {
      socket.unshift(head); // node:http2 reads what is already buffered on the socket
      h2c.emit('connection', socket);
    };
  }

  #serve(req: ProxyRequest, res: ProxyResponse): void {
    if ((req.socket as Marked)[POISONED] === true) {
      res.destroy();
      return;
    }
    const startedAt = performance.now();
    const peer = peerAddress(req.socket);
    const ip = this.#clientOf(peer, req);
    const h2 = isHttp2(req);
    if (this.#nodeHttp1 && !h2) trackRequest(req, res);
    if (!h2) {
      // Decided by the transport: an HTTP/1.1 connection's "HTTP/2.0" request line is not HTTP/2 (RFC 9112 §2.3).
      if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
        this.#closeWith(req, res, ip, startedAt, 505, LOCAL_MESSAGES[505]);
        return;
      }
      // RFC 9112 §3.2: exactly one Host in an HTTP/1.1 request (the servers are told not to answer this themselves).
      if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
        this.#closeWith(req, res, ip, startedAt, 400, 'bad request: no Host header');
        return;
      }
    }
    // A method the backends' HTTP/1.1 cannot carry (an RTSP line's DESCRIBE, an
    // HTTP/2 client's lower-case "get") is refused, never rewritten.
    if (req.method === undefined || !HTTP1_METHODS.has(req.method)) {
      this.#closeWith(req, res, ip, startedAt, 501, LOCAL_MESSAGES[501]);
      return;
    }
    const framing = badFraming(req);
    if (framing !== undefined) {
      this.#refuse(req, res, ip, startedAt, `bad request: ${framing}`);
      return;
    }
    const url = ProxyListener.#pathOf(req);
    // SPEC 9.4: ACME's HTTP-01 challenges are answered before routing.
    if (this.#challenges !== null && url !== undefined) {
      const bytes = this.#challenges.answer(url, res);
      if (bytes >= 0) {
        this.#observer.onRequestEnd({
          listener: this.name, method: req.method, url, requestId: requestIdOf(req), remoteAddress: ip,
          pool: '', backend: '', status: 200, durationMs: performance.now() - startedAt, bytes, retries: 0,
        });
        return;
      }
    }
    // An HTTP/2 :path is not held to HTTP/1.1's request-target by any parser
    // on its way in; what a backend's parser would refuse is refused here.
    if (url === undefined || (h2 && !HTTP1_TARGET.test(url))) {
      this.#answer(req, res, ip, startedAt, 400, LOCAL_MESSAGES[400]);
      return;
    }
    const route = this.#router.match(hostOf(req), url, req.method, req.headers);
    if (route === undefined) {
      this.#answer(req, res, ip, startedAt, 404, LOCAL_MESSAGES[404]);
      return;
    }
    // SPEC 8.1's order of work from here: access (8.3), then the rate limit,
    // then redirect or respond, or forwarding.
    if (route.access !== null) this.#guard(route, req, res, ip, peer, startedAt, h2, url);
    else this.#forward(route, req, res, ip, peer, startedAt, h2, url, req.rawHeaders);
  }

  /** SPEC 8.3: the route's access check, then (if it passes) the rest of the way; refusals are answered (with the route's responseHeaders) and logged here. */
  #guard(route: ListenerRoute, req: ProxyRequest, res: ProxyResponse, ip: string, peer: string, startedAt: number, h2: boolean, url: string): void {
    const admit = (verdict: Verdict) => {
      if (Array.isArray(verdict)) this.#forward(route, req, res, ip, peer, startedAt, h2, url, verdict);
      else sendRefusal(res, verdict, route.responseRules, (bytes) => this.#recordLocal(req, ip, startedAt, verdict.status, verdict.error, bytes));
    };
    let gone: AbortSignal | undefined;
    const goneSignal = () => (gone ??= clientGone(res));
    const verdict = route.access!.check(req, ip, peer, this.#proto, goneSignal);
    if (!(verdict instanceof Promise)) {
      admit(verdict);
      return;
    }
    const left = goneSignal();
    verdict.then((v) => {
      // The client left while bcrypt or the auth service was waited for.
      if (left.aborted || res.destroyed) this.#recordLocal(req, ip, startedAt, 499, ERRORS.FULCRUM_CLIENT_GONE.message, 0);
      else admit(v);
    }).catch((err: unknown) => fault(req, res, err));
  }

  /** After the route's access check: the listener's rate limit, then the route's action. `raw`: the client's headers as access left them. */
  #forward(route: ListenerRoute, req: ProxyRequest, res: ProxyResponse, ip: string, peer: string, startedAt: number, h2: boolean, url: string, raw: string[]): void {
    // Every answer from here on is the route's: its responseHeaders apply.
    const rules = route.responseRules;
    if (this.#limiter !== undefined) {
      const wait = this.#limiter.take(req, ip);
      if (wait > 0) {
        this.#answer(req, res, ip, startedAt, 429, LOCAL_MESSAGES[429], ['retry-after', String(wait)], rules);
        return;
      }
    }
    const action = route.action;
    if (action.kind === 'redirect') {
      this.#redirect(req, res, ip, startedAt, url, action.redirect, rules);
      return;
    }
    if (action.kind === 'respond') {
      const { status, headers, body } = action.answer;
      this.#reply(req, res, ip, startedAt, status, headers as string[], body);
      return;
    }
    // X-Forwarded-For gets the peer (SPEC 8.4), whatever the client address is.
    const fwd = forwardRequestHeaders(raw, peer, this.#proto);
    if (fwd.duplicateHost) {
      this.#refuse(req, res, ip, startedAt, 'bad request: more than one Host header', rules);
      return;
    }
    // Fulcrum's own header, so a route's requestHeaders act after it (SPEC 8.1).
    if (this.#clientCerts) {
      const xfcc = clientCertHeader(req.socket);
      if (xfcc !== undefined) fwd.headers.push('x-forwarded-client-cert', xfcc);
    }
    const headers = route.requestRules === null ? fwd.headers : route.requestRules.apply(fwd.headers);
    let body = this.#body(req, res, ip, startedAt, h2, rules);
    if (body === false) return;
    const path = route.rewritePath === null ? url : route.rewritePath(url);
    const target = action.kind === 'pool' ? action.target : action.choice.pick();
    const pick = target.hashKey === null ? NO_KEY : { hashKey: target.hashKey(req, ip, url) };
    if (route.mirror !== null) body = route.mirror.copy({ method: req.method!, path, headers, pick }, body, req.headers['content-length']);
    const tracer = this.#tracing.tracer;
    let trace: ServerTrace | undefined;
    if (tracer !== null) {
      trace = tracer.begin(req.headers, startedAt, route.index);
      trace.bindHeaders(headers);
    }
    const exchange = new Exchange({
      body,
      listener: this.name,
      observer: this.#observer,
      pool: target.pool,
      req,
      // SPEC 8.5: compress acts last, on what the exchange writes (responseHeaders applied).
      res: route.compress === null ? res : route.compress.wrap(req, res),
      path,
      headers,
      requestId: fwd.requestId,
      remoteAddress: ip,
      pick,
      sticky: target.sticky,
      preferred: target.sticky?.preferred(req.headers.cookie),
      startedAt,
      responseRules: rules,
      retries: route.retries,
      timeouts: route.timeouts,
      trace,
    });
    exchange.start();
    if (body !== null) {
      // A body that fails (the client reset it, broke its framing) ends the
      // attempt, whichever client carries it (undici does not always notice).
      body.once('error', (err) => exchange.abort(err));
      this.#watchBody(req, exchange);
    }
  }

  /**
   * CONNECT is a forward proxy's method: 501, logged, and the connection (or,
   * over HTTP/2, the stream) ends; nothing after it is read as a tunnel.
   */
  #connect = (req: ProxyRequest, socketOrRes: Duplex | ProxyResponse): void => {
    const startedAt = performance.now();
    const ip = this.#clientOf(peerAddress(req.socket), req);
    if ('writeHead' in socketOrRes) {
      this.#answer(req, socketOrRes, ip, startedAt, 501, LOCAL_MESSAGES[501]);
      return;
    }
    socketOrRes.on('error', () => undefined);
    const status = req.httpVersionMajor !== 1 || req.httpVersionMinor > 1 ? 505 : 501;
    // node:http hands CONNECT over at once, even behind answers still in flight: it goes after them.
    if (!this.#nodeHttp1 || !deferClientError(socketOrRes, localAnswer(status, LOCAL_MESSAGES[status]))) {
      refuseUpgrade(socketOrRes, status, LOCAL_MESSAGES[status]);
    }
    this.#observer.onRequestEnd({
      // A CONNECT's target is an authority (RFC 9110 §9.3.6).
      listener: this.name, method: 'CONNECT', url: req.url ?? '', requestId: requestIdOf(req),
      remoteAddress: ip, pool: '', backend: '', status, durationMs: performance.now() - startedAt, bytes: 0, retries: 0, error: LOCAL_MESSAGES[status],
    });
  };

  #upgrade = (req: ProxyRequest, socket: Duplex, head: Buffer): void => {
    try {
      this.#tunnel(req, socket, head);
    } catch (err) {
      reportInternalError(err, 'upgrade handler');
      socket.destroy();
    }
  };

  #tunnel(req: ProxyRequest, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    const peer = peerAddress(req.socket);
    const ip = this.#clientOf(peer, req);
    const record = (status: number, pool: string, backend: string, requestId: string, error?: string) => this.#observer.onRequestEnd({
      listener: this.name, method: req.method!, url: req.url!, requestId,
      remoteAddress: ip, pool, backend, status, durationMs: performance.now() - startedAt, bytes: 0, retries: 0, error,
    });
    // Refused here: the client's id, or one made up for the log line (as #answer does).
    const refused = (status: number, error: string) => record(status, '', '', requestIdOf(req), error);
    socket.on('error', () => undefined);
    // node:http hands an upgrade over at once, even behind answers to earlier
    // pipelined requests still in flight: a refusal goes after them (as
    // #connect's does), or it would answer the wrong request and close the
    // connection under them (found by the wire fuzz campaign).
    const refuseInOrder = (s: Duplex, status: number, message: string, extra = '') => {
      if (!this.#nodeHttp1 || !deferClientError(s, localAnswer(status, message, extra))) refuseUpgrade(s, status, message, extra);
    };
    if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
      refuseInOrder(socket, 505, LOCAL_MESSAGES[505]);
      refused(505, 'unsupported HTTP version');
      return;
    }
    // What #serve refuses in every request is refused in an upgrade too (the
    // wire fuzz campaign found WebSocket upgrades without Host, with two, or
    // with Transfer-Encoding in HTTP/1.0 handed to a backend).
    const framing = badFraming(req);
    const bad = req.httpVersionMinor === 1 && req.headers.host === undefined ? 'bad request: no Host header'
      : hostCount(req.rawHeaders) > 1 ? 'bad request: more than one Host header'
      : framing !== undefined ? `bad request: ${framing}` : undefined;
    if (bad !== undefined) {
      refuseInOrder(socket, 400, bad);
      refused(400, bad);
      return;
    }
    // Only WebSocket (RFC 6455) is proxied; h2c and anything else is refused.
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || req.method !== 'GET') {
      refuseInOrder(socket, 400, 'only WebSocket upgrades are supported');
      refused(400, 'unsupported upgrade');
      return;
    }
    const url = ProxyListener.#pathOf(req);
    const route = url === undefined ? undefined : this.#router.match(hostOf(req), url, req.method, req.headers);
    if (url === undefined || route === undefined) {
      const status = url === undefined ? 400 : 404;
      refuseInOrder(socket, status, LOCAL_MESSAGES[status]);
      refused(status, LOCAL_MESSAGES[status]);
      return;
    }
    if (route.access === null) {
      this.#tunnelOn(route, req, socket, head, ip, peer, url, req.rawHeaders, refuseInOrder, refused, record);
      return;
    }
    // SPEC 8.3 holds for WebSocket upgrades too: a route's access is never bypassed by asking for a tunnel.
    const admit = (verdict: Verdict) => {
      if (Array.isArray(verdict)) {
        this.#tunnelOn(route, req, socket, head, ip, peer, url, verdict, refuseInOrder, refused, record);
        return;
      }
      answerUpgradeRefusal(verdict, route.responseRules, (answer) => {
        if (!this.#nodeHttp1 || !deferClientError(socket, answer)) {
          if (socket.writable) socket.end(answer);
        }
        refused(verdict.status, verdict.error);
      });
    };
    const verdict = route.access.check(req, ip, peer, this.#proto, () => socketGone(socket));
    if (!(verdict instanceof Promise)) admit(verdict);
    else {
      verdict.then((v) => {
        if (socket.destroyed) refused(499, ERRORS.FULCRUM_CLIENT_GONE.message);
        else admit(v);
      }).catch((err: unknown) => {
        reportInternalError(err, 'upgrade handler');
        socket.destroy();
      });
    }
  }

  /** An upgrade past its route's access check: the rate limit, then the route's action. */
  #tunnelOn(
    route: ListenerRoute, req: ProxyRequest, socket: Duplex, head: Buffer, ip: string, peer: string, url: string, raw: string[],
    refuseInOrder: (s: Duplex, status: number, message: string, extra?: string) => void,
    refused: (status: number, error: string) => void,
    record: (status: number, pool: string, backend: string, requestId: string, error?: string) => void,
  ): void {
    const wait = this.#limiter?.take(req, ip) ?? 0;
    if (wait > 0) {
      refuseInOrder(socket, 429, LOCAL_MESSAGES[429], `retry-after: ${wait}\r\n`);
      refused(429, 'rate limited');
      return;
    }
    const action = route.action;
    if (action.kind === 'redirect' || action.kind === 'respond') {
      // No tunnel: the route's answer, and the connection closes.
      const answer = action.kind === 'redirect' ? this.#redirectParts(req, url, action.redirect, route.responseRules) : undefined;
      const status = action.kind === 'respond' ? action.answer.status : answer?.status ?? 400;
      const head = action.kind === 'respond' ? action.answer.headers : answer?.headers;
      const text = action.kind === 'respond' ? action.answer.body : Buffer.from(answer?.body ?? `${LOCAL_MESSAGES[400]}\n`);
      if (head === undefined) refuseInOrder(socket, 400, LOCAL_MESSAGES[400]);
      else if (socket.writable) socket.end(Buffer.concat([Buffer.from(rawHead(status, head)), text]));
      record(status, '', '', requestIdOf(req));
      return;
    }
    const path = route.rewritePath === null ? url : route.rewritePath(url);
    const target = action.kind === 'pool' ? action.target : action.choice.pick();
    if (target.pool.config.protocol === 'http2') {
      // WebSocket is an HTTP/1.1 upgrade; over HTTP/2 it would need RFC 8441, which backends rarely speak.
      refuseInOrder(socket, 501, 'not implemented: WebSocket needs a pool with protocol http1');
      refused(501, 'WebSocket to an http2 pool');
      return;
    }
    proxyUpgrade({
      req, socket, head, path, ip: peer, rawHeaders: raw, proto: this.#proto, pool: target.pool,
      pick: target.hashKey === null ? NO_KEY : { hashKey: target.hashKey(req, ip, url) },
      requestRules: route.requestRules,
      onEnd: (status, backend, requestId, error) => record(status, target.pool.name, backend, requestId, error),
    });
  }

  /** A redirect's status, headers (responseHeaders applied) and body; undefined when the Host is no authority. */
  #redirectParts(req: ProxyRequest, url: string, redirect: Redirect, rules: HeaderRules | null): { status: number; headers: string[]; body: string } | undefined {
    const location = redirect.location(this.#proto, hostOf(req) ?? localAuthority(req), url);
    if (location === undefined) return undefined;
    const { headers, body } = redirectAnswer(redirect.status, location);
    return { status: redirect.status, headers: rules === null ? headers : rules.apply(headers), body };
  }

  #redirect(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, url: string, redirect: Redirect, rules: HeaderRules | null): void {
    const answer = this.#redirectParts(req, url, redirect, rules);
    if (answer === undefined) {
      this.#answer(req, res, ip, startedAt, 400, 'bad request: the Host header is not a valid authority', undefined, rules);
      return;
    }
    this.#reply(req, res, ip, startedAt, answer.status, answer.headers, answer.body);
  }

  /** A request answered without a backend, already written (access refusals): logged and counted like any. */
  #recordLocal(req: ProxyRequest, ip: string, startedAt: number, status: number, error: string, bytes: number): void {
    this.#observer.onRequestEnd({
      listener: this.name, method: req.method!, url: req.url ?? '', requestId: requestIdOf(req),
      remoteAddress: ip, pool: '', backend: '', status, durationMs: performance.now() - startedAt, bytes, retries: 0, error,
    });
  }

  /** A route's own answer (redirect, respond): headers as given, logged and counted like any request. */
  #reply(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, status: number, headers: string[], body: string | Buffer): void {
    res.writeHead(status, headers);
    res.end(body as string);
    this.#observer.onRequestEnd({
      listener: this.name, method: req.method!, url: req.url!, requestId: requestIdOf(req), remoteAddress: ip,
      pool: '', backend: '', status, durationMs: performance.now() - startedAt,
      bytes: req.method === 'HEAD' ? 0 : body.length, retries: 0,
    });
  }

  /**
   * The body to send upstream: null without one; the request itself; or, for
   * a chunked body under maxBodySize, a counting stream. A Content-Length over
   * the limit is refused here (413) before a byte is read: returns false.
   * While the body streams, a client that goes quiet for bodyTimeout is cut off.
   */
  #body(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, h2: boolean, rules: HeaderRules | null): Readable | null | false {
    const h = req.headers;
    const length = h['content-length'];
    // Unknown length: chunked in HTTP/1.1; in HTTP/2, DATA frames until the end of the stream.
    const chunked = h['transfer-encoding'] !== undefined
      || (length === undefined && h2 && !(req as Http2Request).stream.endAfterHeaders);
    if (!chunked && (length === undefined || length === '0')) return null;
    const { maxBodySize } = this.config.limits;
    if (maxBodySize > 0 && !chunked && Number(length) > maxBodySize) {
      this.#answer(req, res, ip, startedAt, 413, LOCAL_MESSAGES[413], ['connection', 'close'], rules);
      return false;
    }
    const body = bodyStream(req);
    // node:http's request cannot be failed alone when its chunked body breaks (see src/http1/node-http.ts): it goes through a stream that can.
    const broken = chunked && this.#nodeHttp1 && !h2;
    // HTTP/2: a client's RST_STREAM (no END_STREAM) ends node:http2's
    // stream as if its body were complete: 'end' comes first, 'aborted' (or
    // nothing) later, so the upstream request was finished with a truncated
    // body (found by the wire fuzz campaign).
    // Every HTTP/2 body goes through a stream that holds its end back one
    // turn (setImmediate) and fails instead if the stream was reset: the
    // upstream request is then aborted, never completed.
    if (!h2 && (!chunked || (maxBodySize === 0 && !broken))) return body;
    const stream = h2 ? (req as Http2Request).stream : undefined;
    const wasReset = () => (req as Http2Request).aborted;
    const resetError = () => Object.assign(new Error('the client reset the stream before its body ended'), { code: 'ECONNRESET' });
    const limited = new BodyLimit(
      maxBodySize === 0 || !chunked ? Infinity : maxBodySize,
      h2 ? (done) => setImmediate(() => done(wasReset() ? resetError() : null)) : undefined,
    );
    // pipe() does not pass errors on: a body that breaks must still end the counting stream.
    body.on('error', (err) => limited.destroy(err));
    if (h2) {
      body.once('aborted', () => limited.destroy(resetError()));
      // Node 26 may say neither 'end' nor 'aborted' for a reset stream: its
      // 'close' (with its RST_STREAM code) does.
      stream!.once('close', () => {
        if (!limited.writableFinished && wasReset()) limited.destroy(resetError());
      });
    }
    if (broken) trackChunkedBody(req, limited);
    return body.pipe(limited);
  }

  /** While a body streams in, a client quiet for bodyTimeout gets a 408 and its connection closes. */
  #watchBody(req: ProxyRequest, exchange: Exchange): void {
    const ms = this.config.limits.bodyTimeoutMs;
    if (ms === 0 || req.complete) return;
    const onTimeout = () => exchange.abort(fulcrumError(BODY_TIMEOUT, `no body data for ${ms}ms`));
    if (req.watchBody !== undefined) {
      req.watchBody(ms, onTimeout);
      return;
    }
    const socket = req.socket;
    const incoming = req as unknown as http.IncomingMessage;
    // On the request, not the socket: node:http destroys a timed-out socket
    // unless the request (or response, or server) handles 'timeout'.
    incoming.setTimeout(ms, onTimeout);
    const disarm = () => {
      socket.setTimeout(0);
      incoming.off('timeout', onTimeout);
    };
    incoming.once('end', disarm);
    incoming.once('close', disarm);
  }

  /**
   * An answer after which an HTTP/1.x connection closes (the rest of what the
   * client sends is not read as requests). Over HTTP/2 only the stream ends:
   * the connection's other streams are not the bad request's.
   */
  #closeWith(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, status: number, message: string, rules: HeaderRules | null = null): void {
    if (isHttp2(req)) {
      this.#answer(req, res, ip, startedAt, status, message, undefined, rules);
      return;
    }
    (req.socket as Marked)[POISONED] = true;
    this.#answer(req, res, ip, startedAt, status, message, ['connection', 'close'], rules);
  }

  /** 400 for ambiguous framing: answer, then nothing more from this connection (HTTP/2: this stream). */
  #refuse(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, message: string, rules: HeaderRules | null = null): void {
    this.#closeWith(req, res, ip, startedAt, 400, message, rules);
    if (!isHttp2(req)) res.once('finish', () => req.socket.destroy());
  }

  /** Fulcrum answers itself (404, 400, 413, 429): logged and counted like any request. */
  #answer(req: ProxyRequest, res: ProxyResponse, ip: string, startedAt: number, status: number, message: string, headers?: readonly string[], rules: HeaderRules | null = null): void {
    const requestId = requestIdOf(req);
    // SPEC 9.1: a gRPC call gets a trailers-only answer (HTTP 200, the status mapped).
    const grpc = isGrpc(req) ? String(sendGrpcLocal(res, status, message)) : undefined;
    const bytes = grpc !== undefined ? 0 : sendLocal(res, status, message, headers, rules);
    if (grpc !== undefined) status = 200;
    const method = req.method;
    this.#observer.onRequestEnd({
      listener: this.name,
      // A method that is not forwarded is not a label either: an HTTP/2 client
      // could make one series per made-up name.
      method: method !== undefined && (HTTP1_METHODS.has(method) || method === 'CONNECT') ? method : OTHER_METHOD,
      // A CONNECT's target (HTTP/2: :authority) is no path; an answer to one has a URL all the same.
      url: req.url ?? '',
      requestId,
      remoteAddress: ip,
      pool: '',
      backend: '',
      status,
      durationMs: performance.now() - startedAt,
      bytes,
      retries: 0,
      error: message,
      // Answered here: a server span with no client span under it.
      trace: this.#tracing.tracer?.begin(req.headers, startedAt, -1),
      ...(grpc !== undefined ? { grpcStatus: grpc } : {}),
    });
  }
}

/**
 * What node:http's parser lets through but a proxy must not forward
 * ambiguously (RFC 9112 §6.1): a transfer coding other than plain "chunked"
 * (the parser accepts "cow, chunked" and strips only the last one), and
 * Transfer-Encoding in an HTTP/1.0 request. Undefined when the framing is fine.
 */
function badFraming(req: ProxyRequest): string | undefined {
  const te = req.headers['transfer-encoding'];
  if (te === undefined) return undefined;
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'Transfer-Encoding in an HTTP/1.0 request';
  if (te.trim().toLowerCase() !== 'chunked') return `unsupported transfer coding "${te}"`;
  return undefined;
}

/** How many Host fields a raw header list holds. */
function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** HTTP/2 is a transport, never a request line's claim: node:http2's requests have their stream. */
function isHttp2(req: ProxyRequest): boolean {
  return (req as { stream?: unknown }).stream !== undefined;
}

/** A bug while handling `req`: reported once; the client gets a 500 if nothing was sent yet, else a cut. */
function fault(req: ProxyRequest, res: ProxyResponse, err: unknown): void {
  reportInternalError(err, 'request handler');
  try {
    (req.socket as Marked)[POISONED] = true;
    if (res.headersSent || res.destroyed) res.destroy();
    else sendLocal(res, 500, LOCAL_MESSAGES[500], ['connection', 'close']);
  } catch {
    req.socket.destroy();
  }
}

/** The authority of the address a Host-less request came to (HTTP/1.0): what its redirect's Location names. */
function localAuthority(req: ProxyRequest): string {
  const address = req.socket.localAddress ?? '';
  const host = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return `${host.includes(':') ? `[${host}]` : host}:${req.socket.localPort ?? 0}`;
}

/** A raw HTTP/1.1 head after which the connection closes (answers to upgrade requests). */
function rawHead(status: number, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}connection: close\r\n\r\n`;
}

/** For a request Fulcrum answers itself: the client's X-Request-Id, else a new one. */
function requestIdOf(req: ProxyRequest): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' ? sent : newRequestId();
}

/**
 * "http://host/a?b" → "/a?b", "http://host?b" → "/?b"; "*" and a target with
 * no authority → undefined. The path and query are taken as sent (RFC 9112
 * §3.2.2), never normalised by a URL parser: "/a?" stays "/a?", "/a/../b"
 * stays as it is, exactly as an origin-form target would reach the backend.
 */
function originForm(target: string): string | undefined {
  const scheme = /^https?:\/\//i.exec(target);
  if (scheme === null) return undefined;
  const from = scheme[0].length;
  let end = from;
  while (end < target.length && target[end] !== '/' && target[end] !== '?') end++;
  if (end === from) return undefined;
  const rest = target.slice(end);
  return rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
}

/** SPEC 8.4: a listener's trusted proxies, built once per config; null when it has none. */
function trustedSet(config: ListenerConfig): AddressSet | null {
  return config.trustedProxies !== undefined ? new AddressSet(config.trustedProxies) : null;
}

/** Aborted when the client's response closes before it is finished (an auth call for it is then let go). */
function clientGone(res: ProxyResponse): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  return gone.signal;
}

function socketGone(socket: Duplex): AbortSignal {
  const gone = new AbortController();
  socket.once('close', () => gone.abort());
  return gone.signal;
}
