import type { ProxyResponse } from '../proxy/message';

/**
 * HTTP-01 (RFC 8555 §8.3): while an order is open, the CA fetches
 * http://DOMAIN/.well-known/acme-challenge/TOKEN and expects the key
 * authorization. Any plain-HTTP listener of the process answers it, before
 * routing (SPEC 9.4); any other path under the prefix goes on as usual.
 */
export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export class ChallengeResponder {
  readonly #tokens = new Map<string, string>();

  set(token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }

  /** Answers `url` if it is an open challenge; the body's bytes, or -1 when it is not one. */
  answer(url: string, res: ProxyResponse): number {
    if (this.#tokens.size === 0 || !url.startsWith(CHALLENGE_PREFIX)) return -1;
    const q = url.indexOf('?');
    const value = this.#tokens.get(url.slice(CHALLENGE_PREFIX.length, q === -1 ? undefined : q));
    if (value === undefined) return -1;
    res.writeHead(200, ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(value))]);
    res.end(value);
    return Buffer.byteLength(value);
  }
}
