import fs from 'node:fs';

/** Lines are held until a chunk is full or this long has passed (nginx's `access_log ... buffer= flush=`). */
const FLUSH_MS = 250;
/**
 * Bytes per write(2) to a pipe or socket: POSIX makes writes of up to PIPE_BUF
 * (4096 on Linux) atomic, so lines from several workers sharing one stdout
 * pipe (Kubernetes, systemd) never interleave mid-line.
 */
const PIPE_CHUNK = 4096;
/** Bytes per write(2) to a file or terminal. */
const FILE_CHUNK = 64 * 1024;
/** Past this much unwritten output (stdout stalled), new lines are dropped and counted, like HAProxy's log ring. */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;
/** A non-blocking stdout that is full is tried again after this long... */
const EAGAIN_RETRY_MS = 10;
/** ...and, on exit, this many times (2 s) before giving up on a reader that is gone. */
const EXIT_EAGAIN_TRIES = 200;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * Where log lines go. Each line is encoded once into a chunk of bytes; a
 * full chunk (or whatever is there every 250 ms) goes out in one write(2),
 * after the response it describes was sent. The request path pays one
 * string-to-bytes copy per line: no per-line write, no concatenated batch
 * string to convert again (sonic-boom's per-line writes and conversions were
 * ~8% of the proxy's CPU).
 *
 * Writes are synchronous, as nginx's buffered access log: nothing is ever
 * half-handed to a thread pool, so what `flushSync()` writes on exit is all
 * there is and lines stay in order. A non-blocking stdout that is full is
 * retried from a timer (the event loop does not spin); past 32 MB of backlog,
 * lines are dropped and the count is logged once stdout drains.
 */
export class LogSink {
  readonly #fd: number;
  readonly #chunk: number;
  readonly #maxBacklog: number;
  #buf: Buffer;
  #len = 0;
  /** Sealed chunks, oldest first; the first may be partly written already. */
  readonly #queue: Buffer[] = [];
  #backlog = 0;
  #retry: NodeJS.Timeout | undefined;
  #dropped = 0;
  #broken = false;
  #idle: (() => void)[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(fd: number, options: { maxBacklogBytes?: number } = {}) {
    this.#fd = fd;
    this.#chunk = chunkSize(fd);
    this.#maxBacklog = options.maxBacklogBytes ?? MAX_BACKLOG_BYTES;
    this.#buf = Buffer.allocUnsafe(this.#chunk);
    this.#timer = setInterval(() => {
      if (this.#len > 0) this.#seal();
    }, FLUSH_MS).unref();
  }

  /** One or more whole lines (pino's stream interface). */
  write(line: string): boolean {
    if (this.#broken) return true;
    const most = line.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    if (this.#backlog + this.#len + most > this.#maxBacklog) {
      this.#dropped++;
      return false;
    }
    if (this.#len + most > this.#chunk) {
      if (this.#len > 0) this.#seal();
      if (most > this.#chunk) {
        this.#enqueue(Buffer.from(line)); // longer than a chunk (a huge URL): on its own
        return true;
      }
    }
    this.#len += this.#buf.write(line, this.#len);
    return true;
  }

  /**
   * One line that `encode` writes into the chunk itself, with no string in
   * between: `encode(buf, at, arg)` writes at most `most` bytes from `at` and
   * returns where they end, or -1 to write nothing. False when nothing was
   * written: the caller then hands the line to write(), which also drops and
   * counts a line that does not fit the backlog.
   */
  writeWith<A>(most: number, encode: (buf: Buffer, at: number, arg: A) => number, arg: A): boolean {
    if (this.#broken || most > this.#chunk || this.#backlog + this.#len + most > this.#maxBacklog) return false;
    if (this.#len + most > this.#chunk) this.#seal();
    const end = encode(this.#buf, this.#len, arg);
    if (end < 0) return false;
    this.#len = end;
    return true;
  }

  /** Resolves when every line written before the call is out (or stdout is gone). */
  flush(): Promise<void> {
    if (this.#len > 0) this.#seal();
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** On process exit: everything still buffered, now (waiting up to 2 s for a full pipe). */
  flushSync(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#len > 0) this.#seal(false);
    for (let tries = 0; !this.#drain() && !this.#broken && tries < EXIT_EAGAIN_TRIES; tries++) {
      Atomics.wait(SLEEPER, 0, 0, EAGAIN_RETRY_MS);
    }
  }

  #seal(drain = true): void {
    const chunk = this.#buf.subarray(0, this.#len);
    this.#buf = Buffer.allocUnsafe(this.#chunk);
    this.#len = 0;
    this.#enqueue(chunk, drain);
  }

  #enqueue(chunk: Buffer, drain = true): void {
    this.#queue.push(chunk);
    this.#backlog += chunk.length;
    if (drain && this.#retry === undefined) this.#drain();
  }

  /** Writes queued chunks until done (true) or stdout is full (false: a retry is due). */
  #drain(): boolean {
    while (!this.#broken) {
      if (this.#queue.length === 0) {
        if (this.#dropped === 0) break;
        this.#reportDrops(); // the backlog is out: say what did not fit
      }
      const chunk = this.#queue[0];
      let n: number;
      try {
        n = fs.writeSync(this.#fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.#retry ??= setTimeout(this.#resume, EAGAIN_RETRY_MS);
          return false;
        }
        this.#broken = true; // EPIPE and the like: nobody reads stdout any more
        break;
      }
      this.#backlog -= n;
      if (n < chunk.length) this.#queue[0] = chunk.subarray(n);
      else this.#queue.shift();
    }
    if (this.#broken) {
      this.#queue.length = 0;
      this.#backlog = 0;
    }
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
    return true;
  }

  // Not unref'd: a stop awaiting flush() must not see the event loop go empty.
  #resume = (): void => {
    this.#retry = undefined;
    this.#drain();
  };

  #reportDrops(): void {
    const line = `{"level":40,"time":${Date.now()},"pid":${process.pid},"dropped":${this.#dropped},"msg":"log lines dropped: stdout did not keep up"}\n`;
    this.#dropped = 0;
    const note = Buffer.from(line);
    this.#queue.push(note);
    this.#backlog += note.length;
  }
}

function chunkSize(fd: number): number {
  try {
    const st = fs.fstatSync(fd);
    return st.isFIFO() || st.isSocket() ? PIPE_CHUNK : FILE_CHUNK;
  } catch {
    return PIPE_CHUNK;
  }
}
