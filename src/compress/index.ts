/**
 * A route's `compress` (SPEC 8.5): the response the exchange writes to is
 * wrapped only for a request whose Accept-Encoding names one of the route's
 * algorithms, and the wrapper decides at the response head whether this
 * answer is compressed. Routes without `compress` never see this module.
 */
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { CompressConfig, CompressionAlgorithm } from '../config/types';
import type { ProxyRequest, ProxyResponse } from '../proxy/message';
import { forwardResponseHeaders } from '../proxy/headers';
import { sendTrailers } from '../proxy/trailers';
import { Negotiator } from './negotiate';

/** Brotli's quality for a stream: 4 compresses about as well as gzip -6 at its speed; 11 (the default) costs a hundred times more. */
const BROTLI_QUALITY = 4;
/** Brotli's window (2^20 = 1 MiB) rather than its default 4 MiB: memory per response stays bounded. */
const BROTLI_WINDOW = 20;
/** zlib's own default level, what Traefik and most proxies use. */
const GZIP_LEVEL = 6;

/**
 * An answer with a Content-Length up to this is gathered and compressed in
 * one synchronous call, head and body then written at once: node:zlib's
 * streams run each piece on the thread pool, which cost more than the
 * compression itself for a small body (a 20 kB JSON answer: about twice the
 * CPU). Bounded, so memory per response stays flat; larger and unknown
 * lengths stream.
 */
const GATHER_MAX = 64 * 1024;

type Factory = (sizeHint: number) => Transform;
type OneShot = (body: Buffer) => Buffer;

const zstd = zlib as unknown as {
  createZstdCompress?: (o: object) => Transform;
  zstdCompressSync?: (b: Buffer, o: object) => Buffer;
  constants: Record<string, number>;
};

const brotliOptions = (sizeHint: number) => ({
  params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
    [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW,
    ...(sizeHint > 0 ? { [zlib.constants.BROTLI_PARAM_SIZE_HINT]: sizeHint } : {}),
  },
});

const FACTORIES: Record<CompressionAlgorithm, Factory> = {
  gzip: () => zlib.createGzip({ level: GZIP_LEVEL }),
  br: (sizeHint) => zlib.createBrotliCompress(brotliOptions(sizeHint)),
  // Only reachable where validation let zstd through: this Node has it.
  zstd: () => zstd.createZstdCompress!({}),
};

const ONE_SHOT: Record<CompressionAlgorithm, OneShot> = {
  gzip: (body) => zlib.gzipSync(body, { level: GZIP_LEVEL }),
  br: (body) => zlib.brotliCompressSync(body, brotliOptions(body.length)),
  zstd: (body) => zstd.zstdCompressSync!(body, {}),
};

/** What flush() is asked for: everything so far goes out, the compression state stays (no full reset). */
const FLUSH_KIND: Record<CompressionAlgorithm, number> = {
  gzip: zlib.constants.Z_SYNC_FLUSH,
  br: zlib.constants.BROTLI_OPERATION_FLUSH,
  zstd: zstd.constants.ZSTD_e_flush ?? 1,
};

export class Compression {
  readonly #negotiator: Negotiator;
  readonly #minSize: number;
  readonly #exact: ReadonlySet<string>;
  /** "text" for "text/*". */
  readonly #major: ReadonlySet<string>;

  constructor(config: CompressConfig) {
    this.#negotiator = new Negotiator(config.algorithms);
    this.#minSize = config.minSize;
    this.#exact = new Set(config.types.filter((t) => !t.endsWith('/*')));
    this.#major = new Set(config.types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -2)));
  }

  /** The response for the exchange to write to: `res` itself when this request cannot get a compressed answer. */
  wrap(req: ProxyRequest, res: ProxyResponse): ProxyResponse {
    if (req.method === 'HEAD') return res;
    const algorithm = this.#negotiator.choose(acceptEncoding(req));
    return algorithm === undefined ? res : new CompressingResponse(res, algorithm, this);
  }

