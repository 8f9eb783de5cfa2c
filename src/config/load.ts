/**
 * Reading the config file: YAML with positions, `${NAME}` interpolation, the zod
 * schema (schema.ts) and its normaliser (normalise.ts), the cross-reference
 * checks (checks.ts), then a deep freeze. Every problem is reported at once,
 * each at its line and column, sorted by position.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, FulcrumError, type ConfigProblem } from '../errors';
import { interpolateDocument } from './env';
import { crossCheck, type PathSegment } from './checks';
import { normalise } from './normalise';
import { fileSchema } from './schema';
import { fsReason } from './values';
import type { Config } from './types';

/** Reads and validates `file`. Throws FulcrumError FULCRUM_CONFIG_UNREADABLE or ConfigError. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FulcrumError('FULCRUM_CONFIG_UNREADABLE', `${file}: cannot read config file: ${fsReason(err)}`);
  }
  return parseConfig(text, file, env);
}

/**
 * Validates config text. `file` is used as given in problem reports, and made
 * absolute for `Config.file` and for resolving relative paths in the file.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    // Duplicate keys are found below, in one pass: the parser's own check
    // compares each key with every earlier one of its map (20000 keys: 20 s).
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  } catch (err) {
    // The yaml parser recurses: thousands of nesting levels exhaust the stack.
    const why = err instanceof RangeError ? 'the document is nested too deeply' : firstLine(err instanceof Error ? err.message : String(err));
    throw new ConfigError([{ file, line: 1, col: 1, message: `YAML error: ${why}` }]);
  }
  // Every message is one line, whatever a key or value in the file holds.
  const problemAt = (offset: number, message: string): ConfigProblem => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col, message: message.replace(/\s*[\r\n]+\s*/g, ' ') };
  };

  // Syntax errors make positions of everything after them unreliable: stop here.
  const duplicates = doc.errors.length > 0 ? [] : duplicateKeys(doc);
  if (doc.errors.length > 0 || duplicates.length > 0) {
    throw new ConfigError(sortProblems([
      ...doc.errors.map((e) => problemAt(e.pos[0], `YAML syntax error: ${firstLine(e.message)}`)),
      ...duplicates.map((offset) => problemAt(offset, 'YAML syntax error: Map keys must be unique')),
    ]));
  }
  if (!isMap(doc.contents)) {
    const what = doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)
      ? 'the config file is empty'
      : 'the config file must be a map';
    throw new ConfigError([{ file, line: 1, col: 1, message: `${what}: expected keys such as listeners and pools` }]);
  }

  const problems: ConfigProblem[] = [];
  const envNodes = new Set<unknown>();
  for (const p of interpolateDocument(doc, env)) {
    envNodes.add(p.node);
    problems.push(problemAt(p.node.range?.[0] ?? 0, p.message));
  }

  let raw: Record<string, unknown>;
  try {
    raw = doc.toJS() as Record<string, unknown>;
  } catch (err) {
    // yaml refuses documents whose aliases expand too far ("billion laughs").
    throw new ConfigError([{ file, line: 1, col: 1, message: `YAML error: ${firstLine(err instanceof Error ? err.message : String(err))}` }]);
  }
  const absolute = path.resolve(file);
  const schema = fileSchema(path.dirname(absolute)).transform((c) => normalise(c, absolute));
  const result = schema.safeParse(raw, { error: humanize });

  if (!result.success) {
    for (const issue of result.error.issues) {
      const at = issue.path.map((s): PathSegment => (typeof s === 'symbol' ? String(s) : s));
      if (issue.code === 'unrecognized_keys') {
        const lines = issue.message.split('\n');
        // Each is located by a scan of its map: report the first few, count the rest.
        issue.keys.slice(0, MAX_UNKNOWN_KEYS).forEach((key, i) => {
          const { offset } = locate(doc, [...at, key], true);
          problems.push(problemAt(offset, prefix(at) + (lines[i] ?? `unknown key ${JSON.stringify(key)}`)));
        });
        if (issue.keys.length > MAX_UNKNOWN_KEYS) {
          const { offset } = locate(doc, at);
          problems.push(problemAt(offset, `${prefix(at)}${issue.keys.length - MAX_UNKNOWN_KEYS} more unknown keys`));
        }
        continue;
      }
      if (at.length > 0 && valueAt(raw, at) === undefined) {
        // A missing key: point at the map that should hold it.
        const parent = at.slice(0, -1);
        problems.push(problemAt(locate(doc, parent).offset, `${prefix(parent)}missing required key ${JSON.stringify(String(at[at.length - 1]))}`));
        continue;
      }
      const { node, offset } = locate(doc, at);
      if (envNodes.has(node)) continue; // already reported: its variable is not set
      problems.push(problemAt(offset, prefix(at) + firstLine(issue.message)));
    }
  }

  for (const p of crossCheck(raw, path.dirname(absolute))) {
    const { node, offset } = locate(doc, p.path, p.atKey === true);
    if (envNodes.has(node)) continue;
    const dotted = dottedPath(p.path);
    problems.push(problemAt(offset, p.message.startsWith(dotted) ? p.message : prefix(p.path) + p.message));
  }

  if (problems.length > 0 || !result.success) throw new ConfigError(sortProblems(problems));
  return deepFreeze(result.data);
}

