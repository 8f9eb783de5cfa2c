/**
 * A grammar-based generator of raw HTTP/1.x requests for the wire fuzz
 * (wire.fuzz.test.ts, issue 20). Each request is built from parts (request
 * line, header fields, framing, body), and every part says what a strict
 * HTTP/1.1 proxy must do with it, so the test knows what a backend may see:
 *
 * - `valid`: RFC 9112 and llhttp's strict mode both accept it; sent on a
 *   connection whose earlier requests were all valid and persistent, it must
 *   reach the backend exactly (method, path, body) and get the backend's 200.
 * - `invalid`: it must be refused (RFC 9112 MUST, SPEC.md sections 4 and 13,
 *   or llhttp's strict parser rejects it): the backend must never see it
 *   complete (never at all when the fault is in the head).
 * - `either`: a server may refuse it or accept it; if it is forwarded, the
 *   backend must still see what the client sent.
 *
 * Requests carry the placeholder ID (six characters, replaced by a unique id
 * of the same length at run time, so Content-Length and chunk sizes stay
 * right) in their path, so the backend can tell which request it got. A
 * request hidden in a body carries ID followed by "x": an id never sent as a
 * request, so if a backend sees it, it was smuggled.
 */
import http from 'node:http';
import fc from 'fast-check';

export const ID = '{{id}}';
/** Length of ID and of every id that replaces it. */
export const ID_LENGTH = ID.length;

export type Verdict = 'valid' | 'either' | 'invalid';

const RANK: Record<Verdict, number> = { valid: 0, either: 1, invalid: 2 };
function worst(...vs: Verdict[]): Verdict {
  return vs.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'valid');
}

/** One generated request, as bytes with ID placeholders and what it means. */
export interface WireRequest {
  /** The request's bytes (latin1), ID placeholders included. */
  readonly bytes: string;
  readonly verdict: Verdict;
  /** For `invalid`: where the fault is. 'body': the head was fine, so a backend may see the start of the request, never its end. */
  readonly stage: 'head' | 'body';
  readonly method: string;
  /** The url the backend must see (with ID); undefined when the target carries no id ("*"). */
  readonly path: string | undefined;
  /** The body the backend must see (de-chunked), ID placeholders included. */
  readonly body: string;
  /** The bytes hold the whole message (a short body or a missing last chunk: false). */
  readonly complete: boolean;
  /**
   * A Content-Length above the body's bytes: the server takes that many bytes
   * as the body, the start of whatever the client sends next included (the
   * test works out the body a backend may see from the bytes really sent).
   */
  readonly declaredLength?: number;
  /** A valid answer keeps the connection open (HTTP/1.1 without Connection: close). */
  readonly persistent: boolean;
  /** A method Fulcrum may decline to forward: 501 is an acceptable answer (SPEC.md section 13). */
  readonly may501: boolean;
  /** The version is neither HTTP/1.0 nor HTTP/1.1: any answer must be 505 (or 400). */
  readonly badVersion: boolean;
  /** What was done to it, for the report. */
  readonly notes: readonly string[];
}

export type Ending =
  /** Wait for the answers with the connection open. */
  | { readonly kind: 'keep' }
  /** Send everything, then FIN (half-close) and read until the server closes. */
  | { readonly kind: 'half' }
  /** Send everything, then close at once. */
  | { readonly kind: 'abort' }
  /** Send only the first `at` (0..1) of the bytes, then close. */
  | { readonly kind: 'cut'; readonly at: number };

export interface WireCase {
  readonly requests: readonly WireRequest[];
  readonly ending: Ending;
}

interface Part {
  readonly text: string;
  readonly verdict: Verdict;
  readonly note?: string;
}

const part = (text: string, verdict: Verdict = 'valid', note?: string): Part => ({ text, verdict, note });

// ---------------------------------------------------------------------------
// Request line.

/** Methods Fulcrum must forward as they are (no 501 allowed). */
const CORE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
/** Every method this Node's llhttp parses in a request (http.METHODS is its list; QUERY is llhttp code 46). */
export const LLHTTP_METHODS: readonly string[] = [...new Set([...CORE_METHODS, ...http.METHODS, 'QUERY'])];
/** Methods with a body by nature: a body on them is valid. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'QUERY', 'OPTIONS', 'PROPFIND', 'PROPPATCH', 'REPORT', 'SEARCH', 'LOCK', 'MKCOL', 'MKCALENDAR', 'ACL', 'BIND', 'REBIND', 'UNBIND', 'COPY', 'MOVE', 'MERGE', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE', 'LINK', 'UNLINK', 'SOURCE', 'CHECKOUT', 'MKACTIVITY', 'UNLOCK', 'M-SEARCH']);

interface MethodPart {
  readonly name: string;
  readonly verdict: Verdict;
  readonly may501: boolean;
  /** Bytes before the request line (not part of the method a backend sees). */
  readonly before?: string;
  readonly note?: string;
}

