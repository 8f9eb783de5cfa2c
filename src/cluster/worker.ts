import { createLogger, flushLogs, type Logger } from '../log';
import { Fulcrum } from '../server';
import type { RemoteEjector } from '../health/ejections';
import type { SharedBuckets } from '../proxy/rate-limit';
import type { Stats, ToPrimary, ToWorker } from './protocol';

/** A rate-limit round the primary has not answered in this long is skipped: the local buckets go on. */
const BUCKETS_TIMEOUT_MS = 250;

/**
 * A worker of `workers: N`: serves the listeners (node:cluster shares each
 * listening socket among the workers), follows the primary's backend
 * conditions and weights, asks the primary to carry out the ejections its
 * outlier detectors decide, and answers what it saw when asked.
 */

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
  const ejector: RemoteEjector = (pool, b, ms, reason, onReturn) => new Promise<boolean>((resolve) => {
    const id = nextId++;
    asked.set(id, (ok) => {
      if (ok) returns.set(`${pool.name}\n${b.name}`, onReturn);
      resolve(ok);
    });
    send({ t: 'eject', id, pool: pool.name, backend: b.name, ms, reason });
  });
  /** Rate-limit rounds sent to the primary (which holds the Redis connection), by message id. */
  const rounds = new Map<number, (left: readonly number[] | undefined) => void>();
  const sharedBuckets: SharedBuckets = {
    settle: (set, rate, burst, keys, used) => new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        rounds.delete(id);
        resolve(undefined);
      }, BUCKETS_TIMEOUT_MS);
      rounds.set(id, (left) => {
        clearTimeout(timer);
        rounds.delete(id);
        resolve(left);
      });
      send({ t: 'buckets', id, set, rate, burst, keys, used });
    }),
  };
  // Config, state and weight messages are handled one at a time, in order: a
  // state for a backend that a config adds must not overtake that config
  // while it is being applied (binding a new listener takes a while).
  let ordered: Promise<void> = Promise.resolve();
  process.on('message', (msg: ToWorker) => {
    const run = () => handle(msg).catch((err: Error) => logger.error({ err }, 'worker message failed'));
    if (msg.t === 'config' || msg.t === 'backend' || msg.t === 'weight' || msg.t === 'action') ordered = ordered.then(run);
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
            sharedBuckets,
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
      case 'action':
        fulcrum?.follow(msg.action);
        return;
      case 'buckets':
        rounds.get(msg.id)?.(msg.left ?? undefined);
        return;
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
        } else if (msg.what === 'traffic') {
          send({ t: 'answer', id: msg.id, traffic: fulcrum.metrics.traffic() });
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
