import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types';
import type { RequestObserver, RequestRecord } from './proxy/exchange';
export type { Logger };
/** JSON lines on stdout (SPEC section 1). */
export declare function createLogger(config: LogConfig, destination?: pino.DestinationStream): Logger;
/** The access log: one line per request with the keys SPEC section 1 names. */
export declare function accessLogObserver(logger: Logger): (r: RequestRecord) => void;
/** Fans each finished request out to whoever listens (access log, metrics). */
export declare function combineObservers(onEnd: ((r: RequestRecord) => void)[], onRetry: ((pool: string) => void)[]): RequestObserver;
