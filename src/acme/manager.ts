import https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type * as AcmeClient from 'acme-client';
import type { AcmeConfig, Config } from '../config/types';
import type { Logger } from '../log';
import { describeCertificate, notAfter, selfSigned, type CertificateSource, type KeyPair } from '../tls/certificates';
import { ChallengeResponder } from './challenge';
import { readAccountKey, readCertificate, writeAccountKey, writeCertificate } from './store';

/**
 * Certificates from an ACME CA (SPEC 9.4) for listeners with `tls.acme`,
 * through acme-client (the protocol, JWS, CSRs). One order per listener:
 * - at start, a stored certificate that covers the domains is served at
 *   once; without one, a self-signed placeholder (logged);
 * - an order runs when there is no certificate or it expires within
 *   RENEW_BEFORE_MS; otherwise a check is scheduled for then;
 * - a failed order is logged and retried after firstRetryMs, doubling up
 *   to MAX_RETRY_MS; nothing here ever stops the process;
 * - HTTP-01 challenges are answered by the plain listeners (challenges).
 */

const RENEW_BEFORE_MS = 30 * 86_400_000;
const MAX_RETRY_MS = 3_600_000;
/** SPEC 9.4: the first retry within a minute. */
export const DEFAULT_FIRST_RETRY_MS = 30_000;
/** Longest timer Node keeps (about 24.8 days); a renewal further off is checked again then. */
const MAX_TIMER_MS = 2_147_483_647;

export interface AcmeOptions {
  /** The first retry after a failed order (tests make it short; never a YAML key). */
  readonly firstRetryMs?: number;
}

class Order {
  readonly listener: string;
  readonly config: AcmeConfig;
  readonly key: string;
  owner: object;
  onCertificate: (pair: KeyPair) => void;
  pair: KeyPair;
  source: CertificateSource;
  timer: NodeJS.Timeout | undefined;
  failures = 0;
  running = false;
  stopped = false;

  constructor(listener: string, config: AcmeConfig, owner: object, onCertificate: (pair: KeyPair) => void, pair: KeyPair, source: CertificateSource) {
    this.listener = listener;
    this.config = config;
    this.key = JSON.stringify(config);
    this.owner = owner;
    this.onCertificate = onCertificate;
    this.pair = pair;
    this.source = source;
  }
}

export class AcmeManager {
  readonly challenges = new ChallengeResponder();
  readonly #logger: Logger;
  readonly #firstRetryMs: number;
  readonly #orders = new Map<string, Order>();
  /** Some listener of the running config uses ACME: plain listeners answer challenges. */
  #expected = false;
  #started = false;
  #caKey = '';
  /** Trusts the directories' own CAs (`acme.ca`) beside Node's roots; undefined: Node's roots. */
  #agent: https.Agent | undefined;

  constructor(logger: Logger, options: AcmeOptions = {}) {
    this.#logger = logger;
    this.#firstRetryMs = options.firstRetryMs ?? DEFAULT_FIRST_RETRY_MS;
  }

  get expected(): boolean {
    return this.#expected;
  }

  /** Before listeners are made for `config`: whether plain ones must answer challenges, and which CAs the directories need. */
  expect(config: Config): void {
    const acmes = config.listeners.flatMap((l) => (l.tls?.acme !== undefined ? [l.tls.acme] : []));
    this.#expected = acmes.length > 0;
    this.#trust(acmes.flatMap((a) => (a.ca !== undefined ? [a.ca] : [])));
  }