const methodPart = (name: string): MethodPart => ({
  name,
  // CONNECT is for forward proxies (authority-form target): a reverse proxy may refuse it.
  verdict: name === 'CONNECT' ? 'either' as const : 'valid' as const,
  may501: !CORE_METHODS.includes(name),
});
const knownMethod: fc.Arbitrary<MethodPart> = fc.constantFrom(...LLHTTP_METHODS).map(methodPart);

const oddMethod: fc.Arbitrary<MethodPart> = fc.oneof(
  // RTSP methods (llhttp knows them, but not in HTTP mode), lowercase, unknown tokens, bytes that are no token.
  fc.constantFrom('DESCRIBE', 'SETUP', 'PLAY', 'TEARDOWN', 'get', 'Get', 'BREW', 'FOO', 'GETS', 'GE', 'POSTX', 'M-SEARCHX', '', 'G\x00ET', 'GET\x7f', 'G(T', '\x80GET', '\r\nGET')
    .map((name): MethodPart => (name === '\r\nGET'
      // An empty line before the request line is no part of the method: RFC 9112
      // §2.2 says a server SHOULD ignore at least one (llhttp does), so this is a
      // plain, valid GET. (Kept in this list so that seeds and paths of earlier
      // runs replay the same cases.)
      ? { name: 'GET', before: '\r\n', verdict: 'valid', may501: false, note: 'empty line before the request line' }
      : { name, verdict: 'invalid', may501: true })),
  fc.stringMatching(/^[A-Z][A-Z_-]{0,11}$/).filter((m) => !LLHTTP_METHODS.includes(m) && m !== 'PRI')
    .map((name) => ({ name, verdict: 'invalid' as const, may501: true })),
  // The HTTP/2 preface's method.
  fc.constant({ name: 'PRI', verdict: 'either' as const, may501: true }),
  fc.constant({ name: 'X'.repeat(300), verdict: 'invalid' as const, may501: true }),
);

const method: fc.Arbitrary<MethodPart> = fc.oneof({ weight: 9, arbitrary: knownMethod }, { weight: 1, arbitrary: oddMethod });

const PCHAR = [...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-._~!$&\'()*+,;=:@'];
const segment = fc.array(fc.constantFrom(...PCHAR), { minLength: 1, maxLength: 8 }).map((cs) => cs.join('')).filter((s) => s !== '.' && s !== '..');
const pathRest = fc.array(segment, { maxLength: 3 }).map((ss) => ss.map((s) => `/${s}`).join(''));
const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...PCHAR, '/', '?', '%20', '%00', '%2F'), { maxLength: 12 }).map((cs) => `?${cs.join('')}`) },
);

interface TargetPart { readonly text: string; readonly path: string | undefined; readonly verdict: Verdict; readonly note?: string }

const originTarget: fc.Arbitrary<TargetPart> = fc.tuple(pathRest, query, fc.constantFrom('', '', '', '/', '/../x', '/./y', '//z', '/%2e%2e/', '/%zz', '/%')).map(([rest, q, extra]) => {
  const text = `/fz/${ID}${rest}${extra}${q}`;
  return { text, path: text, verdict: 'valid' as const };
});

const absoluteTarget: fc.Arbitrary<TargetPart> = fc.tuple(
  fc.constantFrom('http://localhost', 'http://127.0.0.1:80', 'https://localhost', 'HTTP://LOCALHOST', 'http://user@localhost', 'http://other.example:8080'),
  pathRest,
  query,
).map(([origin, rest, q]) => ({
  text: `${origin}/fz/${ID}${rest}${q}`,
  // RFC 9112 §3.2.2: a server receiving absolute-form uses its path (and query).
  path: `/fz/${ID}${rest}${q}`,
  verdict: 'valid' as const,
  note: 'absolute-form',
}));

const oddTarget: fc.Arbitrary<TargetPart> = fc.oneof(
  fc.constant({ text: '*', path: undefined, verdict: 'either' as const, note: 'asterisk-form' }),
  // Bytes llhttp accepts in a target but RFC 3986 does not: refuse or forward as they are.
  fc.constantFrom('#frag', '{', '}', '|', '"', '<', '>', '\\', '^', '`', '[', ']').map((c) => {
    const text = `/fz/${ID}/odd${c}x`;
    return { text, path: text, verdict: 'either' as const, note: `odd byte ${JSON.stringify(c)}` };
  }),
  // Control bytes, space, tab, obs-text: never a valid target.
  fc.constantFrom('\x00', '\x01', '\x7f', '\x80', '\xff', ' ', '\t', '\x0b', '\r', '\n').map((c) => {
    const text = `/fz/${ID}/ctl${c}x`;
    return { text, path: text, verdict: 'invalid' as const, note: `control byte ${JSON.stringify(c)}` };
  }),
  fc.constant({ text: `fz/${ID}`, path: `fz/${ID}`, verdict: 'either' as const, note: 'no leading slash' }),
  fc.constant({ text: `localhost:80`, path: undefined, verdict: 'either' as const, note: 'authority-form' }),
  fc.constant({ text: '', path: undefined, verdict: 'invalid' as const, note: 'empty target' }),
  fc.integer({ min: 9000, max: 20000 }).map((n) => {
    const text = `/fz/${ID}/${'a'.repeat(n)}`;
    return { text, path: text, verdict: 'either' as const, note: `long target (${n})` };
  }),
);

