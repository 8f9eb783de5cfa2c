/**
 * Hostile input on the listener: request-smuggling and malformed-request
 * vectors sent over raw sockets, the absolute-form request target, CONNECT,
 * h2c, and the admin API's paths through a listener.
 *
 * Topology: raw client → Fulcrum listener → recording TCP tap → node:http
 * backend. The backend's log says what Node made of what Fulcrum forwarded; the
 * tap's bytes are parsed again by a strict RFC 9112 parser (tests/helpers/raw),
 * so a second request hidden in a body, or a message with two framings, shows
 * up even if the backend itself would have been lenient about it.
 */
import http from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { parseForwarded, rawExchange, startDecoy, startTap, type ForwardedRequest, type RawReply, type Tap } from '../helpers/raw';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  bytes: number;
  /** The backend read the whole body ('end'). */
  completed: boolean;
  /** The request broke off before its end. */
  aborted: boolean;
}

const HOST = 'Host: fulcrum.test\r\n';
const smuggled = (p: string): string => `GET ${p}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`;
const hex = (n: number): string => n.toString(16);

interface Ctx {
  /** A listening TCP port that is not a backend (a "foreign host"). */
  readonly decoyPort: number;
}

interface Vector {
  readonly name: string;
  /** Where the vector comes from. */
  readonly source: string;
  /** The first request's bytes; `p` is this vector's unique path prefix. */
  readonly build: (p: string, ctx: Ctx) => string;
  /** Acceptable statuses for the refused request (default: 400 only). */
  readonly allowed?: readonly number[];
  /**
   * 'head': refused while parsing the head; the backend must see nothing of it.
   * 'body': the framing error is in the (chunked) body, after the head was
   * valid; the backend may have seen the start of the request but never a
   * complete one.
   */
  readonly stage?: 'head' | 'body';
  /**
   * The refusal leaves the framing intact (e.g. 417), so the connection may
   * stay open and the follow-up may be served.
   */
  readonly keepsConnection?: boolean;
  /**
   * Set where RFC 9110/9112 let a server accept the message (after normalising
   * it): then either it is refused as above, or exactly these requests (and
   * bodies) reach the backend, re-framed, and nothing else does.
   */
  readonly exact?: (p: string) => { target: string; body: string }[];
}

/** `Content-Length` for a string body (latin1: one byte per char). */
const len = (s: string): number => Buffer.byteLength(s, 'latin1');

/** A CL.TE-style request: `gadget` header lines plus a CL covering the whole body; body = last chunk + smuggled request. */
function clte(p: string, gadget: string, opts: { cl?: boolean } = {}): string {
  const body = `0\r\n\r\n${smuggled(p)}`;
  const cl = opts.cl === false ? '' : `Content-Length: ${len(body)}\r\n`;
  return `POST ${p}/attack HTTP/1.1\r\n${HOST}${gadget}${cl}\r\n${body}`;
}

/** defparam smuggler's template: the gadget right after the request line, then Host, then Content-Length. */
function smugglerTemplate(p: string, gadget: string): string {
  const body = `0\r\n\r\n${smuggled(p)}`;
  return `POST ${p}/attack HTTP/1.1\r\n${gadget}\r\n${HOST}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${len(body)}\r\n\r\n${body}`;
}

/** A chunked request whose body starts with `chunkText` and hides the smuggled request behind it. */
function chunkedBody(p: string, chunkText: string): string {
  return `POST ${p}/attack HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${chunkText}`;
}

/** CL-framed request with the smuggled request as body and a hostile Content-Length line. */
function clBody(p: string, clLines: (n: number) => string): string {
  const body = `hello${smuggled(p)}`;
  return `POST ${p}/attack HTTP/1.1\r\n${HOST}${clLines(len(body))}\r\n${body}`;
}

