/**
 * Replicas of one cluster sharing state through Redis (SPEC section 10):
 * admin actions, rate-limit buckets, outlier ejections, heartbeats. Not to be
 * confused with src/cluster/, the primary and workers of one Fulcrum.
 *
 * actions.ts: admin actions as records every replica applies; replica.ts:
 * the Redis side; scripts.ts: its Lua; here: what identifies a replica's config.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/types';

export { Replica, type ClusterJson, type ReplicaHost, type ReplicaJson } from './replica';
export { applyAction, type AdminAction } from './actions';

/**
 * sha256 of the config after `${VAR}` substitution, leaving out what differs
 * between replicas running the same file: every listen address, the
 * replica's own name, and where the file is.
 */
export function configHash(config: Config): string {
  const { file: _file, admin, listeners, cluster, ...rest } = config;
  const { host: _h, port: _p, ...adminRest } = admin;
  const shared = {
    ...rest,
    admin: adminRest,
    listeners: listeners.map(({ host: _lh, port: _lp, ...l }) => l),
    ...(cluster !== undefined ? { cluster: { redis: cluster.redis, name: cluster.name } } : {}),
  };
  return createHash('sha256').update(JSON.stringify(shared)).digest('hex');
}

let cachedVersion: string | undefined;

/** Fulcrum's version (package.json), as /api/cluster shows it. */
export function fulcrumVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  return cachedVersion;
}