  /**
   * Whether an answer with these headers is compressed; -1 if not, else its
   * Content-Length (0 when unknown). Never: 1xx, 204, 206, 304, a
   * Content-Encoding already, a type not listed, a length below minSize,
   * Cache-Control: no-transform (RFC 9111 §5.2.2.6).
   */
  eligible(status: number, headers: readonly string[]): number {
    if (status < 200 || status === 204 || status === 206 || status === 304) return -1;
    let type: string | undefined;
    let length = 0;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      switch (name.length) {
        case 12:
          if (name.toLowerCase() === 'content-type') type = headers[i + 1];
          break;
        case 13:
          if (name.toLowerCase() === 'cache-control' && /(?:^|[\s,])no-transform(?:$|[\s,])/i.test(headers[i + 1]!)) return -1;
          if (name.toLowerCase() === 'content-range') return -1;
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            length = Number(headers[i + 1]);
            if (!(length >= this.#minSize)) return -1;
          }
          break;
        case 16:
          if (name.toLowerCase() === 'content-encoding' && headers[i + 1]!.trim().toLowerCase() !== 'identity') return -1;
          break;
      }
    }
    return type !== undefined && this.#typeMatches(type) ? length : -1;
  }

  #typeMatches(contentType: string): boolean {
    const semi = contentType.indexOf(';');
    const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (this.#exact.has(media)) return true;
    const slash = media.indexOf('/');
    return slash > 0 && this.#major.has(media.slice(0, slash));
  }
}