const VECTORS: Vector[] = [
  // ---- Content-Length vs Transfer-Encoding ---------------------------------
  {
    name: 'CL.TE: Content-Length and Transfer-Encoding: chunked together',
    source: 'PortSwigger, HTTP Desync Attacks: Request Smuggling Reborn (Kettle, 2019): CL.TE',
    build: (p) => clte(p, 'Transfer-Encoding: chunked\r\n'),
  },
  {
    name: 'TE.CL: chunked body whose Content-Length covers only the chunk-size line',
    source: 'PortSwigger, HTTP Desync Attacks (2019): TE.CL',
    build: (p) => {
      const chunk = smuggled(p);
      const sizeLine = `${hex(len(chunk))}\r\n`;
      return `POST ${p}/attack HTTP/1.1\r\n${HOST}Content-Length: ${len(sizeLine)}\r\nTransfer-Encoding: chunked\r\n\r\n${sizeLine}${chunk}\r\n0\r\n\r\n`;
    },
  },
  {
    name: 'TE.TE: two Transfer-Encoding lines (chunked, then x) with Content-Length',
    source: 'PortSwigger, HTTP Desync Attacks (2019): TE.TE obfuscation "Transfer-Encoding: chunked / Transfer-Encoding: x"',
    build: (p) => clte(p, 'Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n'),
  },
  {
    name: 'Transfer-Encoding: xchunked with Content-Length',
    source: 'PortSwigger, HTTP Desync Attacks (2019): TE.TE obfuscation "Transfer-Encoding: xchunked"',
    build: (p) => clte(p, 'Transfer-Encoding: xchunked\r\n'),
  },
  {
    name: 'nameprefix1: " Transfer-Encoding: chunked" (whitespace before the first field line)',
    source: 'defparam smuggler (configs/exhaustive.py): nameprefix1',
    build: (p) => smugglerTemplate(p, ' Transfer-Encoding: chunked'),
  },
  {
    name: 'tabprefix1: "Transfer-Encoding:\\tchunked" with Content-Length',
    source: 'defparam smuggler: tabprefix1',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding:\tchunked'),
  },
  {
    name: 'tabprefix2: "Transfer-Encoding\\t:\\tchunked" (tab before colon)',
    source: 'defparam smuggler: tabprefix2',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding\t:\tchunked'),
  },
  {
    name: 'space1: "Transfer-Encoding : chunked" (space before colon)',
    source: 'defparam smuggler: space1; RFC 9112 §5.1 (MUST reject whitespace before the colon)',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding : chunked'),
  },
  {
    name: 'vertprefix1: vertical tab before the value "Transfer-Encoding:\\x0bchunked"',
    source: 'defparam smuggler: vertprefix1 (midspace-0b)',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding:\x0bchunked'),
  },
  {
    name: 'postspace-0b: vertical tab in the field name "Transfer-Encoding\\x0b: chunked"',
    source: 'defparam smuggler: postspace-0b',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding\x0b: chunked'),
  },
  {
    name: 'linewrapped1: "Transfer-Encoding:\\n chunked" (bare-LF obs-fold)',
    source: 'defparam smuggler: linewrapped1',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding:\n chunked'),
  },
  {
    name: '0dsuffix: "Transfer-Encoding: chunked\\r" (stray CR before CRLF)',
    source: 'defparam smuggler: 0dsuffix',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding: chunked\r'),
  },
  {
    name: '0dspam: CR inside the field name "Transfer\\r-Encoding: chunked"',
    source: 'defparam smuggler: 0dspam',
    build: (p) => smugglerTemplate(p, 'Transfer\r-Encoding: chunked'),
  },
  {
    name: 'x-nout: bare LF splits a field line "X:X\\nTransfer-Encoding: chunked"',
    source: 'defparam smuggler: x-nout',
    build: (p) => smugglerTemplate(p, 'X:X\nTransfer-Encoding: chunked'),
  },
  {
    name: 'spaceFF: "Transfer-Encoding:\\xffchunked" with Content-Length',
    source: 'defparam smuggler: spaceFF (midspace-ff)',
    build: (p) => smugglerTemplate(p, 'Transfer-Encoding:\xffchunked'),
  },
  {
    name: 'cowComma: unknown transfer coding before chunked, no Content-Length',
    source: 'defparam smuggler: cowComma ("Transfer-Encoding: cow, chunked"); RFC 9112 §6.1 (unknown coding)',
    build: (p) => clte(p, 'Transfer-Encoding: cow, chunked\r\n', { cl: false }),
    allowed: [400, 501],
  },
  {
    name: 'Transfer-Encoding: chunked, identity (chunked is not the final coding)',
    source: 'RFC 9112 §6.3 item 4; PortSwigger (2019) TE obfuscation via "identity"',
    build: (p) => clte(p, 'Transfer-Encoding: chunked, identity\r\n', { cl: false }),
  },
  {
    name: 'Transfer-Encoding: identity alone (obsolete coding, body must not be read as empty)',
    source: 'RFC 9112 §6.3 item 4 (identity was removed in RFC 7230); PortSwigger (2019) TE obfuscation',
    build: (p) => `POST ${p}/attack HTTP/1.1\r\n${HOST}Transfer-Encoding: identity\r\n\r\n${smuggled(p)}`,
  },
  {
    name: 'Transfer-Encoding: ",chunked" with Content-Length',
    source: 'http-garden README: Gunicorn bug 6 / Azure CDN bug 1 / OpenLiteSpeed bug 13 (",chunked")',
    build: (p) => {
      const body = `0\r\n\r\n${smuggled(p)}`;
      return `POST ${p}/attack HTTP/1.1\r\n${HOST}Transfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n${body}`;
    },
  },
  {
    name: 'Transfer-Encoding: chunked\\x00 (NUL in the coding)',
    source: 'Issue corpus "chunked\\x00"; http-garden README: OpenLiteSpeed bug 9 (NUL truncation)',
    build: (p) => clte(p, 'Transfer-Encoding: chunked\x00\r\n', { cl: false }),
  },
  {
    name: 'Transfer-Encoding in an HTTP/1.0 request',
    source: 'RFC 9112 §6.1 (HTTP/1.0 + Transfer-Encoding: framing MUST be treated as faulty)',
    build: (p) => `POST ${p}/attack HTTP/1.0\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled(p)}`,
  },
  // ---- Content-Length ------------------------------------------------------
  {
    name: 'duplicate differing Content-Length lines',
    source: 'RFC 9112 §6.3 item 5; PortSwigger Web Security Academy: CL.CL',
    build: (p) => clBody(p, (n) => `Content-Length: 5\r\nContent-Length: ${n}\r\n`),
  },
  {
    name: 'Content-Length list with differing values "5, N"',
    source: 'RFC 9110 §8.6 (differing list members MUST be rejected)',
    build: (p) => clBody(p, (n) => `Content-Length: 5, ${n}\r\n`),
  },
  {
    name: 'Content-Length: +5',
    source: 'http-garden README: CPython http.server bug 1, Gunicorn bug 1, OpenLiteSpeed bug 7 ("+" prefix)',
    build: (p) => clBody(p, () => 'Content-Length: +5\r\n'),
  },
  {
    name: 'Content-Length: 0x5',
    source: 'http-garden README: Akamai bug 1 ("0x"-prefixed Content-Length)',
    build: (p) => clBody(p, () => 'Content-Length: 0x5\r\n'),
  },
  {
    name: 'empty Content-Length',
    source: 'http-garden README: Apache Traffic Server bug 2, Go net/http bug 1, OpenLiteSpeed bug 1',
    build: (p) => `POST ${p}/attack HTTP/1.1\r\n${HOST}Content-Length: \r\n\r\n${smuggled(p)}`,
  },
  {
    name: 'Content-Length with whitespace before the colon',
    source: 'http-garden README: aiohttp bug 3, OpenLiteSpeed bug 4 ("Content-Length : N")',
    build: (p) => clBody(p, (n) => `Content-Length : ${n}\r\n`),
  },
  // ---- chunked body framing --------------------------------------------------
  {
    name: 'chunk-size with 0x prefix',
    source: 'http-garden README: Gunicorn bug 4, OpenLiteSpeed bug 8 ("0x"-prefixed chunk-size)',
    build: (p) => chunkedBody(p, `0x${hex(len(smuggled(p)))}\r\n${smuggled(p)}\r\n0\r\n\r\n`),
    stage: 'body',
  },
  {
    name: 'negative chunk-size "-0x0"',
    source: 'http-garden README: OpenBSD relayd bug 3',
    build: (p) => chunkedBody(p, `-0x0\r\n\r\n${smuggled(p)}`),
    stage: 'body',
  },
  {
    name: 'chunk-size overflowing 64 bits',
    source: 'RFC 9112 §7.1 (chunk-size must be representable); http-garden chunk-size class (ATS bug 5)',
    build: (p) => chunkedBody(p, `1${'0'.repeat(16)}5\r\nhello\r\n0\r\n\r\n${smuggled(p)}`),
    stage: 'body',
  },
  {
    name: 'bare CR in chunk-extension whitespace "5\\r\\r;ABCD"',
    source: 'http-garden README: Node.js bug 2 (CVE-2023-30589 class), Akamai bug 3, Google Cloud bug 2',
    build: (p) => chunkedBody(p, `5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n${smuggled(p)}`),
    stage: 'body',
  },
  {
    name: 'chunk-extension abuse: one 20 KB chunk extension',
    source: 'Node.js CVE-2024-22019 (unbounded chunk extensions); RFC 9112 §7.1.1',
    build: (p) => chunkedBody(p, `1;${'a'.repeat(20000)}\r\nZ\r\n0\r\n\r\n${smuggled(p)}`),
    allowed: [400, 413],
    stage: 'body',
  },
  {
    name: 'chunk-extension ended by a bare LF "2;\\nxx"',
    source: 'Funky chunks: abusing ambiguous chunk line terminators for request smuggling (Weikop, 2025): TERM.EXT',
    build: (p) => {
      const hidden = smuggled(p);
      return chunkedBody(p, `2;\nxx\r\n${hex(len(hidden) + 7)}\r\n0\r\n\r\n${hidden}\r\n0\r\n\r\n`);
    },
    stage: 'body',
  },
  {
    name: 'extra CRLF between chunks (body ends on CRLFCRLF for lenient parsers)',
    source: 'http-garden README: Mongoose bug 6',
    build: (p) => chunkedBody(p, `1\r\nZ\r\n\r\n\r\n${smuggled(p)}0\r\n\r\n`),
    stage: 'body',
  },
  {
    name: 'chunk data longer than its chunk-size',
    source: 'RFC 9112 §7.1 (chunk-data is exactly chunk-size octets, then CRLF)',
    build: (p) => chunkedBody(p, `3\r\nabc${smuggled(p)}\r\n0\r\n\r\n`),
    stage: 'body',
  },
  // ---- malformed request lines and field lines ------------------------------
  {
    name: 'bare LF line endings throughout',
    source: 'http-garden README: OpenLiteSpeed bug 14, Gunicorn bug 2 (bare "\\n")',
    build: (p) => `POST ${p}/attack HTTP/1.1\nHost: fulcrum.test\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\r\n\r\n${smuggled(p)}`,
  },
  {
    name: 'bare LF ends the header block early "Useless:\\n\\n"',
    source: 'http-garden README: Gunicorn bug 2',
    build: (p) => `GET ${p}/attack HTTP/1.1\r\n${HOST}Useless:\n\n${smuggled(p)}`,
  },
  {
    name: 'header block terminated by "\\r\\n\\rZ"',
    source: 'http-garden README: Node.js bug 1 (HackerOne 2054283)',
    build: (p) => `GET ${p}/attack HTTP/1.1\r\n${HOST}\rZ${smuggled(p)}`,
  },
  {
    name: 'field line with no colon',
    source: 'http-garden README: OpenLiteSpeed bug 10',
    build: (p) => clBody(p, (n) => `Test\r\nContent-Length: ${n}\r\n`),
  },
  {
    name: 'empty field name ": ignored"',
    source: 'http-garden README: Node.js bug 3, Go net/http bug 3, Gunicorn bug 7',
    build: (p) => clBody(p, (n) => `: ignored\r\nContent-Length: ${n}\r\n`),
  },
  {
    name: 'bare CR inside a field value',
    source: 'http-garden README: CPython http.server bug 2 / Google Cloud bug 1 ("Visible: :/\\rSmuggled: :)")',
    build: (p) => clBody(p, (n) => `Visible: :/\rTransfer-Encoding: chunked\r\nContent-Length: ${n}\r\n`),
  },
  {
    name: 'request line with two spaces',
    source: 'RFC 9112 §3 (lenient request-line parsing enables smuggling); http-garden request-line class',
    // Whatever follows a GET's head is the next request under any reading, so
    // there is nothing to hide here; RFC 9112 §3 lets a recipient split on
    // whitespace, so a normalised forward is acceptable too.
    build: (p) => `GET  ${p}/attack HTTP/1.1\r\n${HOST}\r\n`,
    exact: (p) => [{ target: `${p}/attack`, body: '' }, { target: `${p}/follow`, body: '' }],
  },
  {
    name: 'lower-case protocol "http/1.1"',
    source: 'RFC 9112 §2.3 (HTTP-name is case-sensitive); http-garden version class (aiohttp bug 5)',
    build: (p) => clBody(p, (n) => `Content-Length: ${n}\r\n`).replace(' HTTP/1.1\r\n', ' http/1.1\r\n'),
  },
  {
    name: 'bare LF as request-line separator "GET /x\\nHTTP/1.1"',
    source: 'http-garden README: aiohttp bug 9',
    build: (p) => `GET ${p}/attack\nHTTP/1.1\r\n${HOST}\r\n${smuggled(p)}`,
  },
  {
    name: 'obs-fold continuing Content-Length "Content-Length: 5\\r\\n N"',
    source: 'RFC 9112 §5.2 (obs-fold); PortSwigger (2019) header-folding obfuscation',
    build: (p) => clBody(p, (n) => `Content-Length: 5\r\n ${n}\r\n`),
  },
  {
    name: 'two Host header lines',
    source: 'RFC 9112 §3.2 (MUST 400 on more than one Host); PortSwigger, Practical HTTP Host header attacks (2017)',
    build: (p) => `GET ${p}/attack HTTP/1.1\r\nHost: fulcrum.test\r\nHost: evil.example\r\n\r\n`,
  },
  // ---- methods and upgrades ------------------------------------------------
  {
    name: 'CONNECT to a listening foreign host',
    source: 'RFC 9110 §9.3.6; PortSwigger Web Security Academy: SSRF via reverse proxies (CONNECT tunnelling)',
    build: (p, ctx) => `CONNECT 127.0.0.1:${ctx.decoyPort} HTTP/1.1\r\nHost: 127.0.0.1:${ctx.decoyPort}\r\nX-Vector: ${p}\r\n\r\n${smuggled(p)}`,
    allowed: [400, 405, 501],
  },
  {
    name: 'Upgrade: h2c with HTTP2-Settings',
    source: 'Bishop Fox, h2c Smuggling: Request Smuggling Via HTTP/2 Cleartext (Miller, 2020)',
    build: (p) => `GET ${p}/attack HTTP/1.1\r\n${HOST}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${smuggled(p)}`,
  },
  {
    name: 'obfuscated Expect with a body hiding a request',
    source: 'PortSwigger, HTTP/1.1 Must Die (Kettle, 2025): Expect-based 0.CL desync ("Expect: y 100-continue")',
    // RFC 9110 §10.1.1: an unknown expectation MAY get a 417. Accepting it is
    // safe only if the body is forwarded exactly, as framed by Content-Length.
    build: (p) => clBody(p, (n) => `Expect: y 100-continue\r\nContent-Length: ${n}\r\n`),
    allowed: [400, 417],
    keepsConnection: true,
    exact: (p) => [{ target: `${p}/attack`, body: `hello${smuggled(p)}` }, { target: `${p}/follow`, body: '' }],
  },
  {
    name: 'underjoin1: "Transfer_Encoding: chunked" (not a framing header) with Content-Length',
    source: 'defparam smuggler: underjoin1',
    build: (p) => smugglerTemplate(p, 'Transfer_Encoding: chunked'),
    exact: (p) => [{ target: `${p}/attack`, body: `0\r\n\r\n${smuggled(p)}` }, { target: `${p}/follow`, body: '' }],
  },
  {
    name: 'contentEnc: "Content-Encoding: chunked" with Content-Length',
    source: 'defparam smuggler: contentEnc',
    build: (p) => smugglerTemplate(p, 'Content-Encoding: chunked'),
    exact: (p) => [{ target: `${p}/attack`, body: `0\r\n\r\n${smuggled(p)}` }, { target: `${p}/follow`, body: '' }],
  },
  {
    name: 'sarcasm: "TrAnSFer-EnCODinG: cHuNkeD" with Content-Length',
    source: 'defparam smuggler: sarcasm (field names and codings are case-insensitive)',
    build: (p) => smugglerTemplate(p, 'TrAnSFer-EnCODinG: cHuNkeD'),
  },
];

