import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * A tiny authoritative DNS server over UDP for tests (RFC 1035 wire format,
 * written by hand): A and AAAA answers from a mutable map, NXDOMAIN for names
 * it does not know, NOERROR with no answers (NODATA) when a known name has no
 * record of the asked type, and a failure mode (SERVFAIL, or no answer at all
 * so the client times out).
 */

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

export interface DnsRecords {
  a: string[];
  aaaa: string[];
}

export interface DnsQuery {
  /** Lower-cased, no trailing dot. */
  readonly name: string;
  readonly type: number;
}

export interface TestDnsServer {
  readonly port: number;
  /** "127.0.0.1:PORT", as a resolver address for `setServers` or the config. */
  readonly address: string;
  /** Name (lower-case, no trailing dot) → records; change it at any time. */
  readonly records: Map<string, DnsRecords>;
  /** undefined: answer normally; 'servfail': rcode 2; 'drop': no answer at all. */
  fail: 'servfail' | 'drop' | undefined;
  /** Every query received, in order (also the dropped ones). */
  readonly queries: DnsQuery[];
  close(): Promise<void>;
}

interface ParsedQuery {
  readonly id: number;
  readonly flags: number;
  readonly name: string;
  readonly type: number;
  readonly klass: number;
  /** Offset just past the question section. */
  readonly questionEnd: number;
}

/** Header plus exactly one question; undefined for anything malformed. */
export function parseQuery(msg: Buffer): ParsedQuery | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return undefined; // a response, not a query
  if (msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    if (len === 0) {
      off += 1;
      break;
    }
    if ((len & 0xc0) !== 0) return undefined; // no compression inside a lone question
    if (off + 1 + len > msg.length) return undefined;
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  return {
    id,
    flags,
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(off),
    klass: msg.readUInt16BE(off + 2),
    questionEnd: off + 4,
  };
}

/** 16 bytes of an IPv6 address in text form ("::1", "2001:db8::5"); no embedded IPv4. */
export function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address) || address.includes('.')) throw new Error(`not a plain IPv6 address: ${address}`);
  const [head, tail] = address.includes('::') ? address.split('::') as [string, string] : [address, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function ipv4Bytes(address: string): Buffer {
  if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(address.split('.').map(Number));
}

/** One resource record whose owner name points at the question's QNAME (offset 12). */
function answer(type: number, rdata: Buffer, ttl: number): Buffer {
  const rr = Buffer.alloc(12 + rdata.length);
  rr.writeUInt16BE(0xc00c, 0); // compression pointer to the QNAME
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(rdata.length, 10);
  rdata.copy(rr, 12);
  return rr;
}

/** The reply to `query` (the question echoed byte for byte) with `rcode` and `answers`. */
function reply(msg: Buffer, q: ParsedQuery, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode, AA, the query's RD; RA clear (we do not recurse).
  header.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  return Buffer.concat([header, msg.subarray(12, q.questionEnd), ...answers]);
}

/** The answer for one query, or undefined when there is none to send. */
export function respond(msg: Buffer, records: ReadonlyMap<string, DnsRecords>, fail?: 'servfail' | 'drop', ttl = 1): Buffer | undefined {
  const q = parseQuery(msg);
  if (q === undefined) {
    if (msg.length < 12) return undefined;
    // Echo the id with FORMERR and no question.
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8000 | RCODE_FORMERR, 2);
    return header;
  }
  if (fail === 'drop') return undefined;
  if (fail === 'servfail') return reply(msg, q, RCODE_SERVFAIL, []);
  if ((q.flags & 0x7800) !== 0) return reply(msg, q, RCODE_NOTIMP, []);
  const entry = records.get(q.name);
  if (entry === undefined) return reply(msg, q, RCODE_NXDOMAIN, []);
  if (q.klass !== CLASS_IN) return reply(msg, q, RCODE_NOERROR, []);
  const answers = q.type === TYPE_A ? entry.a.map((a) => answer(TYPE_A, ipv4Bytes(a), ttl))
    : q.type === TYPE_AAAA ? entry.aaaa.map((a) => answer(TYPE_AAAA, ipv6Bytes(a), ttl))
      : [];
  return reply(msg, q, RCODE_NOERROR, answers);
}

/** Start the server on 127.0.0.1, port 0. */
export async function startDnsServer(initial: Record<string, Partial<DnsRecords>> = {}): Promise<TestDnsServer> {
  const records = new Map<string, DnsRecords>();
  for (const [name, r] of Object.entries(initial)) records.set(name.toLowerCase(), { a: r.a ?? [], aaaa: r.aaaa ?? [] });
  const socket = dgram.createSocket('udp4');
  const queries: DnsQuery[] = [];
  const server: TestDnsServer = {
    port: 0,
    address: '',
    records,
    fail: undefined,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (q !== undefined) queries.push({ name: q.name, type: q.type });
    const out = respond(msg, records, server.fail);
    if (out !== undefined) socket.send(out, rinfo.port, rinfo.address);
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  Object.assign(server, { port, address: `127.0.0.1:${port}` });
  return server;
}
