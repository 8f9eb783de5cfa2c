/**
 * Text-level mutations of a YAML config. Each mutation is plain data (so that
 * fast-check prints a readable counterexample) applied by `applyMutation`.
 * Positions are free integers taken modulo the current number of lines or
 * characters, so any mutation applies to any text.
 */
import fc from 'fast-check';

export type Mutation =
  | { readonly op: 'deleteLine'; readonly at: number }
  | { readonly op: 'duplicateLine'; readonly at: number }
  | { readonly op: 'swapLines'; readonly a: number; readonly b: number }
  | { readonly op: 'insertText'; readonly at: number; readonly text: string }
  | { readonly op: 'insertLine'; readonly at: number; readonly line: string }
  | { readonly op: 'indent'; readonly at: number; readonly delta: number }
  | { readonly op: 'tabIndent'; readonly at: number }
  | { readonly op: 'replaceValue'; readonly at: number; readonly value: string }
  | { readonly op: 'replaceKey'; readonly at: number; readonly key: string }
  | { readonly op: 'anchorMerge'; readonly at: number; readonly to: number; readonly form: 'merge' | 'alias' }
  | { readonly op: 'aliasBomb'; readonly at: number; readonly depth: number; readonly width: number }
  | { readonly op: 'deepNest'; readonly at: number; readonly depth: number; readonly style: NestStyle }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'bom' }
  | { readonly op: 'crlf' }
  | { readonly op: 'cr' }
  | { readonly op: 'document'; readonly where: 'before' | 'after'; readonly text: string };

export type NestStyle = 'flow-seq' | 'flow-map' | 'block-map' | 'block-seq';

/** Scalar texts that have broken YAML loaders and config validators before. */
export const SPECIAL_VALUES: readonly string[] = [
  '', '~', 'null', 'Null', 'NULL', 'true', 'false', 'True', 'yes', 'no', 'on', 'off', 'y', 'n',
  '0', '-0', '00', '-1', '-999999', '1e400', '-1e400', '1e-400', '9007199254740993', '99999999999999999999999999999',
  '0x1F', '0o17', '0b101', '+1', '1_000', '.5', '1.', '1.5', '65536', '65535', '100000', '2147483648',
  '.nan', '.NaN', '.inf', '-.inf', '+.inf', 'NaN', 'nan', 'Infinity', '-Infinity', 'undefined',
  '${UNSET}', '${}', '$', '${', '}', '$$', '$${FUZZ_VAR}', '${FULCRUM_ADMIN_TOKEN}', '${FUZZ_VAR}', '"${UNSET}"',
  "'${FUZZ_VAR}'", '${FUZZ_VAR}${FUZZ_VAR}', '${1BAD}', '${a-b}', '${ FUZZ_VAR }', 'http://${FUZZ_VAR}:80', '${FUZZ_VAR}s',
  '&a x', '*a', '*undefined_anchor', '&a', '&a &b x', '<<: *a', '{<<: *a}', '[*a, *a]', '&x [*x]', '&y {k: *y}',
  '!!binary aGVsbG8=', '!!int "12"', '!!int x', '!!float x', '!!str 5', '!!map {}', '!!seq []', '!!set {a, b}',
  '!!omap [a: 1]', '!!pairs [a: 1]', '!!timestamp 2001-12-14', '!custom x', '!<tag:yaml.org,2002:str> x', '!!null ""',
  '!!bool yes', '!! x', '!', '!!js/function "function(){}"', '!!python/object:os.system x',
  '{', '}', '[', ']', '{a: 1}', '[1, 2', '"unterminated', "'unterminated", '|', '>-', '|+', '|-2', '|9', '? x', '- x',
  '- - x', ': x', '#', '#not a comment', '@x', '`x', '%x', 'a: b: c', '"\\u0000"', '"\\x"', '"\\uD800"', '"\\U0010FFFF"',
  "'it''s'", '"a\\nb"', 'a #b', 'a\u0000b', '\u0007', '\u001b[31mred',
  '10mb', '5s', '250ms', '0s', '1.5h', '1e3s', '5 s', '-5s', '5S', '1000000h', '99999999999999999999h', '0.0001ms',
  '10MB', '1gb', '9999999999gb', '-1kb',
  'http://127.0.0.1:0', 'http://x/path', 'https://[::1]:8443', 'file:///etc/passwd', 'http://user:pw@h:1',
  'http://h:99999', 'http://[::1', 'javascript:alert(1)', '//h:1',
  '127.0.0.1:99999', '[::]:8080', ':8080', '0.0.0.0:0', '::1:80', '[::1]', '[]:80', 'localhost:-1', ':',
  'round-robin', 'consistent-hash', 'header:X-Key', 'header:', 'cookie:s', 'cookie:a b', 'ip', 'path', 'auto',
  '200-399', '599-100', '200,', '99', '600', '200-', 'info', 'trace', 'verbose',
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype',
  'x'.repeat(100_000), 'é'.repeat(2_000), '😀'.repeat(1_000), '\u202e\u200b', '\u0085', '\u2028', '\u2029', '\uFEFF',
  '\uD800', '\uDFFF', 'a\tb', '\t', ' ', '  x  ',
];

