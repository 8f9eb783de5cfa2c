import { isDeepStrictEqual } from 'node:util';
import type { Config } from './config/types';

/**
 * What a reload changes, one line each, for the log and the API's answer:
 * listeners, routes, pools and backends added, removed or altered.
 */
export function describeChanges(before: Config, after: Config): string[] {
  const out: string[] = [];
  const byName = <T extends { name: string }>(xs: readonly T[]) => new Map(xs.map((x) => [x.name, x]));

  const oldL = byName(before.listeners);
  const newL = byName(after.listeners);
  for (const [name, l] of newL) {
    const o = oldL.get(name);
    if (o === undefined) out.push(`listener ${name}: added`);
    else {
      if (o.host !== l.host || o.port !== l.port) out.push(`listener ${name}: address changed`);
      if (!isDeepStrictEqual(o.routes, l.routes)) out.push(`listener ${name}: routes changed`);
      if (!isDeepStrictEqual(o.tls, l.tls) || o.http2 !== l.http2) out.push(`listener ${name}: tls changed`);
      if (!isDeepStrictEqual(o.limits, l.limits)) out.push(`listener ${name}: limits changed`);
      if (!isDeepStrictEqual(o.proxyProtocol, l.proxyProtocol)) out.push(`listener ${name}: proxyProtocol changed`);
      if (!isDeepStrictEqual(o.trustedProxies, l.trustedProxies)) out.push(`listener ${name}: trustedProxies changed`);
    }
  }
  for (const name of oldL.keys()) if (!newL.has(name)) out.push(`listener ${name}: removed`);

  const oldP = byName(before.pools);
  const newP = byName(after.pools);
  for (const [name, p] of newP) {
    const o = oldP.get(name);
    if (o === undefined) {
      out.push(`pool ${name}: added`);
      continue;
    }
    const { backends: ob, ...orest } = o;
    const { backends: nb, ...nrest } = p;
    if (!isDeepStrictEqual(orest, nrest)) out.push(`pool ${name}: settings changed`);
    const obm = byName(ob);
    const nbm = byName(nb);
    for (const [bn, b] of nbm) {
      const x = obm.get(bn);
      if (x === undefined) out.push(`pool ${name}: backend ${bn} added`);
      else if (!isDeepStrictEqual(x, b)) out.push(`pool ${name}: backend ${bn} changed`);
    }
    for (const bn of obm.keys()) if (!nbm.has(bn)) out.push(`pool ${name}: backend ${bn} removed`);
  }
  for (const name of oldP.keys()) if (!newP.has(name)) out.push(`pool ${name}: removed`);

  if (before.log.level !== after.log.level || before.log.access !== after.log.access) out.push('log changed');
  if (before.admin.token !== after.admin.token) out.push('admin.token changed');
  if (!isDeepStrictEqual(before.tracing, after.tracing)) out.push('tracing changed');
  if (before.workers !== after.workers) out.push('workers changed: takes effect after a restart');
  if (before.shutdownTimeoutMs !== after.shutdownTimeoutMs) out.push('shutdownTimeout changed');
  if (before.shutdownDelayMs !== after.shutdownDelayMs) out.push('shutdownDelay changed');
  if (!isDeepStrictEqual(before.cluster, after.cluster)) {
    out.push(before.cluster === undefined ? 'cluster added' : after.cluster === undefined ? 'cluster removed' : 'cluster changed');
  }
  return out;
}
