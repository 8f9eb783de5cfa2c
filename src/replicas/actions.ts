import type { BackendConfig } from '../config/types';
import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';

/**
 * An admin action on one backend (SPEC sections 5 and 11), in the form every
 * replica stores and replays: what it sets, not how it was asked. `null`
 * means "as the config file says" (a reload writes it, so a weight or a
 * deletion from before the reload stops standing).
 */
export type AdminAction =
  | { readonly kind: 'drain'; readonly pool: string; readonly backend: string; readonly value: boolean }
  | { readonly kind: 'weight'; readonly pool: string; readonly backend: string; readonly value: number | null }
  /** A backend added at run time (its config), deleted ('removed'), or as the file says (null). */
  | { readonly kind: 'member'; readonly pool: string; readonly backend: string; readonly value: BackendConfig | 'removed' | null };

export type ActionKind = AdminAction['kind'];

/** Who took an action, for the reasons in a backend's history. */
function by(origin: string | undefined): string {
  return origin === undefined ? 'by the admin API' : `by the admin API of replica ${origin}`;
}

/**
 * Apply an admin action to this process's pools through BackendPool's own
 * doors (transition, setWeight, addRuntime, retire). `origin`: the replica
 * that took it, when not this one. `wait` false: a deleted backend leaves at
 * once (a primary, whose workers carry the traffic and drain their own).
 * Returns the backend it applied to, or undefined when its pool or backend is
 * not here (another replica's config, or already gone).
 */
export function applyAction(pools: ReadonlyMap<string, BackendPool>, a: AdminAction, origin?: string, wait = true): Backend | undefined {
  const pool = pools.get(a.pool);
  if (pool === undefined) return undefined;
  const b = pool.get(a.backend);
  switch (a.kind) {
    case 'drain':
      if (b === undefined) return undefined;
      if (a.value) pool.transition(b, 'drain', `drained ${by(origin)}`);
      else if (!pool.isRetiring(b)) pool.transition(b, 'enable', `enabled ${by(origin)}`);
      return b;
    case 'weight': {
      if (b === undefined) return undefined;
      const weight = a.value ?? fileWeight(pool, b);
      if (weight !== b.configuredWeight) pool.setWeight(b, weight);
      return b;
    }
    case 'member': {
      const v = a.value;
      if (v === 'removed') {
        if (b !== undefined) pool.retire(b, `deleted ${by(origin)}: leaves once its in-flight requests end`, wait);
        return b;
      }
      if (v !== null) {
        // Two replicas adding the same name: the first one here stays.
        return b ?? pool.addRuntime(v, `added ${by(origin)}`);
      }
      // As the file says: a file backend deleted at run time comes back; a runtime one goes.
      const fromFile = pool.config.backends.find((x) => x.name === a.backend);
      if (fromFile !== undefined) return b ?? pool.add(fromFile);
      if (b !== undefined && pool.isRuntime(b)) pool.retire(b, `deleted ${by(origin)}: leaves once its in-flight requests end`, wait);
      return b;
    }
  }
}

function fileWeight(pool: BackendPool, b: Backend): number {
  return pool.config.backends.find((x) => x.name === b.name)?.weight
    ?? pool.runtimeBackends().find(([x]) => x === b)?.[1].weight
    ?? b.configuredWeight;
}
