import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';

/**
 * Raw-socket helpers for hostile-input tests: send exact bytes, read back
 * exactly what comes, and parse HTTP/1.1 messages strictly (no leniency at
 * all), so that a test can tell what a peer really sent.
 */

export interface RawReply {
  /** Every byte the server sent. */
  readonly data: Buffer;
  /** The server closed (or reset) the connection before our deadline. */
  readonly closedByPeer: boolean;
  /** We gave up waiting and closed it ourselves. */
  readonly timedOut: boolean;
  /** Responses parsed out of `data`, in order (1xx included). */
  readonly responses: ParsedResponse[];
}

export interface ParsedResponse {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Buffer;
  /** A chunked body's trailer section (RFC 9112 §7.1.2), names lower-cased, as sent; [] for none or another framing. */
  readonly trailers: [string, string][];
}

export interface RawExchangeOptions {
  timeoutMs?: number;
  done?: (responses: ParsedResponse[]) => boolean;
  host?: string;
  /** Speak TLS (these options go to tls.connect) instead of plain TCP. */
  tls?: tls.ConnectionOptions;
  /**
   * After the last write: 'half' sends FIN and keeps reading (half-close);
   * 'abort' destroys the socket as soon as the bytes are handed to the kernel
   * (an early close) and resolves at once.
   */
  close?: 'half' | 'abort';
}

/**
 * Open a TCP (or TLS) connection, write `chunks` (one write each, in order), and read
 * until the peer closes, `done(responses)` says enough, or `timeoutMs` passes
 * (then the socket is destroyed and the reply is marked timedOut).
 */
export function rawExchange(port: number, chunks: (string | Buffer)[], options: RawExchangeOptions = {}): Promise<RawReply> {
  const timeoutMs = options.timeoutMs ?? 2000;
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let settled = false;
    const host = options.host ?? '127.0.0.1';
    const socket: net.Socket = options.tls !== undefined
      ? tls.connect({ ...options.tls, port, host })
      : net.connect(port, host);
    const finish = (closedByPeer: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(received);
      resolve({ data, closedByPeer, timedOut, responses: parseResponses(data).responses });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    socket.on(options.tls !== undefined ? 'secureConnect' : 'connect', () => {
      chunks.forEach((c, i) => {
        const last = i === chunks.length - 1;
        socket.write(typeof c === 'string' ? Buffer.from(c, 'latin1') : c, last && options.close === 'abort' ? () => finish(false, false) : undefined);
      });
      if (chunks.length === 0 && options.close === 'abort') finish(false, false);
      if (options.close === 'half') socket.end();
    });
    socket.on('data', (d: Buffer) => {
      received.push(d);
      if (options.done !== undefined && options.done(parseResponses(Buffer.concat(received)).responses)) finish(false, false);
    });
    socket.on('error', () => finish(true, false));
    socket.on('end', () => finish(true, false));
    socket.on('close', () => finish(true, false));
  });
}

function indexOfCrlfCrlf(buf: Buffer, from: number): number {
  return buf.indexOf('\r\n\r\n', from, 'latin1');
}

/** Responses in `data`; a truncated last one is left out (and reported as `rest`). */
export function parseResponses(data: Buffer): { responses: ParsedResponse[]; rest: number } {
  const responses: ParsedResponse[] = [];
  let pos = 0;
  while (pos < data.length) {
    const end = indexOfCrlfCrlf(data, pos);
    if (end < 0) break;
    const lines = data.toString('latin1', pos, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (m === null) break;
    const status = Number(m[1]);
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      headers.push([line.slice(0, c).toLowerCase(), line.slice(c + 1).trim()]);
    }
    let bodyStart = end + 4;
    if (status < 200 || status === 204 || status === 304) {
      responses.push({ status, headers, body: Buffer.alloc(0), trailers: [] });
      pos = bodyStart;
      continue;
    }
    const cl = headers.find(([n]) => n === 'content-length');
    const te = headers.find(([n]) => n === 'transfer-encoding');
    if (te !== undefined && /chunked/i.test(te[1])) {
      const chunks: Buffer[] = [];
      const trailers: [string, string][] = [];
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', p, 'latin1');
        if (lineEnd < 0) break;
        const size = parseInt(data.toString('latin1', p, lineEnd).split(';')[0]!, 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const trailerEnd = indexOfCrlfCrlf(data, lineEnd);
          if (trailerEnd === lineEnd) { p = lineEnd + 4; complete = true; }
          else if (trailerEnd > 0) {
            for (const line of data.toString('latin1', lineEnd + 2, trailerEnd).split('\r\n')) {
              const c = line.indexOf(':');
              trailers.push([line.slice(0, c).toLowerCase(), line.slice(c + 1).trim()]);
            }
            p = trailerEnd + 4;
            complete = true;
          }
          break;
        }
        if (lineEnd + 2 + size + 2 > data.length) break;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      responses.push({ status, headers, body: Buffer.concat(chunks), trailers });
      pos = p;
    } else if (cl !== undefined) {
      const n = Number(cl[1]);
      if (bodyStart + n > data.length) break;
      responses.push({ status, headers, body: data.subarray(bodyStart, bodyStart + n), trailers: [] });
      pos = bodyStart + n;
    } else {
      // Delimited by close: everything that is left.
      responses.push({ status, headers, body: data.subarray(bodyStart), trailers: [] });
      pos = data.length;
      bodyStart = pos;
    }
  }
  return { responses, rest: data.length - pos };
}