// ---------------------------------------------------------------------------

let backend: TestBackend;
let tap: Tap;
let f: RunningFulcrum;
let decoy: Awaited<ReturnType<typeof startDecoy>>;
const seen: Seen[] = [];

function listenerPort(name = 'public'): number {
  return Number(new URL(f.url(name)).port);
}

function forwarded(): { requests: ForwardedRequest[]; errors: string[] } {
  const requests: ForwardedRequest[] = [];
  const errors: string[] = [];
  tap.connections.forEach((conn, i) => {
    const r = parseForwarded(Buffer.concat(conn));
    requests.push(...r.requests);
    errors.push(...r.errors.map((e) => `connection ${i} ${e}`));
  });
  return { requests, errors };
}

beforeAll(async () => {
  backend = await startBackend('b', (req, res) => {
    const s: Seen = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bytes: 0, completed: false, aborted: false };
    seen.push(s);
    req.on('data', (c: Buffer) => { s.bytes += c.length; });
    req.on('aborted', () => { s.aborted = true; });
    req.on('error', () => { s.aborted = true; });
    req.on('end', () => {
      s.completed = true;
      const body = `ok ${req.url} ${s.bytes}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-backend': 'b' });
      res.end(body);
    });
  });
  tap = await startTap(backend.port);
  decoy = await startDecoy();
  f = await startFulcrum(`
log: { level: error, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    limits: { headersTimeout: 2s }
    routes:
      - pool: p
  narrow:
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /app }
        pool: p
pools:
  p:
    retries: { attempts: 0 }
    timeouts: { response: 3s }
    backends:
      - url: http://127.0.0.1:${tap.port}
        name: b
`);
});

afterAll(async () => {
  await f?.stop();
  await tap?.close();
  await decoy?.close();
  await backend?.close();
});

/** A failing condition shows `why` (the vector, its source and what came back). */
function check(ok: boolean, why: string): void {
  expect({ ok, why }).toEqual({ ok: true, why });
}

/**
 * A vector the RFCs let a server accept: exactly the listed requests reach the
 * backend, complete, each re-framed with one framing header and its exact body.
 */
async function acceptedExactly(v: Vector, p: string, statuses: number[], why: string): Promise<void> {
  // Pipelined requests may be forwarded on different backend connections: compare in target order.
  const byTarget = <T extends { target?: string; url?: string }>(xs: T[]): T[] =>
    [...xs].sort((a, b) => String(a.target ?? a.url).localeCompare(String(b.target ?? b.url)));
  const want = byTarget(v.exact!(p));
  expect({ why, statuses }).toEqual({ why, statuses: want.map(() => 200) });
  await waitFor(() => want.every((w) => seen.some((s) => s.url === w.target && s.completed)), 2000, 'the requests at the backend');
  const mine = byTarget(seen.filter((s) => s.url.startsWith(`${p}/`)));
  expect({ why, backend: mine.map((s) => ({ url: s.url, bytes: s.bytes, completed: s.completed })) }).toEqual({
    why, backend: want.map((w) => ({ url: w.target, bytes: len(w.body), completed: true })),
  });
  const wire = byTarget(forwarded().requests.filter((r) => r.target.startsWith(`${p}/`)));
  expect({ why, wire: wire.map((r) => ({ target: r.target, body: r.body.toString('latin1'), complete: r.complete })) }).toEqual({
    why, wire: want.map((w) => ({ target: w.target, body: w.body, complete: true })),
  });
  for (const r of wire) {
    const framings = [...r.contentLengths, ...r.transferEncodings];
    check(r.body.length === 0 ? framings.length <= 1 : framings.length === 1, `${why}: ${r.target} forwarded with ${JSON.stringify(framings)}`);
  }
}

function describeReply(r: RawReply): string {
  return JSON.stringify({
    statuses: r.responses.map((x) => x.status),
    closedByPeer: r.closedByPeer,
    timedOut: r.timedOut,
    head: r.data.toString('latin1', 0, 200),
  });
}

describe('the strict parser is on', () => {
  test('no listener uses insecureHTTPParser and the process was not started with --insecure-http-parser', () => {
    expect(process.execArgv.join(' ')).not.toMatch(/insecure-http-parser/);
    expect(process.env.NODE_OPTIONS ?? '').not.toMatch(/insecure-http-parser/);
    expect(f.fulcrum.listeners.length).toBe(2);
    for (const l of f.fulcrum.listeners) {
      expect((l.server as http.Server & { insecureHTTPParser?: boolean }).insecureHTTPParser).not.toBe(true);
    }
  });
});

describe('request-smuggling and malformed-request corpus', () => {
  test('the corpus has at least 24 distinct vectors, each with a source', () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(24);
    expect(new Set(VECTORS.map((v) => v.name)).size).toBe(VECTORS.length);
    for (const v of VECTORS) expect(v.source.length).toBeGreaterThan(5);
  });

  test.each(VECTORS.map((v, i) => ({ ...v, i })))('#$i $name', async (v) => {
    const p = `/v${String(v.i).padStart(2, '0')}`;
    const attack = v.build(p, { decoyPort: decoy.port });
    const follow = `GET ${p}/follow HTTP/1.1\r\n${HOST}\r\n`;
    const decoyBefore = decoy.connections();
    const errorsBefore = new Set(forwarded().errors);

    const reply = await rawExchange(listenerPort(), [attack + follow], {
      timeoutMs: 2000,
      done: (rs) => rs.filter((r) => r.status >= 200).length >= 2,
    });
    const finals = reply.responses.filter((r) => r.status >= 200);
    const why = `${v.name} [${v.source}] → ${describeReply(reply)}`;

    const accepted = v.exact !== undefined && finals.length > 0 && finals[0]!.status < 300;
    if (accepted) {
      await acceptedExactly(v, p, finals.map((r) => r.status), why);
      return;
    }
    // The client: a refusal (400 or the vector's allowed status), or a
    // connection closed with no answer; never a 2xx for the ambiguous request.
    if (finals.length > 0) check((v.allowed ?? [400]).includes(finals[0]!.status), why);
    if (!v.keepsConnection) {
      // After a framing error nothing more on this connection is read (RFC 9112 §6.3).
      expect({ why, extra: finals.slice(1).map((r) => r.status) }).toEqual({ why, extra: [] });
      if (finals.length > 0) expect({ why, closedByPeer: reply.closedByPeer }).toEqual({ why, closedByPeer: true });
    }

    // A request from another client right after: the backend connection must not be poisoned.
    const victim = await request(`${f.url()}${p}/victim`);
    expect({ why, status: victim.status, body: victim.body }).toEqual({ why, status: 200, body: `ok ${p}/victim 0` });

    // The backend: never the smuggled request; only what it should have seen.
    await waitFor(() => seen.some((s) => s.url === `${p}/victim` && s.completed), 2000, 'the victim at the backend');
    const mine = seen.filter((s) => s.url.startsWith(`${p}/`));
    expect({ why, smuggled: mine.filter((s) => s.url.includes('smuggled')).map((s) => s.url) }).toEqual({ why, smuggled: [] });
    const others = mine.filter((s) => s.url !== `${p}/victim`);
    const unexpected = others.filter((s) => {
      if (v.keepsConnection && s.url === `${p}/follow`) return false;
      // A body-stage error may let the head through, but never a complete request.
      if (v.stage === 'body' && s.url === `${p}/attack` && !s.completed) return false;
      return true;
    });
    expect({ why, unexpected: unexpected.map((s) => ({ url: s.url, method: s.method, bytes: s.bytes, completed: s.completed })) })
      .toEqual({ why, unexpected: [] });

    // What Fulcrum put on the wire, by a strict parser: one framing at most,
    // nothing hidden, and nothing from this vector went to the decoy.
    const fw = forwarded();
    const onWire = fw.requests.filter((r) => r.target.startsWith(`${p}/`));
    for (const r of onWire) {
      check(r.contentLengths.length + r.transferEncodings.length <= 1, `${why}: ${r.target} forwarded with ${JSON.stringify([...r.contentLengths, ...r.transferEncodings])}`);
      check(!r.target.includes('smuggled'), `${why}: ${r.target} on the wire`);
    }
    expect({ why, errors: fw.errors.filter((e) => !errorsBefore.has(e)) }).toEqual({ why, errors: [] });
    expect({ why, decoy: decoy.connections() - decoyBefore }).toEqual({ why, decoy: 0 });
  });

  test('across the whole corpus the backend never saw a smuggled request, and the wire parses strictly', () => {
    expect(seen.filter((s) => s.url.includes('smuggled')).map((s) => s.url)).toEqual([]);
    const fw = forwarded();
    expect(fw.errors).toEqual([]);
    expect(fw.requests.filter((r) => r.target.includes('smuggled')).map((r) => r.target)).toEqual([]);
    for (const r of fw.requests) expect(r.contentLengths.length + r.transferEncodings.length).toBeLessThanOrEqual(1);
    expect(decoy.connections()).toBe(0);
  });
});

describe('well-framed requests that hide a second request in their body are forwarded exactly', () => {
  test('CL.0: a body that looks like a request is forwarded as body, with one Content-Length matching it', async () => {
    // PortSwigger, Browser-Powered Desync Attacks (Kettle, 2022): CL.0. Valid
    // HTTP; the defence is that the proxy forwards the body it framed, with
    // exactly that framing, so the backend cannot read it as a new request.
    const p = '/cl0';
    const body = smuggled(p);
    const reply = await rawExchange(listenerPort(), [`POST ${p}/attack HTTP/1.1\r\n${HOST}Content-Length: ${len(body)}\r\n\r\n${body}GET ${p}/follow HTTP/1.1\r\n${HOST}\r\n`], {
      done: (rs) => rs.filter((r) => r.status >= 200).length >= 2,
    });
    expect(reply.responses.map((r) => r.status)).toEqual([200, 200]);
    expect(reply.responses[0]!.body.toString()).toBe(`ok ${p}/attack ${len(body)}`);
    // Pipelined client requests go upstream concurrently (separate backend
    // connections), so their order at the backend is not fixed: compare sets.
    expect(seen.filter((s) => s.url.startsWith(`${p}/`)).map((s) => s.url).sort()).toEqual([`${p}/attack`, `${p}/follow`]);
    const wire = forwarded().requests.filter((r) => r.target.startsWith(`${p}/`)).sort((x, y) => x.target.localeCompare(y.target));
    expect(wire.map((r) => r.target)).toEqual([`${p}/attack`, `${p}/follow`]);
    const [a] = wire;
    expect(a!.complete).toBe(true);
    expect(a!.contentLengths).toEqual([String(len(body))]);
    expect(a!.transferEncodings).toEqual([]);
    expect(a!.body.toString('latin1')).toBe(body);
  });

  test('a chunked request is forwarded with exactly one framing header and the de-chunked length', async () => {
    const p = '/chunked';
    const hidden = smuggled(p);
    const chunked = `${hex(len(hidden))}\r\n${hidden}\r\n0\r\n\r\n`;
    const reply = await rawExchange(listenerPort(), [`POST ${p}/attack HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${chunked}`], {
      done: (rs) => rs.some((r) => r.status >= 200),
    });
    expect(reply.responses.map((r) => r.status)).toEqual([200]);
    expect(reply.responses[0]!.body.toString()).toBe(`ok ${p}/attack ${len(hidden)}`);
    const [a, ...rest] = forwarded().requests.filter((r) => r.target.startsWith(`${p}/`));
    expect(rest).toEqual([]);
    expect(a!.complete).toBe(true);
    expect(a!.contentLengths.length + a!.transferEncodings.length).toBe(1);
    expect(a!.body.toString('latin1')).toBe(hidden);
  });
});

describe('client input never counts against a backend', () => {
  test('a request with two Host lines is a 400 from Fulcrum, not a 502 blamed on the backend', async () => {
    // RFC 9112 §3.2: more than one Host line MUST be answered with 400. If
    // both are passed on, undici refuses the request ("duplicate host header")
    // and that would be counted as a backend failure, letting any client
    // push healthy backends towards outlier ejection.
    const b = f.fulcrum.pools.get('p')!.get('b')!;
    const failuresBefore = b.failures;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await rawExchange(listenerPort(), [`GET /duphost/${i} HTTP/1.1\r\nHost: fulcrum.test\r\nHost: evil.example\r\nConnection: close\r\n\r\n`], {
        done: (rs) => rs.some((r) => r.status >= 200),
      });
      statuses.push(reply.responses.find((r) => r.status >= 200)?.status ?? 0);
    }
    expect({ statuses, failures: b.failures - failuresBefore, inFlight: b.inFlight }).toEqual({ statuses: [400, 400, 400], failures: 0, inFlight: 0 });
    expect(seen.filter((s) => s.url.startsWith('/duphost/'))).toEqual([]);
  });

  test('a WebSocket upgrade the backend does not accept opens no tunnel and is not blamed on the backend', async () => {
    // 0ang3el, WebSocket connection smuggling (2019): the backend answers the
    // upgrade with something other than 101 (here 200: it has no WebSocket
    // endpoint); a proxy that keeps the raw TCP tunnel open anyway lets the
    // client talk to the backend past the proxy. Fulcrum must not tunnel, and
    // a client asking for an upgrade where there is none is not a backend failure.
    const b = f.fulcrum.pools.get('p')!.get('b')!;
    const failuresBefore = b.failures;
    const errorsBefore = new Set(forwarded().errors);
    const upgrade = 'GET /ws/upgrade HTTP/1.1\r\nHost: fulcrum.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
      + 'Sec-WebSocket-Version: 1337\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    const reply = await rawExchange(listenerPort(), [upgrade + smuggled('/ws')], { timeoutMs: 1500 });
    const statuses = reply.responses.map((r) => r.status);
    expect(statuses).not.toContain(101);
    await waitFor(() => b.inFlight === 0, 2000, 'the upgrade attempt to end');
    expect(seen.filter((s) => s.url === '/ws/smuggled')).toEqual([]);
    expect(forwarded().errors.filter((e) => !errorsBefore.has(e))).toEqual([]);
    expect({ statuses, failures: b.failures - failuresBefore }).toEqual({ statuses: [expect.any(Number)], failures: 0 });
  });
});

describe('absolute-form request targets', () => {
  test.each([
    ['a listening foreign host', (d: number) => `http://127.0.0.1:${d}/abs/one?q=1`, '/abs/one?q=1'],
    ['a foreign name with a different Host', () => 'http://evil.example/abs/two', '/abs/two'],
    ['userinfo pointing elsewhere', (d: number) => `http://evil.example:${d}@127.0.0.1:${d}/abs/three`, '/abs/three'],
    ['https scheme to a foreign host', (d: number) => `https://127.0.0.1:${d}/abs/four`, '/abs/four'],
  ])('%s: only the configured backend is contacted, with the path only', async (_what, target, path) => {
    const before = decoy.connections();
    const reply = await rawExchange(listenerPort(), [`GET ${target(decoy.port)} HTTP/1.1\r\nHost: fulcrum.test\r\nConnection: close\r\n\r\n`], {
      done: (rs) => rs.some((r) => r.status >= 200),
    });
    expect(reply.responses.map((r) => r.status)).toEqual([200]);
    expect(reply.responses[0]!.body.toString()).toBe(`ok ${path} 0`);
    expect(decoy.connections()).toBe(before);
    // On the wire to the backend: origin-form, never the absolute URI.
    const wire = forwarded().requests.filter((r) => r.target.includes(path.split('?')[0]!));
    expect(wire.map((r) => r.target)).toEqual([path]);
    // The Host the backend sees is the one Fulcrum routed on (no split view).
    const host = wire[0]!.headers.filter(([n]) => n === 'host').map(([, v]) => v);
    expect(host).toEqual(['fulcrum.test']);
  });

  test('"*" and non-http absolute forms are refused, not forwarded', async () => {
    const before = seen.length;
    for (const target of ['*', `ftp://127.0.0.1:${decoy.port}/x`]) {
      const reply = await rawExchange(listenerPort(), [`GET ${target} HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`]);
      const finals = reply.responses.filter((r) => r.status >= 200);
      if (finals.length > 0) expect(finals[0]!.status).toBe(400);
    }
    expect(seen.length).toBe(before);
    expect(decoy.connections()).toBe(0);
  });
});

describe('the admin API is never reachable through a listener', () => {
  const ADMIN_PATHS: [string, string][] = [
    ['GET', '/metrics'],
    ['GET', '/api/pools'],
    ['POST', '/api/reload'],
    ['GET', '/healthz'],
    ['GET', '/readyz'],
    ['GET', '/'],
  ];

  test.each(ADMIN_PATHS)('%s %s on a catch-all listener goes to the backend as a plain path', async (method, path) => {
    const r = await request(`${f.url('public')}${path}`, { method });
    expect(r.status).toBe(200);
    expect(r.headers['x-backend']).toBe('b');
    expect(r.body).toBe(`ok ${path} 0`);
  });

  test.each(ADMIN_PATHS)('%s %s on a listener with no matching route is a 404 from routing', async (method, path) => {
    const before = seen.length;
    const r = await request(`${f.url('narrow')}${path}`, { method });
    expect(r.status).toBe(404);
    expect(r.body).toMatch(/^not found/);
    expect(r.body).not.toMatch(/# HELP|fulcrum_|"pools"|reload/);
    expect(seen.length).toBe(before);
  });

  test('absolute-form naming the admin address still goes to the backend', async () => {
    const admin = new URL(f.adminUrl);
    const reply = await rawExchange(listenerPort(), [`GET http://${admin.host}/metrics HTTP/1.1\r\nHost: ${admin.host}\r\nConnection: close\r\n\r\n`], {
      done: (rs) => rs.some((r) => r.status >= 200),
    });
    expect(reply.responses.map((r) => r.status)).toEqual([200]);
    expect(reply.responses[0]!.body.toString()).toBe('ok /metrics 0');
    // And the admin API itself is still where it should be (and differs).
    const m = await request(`${f.adminUrl}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/# HELP/);
  });

  test('the reload POSTed through the listener did not reload anything', async () => {
    const m = await request(`${f.adminUrl}/metrics`);
    expect(sum(parseProm(m.body), 'fulcrum_config_reloads_total')).toBe(0);
  });
});
