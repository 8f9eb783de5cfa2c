/**
 * Shared by the config fuzz tests: the seed configs, and `checkedParse`, which
 * runs parseConfig once and checks the contract every outcome must meet:
 *
 * - it returns within MAX_CALL_MS;
 * - it returns a deeply frozen, internally consistent Config, or
 * - it throws an error with code FULCRUM_CONFIG_INVALID and at least one problem,
 *   each at an integer line >= 1 and col >= 1 inside the text, with a one-line,
 *   non-empty message that is not a stack trace, "[object Object]" or "undefined".
 *
 * Anything else (another exception, a non-error, a slow call) throws an Error
 * whose message says what broke; fast-check then shrinks the input and prints
 * the seed and path to replay it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import safeRegex from 'safe-regex2';
import { parseConfig, type Config } from '../../src/config';
import { MINIMAL, yaml } from '../config/helpers';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** A hang guard, wide enough for a loaded 2-core machine (CI runs two suites at once); speed is the benchmarks' job. */
export const MAX_CALL_MS = 5000;

const ROOT = path.join(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'tests', 'config', 'fixtures');

export interface Seed {
  readonly name: string;
  /** Passed to parseConfig as `file`: relative TLS paths resolve against its folder. */
  readonly file: string;
  readonly text: string;
}

/** The config tests' minimal config (one listener, route, pool, backend), as text. */
export const MINIMAL_TEXT = yaml(...MINIMAL);

function seedFrom(name: string, file: string): Seed {
  return { name, file, text: fs.readFileSync(file, 'utf8') };
}

export const SEEDS: readonly Seed[] = [
  seedFrom('spec-full', path.join(FIXTURES, 'spec-full.yaml')),
  seedFrom('production', path.join(ROOT, 'examples', 'production.yaml')),
  seedFrom('quickstart', path.join(ROOT, 'examples', 'quickstart.yaml')),
  { name: 'minimal', file: path.join(FIXTURES, 'minimal.yaml'), text: MINIMAL_TEXT },
];

/** The environment the seeds need (spec-full and production name FULCRUM_ADMIN_TOKEN). */
export const BASE_ENV: Readonly<Record<string, string>> = { FULCRUM_ADMIN_TOKEN: 'fuzz-admin-token' };

export type Outcome =
  | { readonly kind: 'ok'; readonly config: Config; readonly ms: number }
  | { readonly kind: 'invalid'; readonly problems: readonly ProblemLike[]; readonly ms: number };

interface ProblemLike {
  readonly file: unknown;
  readonly line: unknown;
  readonly col: unknown;
  readonly message: unknown;
}

/** The slowest call seen so far in this test file, for the summary line. */
export const stats = { calls: 0, ok: 0, invalid: 0, maxMs: 0, maxMsInput: '' };

export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

function violation(what: string, text: string): never {
  const shown = text.length > 400 ? `${JSON.stringify(text.slice(0, 400))}... (${text.length} chars)` : JSON.stringify(text);
  throw new ContractViolation(`${what}\n  input: ${shown}`);
}

/** parseConfig(text, file, env), checked against the contract above. */
/** `limitMs`: past it, the call counts as hung (a guard against runaway growth, not a speed test). */
export function checkedParse(text: string, file: string, env: NodeJS.ProcessEnv, limitMs = MAX_CALL_MS): Outcome {
  let config: Config | undefined;
  let thrown: { value: unknown } | undefined;
  const t0 = performance.now();
  try {
    config = parseConfig(text, file, env);
  } catch (err) {
    thrown = { value: err };
  }
  const ms = performance.now() - t0;
  stats.calls++;
  if (ms > stats.maxMs) {
    stats.maxMs = ms;
    stats.maxMsInput = text.length > 120 ? `${JSON.stringify(text.slice(0, 120))}... (${text.length} chars)` : JSON.stringify(text);
  }
  if (ms > limitMs) violation(`parseConfig took ${ms.toFixed(0)} ms (limit ${limitMs} ms)`, text);

  if (thrown === undefined) {
    const c = config as Config;
    checkFrozen(c, 'config', text);
    checkConsistent(c, text);
    stats.ok++;
    return { kind: 'ok', config: c, ms };
  }
  const problems = checkConfigError(thrown.value, file, text);
  stats.invalid++;
  return { kind: 'invalid', problems, ms };
}

