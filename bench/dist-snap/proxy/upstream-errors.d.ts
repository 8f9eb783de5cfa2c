/**
 * The one place where an upstream failure becomes a status code. Projects
 * disagree here (reply-from sends ENOTFOUND to 503, http-proxy-middleware sends
 * ECONNREFUSED to 504); ours follows SPEC section 4 and is pinned by a table test.
 */
/** What went wrong, in the words `retries.on` uses. */
export type FailureKind = 'connect-failure' | 'reset' | 'timeout' | 'unavailable' | 'error';
export interface UpstreamFailure {
    readonly kind: FailureKind;
    readonly status: 502 | 503 | 504;
    /** One line for the client and the log. */
    readonly message: string;
}
export declare function classifyUpstreamError(err: unknown): UpstreamFailure;
