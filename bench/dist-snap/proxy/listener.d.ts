import { type IncomingMessage, type Server } from 'node:http';
import type { ListenerConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
import { Sticky } from '../pool/sticky';
import { type RequestObserver } from './exchange';
/** What a route leads to: the pool plus what was precomputed for it. */
export interface PoolTarget {
    readonly pool: BackendPool;
    /** consistent-hash only: how to get the key from a request; null otherwise. */
    readonly hashKey: ((req: IncomingMessage, clientIp: string, path: string) => string | undefined) | null;
    readonly sticky?: Sticky;
}
export declare function poolTarget(pool: BackendPool): PoolTarget;
/**
 * One listener: a node:http server whose request handler matches the
 * precomputed routes and hands the request to an Exchange.
 */
export declare class ProxyListener {
    #private;
    readonly name: string;
    readonly config: ListenerConfig;
    readonly server: Server;
    constructor(config: ListenerConfig, targets: ReadonlyMap<string, PoolTarget>, observer: RequestObserver);
}
