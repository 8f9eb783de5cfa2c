import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/types';
import type { BackendStats, Conditions } from '../pool/backend';
import type { AdminAction } from '../replicas/actions';
import type { TrafficSnapshot } from '../metrics/history';

/**
 * What a primary and its workers say to each other over node:cluster's IPC
 * channel. The primary tells workers the config and every backend's
 * conditions and weight; workers tell the primary the ejections they decide,
 * and answer when it asks what they saw.
 */

/** Messages from the primary to a worker. */
export type ToWorker =
  /** `stickyKey`: the primary's key of sticky tokens (base64), so every worker sets the same cookies. */
  | { t: 'config'; config: Config; stickyKey: string }
  | { t: 'backend'; pool: string; backend: string; conditions: Conditions; reason: string }
  | { t: 'weight'; pool: string; backend: string; weight: number }
  | { t: 'ask'; id: number; what: 'stats' | 'metrics' | 'traffic' }
  | { t: 'ejected'; id: number; ok: boolean }
  /** A backend added or deleted at run time (here or on another replica): each worker follows (SPEC section 11). */
  | { t: 'action'; action: AdminAction }
  /** The answer to a rate-limit round: tokens left per key, null when Redis could not answer. */
  | { t: 'buckets'; id: number; left: readonly number[] | null }
  | { t: 'stop' };

/** Messages from a worker to the primary. */
export type ToPrimary =
  | { t: 'listening' }
  | { t: 'listen-failed'; message: string }
  | { t: 'applied'; ok: boolean; errors: string[] }
  | { t: 'eject'; id: number; pool: string; backend: string; ms: number; reason: string }
  | { t: 'answer'; id: number; stats?: Stats; metrics?: MetricJson[]; traffic?: TrafficSnapshot }
  /** A rate-limit round (rateLimit.scope cluster): the primary holds the Redis connection. */
  | { t: 'buckets'; id: number; set: string; rate: number; burst: number; keys: readonly string[]; used: readonly number[] };

export type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** pool → backend → what the worker saw. */
export type Stats = Record<string, Record<string, BackendStats>>;

/** The environment variable that marks a forked process as a Fulcrum worker. */
export const WORKER_ENV = 'FULCRUM_WORKER';