// ---------------------------------------------------------------------------
// Strict parsing of what a proxy forwarded (RFC 9112, no leniency).

export interface ForwardedRequest {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: [string, string][];
  /** How many Content-Length and Transfer-Encoding field lines it carried. */
  readonly contentLengths: string[];
  readonly transferEncodings: string[];
  /** Body bytes as framed (de-chunked when chunked). */
  readonly body: Buffer;
  /** False when the stream ended inside this message (an aborted upload). */
  readonly complete: boolean;
}

export interface ForwardedStream {
  readonly requests: ForwardedRequest[];
  /** Anything a strict HTTP/1.1 parser would refuse, with the offset. */
  readonly errors: string[];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// field-value: VCHAR / obs-text / SP / HTAB, no CTLs (RFC 9110 §5.5).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parse one connection's client-to-server bytes as a sequence of HTTP/1.1
 * requests, refusing everything RFC 9112 does not allow. A message cut off at
 * the end of the stream is returned with complete = false, not as an error.
 */
export function parseForwarded(data: Buffer): ForwardedStream {
  const requests: ForwardedRequest[] = [];
  const errors: string[] = [];
  let pos = 0;
  while (pos < data.length) {
    const end = indexOfCrlfCrlf(data, pos);
    if (end < 0) {
      requests.push(truncated(data.toString('latin1', pos)));
      break;
    }
    const head = data.toString('latin1', pos, end);
    if (/[\r\n]/.test(head.replace(/\r\n/g, ''))) errors.push(`@${pos}: bare CR or LF in the header block`);
    const lines = head.split('\r\n');
    const rl = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0]!);
    if (rl === null) {
      errors.push(`@${pos}: malformed request line ${JSON.stringify(lines[0])}`);
      break;
    }
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      const name = c < 0 ? '' : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (c < 0 || !TOKEN.test(name)) errors.push(`@${pos}: malformed field line ${JSON.stringify(line)}`);
      else if (!FIELD_VALUE.test(value)) errors.push(`@${pos}: control character in ${name}: ${JSON.stringify(value)}`);
      headers.push([name.toLowerCase(), value]);
    }
    const contentLengths = headers.filter(([n]) => n === 'content-length').map(([, v]) => v);
    const transferEncodings = headers.filter(([n]) => n === 'transfer-encoding').map(([, v]) => v);
    let p = end + 4;
    let body: Buffer = Buffer.alloc(0);
    let complete = true;
    if (transferEncodings.length > 0) {
      if (contentLengths.length > 0) errors.push(`@${pos}: both Content-Length and Transfer-Encoding`);
      if (transferEncodings.length !== 1 || transferEncodings[0]!.toLowerCase() !== 'chunked') {
        errors.push(`@${pos}: Transfer-Encoding other than exactly "chunked": ${JSON.stringify(transferEncodings)}`);
      }
      const chunks: Buffer[] = [];
      complete = false;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', p, 'latin1');
        if (lineEnd < 0) break;
        const sizeLine = data.toString('latin1', p, lineEnd);
        const m = /^([0-9A-Fa-f]{1,16})(;[^\r\n]*)?$/.exec(sizeLine);
        if (m === null) {
          errors.push(`@${p}: malformed chunk-size line ${JSON.stringify(sizeLine)}`);
          break;
        }
        const size = parseInt(m[1]!, 16);
        if (size === 0) {
          // Trailer section, then CRLF.
          const trailerEnd = data.indexOf('\r\n\r\n', lineEnd, 'latin1');
          if (trailerEnd === lineEnd) { p = lineEnd + 4; complete = true; }
          else if (trailerEnd > 0) { p = trailerEnd + 4; complete = true; }
          else p = data.length;
          break;
        }
        if (lineEnd + 2 + size + 2 > data.length) {
          chunks.push(data.subarray(lineEnd + 2));
          p = data.length;
          break;
        }
        if (data.toString('latin1', lineEnd + 2 + size, lineEnd + 4 + size) !== '\r\n') {
          errors.push(`@${lineEnd + 2 + size}: chunk data not followed by CRLF`);
          p = data.length;
          break;
        }
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 4 + size;
      }
      body = Buffer.concat(chunks);
    } else if (contentLengths.length > 0) {
      if (contentLengths.length !== 1 || !/^\d+$/.test(contentLengths[0]!)) {
        errors.push(`@${pos}: Content-Length not a single decimal number: ${JSON.stringify(contentLengths)}`);
        break;
      }
      const n = Number(contentLengths[0]);
      if (p + n > data.length) {
        body = data.subarray(p);
        complete = false;
        p = data.length;
      } else {
        body = data.subarray(p, p + n);
        p += n;
      }
    }
    requests.push({ method: rl[1]!, target: rl[2]!, version: rl[3]!, headers, contentLengths, transferEncodings, body, complete });
    pos = p;
  }
  return { requests, errors };
}