/** Keys: prototype names, YAML-typed keys, complex keys, typos of real keys. */
export const SPECIAL_KEYS: readonly string[] = [
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf', '__defineGetter__',
  '""', "''", '~', 'null', '1', '-1', '1.5', 'true', '.nan', '<<', '? [a]', '? {a: 1}', '[a, b]', '{a: 1}',
  '&k web', '*k', '&k', '!!str web', '!!int 1', 'listners', 'Listeners', 'pool', 'backend', 'url ', ' url',
  'healthcheck', 'health_check', 'maxBodysize', 'strategy2', 'é', '😀', 'a'.repeat(5_000), '${FUZZ_VAR}', 'x y',
];

export const ENV_VALUES: readonly string[] = [
  '', ' ', '0', '8080', '-1', '1e400', 'true', 'false', 'null', '~', '${FUZZ_VAR}', '${UNSET}', 'a\nb', 'a: b',
  '[1, 2]', '{a: 1}', '*a', '&a', 'http://127.0.0.1:1', '127.0.0.1:0', '5s', '10mb', 'x'.repeat(10_000), '\u0000',
];

const smallString = fc.string({ maxLength: 30 });
const unicodeString = fc.string({ unit: 'grapheme', maxLength: 30 });
const binaryString = fc.string({ unit: 'binary', maxLength: 20 });
const yamlChar = fc.constantFrom(
  ':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '#', ',', '?', '$', '\\',
  '\t', '\r', '\n', '\r\n', ' ', '\uFEFF', '\u0000', '\u2028', '\u0085', '\uD800', '---', '...', '<<',
);

/** A replacement scalar (as YAML text): special values, random strings, numbers, quoted strings. */
export const scalarText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SPECIAL_VALUES) },
  { weight: 2, arbitrary: smallString },
  { weight: 1, arbitrary: unicodeString },
  { weight: 1, arbitrary: binaryString },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.bigInt().map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'é', '😀', ' ', 'ab', '-'), fc.integer({ min: 1_000, max: 200_000 })).map(([c, n]) => c.repeat(n)) },
  // One YAML error per character or two: kept short (yaml reports each one; 100k of them take ~0.5 s).
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('"', '\\', '[', '{', '&', '*', '!', ':', '\t'), fc.integer({ min: 100, max: 5_000 })).map(([c, n]) => c.repeat(n)) },
);

export const keyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIAL_KEYS) },
  { weight: 1, arbitrary: smallString },
  { weight: 1, arbitrary: unicodeString },
);

export const envValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ENV_VALUES) },
  { weight: 1, arbitrary: smallString },
  { weight: 1, arbitrary: unicodeString },
);