function acceptEncoding(req: ProxyRequest): string | undefined {
  const v = req.headers['accept-encoding'];
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * The client's response behind a compressor, chosen at the head: an answer
 * that is not eligible passes straight through (the backend head's fast path
 * included). A compressed one streams through node:zlib with backpressure
 * both ways (memory stays at the streams' buffers), and is flushed whenever
 * the backend pauses (after the I/O turn that brought data), so server-sent
 * events arrive event by event.
 */
class CompressingResponse implements ProxyResponse {
  readonly #res: ProxyResponse;
  readonly #algorithm: CompressionAlgorithm;
  readonly #compression: Compression;
  #stream: Transform | null = null;
  /** A small answer of known length, gathered (see GATHER_MAX): its head waits for the compressed length. */
  #gathered: Buffer[] | null = null;
  #head: { status: number; headers: string[] } | null = null;
  #ended = false;
  #flushing = false;

  constructor(res: ProxyResponse, algorithm: CompressionAlgorithm, compression: Compression) {
    this.#res = res;
    this.#algorithm = algorithm;
    this.#compression = compression;
  }

  get headersSent(): boolean {
    return this.#head !== null || this.#res.headersSent;
  }

  get writableFinished(): boolean {
    return this.#res.writableFinished;
  }

  get destroyed(): boolean {
    return this.#res.destroyed;
  }

  /**
   * `drop` and `extra`: the route's responseHeaders (they act before
   * compress, SPEC 8.1), so eligibility is decided on the head as it would
   * go out. Not eligible: the client's own fast path, untouched.
   */
  writeBackendHead(status: number, raw: readonly string[], extra: readonly string[] | undefined, drop?: ReadonlySet<string>): boolean {
    const plain = extra === undefined && drop === undefined;
    const headers = plain ? null : withRules(forwardResponseHeaders(raw), extra, drop);
    if (this.#compression.eligible(status, headers ?? raw) === -1) return this.#res.writeBackendHead?.(status, raw, extra, drop) ?? false;
    this.writeHead(status, headers ?? forwardResponseHeaders(raw));
    return true;
  }

  writeHead(status: number, headers: string[]): unknown {
    const length = this.#compression.eligible(status, headers);
    if (length === -1) return this.#res.writeHead(status, headers);
    if (length > 0 && length <= GATHER_MAX) {
      this.#gathered = [];
      this.#head = { status, headers: compressedHeaders(headers, this.#algorithm) };
      return this;
    }
    this.#start(length);
    return this.#res.writeHead(status, compressedHeaders(headers, this.#algorithm));
  }

  #start(sizeHint: number): void {
    const stream = FACTORIES[this.#algorithm](sizeHint);
    this.#stream = stream;
    const res = this.#res;
    const resume = () => stream.resume();
    stream.on('data', (out: Buffer) => {
      if (!res.write(out)) {
        stream.pause();
        res.once('drain', resume);
      }
    });
    stream.once('end', () => res.end());
    stream.once('error', (err) => res.destroy(err));
  }

  write(chunk: Buffer): boolean {
    const stream = this.#stream;
    if (stream === null) {
      if (this.#gathered === null) return this.#res.write(chunk);
      this.#gathered.push(chunk); // bounded by the Content-Length (GATHER_MAX)
      return true;
    }
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(this.#flush);
    }
    return stream.write(chunk);
  }

  /** After the I/O turn that wrote: what is compressed so far goes out (an event of a stream must not wait for the next). */
  #flush = (): void => {
    this.#flushing = false;
    if (!this.#ended && this.#stream !== null && !this.#stream.destroyed) {
      (this.#stream as unknown as { flush(kind: number): void }).flush(FLUSH_KIND[this.#algorithm]);
    }
  };

  end(data?: string): unknown {
    const stream = this.#stream;
    if (stream === null) {
      if (this.#gathered === null) return this.#res.end(data);
      if (data !== undefined) this.#gathered.push(Buffer.from(data));
      const body = ONE_SHOT[this.#algorithm](Buffer.concat(this.#gathered));
      this.#gathered = null;
      // No Content-Length even now that it is known (SPEC 8.5 drops it): the head goes out with the body, in one write.
      const head = this.#head!;
      this.#res.writeHead(head.status, head.headers);
      this.#res.write(body);
      return this.#res.end();
    }
    this.#ended = true;
    if (data !== undefined) stream.end(data);
    else stream.end();
    return this;
  }

  /** The backend's trailers go to the client's response, which sends them when the compressed body ends. */
  writeTrailers(fields: readonly string[]): void {
    sendTrailers(this.#res, fields);
  }

  destroy(err?: Error): unknown {
    this.#gathered = null;
    this.#stream?.destroy();
    return this.#res.destroy(err);
  }

  on(event: 'close', listener: () => void): unknown {
    return this.#res.on(event, listener);
  }

  once(event: 'finish' | 'drain', listener: () => void): unknown {
    if (event === 'drain' && this.#stream !== null) return this.#stream.once('drain', listener);
    return this.#res.once(event, listener);
  }
}

/** A filtered head with a route's responseHeaders: `drop` (lower-cased names) removed, `extra` appended. */
function withRules(headers: string[], extra: readonly string[] | undefined, drop: ReadonlySet<string> | undefined): string[] {
  const out = drop === undefined || drop.size === 0 ? headers : headers.filter((_, i, all) => !drop.has(all[i - (i % 2)]!.toLowerCase()));
  if (extra !== undefined) out.push(...extra);
  return out;
}

/** The head of a compressed answer: no Content-Length, the coding named, Vary extended, a strong ETag made weak (the bytes differ). */
function compressedHeaders(headers: readonly string[], algorithm: CompressionAlgorithm): string[] {
  const out: string[] = [];
  let varies = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const lower = name.toLowerCase();
    let value = headers[i + 1]!;
    if (lower === 'content-length' || lower === 'content-encoding') continue;
    if (lower === 'vary' && /(?:^|,)\s*(?:\*|accept-encoding)\s*(?:$|,)/i.test(value)) varies = true;
    if (lower === 'etag' && value.startsWith('"')) value = `W/${value}`;
    out.push(name, value);
  }
  out.push('content-encoding', algorithm);
  if (!varies) out.push('vary', 'Accept-Encoding');
  return out;
}
