import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types';
import { WORKER_ENV } from './protocol';

/** How many workers `workers` asks for ('auto': one per core). */
export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** This process is a worker forked by a Fulcrum primary. */
export function isWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1';
}
