import type { Logger } from './log';

/**
 * Fulcrum's own resource exhaustion (EMFILE, ENFILE, ENOMEM, ENOBUFS: out of
 * file descriptors or memory), wherever it shows: accepting a client,
 * connecting to a backend, a health probe. Under an fd flood that is
 * thousands of failures a second, so it is logged once when it starts (not
 * once per failed accept or connect) and once when none was seen for
 * `quietMs`, with how many there were. Meanwhile new connections are shed
 * (libuv accepts and closes what it cannot keep), requests that need a new
 * backend connection get 503, and no backend is blamed (issue 20, F3).
 */
export class ResourceAlarm {
  readonly #logger: Logger;
  readonly #quietMs: number;
  #count = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, quietMs = 5000) {
    this.#logger = logger;
    this.#quietMs = quietMs;
  }

  /** `where`: "accept", "backend connect", "health probe". */
  raise(code: string, where: string): void {
    this.#count++;
    this.#last = Date.now();
    if (this.#timer !== undefined) return;
    this.#logger.warn({ code, where }, 'out of local resources (file descriptors or memory): shedding new connections, no backend is blamed');
    this.#timer = setInterval(() => this.#check(), Math.max(100, Math.floor(this.#quietMs / 5)));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    if (Date.now() - this.#last < this.#quietMs) return;
    this.#logger.info({ failures: this.#count }, 'local resources available again');
    this.#count = 0;
    this.stop();
  }
}
