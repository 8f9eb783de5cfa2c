import net from 'node:net';

/**
 * The PROXY protocol header, versions 1 (text) and 2 (binary), as HAProxy's
 * specification (doc/proxy-protocol.txt) writes it: read here off the first
 * bytes of a client connection, and written by encode() for backends.
 * Written by hand: the format is two pages long and a library would bring
 * more than it holds (and none of them is both small and well kept).
 */

/** One side of a proxied connection. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** What a header says: the original connection, or (LOCAL, UNKNOWN) nothing. */
export interface ProxiedConnection {
  readonly source: Endpoint;
  readonly destination: Endpoint;
}

export type HeaderResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `connection` null: LOCAL (v2) or UNKNOWN (v1): the TCP peer stays the source. */
  | { readonly kind: 'ok'; readonly length: number; readonly connection: ProxiedConnection | null };

/** v2's 12-byte signature: "\r\n\r\n\0\r\nQUIT\n". */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v1: "the maximum line lengths the receiver must support including the CRLF are 107". */
const V1_MAX = 107;
const V2_FIXED = 16;

const INCOMPLETE: HeaderResult = { kind: 'incomplete' };

function invalid(reason: string): HeaderResult {
  return { kind: 'invalid', reason };
}

/** `buf` is a prefix of `of` (or the other way round): undecided yet, or a match. */
function agrees(buf: Buffer, of: Buffer): boolean {
  const n = Math.min(buf.length, of.length);
  return buf.subarray(0, n).equals(of.subarray(0, n));
}

/**
 * Reads a header from the first bytes of a connection. Decides as early as
 * the bytes allow: a first byte that starts neither version is invalid at
 * once, so a client speaking HTTP straight away is closed without waiting.
 */
export function parseHeader(buf: Buffer): HeaderResult {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === 0x0d) return agrees(buf, V2_SIGNATURE) ? parseV2(buf) : invalid('not a PROXY protocol v2 signature');
  if (buf[0] === 0x50 /* P */) return agrees(buf, V1_PREFIX) ? parseV1(buf) : invalid('not a PROXY protocol header');
  return invalid('no PROXY protocol header');
}

function parseV1(buf: Buffer): HeaderResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return buf.length >= V1_MAX ? invalid('PROXY v1 line longer than 107 bytes') : INCOMPLETE;
  if (end + 2 > V1_MAX) return invalid('PROXY v1 line longer than 107 bytes');
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  const family = parts[1];
  if (family === 'UNKNOWN') return { kind: 'ok', length: end + 2, connection: null };
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`unknown PROXY v1 protocol ${JSON.stringify(family ?? '')}`);
  if (parts.length !== 6) return invalid('PROXY v1 line needs protocol, two addresses and two ports');
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const ipv = family === 'TCP4' ? 4 : 6;
  if (net.isIP(src) !== ipv || net.isIP(dst) !== ipv) return invalid(`PROXY v1 addresses are not ${family}`);
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp === undefined || dp === undefined) return invalid('PROXY v1 ports must be 0 to 65535');
  return { kind: 'ok', length: end + 2, connection: { source: { address: src, port: sp }, destination: { address: dst, port: dp } } };
}

function v1Port(s: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65_535 ? n : undefined;
}

