export interface ForwardedHeaders {
    /** Flat name/value list for undici. */
    readonly headers: string[];
    readonly requestId: string;
    /** The client's Host (empty when it sent none). */
    readonly host: string;
}
/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) is written as "10.0.0.1". */
export declare function clientAddress(remote: string | undefined): string;
export declare function forwardRequestHeaders(raw: readonly string[], clientIp: string, proto: string): ForwardedHeaders;
/** undici hands response headers as raw latin1 buffers; node:http takes a flat string list. */
export declare function forwardResponseHeaders(raw: readonly Buffer[]): string[];
