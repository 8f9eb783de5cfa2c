import type { Config, PoolConfig } from './config/types';
import { BackendPool } from './pool/pool';
import type { Backend } from './pool/backend';
import { poolTarget, type PoolTarget } from './proxy/listener';
import type { Logger } from './log';
import { HealthChecker } from './health/active';
import { OutlierDetector } from './health/outlier';
import type { Ejections } from './health/ejections';
import { SlowStart } from './health/slow-start';
import type { Metrics } from './metrics';
import { DnsDiscovery } from './discovery';
import type { ResourceAlarm } from './resources';
import type { FulcrumRole } from './server';

/** One config's pools, their targets and health machinery. Reload builds the next beside it. */
export interface Generation {
  readonly config: Config;
  readonly pools: Map<string, BackendPool>;
  readonly targets: Map<string, PoolTarget>;
  readonly health: { start?(): void; stop(): void }[];
}

/** What a generation is wired to: the parts of the Fulcrum that outlive it. */
export interface GenerationDeps {
  readonly role: FulcrumRole;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly alarm: ResourceAlarm;
  readonly ejections: Ejections;
  /** The key of sticky cookie tokens for pools without `sticky.secret`. */
  readonly stickyKey: Buffer;
}

/** Pools, targets and health for `config`, reusing `previous`'s backends where they stay the same. */
export function buildGeneration(config: Config, previous: Generation | undefined, deps: GenerationDeps): Generation {
  const pools = new Map<string, BackendPool>();
  const targets = new Map<string, PoolTarget>();
  const health: Generation['health'] = [];
  for (const pc of config.pools) {
    const before = previous?.pools.get(pc.name);
    // A backend being deleted by the admin API is not taken over: a file backend comes back fresh (SPEC section 11).
    const pool = new BackendPool(pc, {
      previous: (name) => {
        const b = before?.get(name);
        return b !== undefined && !before!.isRetiring(b) ? b : undefined;
      },
      runtimeFrom: before,
    });
    wire(pool, pc, health, deps, before);
    pools.set(pc.name, pool);
    targets.set(pc.name, poolTarget(pool, deps.stickyKey));
  }
  for (const l of config.listeners) for (const r of l.routes) if (r.mirror !== undefined) deps.metrics.registerMirror(r.mirror.pool);
  return { config, pools, targets, health };
}

function wire(pool: BackendPool, pc: PoolConfig, health: Generation['health'], deps: GenerationDeps, before?: BackendPool): void {
  const { role, logger, metrics } = deps;
  metrics.registerPool(pool);
  // The primary logs state changes; its workers only follow them.
  if (role !== 'worker') {
    pool.onStateChange((b, from, to, reason) => {
      logger.info({ pool: pool.name, backend: b.name, from, to, reason }, 'backend state changed');
    });
  }
  let checker: HealthChecker | undefined;
  if (pc.healthCheck !== undefined && role !== 'worker') {
    const alarm = deps.alarm;
    checker = new HealthChecker(pool, pc.healthCheck, {
      onProbe: (p, b, o) => (o.localCode !== undefined ? alarm.raise(o.localCode, 'health probe') : metrics.onProbe(p, b, o.ok)),
    });
    health.push(checker);
  }
  if (pc.outlierDetection !== undefined && role !== 'primary') {
    health.push(new OutlierDetector(pool, pc.outlierDetection, {
      onEject: metrics.onEject,
      ejector: deps.ejections.ejectorFor(pool),
    }));
  }
  if (pc.slowStartMs > 0) health.push(new SlowStart(pool, pc.slowStartMs));
  pool.onMembership((b, change) => {
    if (change === 'added') {
      metrics.registerBackend(pool, b);
      checker?.watch(b, pool.isRuntime(b));
    } else {
      checker?.unwatch(b);
    }
    logger.debug({ pool: pool.name, backend: b.name, url: b.url }, `backend ${change}`);
  });
  // DNS discovery resolves in the primary and in each worker alike (the
  // same answers give the same backend names everywhere); on reload it
  // adopts the addresses the previous config had found.
  if (pc.discovery?.dns !== undefined) {
    health.push(new DnsDiscovery(pool, pc.discovery.dns, { logger: logger, adoptFrom: before }));
  }
}

/** Backends of `next` that are the same objects as in `old` (their connections must stay open). */
export function reusedBackends(next: Generation, old: Generation): Set<Backend> {
  const keep = new Set<Backend>();
  for (const p of next.pools.values()) {
    for (const b of p.backends) if (old.pools.get(p.name)?.get(b.name) === b) keep.add(b);
  }
  return keep;
}
