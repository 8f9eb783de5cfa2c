/**
 * The parsed file (schema.ts) as the `Config` of types.ts, which load.ts then
 * freezes: maps become arrays in file order with the key as `name`, durations
 * get their `Ms` names, and the defaults that depend on other values (a
 * backend's name, a rate limit's burst, consistent-hash's hashOn) are filled in.
 */
import type { BackendConfig, Config, ListenerConfig, PoolConfig } from './types';
import type { ConfigFile } from './schema';
import { normaliseRoute } from './routes';

/** `file` is the absolute path of the config file. */
export function normalise(c: ConfigFile, file: string): Config {
  return {
    file,
    workers: c.workers,
    shutdownTimeoutMs: c.shutdownTimeout,
    shutdownDelayMs: c.shutdownDelay,
    log: c.log,
    admin: { ...c.admin.listen, ...(c.admin.token !== undefined ? { token: c.admin.token } : {}) },
    listeners: Object.entries(c.listeners).map(([name, l]): ListenerConfig => ({
      name,
      ...l.listen,
      ...(l.tls !== undefined ? { tls: l.tls } : {}),
      http2: l.http2,
      limits: {
        maxBodySize: l.limits.maxBodySize,
        headersTimeoutMs: l.limits.headersTimeout,
        bodyTimeoutMs: l.limits.bodyTimeout,
        keepAliveTimeoutMs: l.limits.keepAliveTimeout,
        maxConnections: l.limits.maxConnections,
        ...(l.limits.rateLimit !== undefined
          ? {
              rateLimit: {
                requestsPerSecond: l.limits.rateLimit.requestsPerSecond,
                burst: l.limits.rateLimit.burst ?? Math.max(1, l.limits.rateLimit.requestsPerSecond),
                key: l.limits.rateLimit.key,
                scope: l.limits.rateLimit.scope,
              },
            }
          : {}),
      },
      routes: l.routes.map(normaliseRoute),
    })),
    pools: Object.entries(c.pools).map(([name, p]): PoolConfig => ({
      name,
      strategy: p.strategy,
      ...(p.strategy === 'consistent-hash' ? { hashOn: p.hashOn ?? { kind: 'ip' } } : {}),
      backends: p.backends.map((b): BackendConfig => ({
        url: b.url.url,
        name: b.name ?? b.url.name,
        weight: b.weight,
        backup: b.backup,
      })),
      ...(p.discovery !== undefined
        ? {
            discovery: p.discovery.dns !== undefined
              ? {
                  dns: {
                    name: p.discovery.dns.name,
                    port: p.discovery.dns.port,
                    refreshMs: p.discovery.dns.refresh,
                    ...(p.discovery.dns.server !== undefined ? { server: p.discovery.dns.server } : {}),
                  },
                }
              : {},
          }
        : {}),
      ...(p.healthCheck !== undefined
        ? {
            healthCheck: {
              path: p.healthCheck.path,
              intervalMs: p.healthCheck.interval,
              timeoutMs: p.healthCheck.timeout,
              rise: p.healthCheck.rise,
              fall: p.healthCheck.fall,
              expectStatus: p.healthCheck.expectStatus,
            },
          }
        : {}),
      ...(p.outlierDetection !== undefined
        ? {
            outlierDetection: {
              consecutiveFailures: p.outlierDetection.consecutiveFailures,
              baseEjectionTimeMs: p.outlierDetection.baseEjectionTime,
              maxEjectionPercent: p.outlierDetection.maxEjectionPercent,
              scope: p.outlierDetection.scope,
            },
          }
        : {}),
      slowStartMs: p.slowStart,
      retries: { attempts: p.retries.attempts, on: p.retries.on },
      timeouts: { connectMs: p.timeouts.connect, responseMs: p.timeouts.response, idleMs: p.timeouts.idle },
      maxConnectionsPerBackend: p.maxConnectionsPerBackend,
      panicThreshold: p.panicThreshold,
      ...(p.sticky !== undefined ? { sticky: { cookie: p.sticky.cookie, ...(p.sticky.secret !== undefined ? { secret: p.sticky.secret } : {}) } } : {}),
    })),
    ...(c.cluster !== undefined
      ? { cluster: { redis: c.cluster.redis, name: c.cluster.name, ...(c.cluster.replica !== undefined ? { replica: c.cluster.replica } : {}) } }
      : {}),
  };
}
