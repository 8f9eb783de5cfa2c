/**
 * A route's `access` (SPEC 8.3), precomputed once per route: allow/deny on
 * the client address, then basicAuth, then forwardAuth. A request costs a
 * BlockList lookup and, with basicAuth, a hash and a Map lookup once its
 * credential is verified; only bcrypt and the auth service are asynchronous.
 */
import type { Readable } from 'node:stream';
import type { AccessConfig } from '../config/types';
import { ERRORS } from '../errors';
import type { ProxyRequest } from '../proxy/message';
import { AddressSet } from './addresses';
import { BasicAuth } from './basic-auth';
import { ForwardAuth, type AuthOutcome } from './forward-auth';

export { AddressSet, clientBehindProxies } from './addresses';

/** The request is refused: what the client gets. */
export interface Refusal {
  readonly status: number;
  /** [name, value, ...]; with a string body, content-type and content-length are added. */
  readonly headers: readonly string[];
  /** One line of Fulcrum's own, or the auth service's body as it comes. */
  readonly body: string | Readable;
  /** For the access log. */
  readonly error: string;
}

/** The raw header list to forward (the client's, edited), or why not. */
export type Verdict = string[] | Refusal;

const FORBIDDEN: Refusal = { status: 403, headers: [], body: ERRORS.FULCRUM_FORBIDDEN.message, error: 'client address not allowed' };

export class RouteAccess {
  readonly #allow: AddressSet | null;
  readonly #deny: AddressSet | null;
  readonly #basic: BasicAuth | null;
  readonly #forward: ForwardAuth | null;
  readonly #unauthorized: Refusal | null;

  constructor(config: AccessConfig) {
    this.#allow = config.allow !== undefined ? new AddressSet(config.allow) : null;
    this.#deny = config.deny !== undefined && config.deny.length > 0 ? new AddressSet(config.deny) : null;
    this.#basic = config.basicAuth !== undefined ? new BasicAuth(config.basicAuth.realm, config.basicAuth.users) : null;
    this.#forward = config.forwardAuth !== undefined ? new ForwardAuth(config.forwardAuth) : null;
    this.#unauthorized = this.#basic !== null
      ? { status: 401, headers: ['www-authenticate', this.#basic.challenge], body: ERRORS.FULCRUM_UNAUTHORIZED.message, error: 'no valid credentials' }
      : null;
  }

  /**
   * `ip`: the client address (SPEC 8.4); `peer`: the TCP peer (or PROXY
   * source) that X-Forwarded-For gets; `gone`: aborted when the client leaves.
   * A Promise only when bcrypt or the auth service must be waited for.
   */
  check(req: ProxyRequest, ip: string, peer: string, proto: string, gone: () => AbortSignal): Verdict | Promise<Verdict> {
    if (this.#deny?.has(ip) === true || (this.#allow !== null && !this.#allow.has(ip))) return FORBIDDEN;
    if (this.#basic === null) return this.#forwardAuth(req, req.rawHeaders, peer, proto, gone);
    const ok = this.#basic.verify(req.headers.authorization);
    if (ok === true) return this.#forwardAuth(req, without(req.rawHeaders, AUTHORIZATION), peer, proto, gone);
    if (ok === false) return this.#unauthorized!;
    return ok.then((good) => (good ? this.#forwardAuth(req, without(req.rawHeaders, AUTHORIZATION), peer, proto, gone) : this.#unauthorized!));
  }

  #forwardAuth(req: ProxyRequest, raw: string[], peer: string, proto: string, gone: () => AbortSignal): Verdict | Promise<Verdict> {
    const auth = this.#forward;
    if (auth === null) return raw;
    return auth.ask(req, peer, proto, gone()).then((outcome) => verdictOf(outcome, raw, auth.copied));
  }
}

const AUTHORIZATION: ReadonlySet<string> = new Set(['authorization']);

function verdictOf(outcome: AuthOutcome, raw: string[], copied: ReadonlySet<string>): Verdict {
  switch (outcome.kind) {
    case 'pass': {
      // A client cannot forge what the auth service vouches for: its own copies go first.
      const out = copied.size === 0 ? raw : without(raw, copied);
      out.push(...outcome.copy);
      return out;
    }
    case 'answer':
      return { status: outcome.status, headers: outcome.headers, body: outcome.body, error: `refused by the auth service (${outcome.status})` };
    case 'unavailable':
      return { status: 503, headers: ['retry-after', '1'], body: ERRORS.FULCRUM_AUTH_UNAVAILABLE.message, error: outcome.reason };
  }
}

/** A copy of a raw header list without the (lower-case) names in `drop`. */
function without(raw: readonly string[], drop: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
