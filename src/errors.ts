/**
 * One error family with stable codes. Callers classify by `.code`, never by
 * `instanceof` (jest runs tests in separate realms, and undici's errors come
 * from another module graph).
 */
export type FulcrumErrorCode =
  | 'FULCRUM_CONFIG_INVALID' // the config file has problems (exit 1)
  | 'FULCRUM_CONFIG_UNREADABLE' // missing or unreadable config file (exit 1)
  | 'FULCRUM_LISTEN_FAILED' // a port cannot be bound (exit 1)
  | 'FULCRUM_ENV_INVALID' // an environment variable Fulcrum reads has a value it does not know (exit 1)
  | 'FULCRUM_USAGE'; // bad command line (exit 2)

export class FulcrumError extends Error {
  readonly code: FulcrumErrorCode;
  constructor(code: FulcrumErrorCode, message: string) {
    super(message);
    this.name = 'FulcrumError';
    this.code = code;
  }
}

/** A position-tagged problem in a config file. `line` and `col` are 1-based. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

export class ConfigError extends FulcrumError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super('FULCRUM_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

export function isFulcrumError(err: unknown): err is FulcrumError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    && (err as { code: string }).code.startsWith('FULCRUM_');
}
