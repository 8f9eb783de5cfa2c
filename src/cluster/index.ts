/**
 * `workers: N` with node:cluster. The primary owns the config, the health
 * checks, ejection timers and the admin API; the workers serve the listeners
 * (node:cluster shares each listening socket among them). The primary tells
 * workers every backend's conditions; workers tell the primary the ejections
 * they decide; /api/pools and /metrics ask every worker and add up.
 *
 * protocol.ts: the messages; primary.ts and worker.ts: each side.
 */
export { isWorker, workerCount } from './role';
export { startPrimary, type Primary } from './primary';
export { runWorker } from './worker';
