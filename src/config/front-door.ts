/**
 * The front door's keys (SPEC 8.3, 8.4, 8.5): a route's `access` and
 * `compress`, a listener's `trustedProxies`. Leaf parsers and their strict
 * sub-schemas live here, so schema.ts only names the keys.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { z } from 'zod';
import { duration, leaf, strict } from './builders';
import { show } from './units';
import { Invalid, fsReason, sizeValue, urlOf } from './values';
import type { AccessConfig, CompressConfig, CompressionAlgorithm } from './types';

/** RFC 9110 §5.6.2 token: a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A bcrypt hash as htpasswd -B (and every bcrypt library) writes it: $2a$, $2b$ or $2y$, a cost, 53 characters of salt and hash. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** Whether this Node.js has zstd in node:zlib (22.15 and 23.8 onwards). */
export const ZSTD_AVAILABLE = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function';

const ALGORITHMS: readonly CompressionAlgorithm[] = ['br', 'gzip', 'zstd'];

export const DEFAULT_COMPRESS_TYPES: readonly string[] = [
  'text/*', 'application/json', 'application/javascript', 'application/xml', 'image/svg+xml',
];

/**
 * "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1": an address or a CIDR,
 * written back in one form ("ADDRESS/PREFIX"). Host bits after the prefix are
 * allowed (as nginx allows them): the prefix decides.
 */
export function cidrValue(v: unknown): string | Invalid {
  const bad = (why: string) => new Invalid(`invalid address or CIDR ${show(v)}: ${why} (e.g. 10.0.0.0/8, 192.168.1.7 or "2001:db8::/32")`);
  if (typeof v !== 'string') return bad('expected a string');
  const slash = v.indexOf('/');
  const address = slash === -1 ? v : v.slice(0, slash);
  const family = net.isIP(address);
  // A zone index ("fe80::1%eth0") names an interface, not an address a client has.
  if (family === 0 || address.includes('%')) return bad('not an IPv4 or IPv6 address');
  const max = family === 4 ? 32 : 128;
  if (slash === -1) return `${address}/${max}`;
  const prefix = v.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return bad(`the prefix length must be a whole number from 0 to ${max}`);
  return `${address}/${Number(prefix)}`;
}

/** A list of addresses or CIDRs (one alone is a list of one). */
const cidrList = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(leaf(cidrValue)));

function headerName(v: unknown): string | Invalid {
  return typeof v === 'string' && TOKEN.test(v) ? v.toLowerCase() : new Invalid(`invalid header name ${show(v)}`);
}

function bcryptHash(v: unknown): string | Invalid {
  if (typeof v === 'string' && BCRYPT.test(v)) return v;
  return new Invalid('expected a bcrypt hash ($2a$, $2b$ or $2y$, as `htpasswd -nB USER` writes it): plain-text passwords are not accepted');
}

function userName(v: string): boolean {
  return v !== '' && !v.includes(':') && !/[\x00-\x1f\x7f]/.test(v);
}

/**
 * An htpasswd file with bcrypt lines ("alice:$2y$05$..."); blank lines and
 * "#" comments are skipped. Read at validation (and at each reload), so a
 * missing file or a plain-text line is found before the config is used.
 */
export function htpasswdFile(baseDir: string) {
  return (v: unknown): Record<string, string> | Invalid => {
    if (typeof v !== 'string' || v === '') return new Invalid(`usersFile must be a file path, got ${show(v)}`);
    const resolved = path.resolve(baseDir, v);
    let text: string;
    try {
      // Only a regular file: reading a FIFO would block validation.
      if (!fs.statSync(resolved).isFile()) return new Invalid(`cannot read usersFile ${show(v)} (${resolved}): not a file`);
      text = fs.readFileSync(resolved, 'utf8');
    } catch (err) {
      return new Invalid(`cannot read usersFile ${show(v)} (${resolved}): ${fsReason(err)}`);
    }
    const users: Record<string, string> = Object.create(null) as Record<string, string>;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const user = colon === -1 ? '' : line.slice(0, colon);
      if (!userName(user)) return new Invalid(`usersFile ${show(v)} line ${i + 1}: expected USER:BCRYPT-HASH`);
      if (!BCRYPT.test(line.slice(colon + 1))) {
        return new Invalid(`usersFile ${show(v)} line ${i + 1}: user ${JSON.stringify(user)} has no bcrypt hash (plain text, or another scheme: write it with htpasswd -B)`);
      }
      users[user] = line.slice(colon + 1);
    }
    if (Object.keys(users).length === 0) return new Invalid(`usersFile ${show(v)} names no user`);
    return users;
  };
}