const pos = fc.nat();
const nestStyle = fc.constantFrom<NestStyle>('flow-seq', 'flow-map', 'block-map', 'block-seq');

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('deleteLine' as const), at: pos }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicateLine' as const), at: pos }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('swapLines' as const), a: pos, b: pos }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('insertText' as const),
      at: pos,
      text: fc.oneof(yamlChar, fc.array(yamlChar, { minLength: 1, maxLength: 5 }).map((a) => a.join('')), binaryString, unicodeString),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('insertLine' as const),
      at: pos,
      line: fc.oneof(
        fc.constantFrom('---', '...', '%YAML 1.1', '%TAG ! tag:x,2000:', '# comment', '-', '- x', '? x', ': x', '<<: *a', 'a: &a', 'zz: *a', '[', '{'),
        keyText.map((k) => `${k}: x`),
        fc.tuple(keyText, scalarText).map(([k, v]) => `${k}: ${v}`),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('indent' as const), at: pos, delta: fc.integer({ min: -6, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tabIndent' as const), at: pos }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('replaceValue' as const), at: pos, value: scalarText }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('replaceKey' as const), at: pos, key: keyText }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('anchorMerge' as const), at: pos, to: pos, form: fc.constantFrom('merge' as const, 'alias' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('aliasBomb' as const),
      at: pos,
      depth: fc.integer({ min: 1, max: 12 }),
      width: fc.integer({ min: 1, max: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('deepNest' as const), at: pos, depth: fc.integer({ min: 10, max: 1_200 }), style: nestStyle }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: pos }) },
  { weight: 1, arbitrary: fc.constant({ op: 'bom' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'crlf' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'cr' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('document' as const),
      where: fc.constantFrom('before' as const, 'after' as const),
      text: fc.constantFrom('', 'a: 1', 'listeners: {}', '[1, 2]', '~', '*a', '&a b'),
    }),
  },
);

/** 1 to 4 mutations, applied in order. */
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

