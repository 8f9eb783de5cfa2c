import { parseConfig } from '../../src/config';
import type { ConfigProblem } from '../../src/errors';

/** Lines joined with "\n", so a test can show its YAML with line numbers in mind. */
export function yaml(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** The problems parseConfig reports for `text`; fails the test if it does not throw a ConfigError. */
export function problemsOf(text: string, env: NodeJS.ProcessEnv = {}, file = 'fulcrum.yaml'): ConfigProblem[] {
  try {
    parseConfig(text, file, env);
  } catch (err) {
    const e = err as { code?: string; problems?: ConfigProblem[] };
    if (e.code === 'FULCRUM_CONFIG_INVALID' && e.problems !== undefined) return e.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

/** `line:col: message` strings, compact to compare in tests. */
export function positions(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  return problemsOf(text, env).map((p) => `${p.line}:${p.col}: ${p.message}`);
}

/** A minimal valid config whose parts can be replaced line by line. */
export const MINIMAL = [
  'listeners:',
  '  main:',
  '    listen: 127.0.0.1:0',
  '    routes:',
  '      - pool: web',
  'pools:',
  '  web:',
  '    backends:',
  '      - url: http://127.0.0.1:3001',
];
