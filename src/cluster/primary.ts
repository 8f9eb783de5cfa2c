import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { FulcrumError } from '../errors';
import type { Config } from '../config/types';
import type { Logger } from '../log';
import { Fulcrum } from '../server';
import type { BackendPool } from '../pool/pool';
import { WORKER_ENV, type MetricJson, type ToPrimary, type ToWorker } from './protocol';
import { workerCount } from './role';
import { sumTraffic } from '../metrics/history';

/**
 * The primary of `workers: N`: owns the config, the health checks, the
 * ejection timers and the admin API, and binds no listener. It forks the
 * workers (and a new one for each that dies), tells them every backend's
 * conditions and weight, carries out the ejections they decide, and sums what
 * they saw for /api/pools and /metrics.
 */

export interface Primary {
  readonly fulcrum: Fulcrum;
  /** Drain every worker, then the primary's own parts. */
  stop(): Promise<void>;
}

export async function startPrimary(config: Config, logger: Logger): Promise<Primary> {
  const count = workerCount(config);
  let stopping = false;
  let nextId = 1;
  const pending = new Map<number, { left: number; answers: ToPrimary[]; done: () => void }>();
  const listening = new Set<Worker>();

  const workers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());

  /** Ask every worker; answers arrive within `timeoutMs` or are left out. */
  const ask = (what: 'stats' | 'metrics' | 'traffic', timeoutMs = 2000): Promise<ToPrimary[]> => new Promise((resolve) => {
    const ws = workers().filter((w) => listening.has(w));
    if (ws.length === 0) {
      resolve([]);
      return;
    }
    const id = nextId++;
    const answers: ToPrimary[] = [];
    const finish = () => {
      clearTimeout(timer);
      pending.delete(id);
      resolve(answers);
    };
    const timer = setTimeout(finish, timeoutMs);
    pending.set(id, { left: ws.length, answers, done: finish });
    for (const w of ws) w.send({ t: 'ask', id, what } satisfies ToWorker);
  });

  const broadcast = (msg: ToWorker) => {
    for (const w of workers()) w.send(msg);
  };

  const fulcrum: Fulcrum = new Fulcrum(config, {
    logger,
    role: 'primary',
    cluster: {
      /** Before the admin API answers about pools: counters are the workers' sums. */
      refreshStats: async () => {
        const answers = await ask('stats');
        for (const pool of fulcrum.pools.values()) {
          for (const b of pool.backends) {
            const seen = answers.flatMap((a) => {
              const s = a.t === 'answer' ? a.stats?.[pool.name]?.[b.name] : undefined;
              return s === undefined ? [] : [s];
            });
            // Each worker's window of latencies: the median of their p50s is
            // close enough for a dashboard; the worst p99 is the honest one.
            const lat = seen.flatMap((s) => (s.latency === null ? [] : [s.latency]));
            pool.applyStats(b, {
              requests: seen.reduce((n, s) => n + s.requests, 0),
              failures: seen.reduce((n, s) => n + s.failures, 0),
              inFlight: seen.reduce((n, s) => n + s.inFlight, 0),
              latency: lat.length === 0 ? null : {
                p50: lat.map((l) => l.p50).sort((x, y) => x - y)[Math.floor(lat.length / 2)]!,
                p99: Math.max(...lat.map((l) => l.p99)),
              },
              recentFailures: seen.flatMap((s) => s.recentFailures).sort((x, y) => x.time - y.time),
            });
          }
        }
      },
      metrics: async (): Promise<{ contentType: string; text: string }> => {
        const answers = await ask('metrics');
        const all: MetricJson[][] = [await fulcrum.metrics.registry.getMetricsAsJSON(), ...answers.map((a) => (a.t === 'answer' ? a.metrics ?? [] : []))];
        const registry = AggregatorRegistry.aggregate(all);
        return { contentType: registry.contentType, text: await registry.metrics() };
      },
      workersReady: () => listening.size >= count,
      /** The dashboard's history: the workers' request figures, summed. */
      traffic: async () => sumTraffic((await ask('traffic')).flatMap((a) => (a.t === 'answer' && a.traffic !== undefined ? [a.traffic] : []))),
    },
  });

  // Every state or weight change in the primary goes to every worker.
  const follow = (pool: BackendPool) => {
    pool.onStateChange((b, _from, _to, reason) => {
      broadcast({ t: 'backend', pool: pool.name, backend: b.name, conditions: b.conditions, reason });
    });
    pool.onWeightChange((b, weight) => broadcast({ t: 'weight', pool: pool.name, backend: b.name, weight }));
  };
  for (const p of fulcrum.pools.values()) follow(p);
  // Backends added or deleted at run time: each worker adds its own, or drains its own until its in-flight requests end.
  fulcrum.onAction((action) => {
    if (action.kind === 'member') broadcast({ t: 'action', action });
  });
  fulcrum.onApply(() => {
    for (const p of fulcrum.pools.values()) follow(p);
    broadcast({ t: 'config', config: fulcrum.config, stickyKey: fulcrum.stickyKey.toString('base64') });
  });

  /** A new worker learns the config and every backend's current conditions. */
  const welcome = (w: Worker) => {
    w.send({ t: 'config', config: fulcrum.config, stickyKey: fulcrum.stickyKey.toString('base64') } satisfies ToWorker);
    // Backends added and deleted at run time first: the conditions below may be theirs.
    for (const p of fulcrum.pools.values()) {
      for (const [, bc] of p.runtimeBackends()) {
        w.send({ t: 'action', action: { kind: 'member', pool: p.name, backend: bc.name, value: bc } } satisfies ToWorker);
      }
      for (const bc of p.config.backends) {
        if (p.get(bc.name) === undefined) w.send({ t: 'action', action: { kind: 'member', pool: p.name, backend: bc.name, value: 'removed' } } satisfies ToWorker);
      }
    }
    for (const p of fulcrum.pools.values()) {
      for (const b of p.backends) {
        if (b.state !== 'up' || !b.healthy || b.ejected || b.drained) {
          w.send({ t: 'backend', pool: p.name, backend: b.name, conditions: b.conditions, reason: 'state from the primary' } satisfies ToWorker);
        }
        if (b.configuredWeight !== p.config.backends.find((x) => x.name === b.name)?.weight) {
          w.send({ t: 'weight', pool: p.name, backend: b.name, weight: b.configuredWeight } satisfies ToWorker);
        }
      }
    }
  };

  let startupFailed: ((message: string) => void) | undefined;
  const spawn = () => {
    const w = cluster.fork({ [WORKER_ENV]: '1' });
    w.on('message', (msg: ToPrimary) => {
      switch (msg.t) {
        case 'listening':
          listening.add(w);
          break;
        case 'listen-failed':
          startupFailed?.(msg.message);
          break;
        case 'eject':
          w.send({ t: 'ejected', id: msg.id, ok: fulcrum.ejections.eject(msg.pool, msg.backend, msg.ms, msg.reason) } satisfies ToWorker);
          break;
        case 'answer': {
          const entry = pending.get(msg.id);
          if (entry === undefined) break;
          entry.answers.push(msg);
          if (--entry.left === 0) entry.done();
          break;
        }
        case 'buckets':
          void fulcrum.sharedBuckets.settle(msg.set, msg.rate, msg.burst, msg.keys, msg.used).then((left) => {
            if (w.isConnected()) w.send({ t: 'buckets', id: msg.id, left: left ?? null } satisfies ToWorker);
          });
          break;
        case 'applied':
          if (!msg.ok) logger.error({ worker: w.id, errors: msg.errors }, 'a worker refused the new config');
          break;
      }
    });
    w.once('online', () => welcome(w));
    return w;
  };

  cluster.on('exit', (w, code, signal) => {
    listening.delete(w);
    if (stopping) return;
    logger.error({ worker: w.id, pid: w.process.pid, code, signal }, 'worker died: starting a new one');
    // A worker that keeps dying at once should not spin the CPU.
    const age = Date.now() - (started.get(w) ?? 0);
    setTimeout(() => started.set(spawn(), Date.now()), age < 1000 ? 1000 : 0).unref();
  });

  await fulcrum.start();
  const started = new Map<Worker, number>();
  await new Promise<void>((resolve, reject) => {
    startupFailed = (message) => {
      stopping = true;
      for (const w of workers()) w.kill('SIGKILL');
      void fulcrum.stop(0).then(() => reject(new FulcrumError('FULCRUM_LISTEN_FAILED', message)));
    };
    const check = setInterval(() => {
      if (listening.size >= count) {
        clearInterval(check);
        startupFailed = undefined;
        resolve();
      }
    }, 20);
    for (let i = 0; i < count; i++) started.set(spawn(), Date.now());
  });
  logger.info({ workers: count }, 'workers listening');

  return {
    fulcrum,
    stop: async () => {
      stopping = true;
      const exits = workers().map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.send({ t: 'stop' } satisfies ToWorker);
      }));
      await Promise.all(exits);
      await fulcrum.stop();
    },
  };
}