const target: fc.Arbitrary<TargetPart> = fc.oneof({ weight: 6, arbitrary: originTarget }, { weight: 2, arbitrary: absoluteTarget }, { weight: 2, arbitrary: oddTarget });

interface VersionPart { readonly text: string; readonly major: number; readonly minor: number; readonly bad: boolean }

const version: fc.Arbitrary<VersionPart> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ text: 'HTTP/1.1', major: 1, minor: 1, bad: false }) },
  { weight: 3, arbitrary: fc.constant({ text: 'HTTP/1.0', major: 1, minor: 0, bad: false }) },
  // SPEC.md section 13: neither 1.0 nor 1.1 → 505 and close. llhttp itself parses 0.9 and 2.0.
  { weight: 2, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/0.9').map((text) => ({ text, major: Number(text[5]), minor: Number(text[7]), bad: true })) },
  { weight: 2, arbitrary: fc.constantFrom('HTTP/1.2', 'HTTP/3.0', 'HTTP/1.10', 'HTTP/9.9', 'http/1.1', 'HTTP/11', 'HTTP/', '', 'HTTPS/1.1', 'HTTP/1.1 ', 'HTTP/1.1\x00', 'HTTP/1.')
    .map((text) => ({ text, major: 0, minor: 0, bad: true })) },
);

const SP = fc.oneof(
  { weight: 20, arbitrary: fc.constant(part(' ')) },
  { weight: 1, arbitrary: fc.constantFrom('  ', '\t', ' \t', '\x0b', '\x00').map((s) => part(s, s === '  ' ? 'either' : 'invalid', `separator ${JSON.stringify(s)}`)) },
);

const EOL = fc.oneof(
  { weight: 30, arbitrary: fc.constant(part('\r\n')) },
  // Bare LF and bare CR line ends: llhttp's strict mode refuses both.
  { weight: 1, arbitrary: fc.constantFrom('\n', '\r', '\r\r\n').map((s) => part(s, 'invalid', `line end ${JSON.stringify(s)}`)) },
);

// ---------------------------------------------------------------------------
// Header fields.

const fieldName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('Accept', 'User-Agent', 'X-Fuzz', 'Cookie', 'Accept-Encoding', 'X-Forwarded-For', 'X-Request-Id', 'Forwarded', 'Via', 'Authorization', 'Cache-Control', 'Range') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/) },
).filter((n) => !/^(host|content-length|transfer-encoding|connection|upgrade|expect|te|trailer|keep-alive|proxy-connection)$/i.test(n));

const VALUE_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789 !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', '\t', '\x80', '\xa0', '\xff'];
const fieldValue = fc.oneof(
  { weight: 10, arbitrary: fc.array(fc.constantFrom(...VALUE_CHARS), { maxLength: 40 }).map((cs) => part(cs.join('').replace(/^[ \t]+|[ \t]+$/g, ''))) },
  // Huge values: far under, near and over the 16 KiB header limit (431 above it).
  { weight: 1, arbitrary: fc.constantFrom(1000, 4000, 8000).map((n) => part('v'.repeat(n), 'valid', `value of ${n} bytes`)) },
  { weight: 1, arbitrary: fc.integer({ min: 14000, max: 16400 }).map((n) => part('v'.repeat(n), 'either', `value of ${n} bytes`)) },
  { weight: 1, arbitrary: fc.constantFrom(17000, 24000, 70000).map((n) => part('v'.repeat(n), 'invalid', `value of ${n} bytes`)) },
);