// ---------------------------------------------------------------------------

/** Zod's default wording ("Invalid input: expected ...") rewritten for people editing YAML. */
const humanize: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describe(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'array') return `needs at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.origin === 'string') return 'must not be empty';
      return issue.inclusive === false ? `must be greater than ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array') return `has more than ${String(issue.maximum)} entries`;
      return issue.inclusive === false ? `must be less than ${String(issue.maximum)}` : `must be at most ${String(issue.maximum)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => String(v)).join(', ')}, got ${describe(issue.input)}`;
    default:
      return undefined;
  }
};

const TYPE_NAMES: Record<string, string> = {
  object: 'a map',
  record: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/**
 * Where a key repeats one before it in the same map (as the yaml parser's
 * own check decides: scalar keys of the same value), in one pass per map.
 */
function duplicateKeys(doc: Document): number[] {
  const found: number[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) found.push(pair.key.range?.[0] ?? 0);
        else seen.add(pair.key.value);
      }
    },
  });
  return found;
}

function describe(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** Unknown keys reported one by one per map; beyond, a count. */
const MAX_UNKNOWN_KEYS = 20;

function dottedPath(p: readonly PathSegment[]): string {
  let out = '';
  for (const seg of p) {
    // Keys that are not plain words (line breaks, quotes, spaces) are quoted.
    const key = typeof seg === 'string' && !/^[\w.:\[\]-]*$/.test(seg) ? JSON.stringify(seg) : seg;
    out += typeof seg === 'number' ? `[${seg}]` : out === '' ? key : `.${key}`;
  }
  return out;
}

function prefix(p: readonly PathSegment[]): string {
  return p.length === 0 ? '' : `${dottedPath(p)}: `;
}

function valueAt(root: unknown, p: readonly PathSegment[]): unknown {
  let v = root;
  for (const seg of p) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * The YAML node at a schema path and its offset. When the path leads nowhere
 * (a key that is missing, an index past the end) it stops at the nearest
 * existing node; with `atKey` the last segment points at the key, not the value.
 */
function locate(doc: Document, p: readonly PathSegment[], atKey = false): { node: unknown; offset: number } {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (let i = 0; i < p.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = p[i]!;
    if (isMap(node)) {
      const pair = node.items.find((it) => keyText(it.key) === String(seg));
      if (pair === undefined) return { node, offset };
      const keyOffset = startOf(pair.key);
      if (atKey && i === p.length - 1) return { node: pair.key, offset: keyOffset ?? offset };
      node = pair.value;
      // `tls:` with nothing after it has no value node: point at its key.
      offset = startOf(node) ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = startOf(node) ?? offset;
    } else {
      return { node, offset };
    }
  }
  return { node, offset };
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? (node as Node).range?.[0] : undefined;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' || typeof key === 'number' ? String(key) : undefined;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map(({ p }) => p)
    .filter((p) => {
      const k = `${p.line}:${p.col}:${p.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
