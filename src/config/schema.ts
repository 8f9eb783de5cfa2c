/**
 * The shape of the config file (README "Configuration"): zod schemas with
 * every default in one place, leaves first, the whole file last. Objects are
 * strict everywhere: a typo must never be silently ignored.
 *
 * Zod sees the file after `${NAME}` interpolation; positions are mapped back to
 * the YAML by load.ts through each issue's `path`. normalise.ts turns what this
 * parses into the `Config` of types.ts; checks.ts holds the rules that span
 * several parts of the file.
 */
import { z } from 'zod';
import { duration, int, leaf, oneOf, strict } from './builders';
import { accessSchema, cidrValue, compressSchema, trustedProxiesSchema } from './front-door';
import { retriesSchema, routeShape } from './routes';
import { POOL_PROTOCOLS, STRATEGY_NAMES, type Address, type LogLevel, type Scope, type TlsMinVersion } from './types';
import {
  DEFAULT_CIPHERS,
  backendName,
  certificateDomain,
  cipherList,
  clusterName,
  cookieName,
  directoryUrl,
  dnsName,
  otlpEndpoint,
  otlpHeaders,
  parseBackendUrl,
  parseExpectStatus,
  parseHashOn,
  parseListen,
  parseRateLimitKey,
  parseRedisUrl,
  pathPrefix,
  replicaName,
  resolverAddress,
  serverNameValue,
  sizeValue,
  storageDir,
  stickySecret,
  tlsFile,
  workersValue,
} from './values';

const CLIENT_AUTH = ['none', 'optional', 'require'] as const;
const PROXY_VERSIONS = ['v1', 'v2'] as const;
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
const TLS_MIN_VERSIONS: readonly TlsMinVersion[] = ['TLSv1.2', 'TLSv1.3'];
const SCOPES: readonly Scope[] = ['local', 'cluster'];

export const DEFAULT_ADMIN: Address = { host: '127.0.0.1', port: 9901 };

/** `healthCheck:` with nothing after it means "on, with the defaults". */
const emptyIsOn = (v: unknown): unknown => (v === null ? {} : v);

const healthCheck = strict({
  path: leaf(pathPrefix).default('/'),
  interval: duration(5_000, true),
  timeout: duration(2_000, true),
  rise: int(1).default(2),
  fall: int(1).default(3),
  expectStatus: leaf(parseExpectStatus).default([[200, 399]]),
  // SPEC 9.1: grpc.health.v1.Health/Check instead of a GET (not with `path`: checks.ts).
  grpc: z.preprocess(emptyIsOn, strict({ service: z.string().default('') })).optional(),
});

const outlierDetection = strict({
  consecutiveFailures: int(1).default(5),
  baseEjectionTime: duration(30_000, true),
  maxEjectionPercent: z.number().min(0).max(100).default(10),
  scope: oneOf('outlierDetection scope', SCOPES).default('local'),
});

const backend = strict({
  url: leaf(parseBackendUrl),
  name: leaf(backendName).optional(),
  weight: int(1, 10_000).default(1),
  backup: z.boolean().default(false),
});

/** Pool `tls` (SPEC 9.4): how Fulcrum speaks to https:// backends. */
function poolTls(baseDir: string) {
  return strict({
    ca: leaf(tlsFile(baseDir, 'tls ca')).optional(),
    cert: leaf(tlsFile(baseDir, 'tls cert')).optional(),
    key: leaf(tlsFile(baseDir, 'tls key')).optional(),
    serverName: leaf(serverNameValue).optional(),
    verify: z.boolean().default(true),
  });
}

const pool = (baseDir: string) => strict({
  protocol: oneOf('protocol', POOL_PROTOCOLS).default('http1'),
  strategy: oneOf('strategy', STRATEGY_NAMES).default('round-robin'),
  hashOn: leaf(parseHashOn).optional(),
  backends: z.array(backend).default([]),
  discovery: strict({
    dns: strict({
      name: leaf(dnsName),
      port: int(1, 65_535),
      refresh: duration(30_000, true),
      server: leaf(resolverAddress).optional(),
    }).optional(),
  }).optional(),
  healthCheck: z.preprocess(emptyIsOn, healthCheck).optional(),
  outlierDetection: z.preprocess(emptyIsOn, outlierDetection).optional(),
  slowStart: duration(0),
  retries: retriesSchema.prefault({}),
  timeouts: strict({
    connect: duration(5_000, true),
    response: duration(30_000, true),
    // Shorter than Node's 5 s server keep-alive, so a reused socket does not race the backend's close.
    idle: duration(4_000),
  }).prefault({}),
  maxConnectionsPerBackend: int(0).default(0),
  panicThreshold: z.number().min(0).max(100).default(0),
  sticky: strict({ cookie: leaf(cookieName), secret: leaf(stickySecret).optional() }).optional(),
  proxyProtocol: oneOf('proxyProtocol version', PROXY_VERSIONS).optional(),
  tls: poolTls(baseDir).optional(),
});

