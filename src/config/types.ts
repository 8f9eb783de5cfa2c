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

export interface TlsConfig {
  /** Absolute paths (relative paths in the file are resolved against the file's folder). */
  readonly cert: string;
  readonly key: string;
  readonly minVersion: TlsMinVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). */
  readonly ciphers: string;
}

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface RouteConfig {
  /** Lower-cased host without port; undefined = any host. */
  readonly host?: string;
  /** undefined = any path. */
  readonly pathPrefix?: string;
  readonly pool: string;
  readonly stripPrefix: boolean;
}

export interface ListenerConfig extends Address {
  readonly name: string;
  readonly tls?: TlsConfig;
  readonly http2: boolean;
  readonly limits: LimitsConfig;
  readonly routes: readonly RouteConfig[];
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
  readonly path: string;
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

export interface PoolConfig {
  readonly name: string;
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
