/**
 * The validated, normalised, frozen configuration. Durations are milliseconds,
 * sizes are bytes, maps from the YAML file become arrays in file order with the
 * key as `name`. Nothing downstream ever sees raw YAML.
 */

export type StrategyName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'least-connections'
  | 'random'
  | 'power-of-two'
  | 'ewma'
  | 'consistent-hash';

export const STRATEGY_NAMES: readonly StrategyName[] = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'random',
  'power-of-two',
  'ewma',
  'consistent-hash',
];

/** What consistent-hash hashes: the client address, a header, a cookie, or the path. */
export type HashOn =
  | { readonly kind: 'ip' }
  | { readonly kind: 'header'; readonly name: string } // name lower-cased
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'path' };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export type RetryCondition = 'connect-failure' | 'reset' | 'timeout' | '502' | '503' | '504';

export interface Address {
  /** Host as written, without IPv6 brackets ("0.0.0.0", "::", "127.0.0.1", "localhost"). */
  readonly host: string;
  readonly port: number;
}

export interface AdminConfig extends Address {
  readonly token?: string;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly access: boolean;
}

/** `local`: this process's own state; `cluster`: shared by every replica through Redis (SPEC section 10). */
export type Scope = 'local' | 'cluster';

export interface RateLimitConfig {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly scope: Scope;
  readonly key: { readonly kind: 'ip' } | { readonly kind: 'header'; readonly name: string };
}

export interface LimitsConfig {
  /** Bytes; 0 = unlimited. */
  readonly maxBodySize: number;
  readonly headersTimeoutMs: number;
  /** A client that sends no body byte for this long is cut off (408 before the answer started). */
  readonly bodyTimeoutMs: number;
  /** How long an idle keep-alive client connection stays open. */
  readonly keepAliveTimeoutMs: number;
  /** Open connections per listener; 0 = unlimited. Beyond it, new connections are closed at once. */
  readonly maxConnections: number;
  readonly rateLimit?: RateLimitConfig;
}

export interface AcmeConfig {
  readonly directory: string;
  readonly email?: string;
  readonly domains: readonly string[];
  /** Absolute path of the folder for the account key and certificates. */
  readonly storage: string;
  /** Absolute path of a CA file to trust for the directory (test servers such as pebble). */
  readonly ca?: string;
}

export type ClientAuth = 'none' | 'optional' | 'require';

export interface TlsConfig {
  /** Absolute paths (relative paths in the file are resolved against the file's folder). Both, or `acme`. */
  readonly cert?: string;
  readonly key?: string;
  /** Certificates obtained and renewed automatically (SPEC 9.4) instead of cert and key. */
  readonly acme?: AcmeConfig;
  /** Absolute path: CAs whose client certificates are asked for. */
  readonly clientCa?: string;
  readonly clientAuth: ClientAuth;
  readonly minVersion: TlsMinVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). */
  readonly ciphers: string;
}

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

/** A header or query condition: the value as sent (`exact`) or a regex source; names of headers lower-cased. */
export interface ValueMatchConfig {
  readonly name: string;
  readonly exact?: string;
  readonly regex?: string;
}

/** SPEC 8: every condition given must hold; an empty match holds for every request. */
export interface RouteMatchConfig {
  /** Lower-cased hosts without port; "*.example.com" covers any subdomain. undefined = any host. */
  readonly hosts?: readonly string[];
  /** Exact path (no query string). */
  readonly path?: string;
  readonly pathPrefix?: string;
  /** A JavaScript regex source, checked for super-linear backtracking at validation. */
  readonly pathRegex?: string;
  readonly methods?: readonly string[];
  readonly headers?: readonly ValueMatchConfig[];
  /** Compared with decoded query values. */
  readonly query?: readonly ValueMatchConfig[];
}

/** remove, then set (replaces), then add (appends). Names to remove lower-cased; set and add keep the case written. */
export interface HeaderRulesConfig {
  readonly remove: readonly string[];
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
}

export interface RedirectConfig {
  readonly scheme?: 'http' | 'https';
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly status: 301 | 302 | 303 | 307 | 308;
}

export interface RespondConfig {
  readonly status: number;
  readonly body: string;
  readonly headers: readonly (readonly [string, string])[];
}