/** The routes' keys (routes.ts) and the front door's (SPEC 8.3, 8.5: front-door.ts), whose usersFile is read relative to the file. */
function route(baseDir: string) {
  return strict({
    ...routeShape,
    access: accessSchema(baseDir).optional(),
    compress: compressSchema,
  });
}

const rateLimit = strict({
  requestsPerSecond: z.number().positive(),
  burst: z.number().min(1).optional(),
  key: leaf(parseRateLimitKey).default({ kind: 'ip' }),
  scope: oneOf('rateLimit scope', SCOPES).default('local'),
});

/** SPEC section 10: replicas that share state through Redis. */
const cluster = strict({
  redis: leaf(parseRedisUrl),
  name: leaf(clusterName),
  replica: leaf(replicaName).optional(),
});

function listener(baseDir: string) {
  return strict({
    listen: leaf(parseListen),
    tls: strict({
      // Either cert and key, or acme (checks.ts says which is missing).
      cert: leaf(tlsFile(baseDir, 'tls cert')).optional(),
      key: leaf(tlsFile(baseDir, 'tls key')).optional(),
      acme: strict({
        directory: leaf(directoryUrl),
        email: z.string().min(1).optional(),
        domains: z.array(leaf(certificateDomain)).min(1, { error: 'acme needs at least one domain' }),
        storage: leaf(storageDir(baseDir)),
        ca: leaf(tlsFile(baseDir, 'acme ca')).optional(),
      }).optional(),
      clientCa: leaf(tlsFile(baseDir, 'tls clientCa')).optional(),
      clientAuth: oneOf('tls clientAuth', CLIENT_AUTH).default('none'),
      minVersion: oneOf('tls minVersion', TLS_MIN_VERSIONS).default('TLSv1.2'),
      ciphers: leaf(cipherList).default(DEFAULT_CIPHERS),
    }).optional(),
    http2: z.boolean().default(false),
    // true is `{}` (any peer), false is off; a problem inside `trusted` is reported at its own CIDR.
    proxyProtocol: z.preprocess((v) => (v === true ? {} : v === false ? undefined : v), strict({
      trusted: z.array(leaf(cidrValue)).min(1, { error: 'proxyProtocol.trusted needs at least one CIDR' }).optional(),
    }, { error: 'proxyProtocol must be true, false or { trusted: [CIDR, ...] }' }).optional()),
    limits: strict({
      maxBodySize: leaf(sizeValue).default(0),
      headersTimeout: duration(10_000, true),
      bodyTimeout: duration(60_000, true),
      // node:http's own default, which Fulcrum always used; 0 (never close) is not offered.
      keepAliveTimeout: duration(65_000, true),
      maxConnections: int(0).default(0),
      rateLimit: rateLimit.optional(),
    }).prefault({}),
    routes: z.array(route(baseDir)).min(1, { error: 'a listener needs at least one route' }),
    trustedProxies: trustedProxiesSchema.optional(),
  });
}

/** SPEC section 12: OpenTelemetry tracing, exported over OTLP/HTTP. */
const tracing = strict({
  otlp: strict({
    endpoint: leaf(otlpEndpoint),
    encoding: oneOf('tracing encoding', ['protobuf', 'json'] as const).default('protobuf'),
    headers: leaf(otlpHeaders).default({}),
  }),
  sampleRatio: z.number().min(0).max(1).default(1),
  serviceName: z.string().min(1, { error: 'tracing.serviceName must not be empty' }).default('fulcrum'),
  maxQueueSize: int(1, 1_000_000).default(2048),
});

/**
 * The whole file. `baseDir` is the folder of the config file; relative paths
 * in it (TLS certificates) are resolved against it.
 */
export function fileSchema(baseDir: string) {
  return strict({
    workers: leaf(workersValue).default(1),
    shutdownTimeout: duration(30_000),
    // Active-passive (SPEC section 10): /readyz fails at once, the listeners close this much later.
    shutdownDelay: duration(0),
    log: strict({
      level: oneOf('log level', LOG_LEVELS).default('info'),
      access: z.boolean().default(true),
    }).prefault({}),
    admin: strict({
      listen: leaf(parseListen).default(DEFAULT_ADMIN),
      token: z.string().min(1, { error: 'admin.token must not be empty' }).optional(),
    }).prefault({}),
    tracing: tracing.optional(),
    listeners: z.record(z.string(), listener(baseDir)),
    pools: z.record(z.string(), pool(baseDir)),
    cluster: cluster.optional(),
  });
}

/** The file as parsed: durations in ms and sizes in bytes, but still keyed as in the YAML. */
export type ConfigFile = z.output<ReturnType<typeof fileSchema>>;
