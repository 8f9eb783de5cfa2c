import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';
import type { PickContext } from '../balancing/types';
import type { Sticky } from '../pool/sticky';
/** What the access log and metrics learn about each finished request. */
export interface RequestRecord {
    readonly listener: string;
    readonly method: string;
    readonly url: string;
    readonly requestId: string;
    readonly remoteAddress: string;
    /** "" when Fulcrum answered itself. */
    readonly pool: string;
    /** Backend that gave the final answer; "" when Fulcrum answered itself. */
    readonly backend: string;
    /** 499 when the client went away first (as nginx logs it). */
    readonly status: number;
    readonly durationMs: number;
    /** Response body bytes sent to the client. */
    readonly bytes: number;
    readonly retries: number;
    /** Why Fulcrum answered with an error, or why the response broke. */
    readonly error?: string;
}
export interface RequestObserver {
    onRequestEnd(record: RequestRecord): void;
    onRetry(pool: string): void;
}
export interface ExchangeInit {
    readonly listener: string;
    readonly observer: RequestObserver;
    readonly pool: BackendPool;
    readonly req: IncomingMessage;
    readonly res: ServerResponse;
    readonly path: string;
    readonly headers: string[];
    readonly requestId: string;
    readonly remoteAddress: string;
    readonly pick: PickContext;
    /** Backend a sticky cookie pinned this request to, if it is available. */
    readonly preferred?: Backend;
    /** The pool's cookie affinity, when configured. */
    readonly sticky?: Sticky;
    readonly startedAt: number;
}
/**
 * One client request on its way through a pool: picks a backend, forwards over
 * undici's raw dispatch handler (no promise, no parsed header object per
 * response), streams both bodies with backpressure, retries where SPEC allows,
 * and reports once at the end.
 *
 * It implements undici's original handler shape (onConnect/onHeaders/...),
 * which undici 7's core calls directly; the controller shape is wrapped and
 * parses every response's headers into an object first.
 */
export declare class Exchange implements Dispatcher.DispatchHandler {
    #private;
    constructor(init: ExchangeInit);
    start(): void;
    onConnect(abort: (err?: Error) => void): void;
    onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean;
    onData(chunk: Buffer): boolean;
    onComplete(): void;
    onError(err: Error): void;
}
