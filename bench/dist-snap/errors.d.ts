/**
 * One error family with stable codes. Callers classify by `.code`, never by
 * `instanceof` (jest runs tests in separate realms, and undici's errors come
 * from another module graph).
 */
export type FulcrumErrorCode = 'FULCRUM_CONFIG_INVALID' | 'FULCRUM_CONFIG_UNREADABLE' | 'FULCRUM_LISTEN_FAILED' | 'FULCRUM_USAGE';
export declare class FulcrumError extends Error {
    readonly code: FulcrumErrorCode;
    constructor(code: FulcrumErrorCode, message: string);
}
/** A position-tagged problem in a config file. `line` and `col` are 1-based. */
export interface ConfigProblem {
    file: string;
    line: number;
    col: number;
    message: string;
}
export declare function formatProblem(p: ConfigProblem): string;
export declare class ConfigError extends FulcrumError {
    readonly problems: readonly ConfigProblem[];
    constructor(problems: readonly ConfigProblem[]);
}
export declare function isFulcrumError(err: unknown): err is FulcrumError;
