/**
 * `${NAME}` interpolation. It runs on the parsed YAML tree, not on the raw text,
 * so a value can never inject YAML structure and each unset variable is reported
 * at the position of the scalar that names it. Keys are left alone.
 */
import { Document, Scalar } from 'yaml';
export interface InterpolationResult {
    readonly value: string;
    /** Names referenced but not set, in order of appearance. */
    readonly missing: readonly string[];
}
/** Replaces every `${NAME}` in `text`; unset variables become "" and are listed in `missing`. */
export declare function interpolate(text: string, env: NodeJS.ProcessEnv): InterpolationResult;
export interface EnvProblem {
    readonly node: Scalar;
    readonly message: string;
}
/**
 * Interpolates every string scalar value of `doc` in place. An unquoted scalar
 * that becomes a plain number or boolean (`port: ${PORT}`) is typed as YAML
 * would have typed it had the value been written there.
 */
export declare function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv): EnvProblem[];