export type RewriteConfig =
  | { readonly pathRegex: string; readonly replacement: string }
  | { readonly path: string };

export interface MirrorConfig {
  readonly pool: string;
  /** 0-100: share of requests copied. */
  readonly percent: number;
  /** Bytes: a request with a bigger body is not mirrored. */
  readonly maxBodySize: number;
}

export interface WeightedPoolConfig {
  readonly pool: string;
  /** 0-10000; 0 takes nothing. */
  readonly weight: number;
}

/** SPEC 8: exactly one of pool, pools, redirect, respond is set. */
export interface RouteConfig {
  readonly match: RouteMatchConfig;
  readonly pool?: string;
  readonly pools?: readonly WeightedPoolConfig[];
  readonly redirect?: RedirectConfig;
  readonly respond?: RespondConfig;
  readonly stripPrefix: boolean;
  readonly rewrite?: RewriteConfig;
  readonly requestHeaders?: HeaderRulesConfig;
  readonly responseHeaders?: HeaderRulesConfig;
  /** Overrides the pool's, key by key. */
  readonly timeouts?: { readonly connectMs?: number; readonly responseMs?: number };
  /** Replaces the pool's block. */
  readonly retries?: RetriesConfig;
  readonly mirror?: MirrorConfig;
  /** SPEC 8.3; undefined = every client may pass. */
  readonly access?: AccessConfig;
  /** SPEC 8.5; undefined = answers pass as they are. */
  readonly compress?: CompressConfig;
}

/** SPEC 8.3. Addresses and CIDRs are written "ADDRESS/PREFIX". */
export interface AccessConfig {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
  /** `users`: user → bcrypt hash, from the file or from `usersFile` (read at load). */
  readonly basicAuth?: { readonly realm: string; readonly users: Readonly<Record<string, string>> };
  readonly forwardAuth?: ForwardAuthConfig;
}

export interface ForwardAuthConfig {
  readonly url: string;
  readonly timeoutMs: number;
  /** Lower-cased; undefined = every header of the client's request. */
  readonly requestHeaders?: readonly string[];
  /** Lower-cased; copied from a 2xx answer onto the request to the backend. */
  readonly responseHeaders: readonly string[];
}

export type CompressionAlgorithm = 'br' | 'gzip' | 'zstd';

/** SPEC 8.5. */
export interface CompressConfig {
  /** In the order that breaks ties between equal q-values. */
  readonly algorithms: readonly CompressionAlgorithm[];
  /** Bytes: a Content-Length below it is sent as it is. */
  readonly minSize: number;
  /** Lower-cased "type/subtype" or "type/*". */
  readonly types: readonly string[];
}

export interface ListenerConfig extends Address {
  readonly name: string;
  readonly tls?: TlsConfig;
  readonly http2: boolean;
  /** SPEC 9.3: connections begin with a PROXY header; `trusted`: only from these peers (CIDRs); undefined = off. */
  readonly proxyProtocol?: { readonly trusted?: readonly string[] };
  readonly limits: LimitsConfig;
  readonly routes: readonly RouteConfig[];
  /** SPEC 8.4: "ADDRESS/PREFIX" of the proxies whose X-Forwarded-For is believed; undefined = none. */
  readonly trustedProxies?: readonly string[];
}

export interface BackendConfig {
  /** Origin only, normalised: "http://10.0.0.21:8080" (scheme http or https, explicit port). */
  readonly url: string;
  /** Default: host:port of the url. Unique within the pool. */
  readonly name: string;
  readonly weight: number;
  readonly backup: boolean;
}

export interface HealthCheckConfig {
  /** The GET's path; unused with `grpc`. */
  readonly path: string;
  /** SPEC 9.1: a grpc.health.v1.Health/Check of this service ("" = the server as a whole) instead of a GET. */
  readonly grpc?: { readonly service: string };
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** Inclusive ranges, e.g. [[200, 399]]. */
  readonly expectStatus: readonly (readonly [number, number])[];
}

export interface OutlierDetectionConfig {
  readonly consecutiveFailures: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly scope: Scope;
}

export interface RetriesConfig {
  /** Extra attempts on another backend; 0 = none. */
  readonly attempts: number;
  readonly on: readonly RetryCondition[];
}

