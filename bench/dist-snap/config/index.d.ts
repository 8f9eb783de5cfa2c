/** The config module: read, validate, normalise and freeze the YAML config file. */
export { loadConfig, parseConfig } from './load';
export { parseDuration, parseSize } from './units';
export { STRATEGY_NAMES } from './types';
export type * from './types';
