/**
 * Fuzzing parseConfig (src/config/load.ts). Whatever the text, parseConfig must
 * either return a deeply frozen, consistent Config or throw a ConfigError
 * (code FULCRUM_CONFIG_INVALID) whose problems have real positions and one-line
 * messages, within 2 s per call; see support.ts for the exact contract.
 *
 * fast-check picks a new seed on every run and prints it (with the path and the
 * shrunk counterexample) on failure; replay with
 *   FUZZ_SEED=<seed> FUZZ_PATH=<path> npx jest tests/fuzz/config.fuzz.test.ts
 * and run longer with FUZZ_SCALE=10 (ten times the runs below).
 */
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import { BASE_ENV, checkedParse, checkProperty, FIXTURES, MINIMAL_TEXT, reports, SEEDS, stats, type Outcome } from './support';
import { applyAll, envValue, mutations, scalarText } from './mutations';
import { anyConfig, stringifyStyle, validConfig } from './config-arbitraries';

const FUZZ_FILE = path.join(FIXTURES, 'fuzz.yaml');
const TIMEOUT = 120_000;

afterAll(() => {
  console.log([
    `parseConfig fuzz: ${stats.calls} calls, ${stats.ok} accepted, ${stats.invalid} rejected; slowest ${stats.maxMs.toFixed(1)} ms on ${stats.maxMsInput}`,
    ...reports.map((r) => `  ${r.name}: ${r.runs}/${r.planned} runs in ${(r.ms / 1000).toFixed(1)} s, seed ${r.seed}${r.interrupted ? ' (time budget reached)' : ''}`),
  ].join('\n'));
});

function expectOk(outcome: Outcome): void {
  if (outcome.kind !== 'ok') throw new Error(`expected the config to be accepted, got:\n${outcome.problems.map((p) => `${String(p.line)}:${String(p.col)}: ${String(p.message)}`).join('\n')}`);
}

function expectInvalid(outcome: Outcome, message?: RegExp): void {
  if (outcome.kind !== 'invalid') throw new Error('expected the config to be rejected');
  if (message !== undefined && !outcome.problems.some((p) => message.test(String(p.message)))) {
    throw new Error(`no problem matches ${String(message)}: ${outcome.problems.map((p) => String(p.message)).join(' | ')}`);
  }
}

describe('the seeds', () => {
  test.each(SEEDS.map((s) => [s.name, s] as const))('%s is valid as it is', (_name, seed) => {
    expectOk(checkedParse(seed.text, seed.file, BASE_ENV));
  });
});