function parseV2(buf: Buffer): HeaderResult {
  if (buf.length < V2_FIXED) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid(`PROXY v2 version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) return invalid(`PROXY v2 command ${command}`);
  const family = buf[13]!;
  const length = V2_FIXED + buf.readUInt16BE(14);
  if (buf.length < length) return INCOMPLETE;
  // LOCAL: health checks of the balancer in front; the connection is its own.
  if (command === 0) return { kind: 'ok', length, connection: null };
  const body = buf.subarray(V2_FIXED, length);
  switch (family) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4
      if (body.length < 12) return invalid('PROXY v2 IPv4 addresses cut short');
      return {
        kind: 'ok', length,
        connection: {
          source: { address: ipv4(body, 0), port: body.readUInt16BE(8) },
          destination: { address: ipv4(body, 4), port: body.readUInt16BE(10) },
        },
      };
    case 0x21: // TCP over IPv6
    case 0x22:
      if (body.length < 36) return invalid('PROXY v2 IPv6 addresses cut short');
      return {
        kind: 'ok', length,
        connection: {
          source: { address: ipv6(body, 0), port: body.readUInt16BE(32) },
          destination: { address: ipv6(body, 16), port: body.readUInt16BE(34) },
        },
      };
    // UNSPEC and unix sockets carry no address a client could be told by: the peer stays.
    case 0x00: case 0x31: case 0x32:
      return { kind: 'ok', length, connection: null };
    default:
      return invalid(`PROXY v2 address family 0x${family.toString(16)}`);
  }
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + i * 2).toString(16));
  // Through the URL parser's canonical (compressed) form, as sockets report them.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export type ProxyVersion = 'v1' | 'v2';

/** A v4 address as v6 ("::ffff:1.2.3.4") when the other side is v6: one header, one family. */
function family(a: Endpoint, b: Endpoint): { a: Endpoint; b: Endpoint; v6: boolean } | null {
  const fa = net.isIP(a.address);
  const fb = net.isIP(b.address);
  if (fa === 0 || fb === 0) return null;
  if (fa === fb) return { a, b, v6: fa === 6 };
  const mapped = (e: Endpoint) => (net.isIPv4(e.address) ? { address: `::ffff:${e.address}`, port: e.port } : e);
  return { a: mapped(a), b: mapped(b), v6: true };
}

/** v2's LOCAL, v1's UNKNOWN: a connection of Fulcrum's own (health probes). */
export function encodeLocal(version: ProxyVersion): Buffer {
  if (version === 'v1') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const b = Buffer.alloc(V2_FIXED);
  V2_SIGNATURE.copy(b);
  b[12] = 0x20; // version 2, LOCAL
  b[13] = 0x00; // UNSPEC
  return b;
}

/** The header that tells a backend where `c` came from (LOCAL/UNKNOWN when its addresses are unusable). */
export function encodeHeader(version: ProxyVersion, c: ProxiedConnection): Buffer {
  const f = family(c.source, c.destination);
  if (f === null) return encodeLocal(version);
  if (version === 'v1') {
    return Buffer.from(`PROXY ${f.v6 ? 'TCP6' : 'TCP4'} ${f.a.address} ${f.b.address} ${f.a.port} ${f.b.port}\r\n`, 'latin1');
  }
  const addrLen = f.v6 ? 36 : 12;
  const b = Buffer.alloc(V2_FIXED + addrLen);
  V2_SIGNATURE.copy(b);
  b[12] = 0x21; // version 2, PROXY
  b[13] = f.v6 ? 0x21 : 0x11; // TCP over IPv6 / IPv4
  b.writeUInt16BE(addrLen, 14);
  if (f.v6) {
    writeIpv6(b, V2_FIXED, f.a.address);
    writeIpv6(b, V2_FIXED + 16, f.b.address);
    b.writeUInt16BE(f.a.port, V2_FIXED + 32);
    b.writeUInt16BE(f.b.port, V2_FIXED + 34);
  } else {
    writeIpv4(b, V2_FIXED, f.a.address);
    writeIpv4(b, V2_FIXED + 4, f.b.address);
    b.writeUInt16BE(f.a.port, V2_FIXED + 8);
    b.writeUInt16BE(f.b.port, V2_FIXED + 10);
  }
  return b;
}

function writeIpv4(b: Buffer, at: number, address: string): void {
  address.split('.').forEach((part, i) => { b[at + i] = Number(part); });
}

function writeIpv6(b: Buffer, at: number, address: string): void {
  let text = address;
  // A dotted tail (::ffff:1.2.3.4) as two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [, p, q, r, s] = dotted.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), at + i * 2));
}
