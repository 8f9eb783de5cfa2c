/**
 * The JSON of the admin API (SPEC section 5) that the dashboard reads. The
 * builders in server.ts are typed with these, so the compiler holds the server
 * and the page (src/admin/dashboard/, a browser program of its own) to the
 * same shapes.
 *
 * A declaration file because it is the one file both programs share and
 * neither may emit it: as a .ts, the node build would write
 * dist/admin/api-json.js as CommonJS and the browser build the same path as
 * an ES module. Types only, so nothing is lost. The node tsconfigs skip
 * checking .d.ts files (skipLibCheck); the browser tsconfig checks it.
 */

/** Pool's BackendState, as the API writes it. */
export type BackendStateJson = 'up' | 'down' | 'ejected' | 'draining';

/** A backend in `GET /api/pools`, and the answer to drain, enable and PUT. */
export interface BackendJson {
  readonly name: string;
  readonly url: string;
  readonly state: BackendStateJson;
  /** The configured weight. */
  readonly weight: number;
  readonly backup: boolean;
  readonly activeRequests: number;
  /** Cumulative since start. */
  readonly requests: number;
  /** Cumulative since start. */
  readonly failures: number;
}

/** A backend in `GET /api/overview`: also slow start's weight and recent latency. */
export interface BackendOverviewJson extends BackendJson {
  readonly effectiveWeight: number;
  /** null until the backend has answered. */
  readonly latencyMs: { readonly p50: number; readonly p99: number } | null;
}

export interface PoolJson<B extends BackendJson> {
  readonly name: string;
  readonly strategy: string;
  readonly backends: readonly B[];
}

/** `GET /api/pools` */
export interface PoolsJson {
  readonly pools: readonly PoolJson<BackendJson>[];
}

/** What a route does (SPEC 8): exactly one of pool, pools, redirect, respond. */
export type RouteKindJson = 'pool' | 'pools' | 'redirect' | 'respond';

export interface RouteJson {
  /** Its hosts joined with ", "; null: any host. */
  readonly host: string | null;
  readonly hosts: readonly string[] | null;
  readonly pathPrefix: string | null;
  readonly path: string | null;
  readonly pathRegex: string | null;
  readonly methods: readonly string[] | null;
  /** Header and query conditions, as "name=value" or "name~regex". */
  readonly headers: readonly string[] | null;
  readonly query: readonly string[] | null;
  readonly kind: RouteKindJson;
  /** kind "pool": its pool; null otherwise. */
  readonly pool: string | null;
  /** kind "pools": the weighted split. */
  readonly pools: readonly { readonly pool: string; readonly weight: number }[] | null;
  /** kind "redirect": the parts it replaces and its status. */
  readonly redirect: { readonly scheme: string | null; readonly host: string | null; readonly port: number | null; readonly path: string | null; readonly status: number } | null;
  /** kind "respond": the fixed answer's status. */
  readonly respond: { readonly status: number } | null;
  readonly mirror: { readonly pool: string; readonly percent: number } | null;
  /** stripPrefix or rewrite, as text ("strip /v1/", "^/old/(.*)$ → /new/$1", "→ /fixed"); null: none. */
  readonly rewrite: string | null;
  /** The route has requestHeaders / responseHeaders rules. */
  readonly requestHeaders: boolean;
  readonly responseHeaders: boolean;
}

export interface ListenerJson {
  readonly name: string;
  /** host:port, the bound port when the config says 0. */
  readonly listen: string;
  readonly tls: boolean;
  /** In config order: the first match wins. */
  readonly routes: readonly RouteJson[];
}

/** The certificate a TLS listener serves (SPEC 9.4). */
export interface CertificateJson {
  readonly listener: string;
  /** `file` (tls.cert), `acme` (obtained), `placeholder` (self-signed, until ACME's first certificate). */
  readonly source: 'file' | 'acme' | 'placeholder';
  readonly names: readonly string[];
  readonly issuer: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

/** `GET /api/overview` */
export interface OverviewJson {
  readonly pools: readonly PoolJson<BackendOverviewJson>[];
  readonly listeners: readonly ListenerJson[];
  /** One per TLS listener. */
  readonly certificates: readonly CertificateJson[];
  /** With a `cluster` block: what `GET /api/cluster` answers (the dashboard warns when configs disagree). */
  readonly cluster?: ClusterJson;
}

/** One replica in `GET /api/cluster` (SPEC section 10). */
export interface ReplicaJson {
  readonly name: string;
  /** Its admin API's host:port. */
  readonly address: string;
  /** Epoch ms of its last heartbeat. */
  readonly lastSeen: number;
  readonly version: string;
  readonly configHash: string;
}

/** `GET /api/cluster` */
export interface ClusterJson {
  readonly name: string;
  readonly redis: 'up' | 'down';
  readonly replicas: readonly ReplicaJson[];
  /** Present (false) only when the replicas' configHash values differ. */
  readonly configsAgree?: false;
}

export interface StateChangeJson {
  /** Epoch ms. */
  readonly time: number;
  readonly from: BackendStateJson;
  readonly to: BackendStateJson;
  readonly reason: string;
}

export interface ProbeJson {
  /** Epoch ms. */
  readonly time: number;
  readonly ok: boolean;
  /** HTTP status, when there was a response. */
  readonly status?: number;
  /** What went wrong, when there was no (acceptable) response. */
  readonly error?: string;
  readonly latencyMs: number;
}

export interface FailureJson {
  /** Epoch ms. */
  readonly time: number;
  readonly reason: string;
}

/** `GET /api/pools/{pool}/backends/{backend}`: the explain view, oldest entry first in each list. */
export interface BackendDetailJson extends BackendOverviewJson {
  readonly pool: string;
  readonly probes: readonly ProbeJson[];
  readonly recentFailures: readonly FailureJson[];
  readonly stateChanges: readonly StateChangeJson[];
}

/** A status class of the listeners' status-code mix. */
export type StatusClassJson = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** One pool's or backend's figures per sample, oldest first; null where there is no value (no request in that interval). */
export interface HistorySeriesJson {
  /** Requests per second. */
  readonly requestRate: readonly (number | null)[];
  /** Percent of the requests answered with a 5xx. */
  readonly errorRate: readonly (number | null)[];
  readonly p99Ms: readonly (number | null)[];
}

/** `GET /api/history`: the dashboard's charts, the last 15 minutes sampled every `intervalMs`. */
export interface HistoryJson {
  readonly intervalMs: number;
  readonly windowMs: number;
  /** Epoch ms of each sample, oldest first; every series has one value per time. */
  readonly times: readonly number[];
  readonly pools: readonly (HistorySeriesJson & { readonly name: string; readonly backends: readonly (HistorySeriesJson & { readonly name: string })[] })[];
  /** Requests per second by status class. */
  readonly listeners: readonly { readonly name: string; readonly codes: Readonly<Record<StatusClassJson, readonly (number | null)[]>> }[];
}

/** Every error answer. */
export interface ErrorJson {
  readonly error: string;
}
