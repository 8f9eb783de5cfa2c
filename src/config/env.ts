/**
 * `${NAME}` interpolation. It runs on the parsed YAML tree, not on the raw text,
 * so a value can never inject YAML structure and each unset variable is reported
 * at the position of the scalar that names it. Keys are left alone.
 */
import { Document, Scalar, visit } from 'yaml';

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface InterpolationResult {
  readonly value: string;
  /** Names referenced but not set, in order of appearance. */
  readonly missing: readonly string[];
}

/** Replaces every `${NAME}` in `text`; unset variables become "" and are listed in `missing`. */
export function interpolate(text: string, env: NodeJS.ProcessEnv): InterpolationResult {
  const missing: string[] = [];
  const value = text.replace(REFERENCE, (_whole, name: string) => {
    const v = env[name];
    if (v === undefined) {
      missing.push(name);
      return '';
    }
    return v;
  });
  return { value, missing };
}

export interface EnvProblem {
  readonly node: Scalar;
  readonly message: string;
}

/**
 * Interpolates every string scalar value of `doc` in place. An unquoted scalar
 * that becomes a plain number or boolean (`port: ${PORT}`) is typed as YAML
 * would have typed it had the value been written there.
 */
export function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv): EnvProblem[] {
  const problems: EnvProblem[] = [];
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const { value, missing } = interpolate(node.value, env);
      for (const name of missing) problems.push({ node, message: `environment variable ${name} is not set` });
      node.value = node.type === Scalar.PLAIN ? retype(value) : value;
    },
  });
  return problems;
}

function retype(value: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === 'true') return true;
  if (value === 'false') return false;
  return value;
}
