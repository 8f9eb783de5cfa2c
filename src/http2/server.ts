import type { Http2Session, Settings } from 'node:http2';

/**
 * What Fulcrum's HTTP/2 listeners (TLS with ALPN h2, and cleartext with
 * prior knowledge) set on every client session.
 *
 * Flow control: with the RFC's 64 KiB windows a client may have only 64 KiB
 * of an upload in flight, then waits a round trip (through our event loop)
 * for a WINDOW_UPDATE; a 1 GiB upload took 2.4 times as long as over
 * HTTP/1.1 on the same port. A stream may have 1 MiB unread and a session 16
 * MiB: an upload runs at the pace of the backend. Backpressure still holds:
 * a stream whose reader is paused (the backend is slow) consumes nothing, so
 * its window is not opened again and the client stops at 1 MiB.
 */
export const STREAM_WINDOW = 1 << 20;
export const SESSION_WINDOW = 16 << 20;

export const HTTP2_SETTINGS: Settings = {
  initialWindowSize: STREAM_WINDOW,
  // A frame of 64 KiB rather than 16 KiB: a quarter of the frames (and of their per-frame work) on a big body.
  maxFrameSize: 1 << 16,
};

/**
 * A new client session: the larger connection window, and `headersTimeoutMs`
 * to open its first stream (a client that connects and sends no request is
 * closed, as HTTP/1.1's headersTimeout does).
 */
export function tuneSession(session: Http2Session, headersTimeoutMs: number): void {
  const widen = () => {
    try {
      session.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // The session is already gone.
    }
  };
  // A TLS session's socket is connected when the session is made; h2c's too.
  widen();
  if (headersTimeoutMs <= 0) return;
  const timer = setTimeout(() => session.destroy(), headersTimeoutMs);
  timer.unref();
  session.once('stream', () => clearTimeout(timer));
  session.once('close', () => clearTimeout(timer));
}