describe('hostile YAML, by hand', () => {
  const minimalWith = (replace: string, by: string): string => {
    if (!MINIMAL_TEXT.includes(replace)) throw new Error(`not in MINIMAL_TEXT: ${replace}`);
    return MINIMAL_TEXT.replace(replace, by);
  };
  const bomb = (depth: number, width: number): string[] => {
    const lines = [`b0: &b0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let d = 1; d <= depth; d++) lines.push(`b${d}: &b${d} [${Array(width).fill(`*b${d - 1}`).join(', ')}]`);
    return lines;
  };
  const cases: [string, string, RegExp | undefined][] = [
    ['billion laughs (9 levels of 10) at the top level', [...bomb(9, 10), MINIMAL_TEXT].join('\n'), /alias|resource/i],
    ['billion laughs as the backends list', [...bomb(9, 10), minimalWith('    backends:\n      - url: http://127.0.0.1:3001', '    backends: *b9')].join('\n'), /alias|resource/i],
    ['billion laughs inside a string scalar', [`x: &x "${'a'.repeat(1000)}"`, `y: &y [${Array(50).fill('*x').join(', ')}]`, `z: [${Array(50).fill('*y').join(', ')}]`, MINIMAL_TEXT].join('\n'), undefined],
    ['1000 nested flow lists', minimalWith('pool: web', `pool: ${'['.repeat(1000)}${']'.repeat(1000)}`), undefined],
    ['1000 nested flow maps', minimalWith('pool: web', `pool: ${'{a: '.repeat(1000)}1${'}'.repeat(1000)}`), undefined],
    ['1000 nested block maps', `${MINIMAL_TEXT}x:\n${Array.from({ length: 1000 }, (_, d) => `${' '.repeat(d + 1)}k${d}:`).join('\n')} 1\n`, undefined],
    ['1000 nested block lists', `${MINIMAL_TEXT}x:\n${Array.from({ length: 1000 }, (_, d) => `${' '.repeat(2 * d + 1)}-`).join('\n')} 1\n`, undefined],
    ['100000 nested flow lists', minimalWith('pool: web', `pool: ${'['.repeat(100_000)}${']'.repeat(100_000)}`), undefined],
    ['tabs for indentation', MINIMAL_TEXT.replace(/^ {2}/gm, '\t'), /tab/i],
    ['multiple documents', `${MINIMAL_TEXT}---\n${MINIMAL_TEXT}`, /document/i],
    ['a merge key (YAML 1.1 only: an unknown key here)', minimalWith('    listen: 127.0.0.1:0', '    <<: {listen: 127.0.0.1:0}'), /<</],
    ['an alias to an anchor that does not exist', minimalWith('pool: web', 'pool: *nowhere'), /alias/i],
    ['an alias cycle', `${MINIMAL_TEXT}x: &x [*x]\n`, undefined],
    ['${} as a url', minimalWith('http://127.0.0.1:3001', '${}'), /url/],
    ['${UNSET} as a url', minimalWith('http://127.0.0.1:3001', '${UNSET}'), /UNSET is not set/],
    ['$ as a listen address', minimalWith('127.0.0.1:0', '$'), /listen/],
    ['only a BOM', '\uFEFF', /empty/],
    ['only a comment', '# nothing\n', /empty/],
    ['a NUL byte', minimalWith('web', 'w\u0000eb'), undefined],
    ['a lone surrogate', minimalWith('web', 'w\uD800eb'), undefined],
    // (thousands of unknown keys: see config.regressions.test.ts)
    ['1000 unknown keys', `${MINIMAL_TEXT}${Array.from({ length: 1_000 }, (_, i) => `k${i}: ${i}`).join('\n')}\n`, /unknown key/],
    ['5000 duplicate keys', `${MINIMAL_TEXT}${Array(5_000).fill('workers: 1').join('\n')}\n`, /unique|duplicate/i],
    ['a 5 MB line', minimalWith('127.0.0.1:0', 'x'.repeat(5_000_000)), /listen/],
  ];
  test.each(cases)('%s', (_name, text, message) => {
    expectInvalid(checkedParse(text, FUZZ_FILE, BASE_ENV), message);
  });

  test.each([
    ['a BOM', `\uFEFF${MINIMAL_TEXT}`],
    ['CRLF line ends', MINIMAL_TEXT.replace(/\n/g, '\r\n')],
    ['an explicit document start and end', `---\n${MINIMAL_TEXT}...\n`],
    ['a %YAML 1.2 directive', `%YAML 1.2\n---\n${MINIMAL_TEXT}`],
    ['anchors and aliases inside the schema', minimalWith('      - pool: web', '      - pool: &p web\n      - pool: *p')],
  ])('%s is still valid', (_name, text) => {
    expectOk(checkedParse(text, FUZZ_FILE, BASE_ENV));
  });
});

describe('properties', () => {
  test('text-level mutations of the seed configs (lines deleted, duplicated, swapped, re-indented; values and keys replaced; characters inserted; anchors, merges, alias bombs, deep nesting, BOM, CR/CRLF, documents)', () => {
    checkProperty(
      'text mutations',
      fc.property(fc.constantFrom(...SEEDS), mutations, envValue, (seed, ms, fuzzVar) => {
        checkedParse(applyAll(seed.text, ms), seed.file, { ...BASE_ENV, FUZZ_VAR: fuzzVar });
      }),
      600,
      6_000,
    );
  }, TIMEOUT);

  test('one scalar of a seed replaced by a hostile value', () => {
    checkProperty(
      'scalar replacement',
      fc.property(fc.constantFrom(...SEEDS), fc.nat(), scalarText, envValue, (seed, at, value, fuzzVar) => {
        checkedParse(applyAll(seed.text, [{ op: 'replaceValue', at, value }]), seed.file, { ...BASE_ENV, FUZZ_VAR: fuzzVar });
      }),
      500,
      5_000,
    );
  }, TIMEOUT);

  test('hostile structures: alias bombs, deep nesting, many keys', () => {
    const structure = fc.oneof(
      fc.record({ kind: fc.constant('bomb' as const), depth: fc.integer({ min: 1, max: 30 }), width: fc.integer({ min: 1, max: 30 }), where: fc.nat() }),
      fc.record({
        kind: fc.constant('nest' as const),
        depth: fc.integer({ min: 1, max: 3_000 }),
        style: fc.constantFrom('flow-seq' as const, 'flow-map' as const, 'block-map' as const, 'block-seq' as const),
        where: fc.nat(),
      }),
      // Up to 1500: thousands of unknown keys are a known quadratic slowdown (config.regressions.test.ts).
      fc.record({ kind: fc.constant('keys' as const), count: fc.integer({ min: 1, max: 1_500 }), duplicate: fc.boolean() }),
    );
    checkProperty(
      'hostile structures',
      fc.property(structure, fc.constantFrom(...SEEDS), (s, seed) => {
        let text: string;
        if (s.kind === 'bomb') text = applyAll(seed.text, [{ op: 'aliasBomb', at: s.where, depth: s.depth, width: s.width }]);
        else if (s.kind === 'nest') text = applyAll(seed.text, [{ op: 'deepNest', at: s.where, depth: s.depth, style: s.style }]);
        else text = `${seed.text}\n${Array.from({ length: s.count }, (_, i) => (s.duplicate ? 'workers: 1' : `zz${i}: ${i}`)).join('\n')}\n`;
        checkedParse(text, seed.file, BASE_ENV);
      }),
      120,
      5_000,
    );
  }, TIMEOUT);

  test('object level: config objects with valid and invalid values for every key, written by the yaml package', () => {
    checkProperty(
      'object level, any values',
      fc.property(anyConfig, stringifyStyle, envValue, (g, style, fuzzVar) => {
        const text = YAML.stringify(g.config, { ...style, lineWidth: 0 });
        checkedParse(text, FUZZ_FILE, { ...BASE_ENV, FUZZ_VAR: fuzzVar });
      }),
      500,
      5_000,
    );
  }, TIMEOUT);

  test('object level: configs valid by the spec are accepted, with every listener and pool', () => {
    const sorted = (names: readonly string[]) => [...names].sort();
    checkProperty(
      'object level, valid configs',
      fc.property(validConfig, stringifyStyle, (g, style) => {
        const text = YAML.stringify(g.config, { ...style, lineWidth: 0 });
        const outcome = checkedParse(text, FUZZ_FILE, BASE_ENV);
        expectOk(outcome);
        if (outcome.kind !== 'ok') return;
        expect(sorted(outcome.config.listeners.map((l) => l.name))).toEqual(sorted(g.listenerNames));
        expect(sorted(outcome.config.pools.map((p) => p.name))).toEqual(sorted(g.poolNames));
      }),
      300,
      4_000,
    );
  }, TIMEOUT);
});
