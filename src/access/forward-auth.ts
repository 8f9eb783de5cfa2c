import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { ForwardAuthConfig } from '../config/types';
import type { ProxyRequest } from '../proxy/message';
import { forwardRequestHeaders } from '../proxy/headers';

/** What the auth service said. */
export type AuthOutcome =
  /** 2xx: `copy` ([name, value, ...]) goes onto the request to the backend. */
  | { readonly kind: 'pass'; readonly copy: string[] }
  /** Anything else: relayed to the client as it is. */
  | { readonly kind: 'answer'; readonly status: number; readonly headers: string[]; readonly body: Readable }
  /** No answer in time, or no connection. */
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Never sent to the auth service: hop-by-hop, the body's framing (it gets no body), and what Fulcrum sets itself. */
const NOT_SENT = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
  'host', 'content-length',
  'x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri', 'x-forwarded-for',
]);

/** Not relayed from the auth service's answer: hop-by-hop. */
const NOT_RELAYED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * One keep-alive agent for every auth service of the process: connections
 * outlive reloads (routes are rebuilt, the auth service stays), and an idle
 * one is let go after a few seconds.
 */
let agent: Agent | undefined;
function sharedAgent(): Agent {
  return (agent ??= new Agent({ keepAliveTimeout: 4_000, connections: 256 }));
}

/**
 * `forwardAuth` (SPEC 8.3): a GET to `url` with the listed headers of the
 * client's request (default: all of them) and X-Forwarded-Method, -Proto,
 * -Host, -Uri and -For (the chain as the backend would get it), no body.
 */
export class ForwardAuth {
  /** The client's own copies of these are removed before the auth service's are added. */
  readonly copied: ReadonlySet<string>;
  readonly #config: ForwardAuthConfig;
  readonly #origin: string;
  readonly #path: string;
  readonly #listed: ReadonlySet<string> | undefined;

  constructor(config: ForwardAuthConfig) {
    this.#config = config;
    const url = new URL(config.url);
    this.#origin = url.origin;
    this.#path = `${url.pathname}${url.search}`;
    this.#listed = config.requestHeaders !== undefined ? new Set(config.requestHeaders) : undefined;
    this.copied = new Set(config.responseHeaders);
  }

  /** `gone` aborts the call when the client leaves first. */
  ask(req: ProxyRequest, peer: string, proto: string, gone: AbortSignal): Promise<AuthOutcome> {
    const timeoutMs = this.#config.timeoutMs;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    const onGone = () => abort.abort(new Error('the client closed the connection'));
    gone.addEventListener('abort', onGone, { once: true });
    const done = () => {
      clearTimeout(timer);
      gone.removeEventListener('abort', onGone);
    };
    return sharedAgent().request({
      origin: this.#origin,
      path: this.#path,
      method: 'GET',
      headers: this.#headers(req, peer, proto),
      signal: abort.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    }).then((res): AuthOutcome => {
      done();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        res.body.dump().catch(() => undefined);
        return { kind: 'pass', copy: this.#copy(res.headers) };
      }
      res.body.on('error', () => undefined);
      return { kind: 'answer', status: res.statusCode, headers: relayed(res.headers), body: res.body };
    }, (err: Error): AuthOutcome => {
      done();
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : err.message;
      return { kind: 'unavailable', reason: `auth service: ${reason}` };
    });
  }

  #headers(req: ProxyRequest, peer: string, proto: string): string[] {
    const raw = req.rawHeaders;
    const out: string[] = [];
    const listed = this.#listed;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* : HTTP/2 pseudo-header */) continue;
      const lower = name.toLowerCase();
      if (NOT_SENT.has(lower) || (listed !== undefined && !listed.has(lower))) continue;
      out.push(name, raw[i + 1]!);
    }
    const fwd = forwardRequestHeaders(raw, peer, proto);
    out.push(
      'x-forwarded-method', req.method!,
      'x-forwarded-proto', proto,
      'x-forwarded-uri', req.url!,
      'x-forwarded-for', valueOf(fwd.headers, 'x-forwarded-for')!,
    );
    if (fwd.host !== '') out.push('x-forwarded-host', fwd.host);
    return out;
  }

  #copy(headers: Record<string, string | string[] | undefined>): string[] {
    const out: string[] = [];
    for (const name of this.copied) {
      const v = headers[name];
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const one of v) out.push(name, one);
      else out.push(name, v);
    }
    return out;
  }
}

function relayed(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(headers)) {
    if (v === undefined || NOT_RELAYED.has(name)) continue;
    if (Array.isArray(v)) for (const one of v) out.push(name, one);
    else out.push(name, v);
  }
  return out;
}

/** The last value of `name` (lower-case) in a flat header list. */
function valueOf(flat: readonly string[], name: string): string | undefined {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}
