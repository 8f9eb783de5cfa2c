import type { Logger } from './log';

/**
 * The seat belt of issue 20: an exception thrown while one request or one
 * connection is handled is a bug in Fulcrum, but it must cost that
 * connection only, never the process. The code that catches one (the
 * listener's request handler, the HTTP/1.1 connection and client callbacks,
 * and the process itself as the last resort) reports it here: one `error`
 * line with the stack and `msg: "internal error"`, and one more in
 * `fulcrum_internal_errors_total`, which the end-to-end suites expect to stay 0.
 *
 * The count is per process (what a bug costs is per process); every logger
 * that has subscribed gets the line.
 */

let count = 0;
const loggers = new Set<Logger>();

/** Internal errors caught in this process so far. */
export function internalErrorCount(): number {
  return count;
}

export function reportInternalError(err: unknown, where: string): void {
  count++;
  const error = err instanceof Error ? err : new Error(String(err));
  if (loggers.size === 0) {
    process.stderr.write(`fulcrum: internal error (${where}): ${error.stack ?? error.message}\n`);
    return;
  }
  for (const logger of loggers) logger.error({ err: error, where }, 'internal error');
}

/** Lines for `logger` from now on; returns the function that stops them. */
export function logInternalErrors(logger: Logger): () => void {
  loggers.add(logger);
  return () => loggers.delete(logger);
}

let installed = false;

/**
 * The last resort: an exception no connection caught (an 'error' event
 * nobody listens to, a throw in a timer) is reported and the process goes on
 * serving every other connection, as HAProxy's one bad session never stops
 * the others. Only for the real process (the CLI and its workers), never in
 * a library user's or a test's process.
 */
export function installProcessSeatBelt(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', (err) => reportInternalError(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => reportInternalError(err, 'unhandled rejection'));
}