/** One field line "Name: value\r\n", possibly broken. */
const fieldLine: fc.Arbitrary<Part> = fc.tuple(
  fieldName,
  fieldValue,
  fc.constantFrom('', ' ', '  ', '\t'),
  fc.constantFrom('', '', ' ', '\t'),
  fc.oneof(
    { weight: 12, arbitrary: fc.constant<string | undefined>(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('obs-fold', 'bare-cr', 'bare-lf', 'nul', 'ctl', 'del', 'space-before-colon', 'bad-name', 'empty-name', 'no-colon', 'leading-space') },
  ),
).map(([name, value, ows1, ows2, broken]): Part => {
  const v = value.text;
  switch (broken) {
    // RFC 9112 §5.2: a server must refuse obs-fold or replace it with SP; never forward it raw.
    case 'obs-fold': return part(`${name}:${ows1}${v}\r\n ${v}${ows2}\r\n`, worst(value.verdict, 'either'), 'obs-fold');
    case 'bare-cr': return part(`${name}:${ows1}a\rb${v}\r\n`, 'invalid', 'bare CR in a value');
    case 'bare-lf': return part(`${name}:${ows1}${v}\n`, 'invalid', 'bare LF ends a field line');
    case 'nul': return part(`${name}:${ows1}a\x00b\r\n`, 'invalid', 'NUL in a value');
    case 'ctl': return part(`${name}:${ows1}a\x01\x1fb\r\n`, 'invalid', 'control bytes in a value');
    case 'del': return part(`${name}:${ows1}a\x7fb\r\n`, 'invalid', 'DEL in a value');
    case 'space-before-colon': return part(`${name} :${ows1}${v}\r\n`, 'invalid', 'space before the colon');
    case 'bad-name': return part(`${name}(x):${ows1}${v}\r\n`, 'invalid', 'non-token field name');
    case 'empty-name': return part(`:${ows1}${v}\r\n`, 'invalid', 'empty field name');
    // No colon anywhere: a value starting with ':' would make "Name:" a well-formed field line.
    case 'no-colon': return part(`${name}${ows1}${v.replace(/:/g, '')}\r\n`, 'invalid', 'field line without colon');
    case 'leading-space': return part(` ${name}:${ows1}${v}\r\n`, 'invalid', 'field line starts with a space');
    default: return part(`${name}:${ows1}${v}${ows2}\r\n`, value.verdict, value.note);
  }
});

interface HostPart { readonly lines: string; readonly verdict: Verdict; readonly note?: string }

/** Host: one (valid), none (invalid in HTTP/1.1), duplicates (RFC 9112 §3.2: 400), odd values. */
const hostField: fc.Arbitrary<HostPart> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('localhost', 'fulcrum.test', '127.0.0.1:8080', 'LOCALHOST').map((h) => ({ lines: `Host: ${h}\r\n`, verdict: 'valid' as const })) },
  { weight: 1, arbitrary: fc.constant({ lines: '', verdict: 'valid' as const, note: 'no Host' }) },
  { weight: 2, arbitrary: fc.constantFrom('Host: a\r\nHost: a\r\n', 'Host: a\r\nHost: b\r\n', 'Host: a\r\nhost: a\r\n').map((lines) => ({ lines, verdict: 'invalid' as const, note: 'duplicate Host' })) },
  // RFC 9112 §3.2 asks 400 for an invalid Host value too; Fulcrum forwards these today (reported on issue 20),
  // so they only have to reach the backend unchanged.
  { weight: 1, arbitrary: fc.constantFrom('Host:\r\n', 'Host: a, b\r\n', 'Host: a b\r\n', 'Host: a/b\r\n', 'Host: \xff\r\n', 'Host: [::1\r\n').map((lines) => ({ lines, verdict: 'either' as const, note: `odd Host ${JSON.stringify(lines.trim())}` })) },
);

interface ConnectionPart { readonly lines: string; readonly close: boolean; readonly verdict: Verdict; readonly note?: string }

const connectionField: fc.Arbitrary<ConnectionPart> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ lines: '', close: false, verdict: 'valid' as const }) },
  { weight: 2, arbitrary: fc.constantFrom('close', 'Close', 'close, X-Fuzz', 'keep-alive, close').map((v) => ({ lines: `Connection: ${v}\r\n`, close: true, verdict: 'valid' as const, note: `Connection: ${v}` })) },
  { weight: 1, arbitrary: fc.constantFrom('keep-alive', 'X-Forwarded-For', 'te').map((v) => ({ lines: `Connection: ${v}\r\n`, close: false, verdict: 'valid' as const, note: `Connection: ${v}` })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n',
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n',
      'Upgrade: websocket\r\n',
      'Expect: 100-continue\r\n',
      'Expect: nonsense\r\n',
      'TE: trailers\r\n',
      'Keep-Alive: timeout=1\r\n',
    ).map((lines) => ({ lines, close: false, verdict: 'either' as const, note: lines.split('\r\n')[0] })),
  },
);

// ---------------------------------------------------------------------------
// Framing and body.

const bodyBytes: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 200 }).map((bs) => Buffer.from(bs).toString('latin1')) },
  { weight: 2, arbitrary: fc.constant(`GET /fz/${ID}x HTTP/1.1\r\nHost: a\r\n\r\n`) },
  { weight: 1, arbitrary: fc.constant(`0\r\n\r\nPOST /fz/${ID}x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc`) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 80_000 }).map((n) => 'b'.repeat(n)) },
);

interface Framing {
  /** Header lines it adds. */
  readonly lines: string;
  /** The bytes after the head. */
  readonly after: string;
  /** The body the backend must see. */
  readonly body: string;
  readonly verdict: Verdict;
  readonly stage: 'head' | 'body';
  readonly complete: boolean;
  readonly chunked: boolean;
  readonly note?: string;
  /** See WireRequest.declaredLength. */
  readonly declaredLength?: number;
}

const noBody: Framing = { lines: '', after: '', body: '', verdict: 'valid', stage: 'head', complete: true, chunked: false };