/** `key: value` (also `- key: value`): prefix up to the colon and the spaces after it, then the value. */
const KEY_VALUE = /^(\s*(?:-\s+)?[^\s#:][^:#]*?:)(\s+)(\S.*)$/;
/** `key:` with nothing after it but maybe a comment: a block map or list follows. */
const KEY_BLOCK = /^(\s*(?:-\s+)?[^\s#:][^:#]*?:)(\s*(?:#.*)?)$/;
/** The key of a `key:` line, without list dash and indentation. */
const KEY_PART = /^(\s*(?:-\s+)?)([^\s#:][^:#]*?)(:(?:\s.*)?)$/;

function indexWhere(lines: readonly string[], at: number, re: RegExp): number | undefined {
  const candidates = lines.map((l, i) => (re.test(l) ? i : -1)).filter((i) => i >= 0);
  return candidates.length === 0 ? undefined : candidates[at % candidates.length];
}

function indentOf(line: string): string {
  return /^\s*/.exec(line)![0].replace(/[-\s]/g, ' ');
}

export function applyMutation(text: string, m: Mutation): string {
  const lines = text.split('\n');
  const n = lines.length;
  switch (m.op) {
    case 'deleteLine':
      lines.splice(m.at % n, 1);
      return lines.join('\n');
    case 'duplicateLine':
      lines.splice(m.at % n, 0, lines[m.at % n]!);
      return lines.join('\n');
    case 'swapLines': {
      const a = m.a % n;
      const b = m.b % n;
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
    case 'insertText': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'insertLine': {
      const at = m.at % (n + 1);
      const indent = indentOf(lines[Math.min(at, n - 1)] ?? '');
      lines.splice(at, 0, indent + m.line);
      return lines.join('\n');
    }
    case 'indent': {
      const i = m.at % n;
      const line = lines[i]!;
      lines[i] = m.delta >= 0 ? ' '.repeat(m.delta) + line : line.replace(new RegExp(`^ {0,${-m.delta}}`), '');
      return lines.join('\n');
    }
    case 'tabIndent': {
      const i = m.at % n;
      lines[i] = lines[i]!.replace(/^( +)/, (s) => '\t'.repeat(Math.max(1, s.length / 2)));
      return lines.join('\n');
    }
    case 'replaceValue': {
      const i = indexWhere(lines, m.at, KEY_VALUE);
      if (i === undefined) return text;
      lines[i] = lines[i]!.replace(KEY_VALUE, (_all, key: string, space: string) => `${key}${space}${m.value}`);
      return lines.join('\n');
    }
    case 'replaceKey': {
      const i = indexWhere(lines, m.at, KEY_PART);
      if (i === undefined) return text;
      lines[i] = lines[i]!.replace(KEY_PART, (_all, lead: string, _key: string, rest: string) => `${lead}${m.key}${rest}`);
      return lines.join('\n');
    }
    case 'anchorMerge': {
      // Put an anchor on a block (`key: &fz`) and refer to it elsewhere, as a merge key or as a value.
      const from = indexWhere(lines, m.at, KEY_BLOCK);
      if (from === undefined) return text;
      lines[from] = lines[from]!.replace(KEY_BLOCK, (_all, key: string) => `${key} &fz`);
      if (m.form === 'merge') {
        const to = m.to % (n + 1);
        lines.splice(to, 0, `${indentOf(lines[Math.min(to, n - 1)] ?? '')}<<: *fz`);
      } else {
        const to = indexWhere(lines, m.to, KEY_VALUE);
        if (to !== undefined) lines[to] = lines[to]!.replace(KEY_VALUE, (_all, key: string, space: string) => `${key}${space}*fz`);
      }
      return lines.join('\n');
    }
    case 'aliasBomb': {
      // Billion laughs: bN is a list of `width` aliases to bN-1; a value refers to the top one.
      const bomb = [`fzbomb0: &fzb0 [${Array(m.width).fill('"lol"').join(', ')}]`];
      for (let d = 1; d <= m.depth; d++) bomb.push(`fzbomb${d}: &fzb${d} [${Array(m.width).fill(`*fzb${d - 1}`).join(', ')}]`);
      const body = applyMutation(text, { op: 'replaceValue', at: m.at, value: `*fzb${m.depth}` });
      return `${bomb.join('\n')}\n${body}`;
    }
    case 'deepNest': {
      const i = indexWhere(lines, m.at, KEY_VALUE) ?? indexWhere(lines, m.at, KEY_BLOCK);
      if (i === undefined) return text;
      const indent = indentOf(lines[i]!).length + 2;
      const prefix = KEY_VALUE.exec(lines[i]!)?.[1] ?? KEY_BLOCK.exec(lines[i]!)![1]!;
      switch (m.style) {
        case 'flow-seq':
          lines[i] = `${prefix} ${'['.repeat(m.depth)}1${']'.repeat(m.depth)}`;
          break;
        case 'flow-map':
          lines[i] = `${prefix} ${'{a: '.repeat(m.depth)}1${'}'.repeat(m.depth)}`;
          break;
        case 'block-map':
          lines[i] = `${prefix}\n${Array.from({ length: m.depth }, (_, d) => `${' '.repeat(indent + d)}k${d}:`).join('\n')} 1`;
          break;
        case 'block-seq':
          lines[i] = `${prefix}\n${Array.from({ length: m.depth }, (_, d) => `${' '.repeat(indent + 2 * d)}-`).join('\n')} 1`;
          break;
      }
      return lines.join('\n');
    }
    case 'truncate':
      return text.slice(0, m.at % (text.length + 1));
    case 'bom':
      return `\uFEFF${text}`;
    case 'crlf':
      return text.replace(/\r?\n/g, '\r\n');
    case 'cr':
      return text.replace(/\r?\n/g, '\r');
    case 'document':
      return m.where === 'before' ? `${m.text}\n---\n${text}` : `${text}\n---\n${m.text}\n`;
  }
}

export function applyAll(text: string, ms: readonly Mutation[]): string {
  return ms.reduce(applyMutation, text);
}