function checkConfigError(err: unknown, file: string, text: string): readonly ProblemLike[] {
  if (typeof err !== 'object' || err === null) violation(`threw a non-object: ${String(err)}`, text);
  const e = err as { code?: unknown; problems?: unknown; name?: unknown; message?: unknown; stack?: unknown };
  if (e.code !== 'FULCRUM_CONFIG_INVALID') {
    violation(`threw ${String(e.name)} (code ${String(e.code)}) instead of a ConfigError: ${String(e.message)}\n${String(e.stack)}`, text);
  }
  if (!Array.isArray(e.problems) || e.problems.length === 0) violation('ConfigError without problems', text);
  // CR, LF and CRLF all end a line (YAML 1.2 b-break).
  const lines = text.split(/\r\n|\r|\n/);
  const lfLines = text.split('\n');
  for (const p of e.problems as ProblemLike[]) {
    const where = `problem ${JSON.stringify(p)}`;
    if (p.file !== file) violation(`${where}: file is not ${JSON.stringify(file)}`, text);
    if (!Number.isInteger(p.line) || (p.line as number) < 1) violation(`${where}: line is not an integer >= 1`, text);
    if (!Number.isInteger(p.col) || (p.col as number) < 1) violation(`${where}: col is not an integer >= 1`, text);
    if ((p.line as number) > lines.length) violation(`${where}: line is past the end of the text (${lines.length} lines)`, text);
    // After a first syntax error yaml's LineCounter can miss the line breaks inside
    // the tokens of its error recovery, so later syntax errors may sit past the end
    // of their line (load.ts says as much). Problems found on a parsed document must
    // be exact.
    const lineLength = Math.max(lines[(p.line as number) - 1]?.length ?? 0, lfLines[(p.line as number) - 1]?.length ?? 0);
    if (!String(p.message).startsWith('YAML syntax error') && (p.col as number) > lineLength + 1) {
      violation(`${where}: col is past the end of line ${String(p.line)} (${lineLength} chars)`, text);
    }
    const m = p.message;
    if (typeof m !== 'string') violation(`${where}: message is not a string`, text);
    if (m.trim() === '') violation(`${where}: empty message`, text);
    if (/[\n\r]/.test(m)) violation(`${where}: message spans several lines`, text);
    if (m.includes('    at ')) violation(`${where}: message contains stack-trace text`, text);
    if (m.includes('[object Object]')) violation(`${where}: message contains [object Object]`, text);
    if (m.trim() === 'undefined' || m.trim() === 'null') violation(`${where}: message is ${m.trim()}`, text);
  }
  return e.problems as ProblemLike[];
}

function checkFrozen(value: unknown, at: string, text: string): void {
  if (typeof value !== 'object' || value === null) return;
  if (!Object.isFrozen(value)) violation(`accepted config is not frozen at ${at}`, text);
  for (const [k, v] of Object.entries(value)) checkFrozen(v, `${at}.${k}`, text);
}

/**
 * What the rest of Fulcrum relies on once parseConfig has said yes: at least one
 * listener, every listener has a route, every route names a pool that exists,
 * every pool has backends or discovery, names are unique.
 */