  /**
   * A listener with `tls.acme`: the pair to serve now; `onCertificate` hears
   * of each new one. Attached again with the same settings (a reload), the
   * order and its certificate stay.
   */
  attach(listener: string, config: AcmeConfig, owner: object, onCertificate: (pair: KeyPair) => void): KeyPair {
    const existing = this.#orders.get(listener);
    if (existing !== undefined && existing.key === JSON.stringify(config)) {
      existing.owner = owner;
      existing.onCertificate = onCertificate;
      return existing.pair;
    }
    if (existing !== undefined) this.#stopOrder(existing);
    const stored = this.#stored(config);
    const order = stored !== undefined
      ? new Order(listener, config, owner, onCertificate, stored, 'acme')
      : new Order(listener, config, owner, onCertificate, selfSigned(config.domains, 'Fulcrum ACME placeholder', 7), 'placeholder');
    this.#orders.set(listener, order);
    if (stored === undefined) {
      this.#logger.warn({ listener, domains: config.domains }, 'acme: no certificate stored yet; serving a self-signed placeholder until the first one arrives');
    } else {
      this.#logger.info({ listener, domains: config.domains, notAfter: new Date(notAfter(stored.cert)).toISOString() }, 'acme: serving the stored certificate');
    }
    if (this.#started) this.#schedule(order);
    return order.pair;
  }

  /** The listener is gone (reload, stop); `owner` guards against a newer listener of the same name. */
  detach(listener: string, owner: object): void {
    const order = this.#orders.get(listener);
    if (order === undefined || order.owner !== owner) return;
    this.#stopOrder(order);
    this.#orders.delete(listener);
  }

  source(listener: string): CertificateSource {
    return this.#orders.get(listener)?.source ?? 'placeholder';
  }

  /** Listeners are bound (challenges can be answered): orders may run. */
  start(): void {
    this.#started = true;
    for (const o of this.#orders.values()) this.#schedule(o);
  }

  stop(): void {
    this.#started = false;
    for (const o of this.#orders.values()) this.#stopOrder(o);
    this.#orders.clear();
  }

  #stopOrder(o: Order): void {
    o.stopped = true;
    clearTimeout(o.timer);
  }

  /** A stored certificate for these domains that is still valid, if any. */
  #stored(config: AcmeConfig): KeyPair | undefined {
    const pair = readCertificate(config);
    if (pair === undefined) return undefined;
    try {
      if (notAfter(pair.cert) <= Date.now()) return undefined;
      const names = new Set(describeCertificate(pair.cert, 'acme').names);
      return config.domains.every((d) => names.has(d)) ? pair : undefined;
    } catch {
      return undefined;
    }
  }

  /** Order now if due, else check again when it will be. */
  #schedule(o: Order): void {
    if (o.stopped || o.running) return;
    clearTimeout(o.timer);
    const due = o.source === 'acme' ? notAfter(o.pair.cert) - RENEW_BEFORE_MS : 0;
    const wait = due - Date.now();
    if (wait <= 0) {
      void this.#order(o);
      return;
    }
    o.timer = setTimeout(() => this.#schedule(o), Math.min(wait, MAX_TIMER_MS));
    o.timer.unref();
  }

  async #order(o: Order): Promise<void> {
    o.running = true;
    const { listener, config } = o;
    this.#logger.info({ listener, domains: config.domains, directory: config.directory }, o.source === 'acme' ? 'acme: renewing the certificate' : 'acme: ordering a certificate');
    try {
      const pair = await this.#obtain(config);
      if (o.stopped) return;
      writeCertificate(config, pair);
      o.pair = pair;
      o.source = 'acme';
      o.failures = 0;
      o.onCertificate(pair);
      this.#logger.info({ listener, domains: config.domains, notAfter: new Date(notAfter(pair.cert)).toISOString() }, 'acme: certificate obtained');
      o.running = false;
      this.#schedule(o);
    } catch (err) {
      o.running = false;
      if (o.stopped) return;
      o.failures++;
      const retryMs = Math.min(this.#firstRetryMs * 2 ** (o.failures - 1), MAX_RETRY_MS);
      this.#logger.warn({ listener, domains: config.domains, attempt: o.failures, retryInMs: retryMs, reason: describe(err) },
        `acme: the order failed; retrying in ${Math.round(retryMs / 1000)}s`);
      o.timer = setTimeout(() => {
        if (!o.stopped) void this.#order(o);
      }, retryMs);
      o.timer.unref();
    }
  }

  async #obtain(config: AcmeConfig): Promise<KeyPair> {
    const acme = await loadAcmeClient();
    acme.axios.defaults.httpsAgent = this.#agent;
    let accountKey = readAccountKey(config.storage);
    if (accountKey === undefined) {
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      writeAccountKey(config.storage, accountKey);
    }
    const client = new acme.Client({ directoryUrl: config.directory, accountKey });
    const key = await acme.crypto.createPrivateEcdsaKey();
    const [, csr] = await acme.crypto.createCsr({ commonName: config.domains[0], altNames: [...config.domains] }, key);
    const cert = await client.auto({
      csr,
      ...(config.email !== undefined ? { email: config.email } : {}),
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client would fetch the challenge itself first, through this host's
      // DNS and port 80, which behind NAT or a balancer may not reach us; the CA's check is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        this.challenges.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        this.challenges.delete(challenge.token);
      },
    });
    return { cert, key: key.toString() };
  }

  /** Directories served with certificates of their own CA (`acme.ca`): trusted beside Node's roots. */
  #trust(files: readonly string[]): void {
    const key = files.join('\n');
    if (key === this.#caKey) return;
    this.#caKey = key;
    const extra = files.flatMap((f) => {
      try {
        return [readFileSync(f, 'utf8')];
      } catch {
        return [];
      }
    });
    this.#agent = extra.length > 0 ? new https.Agent({ ca: [...rootCertificates, ...extra] }) : undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as NodeJS.ErrnoException).code;
    return cause !== undefined && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
  }
  return String(err);
}

let acmeClient: typeof AcmeClient | undefined;

/**
 * acme-client (with axios and its crypto libraries: megabytes of RSS) is
 * loaded by the first order only: a Fulcrum without tls.acme never loads it.
 */
async function loadAcmeClient(): Promise<typeof AcmeClient> {
  if (acmeClient !== undefined) return acmeClient;
  const lib = await import('acme-client');
  // acme-client retries each request up to 5 times with its own waits (seconds
  // each); a CA that is down would hold an order for half a minute before our
  // backoff even starts. Our retries are the backoff above.
  const settings = (lib.axios.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
  if (settings !== undefined) settings.retryMaxAttempts = 0;
  return (acmeClient = lib);
}
