import net from 'node:net';
import tls from 'node:tls';
import { metricsOf } from './admin';
import { sum } from './prom';
import { parseResponses, type ParsedResponse } from './raw';

/**
 * The three kinds of listener the hardening suites attack: plain (our
 * HTTP/1.1 server), `secure` (TLS, node:https) and `h2` (TLS with http2,
 * whose HTTP/1.1 clients are served by node:http's code).
 */
export const LISTENERS = ['public', 'secure', 'h2'] as const;
export type ListenerName = (typeof LISTENERS)[number];

export interface RawAnswer {
  readonly responses: ParsedResponse[];
  /** The peer closed (or reset) before `timeoutMs`. */
  readonly closed: boolean;
  readonly data: string;
}

/**
 * Raw bytes to a listener on `port` (TLS with ALPN http/1.1 for the TLS ones),
 * one write per chunk; read until the peer closes or `timeoutMs`. `hangUp`:
 * close as soon as an answer arrives (with the body still unsent).
 */
export function sendRaw(port: number, listener: ListenerName, chunks: string | string[], options: { hangUp?: boolean; timeoutMs?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket: net.Socket = listener === 'public'
      ? net.connect(port, '127.0.0.1')
      : tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const received: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(received);
      resolve({ responses: parseResponses(data).responses, closed, data: data.toString('latin1') });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3000);
    socket.once(listener === 'public' ? 'connect' : 'secureConnect', () => {
      for (const c of typeof chunks === 'string' ? [chunks] : chunks) socket.write(Buffer.from(c, 'latin1'));
    });
    socket.on('data', (d: Buffer) => {
      received.push(d);
      if (options.hangUp === true && parseResponses(Buffer.concat(received)).responses.length > 0) socket.destroy();
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** fulcrum_internal_errors_total is 0 and no `internal error` line was logged (issue 20's seat belt stayed unused). */
export async function expectNoInternalErrors(adminUrl: string, logs: readonly Record<string, unknown>[]): Promise<void> {
  expect(sum(await metricsOf(adminUrl), 'fulcrum_internal_errors_total')).toBe(0);
  expect(logs.filter((l) => l.msg === 'internal error')).toEqual([]);
}