const contentLength: fc.Arbitrary<Framing> = fc.tuple(
  bodyBytes,
  fc.oneof(
    { weight: 8, arbitrary: fc.constant('exact') },
    { weight: 1, arbitrary: fc.constantFrom('ows', 'zeros', 'short', 'huge', 'dup-same', 'dup-diff', 'list-same', 'list-diff', 'plus', 'minus', 'hex', 'empty', 'overflow', 'alpha', 'cl-te', 'te-cl') },
  ),
).map(([body, how]): Framing => {
  const n = body.length;
  const ok = (lines: string, verdict: Verdict = 'valid', note?: string): Framing => ({ lines, after: body, body, verdict, stage: 'head', complete: true, chunked: false, note });
  const bad = (lines: string, note: string, verdict: Verdict = 'invalid'): Framing => ({ lines, after: body, body, verdict, stage: 'head', complete: true, chunked: false, note });
  switch (how) {
    case 'ows': return ok(`Content-Length:  ${n} \r\n`);
    case 'zeros': return ok(`Content-Length: 000${n}\r\n`, 'valid', 'Content-Length with leading zeros');
    // The body never ends: a backend may see its start, never its end.
    case 'short': return { ...ok(`Content-Length: ${n + 7}\r\n`, 'either', 'Content-Length above the bytes sent'), complete: false, declaredLength: n + 7 };
    // Over maxBodySize (413) and never sent in full.
    case 'huge': return { ...ok('Content-Length: 10000000\r\n', 'either', 'Content-Length over maxBodySize'), complete: false, declaredLength: 10_000_000 };
    // RFC 9110 §8.6 lets a recipient accept identical repeats; llhttp refuses them.
    case 'dup-same': return bad(`Content-Length: ${n}\r\nContent-Length: ${n}\r\n`, 'duplicate identical Content-Length', 'either');
    case 'list-same': return bad(`Content-Length: ${n}, ${n}\r\n`, 'Content-Length list of identical values', 'either');
    case 'dup-diff': return bad(`Content-Length: ${n}\r\nContent-Length: ${n + 1}\r\n`, 'duplicate differing Content-Length');
    case 'list-diff': return bad(`Content-Length: ${n}, ${n + 1}\r\n`, 'Content-Length list of differing values');
    case 'plus': return bad(`Content-Length: +${n}\r\n`, 'Content-Length: +N');
    case 'minus': return bad('Content-Length: -1\r\n', 'Content-Length: -1');
    case 'hex': return bad(`Content-Length: 0x${n.toString(16)}\r\n`, 'Content-Length in hex');
    case 'empty': return bad('Content-Length: \r\n', 'empty Content-Length');
    case 'overflow': return bad('Content-Length: 184467440737095516160\r\n', 'Content-Length overflows 64 bits');
    case 'alpha': return bad(`Content-Length: ${n}a\r\n`, 'Content-Length with a letter');
    // SPEC.md section 4: Content-Length together with Transfer-Encoding is 400.
    case 'cl-te': return bad(`Content-Length: ${n}\r\nTransfer-Encoding: chunked\r\n`, 'Content-Length and Transfer-Encoding');
    case 'te-cl': return bad(`Transfer-Encoding: chunked\r\nContent-Length: ${n}\r\n`, 'Transfer-Encoding and Content-Length');
    default: return ok(`Content-Length: ${n}\r\n`);
  }
});

interface ChunkPart { readonly text: string; readonly verdict: Verdict; readonly note?: string }

/** One chunk of `data`: its size line (possibly broken), data, CRLF. */
function chunkArb(data: string): fc.Arbitrary<ChunkPart> {
  const n = data.length;
  const hex = n.toString(16);
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(hex, hex.toUpperCase(), `000${hex}`).map((s) => ({ text: `${s}\r\n${data}\r\n`, verdict: 'valid' as const })) },
    // Chunk extensions (RFC 9112 §7.1.1): token, token=token, token="quoted".
    { weight: 2, arbitrary: fc.constantFrom(';a', ';a=b', ';a="x y"', ';a=b;c=d').map((e) => ({ text: `${hex}${e}\r\n${data}\r\n`, verdict: 'valid' as const, note: `chunk extension ${e}` })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        [`1${'0'.repeat(16)}${hex}`, 'chunk size overflows 64 bits'],
        [`fffffffffffffffff`, 'chunk size of 17 hex digits'],
        [`0x${hex}`, 'chunk size with 0x'],
        [`${hex}g`, 'chunk size with a non-hex digit'],
        [`-${hex}`, 'negative chunk size'],
        [`${hex} ;a=b`, 'space before the chunk extension'],
        [`${hex};`, 'empty chunk extension'],
        [`${hex};a=b c`, 'space in a chunk extension'],
        [`${hex};a=\x00`, 'NUL in a chunk extension'],
        [` ${hex}`, 'space before the chunk size'],
      ).map(([s, note]) => ({ text: `${s}\r\n${data}\r\n`, verdict: 'invalid' as const, note })),
    },
    { weight: 1, arbitrary: fc.constant({ text: `${hex}\n${data}\n`, verdict: 'invalid' as const, note: 'bare LF in chunked framing' }) },
    { weight: 1, arbitrary: fc.constant({ text: `${hex}\r\n${data}XX\r\n`, verdict: 'invalid' as const, note: 'chunk data longer than its size' }) },
  );
}