function authUrl(v: unknown): string | Invalid {
  const u = urlOf(v, ['http:', 'https:']);
  if (u === undefined || u.username !== '' || u.password !== '' || u.hash !== '') {
    return new Invalid(`forwardAuth url must be an http:// or https:// URL such as http://auth.internal:9000/verify, got ${show(v)}`);
  }
  return u.href;
}

function algorithm(v: unknown): CompressionAlgorithm | Invalid {
  if (v === 'zstd' && !ZSTD_AVAILABLE) {
    return new Invalid(`compress algorithm zstd needs Node.js 22.15 or later (zlib.createZstdCompress); this is Node.js ${process.versions.node}`);
  }
  if (typeof v === 'string' && (ALGORITHMS as readonly string[]).includes(v)) return v as CompressionAlgorithm;
  return new Invalid(`unknown compress algorithm ${show(v)}: expected ${ALGORITHMS.join(', ')}`);
}

function mediaRange(v: unknown): string | Invalid {
  if (typeof v === 'string' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/(\*|[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/.test(v) && !v.startsWith('*')) return v.toLowerCase();
  return new Invalid(`invalid media type ${show(v)}: expected type/subtype or type/*, e.g. text/* or application/json`);
}

export function accessSchema(baseDir: string) {
  return strict({
    allow: cidrList.optional(),
    deny: cidrList.optional(),
    basicAuth: strict({
      realm: z.string().min(1).refine((r) => !/["\\\x00-\x1f\x7f]/.test(r), { error: 'realm must not hold quotes, backslashes or control characters' }),
      users: z.record(z.string().refine(userName, { error: 'a user name must not be empty or hold ":"' }), leaf(bcryptHash)).optional(),
      usersFile: leaf(htpasswdFile(baseDir)).optional(),
    }).superRefine((b, ctx) => {
      if ((b.users === undefined) === (b.usersFile === undefined)) {
        ctx.addIssue({ code: 'custom', message: 'basicAuth needs exactly one of users and usersFile', input: b });
      } else if (b.users !== undefined && Object.keys(b.users).length === 0) {
        ctx.addIssue({ code: 'custom', path: ['users'], message: 'basicAuth.users names no user', input: b.users });
      }
    }).optional(),
    forwardAuth: strict({
      url: leaf(authUrl),
      timeout: duration(2_000, true),
      requestHeaders: z.array(leaf(headerName)).optional(),
      responseHeaders: z.array(leaf(headerName)).default([]),
    }).optional(),
  }).transform((a): AccessConfig => ({
    ...(a.allow !== undefined ? { allow: a.allow } : {}),
    ...(a.deny !== undefined ? { deny: a.deny } : {}),
    ...(a.basicAuth !== undefined
      ? { basicAuth: { realm: a.basicAuth.realm, users: { ...(a.basicAuth.users ?? a.basicAuth.usersFile!) } } }
      : {}),
    ...(a.forwardAuth !== undefined
      ? {
          forwardAuth: {
            url: a.forwardAuth.url,
            timeoutMs: a.forwardAuth.timeout,
            ...(a.forwardAuth.requestHeaders !== undefined ? { requestHeaders: a.forwardAuth.requestHeaders } : {}),
            responseHeaders: a.forwardAuth.responseHeaders,
          },
        }
      : {}),
  }));
}

const compressBlock = strict({
  algorithms: z.array(leaf(algorithm)).min(1).default(['br', 'gzip']),
  minSize: leaf(sizeValue).default(1024),
  types: z.array(leaf(mediaRange)).min(1).default([...DEFAULT_COMPRESS_TYPES]),
});

/** `compress: true` (the defaults), `false` (off), or a block. */
export const compressSchema = z.preprocess(
  (v) => (v === true ? {} : v === false ? undefined : v),
  compressBlock.optional(),
).transform((c): CompressConfig | undefined => (c === undefined
  ? undefined
  : { algorithms: [...new Set(c.algorithms)], minSize: c.minSize, types: c.types }));

export const trustedProxiesSchema = cidrList;