export function checkConsistent(c: Config, text: string): void {
  if (c.listeners.length === 0) violation('accepted config has no listeners', text);
  const poolNames = new Set(c.pools.map((p) => p.name));
  if (poolNames.size !== c.pools.length) violation('accepted config has duplicate pool names', text);
  const listenerNames = new Set(c.listeners.map((l) => l.name));
  if (listenerNames.size !== c.listeners.length) violation('accepted config has duplicate listener names', text);
  for (const l of c.listeners) {
    if (l.routes.length === 0) violation(`accepted listener ${JSON.stringify(l.name)} has no routes`, text);
    for (const r of l.routes) {
      // SPEC 8: exactly one action; every pool a route names (pool, pools, mirror) exists.
      const actions = [r.pool, r.pools, r.redirect, r.respond].filter((a) => a !== undefined);
      if (actions.length !== 1) violation(`accepted route of listener ${JSON.stringify(l.name)} has ${actions.length} actions`, text);
      const named = [r.pool, ...(r.pools ?? []).map((p) => p.pool), r.mirror?.pool].filter((n): n is string => n !== undefined);
      for (const name of named) {
        if (!poolNames.has(name)) {
          violation(`accepted config routes listener ${JSON.stringify(l.name)} to pool ${JSON.stringify(name)}, which is not in config.pools [${[...poolNames].join(', ')}]`, text);
        }
      }
      if (r.pools !== undefined && r.pools.every((p) => p.weight === 0)) violation('accepted pools whose weights are all 0', text);
      if (r.rewrite !== undefined && r.stripPrefix) violation('accepted rewrite with stripPrefix: true', text);
      for (const rules of [r.requestHeaders, r.responseHeaders]) {
        for (const [name] of [...(rules?.set ?? []), ...(rules?.add ?? [])]) {
          if (HOP_BY_HOP.has(name.toLowerCase())) violation(`accepted hop-by-hop header ${name} in set/add`, text);
        }
      }
      for (const source of [r.match.pathRegex, ...(r.match.headers ?? []).map((h) => h.regex), ...(r.match.query ?? []).map((q) => q.regex)]) {
        if (source !== undefined && !safeRegex(source)) violation(`accepted a regex that can backtrack catastrophically: ${source}`, text);
      }
    }
  }
  for (const p of c.pools) {
    if (p.backends.length === 0 && p.discovery?.dns === undefined) violation(`accepted pool ${JSON.stringify(p.name)} has neither backends nor dns discovery`, text);
  }
}

/**
 * Number of runs: env FUZZ_RUNS sets every property's run count outright
 * (FUZZ_RUNS=5000 for a long campaign); else env FUZZ_SCALE multiplies every
 * property's default (e.g. FUZZ_SCALE=20 for a long local run).
 */
export function runs(defaultRuns: number): number {
  const fixed = Number(process.env.FUZZ_RUNS);
  if (Number.isInteger(fixed) && fixed > 0) return fixed;
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  return Math.max(1, Math.round(defaultRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

export interface PropertyReport {
  readonly name: string;
  readonly runs: number;
  readonly planned: number;
  readonly ms: number;
  readonly interrupted: boolean;
  readonly seed: number;
}

export const reports: PropertyReport[] = [];

/**
 * fc.assert with a time budget. `npm test` uses a fixed seed per property, so
 * CI is repeatable; FUZZ_SEED=random lets fast-check pick (to explore), and
 * FUZZ_SEED=N with FUZZ_PATH replays a failure (both are printed). Past `budgetMs` the run
 * stops early (the runs done so far count; a failure found so far is still
 * reported, shrunk as far as time allowed). With FUZZ_SCALE the budget grows too.
 */
/** A seed that depends only on the property's name (FNV-1a). */
function fixedSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0;
}

function checkParameters(name: string, defaultRuns: number, budgetMs: number): fc.Parameters<never> & { numRuns: number } {
  const env = process.env.FUZZ_SEED;
  const seed = env === 'random' ? undefined : env !== undefined ? env : String(fixedSeed(name));
  const replayPath = process.env.FUZZ_PATH;
  const numRuns = runs(defaultRuns);
  return {
    numRuns,
    interruptAfterTimeLimit: Math.round(budgetMs * (numRuns / defaultRuns)),
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(replayPath !== undefined ? { path: replayPath } : {}),
  };
}

function settle<Ts>(name: string, planned: number, t0: number, details: fc.RunDetails<Ts>): void {
  reports.push({ name, runs: details.numRuns, planned, ms: performance.now() - t0, interrupted: details.interrupted, seed: details.seed });
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed', { cause: details.errorInstance });
}

export function checkProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IProperty<Ts>,
  defaultRuns: number,
  budgetMs: number,
): void {
  const parameters = checkParameters(name, defaultRuns, budgetMs);
  const t0 = performance.now();
  settle(name, parameters.numRuns, t0, fc.check(property, parameters as fc.Parameters<Ts>));
}

/** checkProperty for an fc.asyncProperty (real sockets, real processes): same seeds, budget and report. */
export async function checkAsyncProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IAsyncProperty<Ts>,
  defaultRuns: number,
  budgetMs: number,
): Promise<void> {
  const parameters = checkParameters(name, defaultRuns, budgetMs);
  const t0 = performance.now();
  settle(name, parameters.numRuns, t0, await fc.check(property, parameters as fc.Parameters<Ts>));
}