const TRAILERS = fc.oneof(
  { weight: 6, arbitrary: fc.constant(part('')) },
  { weight: 2, arbitrary: fc.constantFrom('X-Trailer: v\r\n', 'X-A: 1\r\nX-B: 2\r\n', `X-Big: ${'t'.repeat(5000)}\r\n`).map((t) => part(t, 'valid', 'trailers')) },
  { weight: 1, arbitrary: fc.constantFrom('Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: evil\r\n').map((t) => part(t, 'either', `trailer ${t.trim()}`)) },
  { weight: 1, arbitrary: fc.constantFrom('X-T\x00: v\r\n', 'X-T: a\rb\r\n', ' X-T: v\r\n', 'X-T v\r\n').map((t) => part(t, 'invalid', `bad trailer ${JSON.stringify(t)}`)) },
);

const TE_VALUES = fc.oneof(
  { weight: 8, arbitrary: fc.constant(part('Transfer-Encoding: chunked\r\n')) },
  { weight: 1, arbitrary: fc.constantFrom('Transfer-Encoding: Chunked\r\n', 'Transfer-Encoding:  chunked \r\n', 'transfer-encoding: CHUNKED\r\n').map((t) => part(t, 'valid', t.trim())) },
  // Fulcrum forwards exactly "chunked" (RFC 9112 §6.1: chunked must be final, exactly once).
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'Transfer-Encoding: chunked, chunked\r\n', 'Transfer-Encoding: gzip, chunked\r\n', 'Transfer-Encoding: chunked, gzip\r\n',
      'Transfer-Encoding: identity\r\n', 'Transfer-Encoding: xchunked\r\n', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n', 'Transfer-Encoding: ,chunked\r\n', 'Transfer-Encoding: "chunked"\r\n',
      'Transfer-Encoding: chunked\x00\r\n', 'Transfer-Encoding\t: chunked\r\n', 'Transfer-Encoding:\x0bchunked\r\n',
    ).map((t) => part(t, 'invalid', JSON.stringify(t.trim()))),
  },
);

const chunked: fc.Arbitrary<Framing> = bodyBytes
  .chain((body) => fc.tuple(
    fc.constant(body),
    // Cut points that split the body into 1-4 non-empty chunks.
    fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, body.length - 1) }), { maxLength: Math.min(3, body.length - 1) }).map((cuts) => [...cuts].sort((a, b) => a - b)),
  ))
  .chain(([body, cuts]) => {
    const pieces: string[] = [];
    let from = 0;
    // Never inside an ID placeholder: split across two chunks it is not
    // replaced by the request's id, and the body sent is not the body expected.
    const ids = [...body.matchAll(/\{\{id\}\}/g)].map((m) => m.index!);
    const whole = cuts.filter((c) => !ids.some((i) => c > i && c < i + ID_LENGTH));
    for (const c of [...whole, body.length]) {
      if (c > from) pieces.push(body.slice(from, c));
      from = c;
    }
    return fc.tuple(fc.constant(body), fc.tuple(...pieces.map(chunkArb)), TE_VALUES, TRAILERS, fc.constantFrom('0', '0', '0', '000', '0;z=1'), fc.oneof({ weight: 10, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }));
  })
  .map(([body, chunks, te, trailers, last, ends]): Framing => {
    const chunkVerdict = worst(...chunks.map((c) => c.verdict), trailers.verdict);
    const notes = [te.note, ...chunks.map((c) => c.note), trailers.note, ends ? undefined : 'no last chunk'].filter((n): n is string => n !== undefined);
    return {
      lines: te.text,
      after: chunks.map((c) => c.text).join('') + (ends ? `${last}\r\n${trailers.text}\r\n` : ''),
      body,
      verdict: worst(te.verdict, chunkVerdict, ends ? 'valid' : 'either'),
      // A bad Transfer-Encoding is refused with the head; a bad chunk only once the body is read.
      stage: te.verdict === 'invalid' ? 'head' : 'body',
      complete: ends,
      chunked: true,
      note: notes.length > 0 ? notes.join(', ') : undefined,
    };
  });

const framing: fc.Arbitrary<Framing> = fc.oneof({ weight: 4, arbitrary: fc.constant(noBody) }, { weight: 3, arbitrary: contentLength }, { weight: 3, arbitrary: chunked });

// ---------------------------------------------------------------------------
// Whole requests.

/** The parts of one request line, for the request-line-only property. */
export interface RequestLineParts {
  readonly method: MethodPart;
  readonly target: TargetPart;
  readonly version: VersionPart;
  readonly sp1: Part;
  readonly sp2: Part;
  readonly eol: Part;
}

const requestLine: fc.Arbitrary<RequestLineParts> = fc.record({ method, target, version, sp1: SP, sp2: SP, eol: EOL });

/** Well-formed request lines: every known method, origin- or absolute-form, HTTP/1.1. */
const methodsLine: fc.Arbitrary<RequestLineParts> = fc.record({
  // CONNECT is no request a reverse proxy forwards (its own findings belong to the other properties).
  method: fc.constantFrom(...LLHTTP_METHODS.filter((m) => m !== 'CONNECT')).map(methodPart),
  target: fc.oneof({ weight: 3, arbitrary: originTarget }, { weight: 1, arbitrary: absoluteTarget }),
  version: fc.constant({ text: 'HTTP/1.1', major: 1, minor: 1, bad: false }),
  sp1: fc.constant(part(' ')), sp2: fc.constant(part(' ')), eol: fc.constant(part('\r\n')),
});

