import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from './config/types';
import { createLogger, flushLogs, type Logger } from './log';
import { Fulcrum } from './server';
import type { BackendPool } from './pool/pool';
import type { Backend, BackendStats, Conditions } from './pool/backend';

/**
 * `workers: N` with node:cluster. The primary owns the config, the health
 * checks, ejection timers and the admin API; the workers serve the listeners
 * (node:cluster shares each listening socket among them). The primary tells
 * workers every backend's conditions; workers tell the primary the ejections
 * they decide; /api/pools and /metrics ask every worker and add up.
 */

/** Messages from the primary to a worker. */
type ToWorker =
  /** `stickyKey`: the primary's key of sticky tokens (base64), so every worker sets the same cookies. */
  | { t: 'config'; config: Config; stickyKey: string }
  | { t: 'backend'; pool: string; backend: string; conditions: Conditions; reason: string }
  | { t: 'weight'; pool: string; backend: string; weight: number }
  | { t: 'ask'; id: number; what: 'stats' | 'metrics' }
  | { t: 'ejected'; id: number; ok: boolean }
  | { t: 'stop' };

/** Messages from a worker to the primary. */
type ToPrimary =
  | { t: 'listening' }
  | { t: 'listen-failed'; message: string }
  | { t: 'applied'; ok: boolean; errors: string[] }
  | { t: 'eject'; id: number; pool: string; backend: string; ms: number; reason: string }
  | { t: 'answer'; id: number; stats?: Stats; metrics?: MetricJson[] };

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** pool → backend → what the worker saw. */
type Stats = Record<string, Record<string, BackendStats>>;

export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

export function isWorker(): boolean {
  return cluster.isWorker && process.env.FULCRUM_WORKER === '1';
}

// ---------------------------------------------------------------- primary

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
  const ask = (what: 'stats' | 'metrics', timeoutMs = 2000): Promise<ToPrimary[]> => new Promise((resolve) => {
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
  fulcrum.onApply(() => {
    for (const p of fulcrum.pools.values()) follow(p);
    broadcast({ t: 'config', config: fulcrum.config, stickyKey: fulcrum.stickyKey.toString('base64') });
  });

  /** A new worker learns the config and every backend's current conditions. */
  const welcome = (w: Worker) => {
    w.send({ t: 'config', config: fulcrum.config, stickyKey: fulcrum.stickyKey.toString('base64') } satisfies ToWorker);
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
    const w = cluster.fork({ FULCRUM_WORKER: '1' });
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
      void fulcrum.stop(0).then(() => reject(Object.assign(new Error(message), { code: 'FULCRUM_LISTEN_FAILED' })));
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

// ---------------------------------------------------------------- worker

/** A worker: waits for its config from the primary, serves, follows, answers. */
export function runWorker(onStopped: () => void): void {
  let fulcrum: Fulcrum | undefined;
  let logger: Logger = createLogger({ level: 'info', access: false });
  const send = (msg: ToPrimary) => process.send?.(msg);
  /** Ejections asked of the primary, by message id: what to do with its answer. */
  const asked = new Map<number, (ok: boolean) => void>();
  let nextId = 1;
  /** Ejections the primary carried out, by pool and backend: told when it lets the backend back. */
  const returns = new Map<string, () => void>();
  const ejector = (pool: BackendPool, b: Backend, ms: number, reason: string, onReturn: () => void) => new Promise<boolean>((resolve) => {
    const id = nextId++;
    asked.set(id, (ok) => {
      if (ok) returns.set(`${pool.name}\n${b.name}`, onReturn);
      resolve(ok);
    });
    send({ t: 'eject', id, pool: pool.name, backend: b.name, ms, reason });
  });
  // Config, state and weight messages are handled one at a time, in order: a
  // state for a backend that a config adds must not overtake that config
  // while it is being applied (binding a new listener takes a while).
  let ordered: Promise<void> = Promise.resolve();
  process.on('message', (msg: ToWorker) => {
    const run = () => handle(msg).catch((err: Error) => logger.error({ err }, 'worker message failed'));
    if (msg.t === 'config' || msg.t === 'backend' || msg.t === 'weight') ordered = ordered.then(run);
    else void run();
  });
  // The primary decides when to stop; a terminal's Ctrl-C reaches the whole
  // process group, so these are ignored here and the primary's 'stop' drains.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);

  async function handle(msg: ToWorker): Promise<void> {
    switch (msg.t) {
      case 'config': {
        if (fulcrum === undefined) {
          logger = createLogger(msg.config.log);
          fulcrum = new Fulcrum(msg.config, {
            logger,
            role: 'worker',
            ejector,
            stickyKey: Buffer.from(msg.stickyKey, 'base64'),
          });
          try {
            await fulcrum.start();
          } catch (err) {
            send({ t: 'listen-failed', message: (err as Error).message });
            return;
          }
          send({ t: 'listening' });
        } else {
          const r = await fulcrum.apply(msg.config);
          send({ t: 'applied', ok: r.ok, errors: r.errors });
        }
        return;
      }
      case 'backend': {
        const pool = fulcrum?.pools.get(msg.pool);
        const b = pool?.get(msg.backend);
        if (pool === undefined || b === undefined) return;
        if (!msg.conditions.ejected) {
          // The primary let it back: the detector that asked learns when (its next ejection is shorter after a quiet spell).
          const key = `${msg.pool}\n${msg.backend}`;
          returns.get(key)?.();
          returns.delete(key);
        }
        pool.setConditions(b, msg.conditions, msg.reason);
        return;
      }
      case 'ejected':
        asked.get(msg.id)?.(msg.ok);
        asked.delete(msg.id);
        return;
      case 'weight': {
        const pool = fulcrum?.pools.get(msg.pool);
        const b = pool?.get(msg.backend);
        if (pool !== undefined && b !== undefined) pool.setWeight(b, msg.weight);
        return;
      }
      case 'ask': {
        if (fulcrum === undefined) return;
        if (msg.what === 'metrics') {
          send({ t: 'answer', id: msg.id, metrics: await fulcrum.metrics.registry.getMetricsAsJSON() });
        } else {
          const stats: Stats = {};
          for (const p of fulcrum.pools.values()) {
            const s: Stats[string] = {};
            for (const b of p.backends) {
              s[b.name] = b.stats();
            }
            stats[p.name] = s;
          }
          send({ t: 'answer', id: msg.id, stats });
        }
        return;
      }
      case 'stop':
        await fulcrum?.stop();
        await flushLogs();
        onStopped();
    }
  }
}