function truncated(head: string): ForwardedRequest {
  const rl = /^(\S+) (\S+) (\S+)/.exec(head);
  return {
    method: rl?.[1] ?? '', target: rl?.[2] ?? '', version: rl?.[3] ?? '', headers: [],
    contentLengths: [], transferEncodings: [], body: Buffer.alloc(0), complete: false,
  };
}

// ---------------------------------------------------------------------------
// A recording TCP tap: clients connect to it, it pipes to `targetPort` and
// keeps every byte sent towards the target, per connection.

export interface Tap {
  readonly port: number;
  /** Client-to-target bytes, one entry per connection, in accept order. */
  readonly connections: Buffer[][];
  /** Connections ever accepted. */
  accepted(): number;
  close(): Promise<void>;
}

export async function startTap(targetPort: number): Promise<Tap> {
  const connections: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const record: Buffer[] = [];
    connections.push(record);
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      record.push(d);
      upstream.write(d);
    });
    upstream.pipe(client);
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', () => {
        sockets.delete(s);
        close();
      });
    }
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    accepted: () => connections.length,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A TCP listener that only counts connections (a decoy "other host"). */
export async function startDecoy(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\ndecoy');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * A loopback listener that never accepts: a child process listens with a
 * backlog of 1 and then blocks its event loop (for `holdMs`), and the accept
 * queue is filled with connections of our own. A further SYN is dropped by
 * the kernel, so a connect to it stays pending (the only way to get a
 * connect timeout on loopback). `close` ends the child and the fillers.
 */
export async function startUnaccepting(holdMs = 60_000): Promise<{ port: number; close: () => Promise<void> }> {
  const script = `
    const s = require('net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(s.address().port + '\\n', () => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${holdMs});
        process.exit(0);
      });
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const fillers: net.Socket[] = [];
  const close = async () => {
    for (const f of fillers) f.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      child.once('error', reject);
    });
    // Fill the accept queue: connect until one stays pending (the queue is full).
    for (let i = 0; i < 16; i++) {
      const f = net.connect(port, '127.0.0.1');
      f.on('error', () => undefined);
      fillers.push(f);
      const connected = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 250);
        f.once('connect', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      if (!connected) return { port, close };
    }
  } catch (err) {
    await close();
    throw err;
  }
  await close();
  throw new Error('the accept queue never filled');
}

/**
 * A TCP listener that accepts and never sends a byte: a TLS client's
 * handshake never completes (a connect timeout for https:// backends).
 */
export async function startSilent(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