/** Plain request lines (for the header and framing property): common methods, origin-form, HTTP/1.1 or 1.0. */
const plainLine: fc.Arbitrary<RequestLineParts> = fc.record({
  method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS').map((name) => ({ name, verdict: 'valid' as const, may501: false })) }, { weight: 1, arbitrary: knownMethod }),
  target: originTarget,
  version: fc.oneof({ weight: 4, arbitrary: fc.constant({ text: 'HTTP/1.1', major: 1, minor: 1, bad: false }) }, { weight: 1, arbitrary: fc.constant({ text: 'HTTP/1.0', major: 1, minor: 0, bad: false }) }),
  sp1: fc.constant(part(' ')), sp2: fc.constant(part(' ')), eol: fc.constant(part('\r\n')),
});

const wellFormedHost: fc.Arbitrary<HostPart> = fc.constantFrom('localhost', 'fulcrum.test').map((h) => ({ lines: `Host: ${h}\r\n`, verdict: 'valid' as const }));

export interface RequestOptions {
  /** 'any' (default): the whole request-line grammar; 'methods': every known method on a well-formed line; 'plain': common methods, origin-form. */
  readonly line?: 'any' | 'methods' | 'plain';
  /** false: no extra header fields (Host and Connection still vary unless line is 'methods'). */
  readonly headers?: boolean;
  /** 'any' (default); 'valid': none or an exact Content-Length; 'none': no body. */
  readonly framing?: 'any' | 'valid' | 'none';
}

/** Heads (request line and fields) longer than this get 431 (node's 16 KiB maxHeaderSize, which counts them a little differently); between HEAD_NEAR and it, either. */
const HEAD_OVER = 17_000;
const HEAD_NEAR = 15_500;

/** One raw request from the grammar. */
export function wireRequest(options: RequestOptions = {}): fc.Arbitrary<WireRequest> {
  const fields = options.headers === false ? fc.constant<Part[]>([]) : fc.array(fieldLine, { maxLength: 5 });
  const body = options.framing === 'none' ? fc.constant(noBody)
    : options.framing === 'valid' ? fc.oneof(fc.constant(noBody), bodyBytes.map((b): Framing => ({ ...noBody, lines: `Content-Length: ${b.length}\r\n`, after: b, body: b })))
    : framing;
  const line = options.line === 'methods' ? methodsLine : options.line === 'plain' ? plainLine : requestLine;
  const host = options.line === 'methods' ? wellFormedHost : hostField;
  const connection = options.line === 'methods' ? fc.constant<ConnectionPart>({ lines: '', close: false, verdict: 'valid' }) : connectionField;
  return fc.record({ line, host, connection, fields, body, hostFirst: fc.boolean() }).map(({ line, host, connection, fields: fs, body: fr, hostFirst }) => {
    const { method: m, target: t, version: v } = line;
    const http10 = v.text === 'HTTP/1.0';
    const hostVerdict = host.lines === '' && !http10 ? 'invalid' : host.verdict;
    // Transfer-Encoding in an HTTP/1.0 request: RFC 9112 §6.1, the framing is faulty.
    const teIn10 = http10 && fr.chunked ? 'invalid' : 'valid';
    const bodyOnBodyless = fr.body !== '' && !BODY_METHODS.has(m.name) ? 'either' : 'valid';
    const headLines = hostFirst ? host.lines + fs.map((f) => f.text).join('') : fs.map((f) => f.text).join('') + host.lines;
    const bytes = `${m.before ?? ''}${m.name}${line.sp1.text}${t.text}${line.sp2.text}${v.text}${line.eol.text}${headLines}${connection.lines}${fr.lines}\r\n${fr.after}`;
    // The head as a whole against the 16 KiB header limit (431 above it): fields
    // each well under it can add up to more (the campaign's "valid" UNLOCK with
    // three values of 8000, 8000 and 1000 bytes). Near the limit, either.
    const headLength = bytes.length - fr.after.length;
    const headSize: Verdict = headLength > HEAD_OVER ? 'invalid' : headLength > HEAD_NEAR ? 'either' : 'valid';
    const headVerdict = worst(m.verdict, t.verdict, v.bad ? 'invalid' : 'valid', line.sp1.verdict, line.sp2.verdict, line.eol.verdict, hostVerdict, connection.verdict, ...fs.map((f) => f.verdict), fr.stage === 'head' ? fr.verdict : 'valid', teIn10, bodyOnBodyless, headSize);
    const verdict = worst(headVerdict, fr.verdict);
    const notes = [
      m.verdict !== 'valid' || m.may501 ? `method ${JSON.stringify(m.name.slice(0, 20))}` : undefined, m.note,
      t.note, v.text !== 'HTTP/1.1' ? `version ${JSON.stringify(v.text)}` : undefined,
      line.sp1.note, line.sp2.note, line.eol.note, host.note, connection.note, ...fs.map((f) => f.note), fr.note,
      teIn10 === 'invalid' ? 'Transfer-Encoding in HTTP/1.0' : undefined, bodyOnBodyless !== 'valid' ? `body on ${m.name}` : undefined,
      headSize !== 'valid' ? `head of ${headLength} bytes` : undefined,
    ].filter((n): n is string => n !== undefined);
    return {
      bytes,
      verdict,
      stage: headVerdict === 'invalid' ? 'head' as const : 'body' as const,
      method: m.name,
      path: t.path,
      body: fr.body,
      complete: fr.complete,
      ...(fr.declaredLength !== undefined ? { declaredLength: fr.declaredLength } : {}),
      persistent: !http10 && !connection.close && v.major === 1 && v.minor === 1,
      may501: m.may501,
      badVersion: v.bad,
      notes,
      [fc.toStringMethod]: () => `${JSON.stringify(bytes.length > 300 ? `${bytes.slice(0, 300)}…(${bytes.length} bytes)` : bytes)} [${verdict}${notes.length > 0 ? `: ${notes.join('; ')}` : ''}]`,
    };
  });
}

