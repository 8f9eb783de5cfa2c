import type { Config } from './config/types';
import { BackendPool } from './pool/pool';
import { ProxyListener } from './proxy/listener';
import { AdminServer } from './admin/server';
import { type Logger } from './log';
import type { RequestRecord } from './proxy/exchange';
export interface FulcrumOptions {
    readonly logger: Logger;
    /** Extra observers of finished requests (tests, metrics). */
    readonly onRequestEnd?: (r: RequestRecord) => void;
}
/**
 * The composition root: builds pools, listeners and the admin API from one
 * config and wires them together. Nothing else knows how the parts connect.
 */
export declare class Fulcrum {
    #private;
    readonly config: Config;
    readonly pools: ReadonlyMap<string, BackendPool>;
    readonly listeners: readonly ProxyListener[];
    readonly admin: AdminServer;
    constructor(config: Config, options: FulcrumOptions);
    /** Bind every listener and the admin API; on failure nothing stays bound. */
    start(): Promise<void>;
    /** host:port a listener is bound to (port 0 in the config gives the real one). */
    address(listener: string): string;
    adminAddress(): string;
    /**
     * Graceful stop: readiness fails, listeners stop accepting, idle keep-alive
     * connections close, in-flight requests get up to `timeoutMs` to finish.
     */
    stop(timeoutMs?: number): Promise<void>;
}
