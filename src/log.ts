import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types';
import type { RequestObserver, RequestRecord } from './proxy/exchange';
import { LogSink } from './log-sink';
import { AccessLineEncoder, accessLine, accessLineBound } from './access-log';

export type { Logger };

let stdout: LogSink | undefined;

/** stdout, shared by every logger of this process (see LogSink). */
function stdoutSink(): LogSink {
  if (stdout === undefined) {
    stdout = new LogSink(1);
    process.once('exit', flushLogsSync);
  }
  return stdout;
}

/** Resolves once every line logged so far has reached stdout (a clean stop awaits it before exiting). */
export function flushLogs(): Promise<void> {
  return stdout?.flush() ?? Promise.resolve();
}

/** Last resort on exit: write out whatever is still buffered, synchronously. */
export function flushLogsSync(): void {
  stdout?.flushSync();
}

/** JSON lines on stdout (SPEC section 1). */
export function createLogger(config: LogConfig, destination?: pino.DestinationStream): Logger {
  return pino({ level: config.level, base: { pid: process.pid } }, destination ?? stdoutSink());
}

/**
 * The access log: one line per request with the keys SPEC section 1 names,
 * in pino's format and through the logger's own stream, but written by hand:
 * pino's generic serialiser and a fresh object per request were a tenth of
 * the proxy's CPU (bench/RESULTS-session1.md). Into stdout's LogSink the line
 * is encoded straight into the chunk (src/access-log.ts); any other stream
 * (tests give their own) gets the same line as a string.
 */
export function accessLogObserver(logger: Logger): (r: RequestRecord) => void {
  const stream = (logger as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
  const sink = stream instanceof LogSink ? stream : null;
  const pid = process.pid;
  const encoder = new AccessLineEncoder(pid);
  let time = 0;
  // One encoding function for every line (no closure per request); `time` is the line's.
  const encode = (buf: Buffer, at: number, r: RequestRecord) => encoder.encode(buf, at, r, time);
  return (r) => {
    time = Date.now();
    if (sink !== null && sink.writeWith(accessLineBound(r), encode, r)) return;
    stream.write(accessLine(r, time, pid));
  };
}

/** Fans each finished request out to whoever listens (access log, metrics). */
export function combineObservers(
  onEnd: ((r: RequestRecord) => void)[],
  onRetry: ((pool: string) => void)[],
  onAttemptFailed: RequestObserver['onAttemptFailed'] = () => undefined,
): RequestObserver {
  return {
    onRequestEnd(r) {
      for (let i = 0; i < onEnd.length; i++) onEnd[i](r);
    },
    onRetry(pool) {
      for (let i = 0; i < onRetry.length; i++) onRetry[i](pool);
    },
    onAttemptFailed,
  };
}