const ending: fc.Arbitrary<Ending> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'keep' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'half' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'abort' as const }) },
  { weight: 2, arbitrary: fc.double({ min: 0.05, max: 0.98, noNaN: true }).map((at) => ({ kind: 'cut' as const, at })) },
);

/** 1-3 pipelined requests and how the client ends the connection. */
export function wireCase(options: RequestOptions & { maxRequests?: number } = {}): fc.Arbitrary<WireCase> {
  return fc.record({ requests: fc.array(wireRequest(options), { minLength: 1, maxLength: options.maxRequests ?? 3 }), ending });
}

/** Fill the ID placeholders of a case with real ids (ids[i] for request i, each ID_LENGTH long). */
export function instantiate(text: string, id: string): string {
  if (id.length !== ID_LENGTH) throw new Error(`id ${id} is not ${ID_LENGTH} characters`);
  return text.split(ID).join(id);
}

/**
 * Requests Fulcrum answers itself before it reads their body (400 for a
 * duplicate or missing Host or a bad Transfer-Encoding, 404 off the routes,
 * 413 over maxBodySize, 431 for a head over 16 KiB), with the body only partly
 * sent and the client then leaving: the paths issue 20 (F4) asks to check.
 */
export function refusalCase(): fc.Arbitrary<WireCase> {
  return fc.record({
    method: fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'QUERY'),
    routed: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    fault: fc.constantFrom('duplicate Host', 'duplicate differing Host', 'no Host', 'Content-Length over maxBodySize', 'head over 16 KiB', 'Transfer-Encoding: gzip, chunked', 'Transfer-Encoding in HTTP/1.0', 'none'),
    hostAfter: fc.boolean(),
    body: bodyBytes,
    sent: fc.double({ min: 0, max: 0.95, noNaN: true }),
    ending: fc.oneof({ weight: 3, arbitrary: fc.constant({ kind: 'abort' as const }) }, { weight: 2, arbitrary: fc.constant({ kind: 'half' as const }) }, { weight: 1, arbitrary: fc.constant({ kind: 'keep' as const }) }),
  }).map(({ method: m, routed, fault, hostAfter, body, sent, ending }): WireCase => {
    const path = routed ? `/fz/${ID}` : `/elsewhere/${ID}`;
    const chunked = fault.startsWith('Transfer-Encoding');
    const version = fault === 'Transfer-Encoding in HTTP/1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
    const framingLines = fault === 'Transfer-Encoding: gzip, chunked' ? 'Transfer-Encoding: gzip, chunked\r\n'
      : fault === 'Transfer-Encoding in HTTP/1.0' ? 'Transfer-Encoding: chunked\r\n'
      : `Content-Length: ${fault === 'Content-Length over maxBodySize' ? 10_000_000 : body.length}\r\n`;
    const extraHost = fault === 'duplicate Host' ? 'Host: localhost\r\n' : fault === 'duplicate differing Host' ? 'Host: other\r\n' : '';
    const host = fault === 'no Host' ? '' : 'Host: localhost\r\n';
    const big = fault === 'head over 16 KiB' ? `X-Big: ${'v'.repeat(17_000)}\r\n` : '';
    // As in issue 20's F4: the second Host after the framing header.
    const head = `${m} ${path} ${version}\r\n${host}${hostAfter ? framingLines + extraHost : extraHost + framingLines}${big}\r\n`;
    const payload = chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
    const cut = payload.slice(0, Math.floor(payload.length * sent));
    const verdict: Verdict = fault === 'none' ? 'either' : fault === 'Content-Length over maxBodySize' ? 'either' : 'invalid';
    const notes = [fault, routed ? 'routed' : 'no route (404)', `${cut.length} of ${payload.length} body bytes sent`];
    const bytes = head + cut;
    return {
      requests: [{
        bytes, verdict, stage: 'head', method: m, path: routed ? path : undefined, body, complete: false, persistent: false, may501: m === 'QUERY', badVersion: false, notes,
        [fc.toStringMethod]: () => `${JSON.stringify(bytes.length > 300 ? `${bytes.slice(0, 300)}…(${bytes.length} bytes)` : bytes)} [${verdict}: ${notes.join('; ')}]`,
      } as WireRequest],
      ending,
    };
  });
}