export interface TimeoutsConfig {
  readonly connectMs: number;
  /** Until response headers. */
  readonly responseMs: number;
  /** Idle keep-alive sockets to backends. */
  readonly idleMs: number;
}

export interface DnsDiscoveryConfig {
  readonly name: string;
  readonly port: number;
  readonly refreshMs: number;
  /** "host:port" of the resolver to ask; undefined = the system's. */
  readonly server?: string;
}

/** How a pool speaks to its backends (SPEC 9.1). */
export const POOL_PROTOCOLS = ['http1', 'http2'] as const;
export type PoolProtocol = (typeof POOL_PROTOCOLS)[number];

export interface PoolConfig {
  readonly name: string;
  /** http2: h2c with prior knowledge for http://, ALPN h2 for https://. */
  readonly protocol: PoolProtocol;
  readonly strategy: StrategyName;
  /** Only for consistent-hash; defaults to ip there. */
  readonly hashOn?: HashOn;
  readonly backends: readonly BackendConfig[];
  readonly discovery?: { readonly dns?: DnsDiscoveryConfig };
  /** undefined = no active checks; backends count as up. */
  readonly healthCheck?: HealthCheckConfig;
  /** undefined = no passive checks. */
  readonly outlierDetection?: OutlierDetectionConfig;
  readonly slowStartMs: number;
  readonly retries: RetriesConfig;
  readonly timeouts: TimeoutsConfig;
  /** 0 = unlimited. */
  readonly maxConnectionsPerBackend: number;
  /** Percent, 0 = off. */
  readonly panicThreshold: number;
  /** `secret`: the key of the cookie's tokens, for replicas that must agree; else each Fulcrum (with its workers) makes one. */
  readonly sticky?: { readonly cookie: string; readonly secret?: string };
  /** SPEC 9.3: every new backend connection starts with a PROXY header of this version. */
  readonly proxyProtocol?: 'v1' | 'v2';
  /** SPEC 9.4: TLS towards https:// backends. */
  readonly tls?: PoolTlsConfig;
}

/** Pool `tls`, with the PEM files' contents read at load (a reload reads them again). */
export interface PoolTlsConfig {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** SNI and the name verified; undefined = each backend url's host. */
  readonly serverName?: string;
  readonly verify: boolean;
  /** Where they came from (absolute paths), for messages. */
  readonly files: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** SPEC section 12. */
export interface TracingConfig {
  readonly otlp: {
    /** The collector's OTLP/HTTP traces URL. */
    readonly endpoint: string;
    readonly encoding: 'protobuf' | 'json';
    /** Lower-cased names. */
    readonly headers: Readonly<Record<string, string>>;
  };
  /** 0 to 1: the share of the traces Fulcrum starts itself that are sampled. */
  readonly sampleRatio: number;
  readonly serviceName: string;
  /** Finished spans waiting for export; beyond it they are dropped (and counted). */
  readonly maxQueueSize: number;
}

export interface Config {
  /** Absolute path of the file this came from (for reload and relative paths). */
  readonly file: string;
  readonly workers: number | 'auto';
  readonly shutdownTimeoutMs: number;
  /**
   * SIGTERM/SIGINT: /readyz answers 503 at once, and the listeners keep
   * accepting this long before the drain, so keepalived (or a Kubernetes
   * Service) moves traffic away before connections are refused.
   */
  readonly shutdownDelayMs: number;
  readonly log: LogConfig;
  readonly admin: AdminConfig;
  /** undefined = no tracing (nothing per request). */
  readonly tracing?: TracingConfig;
  readonly listeners: readonly ListenerConfig[];
  readonly pools: readonly PoolConfig[];
  /** undefined: this replica is on its own. */
  readonly cluster?: ClusterConfig;
}

/** SPEC section 10: replicas that share admin actions, rate limits and ejections through Redis. */
export interface ClusterConfig {
  /** redis://[user:password@]host:port[/db] or rediss:// (TLS). */
  readonly redis: string;
  /** Replicas with the same name form one cluster (the key prefix in Redis). */
  readonly name: string;
  /** This replica's name; undefined: hostname:pid. */
  readonly replica?: string;
}
