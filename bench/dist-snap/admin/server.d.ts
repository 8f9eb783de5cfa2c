import { type Server } from 'node:http';
import type { AdminConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
/** What the admin API needs from the running proxy: a narrow view, nothing more. */
export interface AdminTarget {
    pools(): readonly BackendPool[];
    /** Listeners bound and each pool has an available backend. */
    ready(): boolean;
}
/**
 * The admin listener (SPEC section 5). Separate from every proxy listener, so
 * the API is never reachable through a route.
 */
export declare class AdminServer {
    #private;
    readonly server: Server;
    constructor(config: AdminConfig, target: AdminTarget);
}
