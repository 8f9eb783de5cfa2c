import type { Config } from './types';
/** Reads and validates `file`. Throws FulcrumError FULCRUM_CONFIG_UNREADABLE or ConfigError. */
export declare function loadConfig(file: string, env?: NodeJS.ProcessEnv): Config;
/**
 * Validates config text. `file` is used as given in problem reports, and made
 * absolute for `Config.file` and for resolving relative paths in the file.
 */
export declare function parseConfig(text: string, file: string, env?: NodeJS.ProcessEnv): Config;
