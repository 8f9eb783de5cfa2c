import { parseConfig } from '../../src/config';
import type { PoolConfig } from '../../src/config/types';
import type { BalancingStrategy } from '../../src/balancing/types';
import type { Backend } from '../../src/pool/backend';

/**
 * The config of pool `web` from the lines of its YAML block (indented under
 * `web:` for you), through the real parser: defaults and normalisation as in
 * production.
 */
export function poolConfig(...lines: string[]): PoolConfig {
  return namedPoolConfig('web', lines);
}

/** As poolConfig, for a pool of another name. */
export function namedPoolConfig(name: string, lines: readonly string[]): PoolConfig {
  const text = [
    'listeners:',
    '  main:',
    '    listen: 127.0.0.1:0',
    '    routes:',
    `      - pool: ${name}`,
    'pools:',
    `  ${name}:`,
    ...lines.map((l) => `    ${l}`),
  ].join('\n') + '\n';
  return parseConfig(text, 'test.yaml', {}).pools[0]!;
}

/** `backends:` lines for backends named by the letters of `names` (b → http://127.0.0.1:9002), none listening. */
export function backendLines(names: string, extra: Readonly<Record<string, string>> = {}): string[] {
  return ['backends:', ...[...names].flatMap((n, i) => [
    `  - url: http://127.0.0.1:${9001 + i}`,
    `    name: ${n}`,
    ...(extra[n] !== undefined ? [`    ${extra[n]}`] : []),
  ])];
}

/** A settable clock (epoch ms). */
export function clock(start = 1_000_000): { now: () => number; set(t: number): void; advance(ms: number): void } {
  let t = start;
  return { now: () => t, set: (v) => { t = v; }, advance: (ms) => { t += ms; } };
}

/**
 * A strategy that picks the first available backend and records every
 * `update` (names and weights), so a test sees exactly when the pool rebuilds.
 */
export function recordingStrategy(): BalancingStrategy<Backend> & { readonly updates: string[] } {
  const updates: string[] = [];
  return {
    updates,
    pick: (available) => available[0]!,
    update: (available) => {
      updates.push(available.map((b) => `${b.name}:${b.weight}`).join(' '));
    },
  };
}
