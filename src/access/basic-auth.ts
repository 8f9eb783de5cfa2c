import crypto from 'node:crypto';
import bcrypt from 'bcryptjs';

/** Verified credentials kept per route; beyond it the oldest go (bounded memory whatever clients send). */
const MAX_CACHED = 1024;

/** SHA-256 of a string, as hex: crypto.hash where Node has it (20.12+), else createHash. */
const sha256: (s: string) => string = typeof (crypto as { hash?: unknown }).hash === 'function'
  ? (s) => (crypto as unknown as { hash(alg: string, data: string): string }).hash('sha256', s)
  : (s) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * `basicAuth` (SPEC 8.3). bcrypt is slow on purpose (tens of milliseconds),
 * so a verified credential is remembered, keyed by a SHA-256 of the whole
 * Authorization value (the password itself is never kept), in a map bounded
 * at MAX_CACHED entries. A wrong credential is remembered too, as wrong,
 * in a map of its own (so a flood of wrong ones cannot push the good ones
 * out): repeating it costs no bcrypt run, and it is never taken for a good one. Concurrent requests with the same credential share
 * one bcrypt run. The users are fixed for the life of this object (a reload
 * builds a new one), so an entry never goes stale.
 */
export class BasicAuth {
  /** The WWW-Authenticate value of a 401. */
  readonly challenge: string;
  readonly #users: ReadonlyMap<string, string>;
  /**
   * An unknown user's password is checked against this (a configured user's
   * hash, the verdict forced to false): it costs the same bcrypt run as a
   * known user's, so timing does not tell which user names exist.
   */
  readonly #decoy: string;
  readonly #max: number;
  readonly #good = new Map<string, true>();
  readonly #bad = new Map<string, false>();
  readonly #running = new Map<string, Promise<boolean>>();

  constructor(realm: string, users: Readonly<Record<string, string>>, maxCached = MAX_CACHED) {
    this.challenge = `Basic realm="${realm}"`;
    this.#users = new Map(Object.entries(users));
    this.#decoy = this.#users.values().next().value!;
    this.#max = maxCached;
  }

  /** Whether the Authorization value holds a user's right password; a Promise only when bcrypt must run. */
  verify(authorization: string | undefined): boolean | Promise<boolean> {
    if (authorization === undefined || authorization.length < 7) return false;
    const key = sha256(authorization);
    if (this.#good.has(key)) return true;
    if (this.#bad.has(key)) return false;
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const credential = decodeBasic(authorization);
    if (credential === undefined) return false;
    const hash = this.#users.get(credential.user);
    const run = bcrypt.compare(credential.password, hash ?? this.#decoy)
      .then((ok) => ok && hash !== undefined, () => false)
      .then((ok) => {
        this.#running.delete(key);
        if (ok) remember(this.#good, key, true, this.#max);
        else remember(this.#bad, key, false, this.#max);
        return ok;
      });
    this.#running.set(key, run);
    return run;
  }

  /** Entries held, good and wrong (tests: the bound). */
  get cached(): { good: number; bad: number } {
    return { good: this.#good.size, bad: this.#bad.size };
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** "Basic dXNlcjpwYXNz" (RFC 7617; the scheme case-insensitive) → user and password; undefined if it is not that. */
export function decodeBasic(value: string): { user: string; password: string } | undefined {
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const b64 = value.slice(6).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon === -1) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
