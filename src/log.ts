import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types';
import type { RequestObserver, RequestRecord } from './proxy/exchange';

export type { Logger };

let stdout: ReturnType<typeof pino.destination> | undefined;

/** Lines are held until this much is buffered... */
const LOG_BUFFER_BYTES = 8 * 1024; // sonic-boom keeps it below its 16 KiB maxWrite
/** ...or this long has passed (nginx's `access_log ... buffer= flush=` idea). */
const LOG_FLUSH_MS = 250;

/**
 * stdout, written asynchronously in batches: up to 8 KiB or 250 ms of lines
 * per write(2), instead of one write per request (the profile had sonic-boom's
 * per-line writes at 8% of the proxy's CPU). `flushLogsSync` (also run on
 * exit) loses nothing on a clean stop.
 */
function stdoutDestination(): ReturnType<typeof pino.destination> {
  if (stdout === undefined) {
    const dest = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
    stdout = dest;
    setInterval(() => {
      try {
        dest.flush();
      } catch {
        // a write is in flight or stdout is closed: the next tick tries again
      }
    }, LOG_FLUSH_MS).unref();
    process.once('exit', flushLogsSync);
  }
  return stdout;
}

/** Write out whatever the stdout logger still holds (before process.exit). */
export function flushLogsSync(): void {
  try {
    stdout?.flushSync();
  } catch {
    // stdout closed (EPIPE) or nothing to flush: nothing more we can do.
  }
}

/** JSON lines on stdout (SPEC section 1). */
export function createLogger(config: LogConfig, destination?: pino.DestinationStream): Logger {
  return pino({ level: config.level, base: { pid: process.pid } }, destination ?? stdoutDestination());
}

/**
 * The access log: one line per request with the keys SPEC section 1 names,
 * in pino's format and through the logger's own stream, but written by hand:
 * pino's generic serialiser and a fresh object per request were a tenth of
 * the proxy's CPU (bench/RESULTS-session1.md). Listener, pool and backend
 * names and methods are validated token characters, addresses are
 * digits/hex/colons/dots; only the URL, the request id and errors can hold
 * anything, and go through JSON.stringify.
 */
export function accessLogObserver(logger: Logger): (r: RequestRecord) => void {
  const stream = (logger as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
  const head = `{"level":30,"time":`;
  const pid = `,"pid":${process.pid}`;
  return (r) => {
    if (!logger.isLevelEnabled('info')) return;
    const error = r.error === undefined ? '' : `,"error":${JSON.stringify(r.error)}`;
    stream.write(`${head}${Date.now()}${pid},"listener":"${r.listener}","method":"${r.method}","url":${JSON.stringify(r.url)},"status":${r.status},"pool":"${r.pool}","backend":"${r.backend}","durationMs":${Math.round(r.durationMs * 1000) / 1000},"bytes":${r.bytes},"requestId":${JSON.stringify(r.requestId)},"remoteAddress":"${r.remoteAddress}","retries":${r.retries}${error},"msg":"request"}\n`);
  };
}

/** Fans each finished request out to whoever listens (access log, metrics). */
export function combineObservers(onEnd: ((r: RequestRecord) => void)[], onRetry: ((pool: string) => void)[]): RequestObserver {
  return {
    onRequestEnd(r) {
      for (let i = 0; i < onEnd.length; i++) onEnd[i](r);
    },
    onRetry(pool) {
      for (let i = 0; i < onRetry.length; i++) onRetry[i](pool);
    },
  };
}
