import type { ProxyResponse } from './message';
import type { HeaderRules } from '../routes/header-rules';

/** Bodies of the answers Fulcrum gives itself: one line, never a stack trace. */
export const LOCAL_MESSAGES: Readonly<Record<number, string>> = {
  400: 'bad request',
  404: 'not found: no route matches this request',
  408: 'request timeout: headers took too long',
  413: 'payload too large',
  429: 'too many requests',
  500: 'internal error',
  501: 'not implemented: this method cannot be forwarded',
  502: 'bad gateway: the backend failed',
  503: 'service unavailable: no backend available',
  504: 'gateway timeout: the backend did not answer in time',
  505: 'http version not supported',
};

/** Write a one-line text answer; returns the body length. `rules`: the route's responseHeaders (SPEC 8.1: they apply to Fulcrum's own answers too). */
export function sendLocal(res: ProxyResponse, status: number, message: string, headers?: readonly string[], rules: HeaderRules | null = null): number {
  const body = `${message}\n`;
  const len = Buffer.byteLength(body);
  const h = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(len)];
  if (headers !== undefined) {
    // HTTP/2 has no Connection header (node:http2 drops it with a process warning).
    if ((res as { stream?: unknown }).stream === undefined) h.push(...headers);
    else for (let i = 0; i < headers.length; i += 2) if (headers[i] !== 'connection') h.push(headers[i]!, headers[i + 1]!);
  }
  res.writeHead(status, rules === null ? h : rules.apply(h));
  res.end(body);
  return len;
}
