import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types';
import type { RequestObserver, RequestRecord } from './proxy/exchange';
import { LogSink } from './log-sink';

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
    const error = r.error === undefined ? '' : `,"error":${JSON.stringify(r.error)}`;
    // With tracing only: without it the line is byte for byte what it was.
    const trace = r.trace === undefined ? '' : `,"traceId":"${r.trace.traceId}"`;
    stream.write(`${head}${Date.now()}${pid},"listener":"${r.listener}","method":"${r.method}","url":${JSON.stringify(r.url)},"status":${r.status},"pool":"${r.pool}","backend":"${r.backend}","durationMs":${Math.round(r.durationMs * 1000) / 1000},"bytes":${r.bytes},"requestId":${JSON.stringify(r.requestId)}${trace},"remoteAddress":"${r.remoteAddress}","retries":${r.retries},"grpcStatus":"${r.grpcStatus ?? ''}"${error},"msg":"request"}\n`);
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
