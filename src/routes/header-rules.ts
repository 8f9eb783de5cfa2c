import type { HeaderRulesConfig } from '../config/types';

/**
 * A route's requestHeaders or responseHeaders, compiled (SPEC 8.1): remove,
 * then set (replaces), then add (appends). On a flat [name, value, ...] list
 * that is one pass: drop every name removed or set, then append what set and
 * add give, in that order. They run after Fulcrum's own header passes, so
 * `set: { x-forwarded-proto: https }` wins over what Fulcrum wrote.
 */
export class HeaderRules {
  /** Lower-cased names whose values go: those removed, and those set (set replaces). */
  readonly drop: ReadonlySet<string>;
  /** Flat [name, value, ...]: set's entries, then add's. */
  readonly append: readonly string[];

  constructor(config: HeaderRulesConfig) {
    const drop = new Set(config.remove);
    const append: string[] = [];
    for (const [name, value] of config.set) {
      drop.add(name.toLowerCase());
      append.push(name, value);
    }
    for (const [name, value] of config.add) append.push(name, value);
    this.drop = drop;
    this.append = append;
  }

  /** `headers` with the rules applied (a new list; `headers` is not changed). */
  apply(headers: readonly string[]): string[] {
    const out: string[] = [];
    const drop = this.drop;
    for (let i = 0; i < headers.length; i += 2) {
      if (drop.size > 0 && drop.has(headers[i].toLowerCase())) continue;
      out.push(headers[i], headers[i + 1]);
    }
    for (let i = 0; i < this.append.length; i++) out.push(this.append[i]);
    return out;
  }

  /** Whether a header named `lower` (lower-cased) survives the rules. */
  keeps(lower: string): boolean {
    return !this.drop.has(lower);
  }
}

/** null for a route without rules: the request path pays one null check. */
export function headerRules(config: HeaderRulesConfig | undefined): HeaderRules | null {
  if (config === undefined || (config.remove.length === 0 && config.set.length === 0 && config.add.length === 0)) return null;
  return new HeaderRules(config);
}
