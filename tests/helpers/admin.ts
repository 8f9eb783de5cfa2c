/** Reading a running Fulcrum through its admin API, as the black-box suites do. */
import { request } from './http';
import { parseProm, type Sample } from './prom';

export interface BackendJson {
  name: string;
  state: string;
  weight: number;
  requests: number;
  failures: number;
  activeRequests: number;
}

/** GET /api/pools (must answer 200). */
export async function poolsOf(adminUrl: string): Promise<{ name: string; backends: BackendJson[] }[]> {
  const r = await request(`${adminUrl}/api/pools`);
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { pools: { name: string; backends: BackendJson[] }[] }).pools;
}

/** One pool's backends by name. */
export async function backendsOf(adminUrl: string, pool = 'web'): Promise<Record<string, BackendJson>> {
  const p = (await poolsOf(adminUrl)).find((x) => x.name === pool);
  if (p === undefined) throw new Error(`no pool ${pool} in /api/pools`);
  return Object.fromEntries(p.backends.map((b) => [b.name, b]));
}

/** GET /metrics (must answer 200), parsed. */
export async function metricsOf(adminUrl: string): Promise<Sample[]> {
  const r = await request(`${adminUrl}/metrics`);
  expect(r.status).toBe(200);
  return parseProm(r.body);
}
