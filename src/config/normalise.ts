/**
 * The parsed file (schema.ts) as the `Config` of types.ts, which load.ts then
 * freezes: maps become arrays in file order with the key as `name`, durations
 * get their `Ms` names, and the defaults that depend on other values (a
 * backend's name, a rate limit's burst, consistent-hash's hashOn) are filled in.
 */
import { readFileSync } from 'node:fs';
import type { BackendConfig, Config, ListenerConfig, PoolConfig, PoolTlsConfig } from './types';
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
    ...(c.tracing !== undefined ? { tracing: c.tracing } : {}),
    listeners: Object.entries(c.listeners).map(([name, l]): ListenerConfig => ({
      name,
      ...l.listen,
      ...(l.tls !== undefined ? { tls: l.tls } : {}),
      http2: l.http2,
      ...(l.proxyProtocol !== undefined ? { proxyProtocol: l.proxyProtocol.trusted !== undefined ? { trusted: l.proxyProtocol.trusted } : {} } : {}),
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
      routes: l.routes.map((r) => ({
        ...normaliseRoute(r),
        ...(r.access !== undefined ? { access: r.access } : {}),
        ...(r.compress !== undefined ? { compress: r.compress } : {}),
      })),
      ...(l.trustedProxies !== undefined && l.trustedProxies.length > 0 ? { trustedProxies: l.trustedProxies } : {}),
    })),
    pools: Object.entries(c.pools).map(([name, p]): PoolConfig => ({
      name,
      protocol: p.protocol,
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
              ...(p.healthCheck.grpc !== undefined ? { grpc: { service: p.healthCheck.grpc.service } } : {}),
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
      ...(p.proxyProtocol !== undefined ? { proxyProtocol: p.proxyProtocol } : {}),
      ...(p.tls !== undefined ? { tls: poolTls(p.tls) } : {}),
    })),
    ...(c.cluster !== undefined
      ? { cluster: { redis: c.cluster.redis, name: c.cluster.name, ...(c.cluster.replica !== undefined ? { replica: c.cluster.replica } : {}) } }
      : {}),
  };
}

/** The PEM files of a pool's `tls`, read now: at load and at every reload, as listener certificates are. */
function poolTls(t: NonNullable<ConfigFile['pools'][string]['tls']>): PoolTlsConfig {
  const pem = (file: string | undefined) => (file !== undefined ? readFileSync(file, 'utf8') : undefined);
  const ca = pem(t.ca);
  const cert = pem(t.cert);
  const key = pem(t.key);
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(t.serverName !== undefined ? { serverName: t.serverName } : {}),
    verify: t.verify,
    files: {
      ...(t.ca !== undefined ? { ca: t.ca } : {}),
      ...(t.cert !== undefined ? { cert: t.cert } : {}),
      ...(t.key !== undefined ? { key: t.key } : {}),
    },
  };
}
