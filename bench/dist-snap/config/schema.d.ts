import { z } from 'zod';
import { type Address, type Config, type HashOn, type LogLevel, type RateLimitConfig, type RetryCondition } from './types';
export declare const LOG_LEVELS: readonly LogLevel[];
export declare const RETRY_CONDITIONS: readonly RetryCondition[];
export declare const DEFAULT_ADMIN: Address;
export declare class Invalid {
    readonly message: string;
    constructor(message: string);
}
export declare function durationValue(v: unknown, positive: boolean): number | Invalid;
export declare function sizeValue(v: unknown): number | Invalid;
/** "host:port", "[::]:8080" or ":8080" (all interfaces, 0.0.0.0). */
export declare function parseListen(v: unknown): Address | Invalid;
export declare function isLoopback(host: string): boolean;
/** A backend URL is an origin: scheme, host, port. The result is normalised with an explicit port. */
export declare function parseBackendUrl(v: unknown): {
    url: string;
    name: string;
} | Invalid;
/** "200-399", "200", "200,204,300-399", 204, or a list of those → inclusive ranges. */
export declare function parseExpectStatus(v: unknown): [number, number][] | Invalid;
/** `ip | header:NAME | cookie:NAME | path`. Header names are case-insensitive, so lower-cased. */
export declare function parseHashOn(v: unknown): HashOn | Invalid;
export declare function parseRateLimitKey(v: unknown): RateLimitConfig['key'] | Invalid;
export declare function fsReason(err: unknown): string;
/** Keys close to an unknown one, for "did you mean". */
export declare function suggest(key: string, allowed: readonly string[]): string | undefined;
export declare function unknownKeyMessage(key: string, allowed: readonly string[]): string;
/**
 * The whole file. `file` is the absolute path of the config file; relative
 * paths in it (TLS certificates) are resolved against its folder.
 */
export declare function configSchema(file: string): z.ZodPipe<z.ZodObject<{
    workers: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number | "auto", unknown>>>;
    shutdownTimeout: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
    log: z.ZodPrefault<z.ZodObject<{
        level: z.ZodDefault<z.ZodEnum<{
            error: "error";
            trace: "trace";
            debug: "debug";
            info: "info";
            warn: "warn";
        }>>;
        access: z.ZodDefault<z.ZodBoolean>;
    }, z.core.$strict>>;
    admin: z.ZodPrefault<z.ZodObject<{
        listen: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<Address, unknown>>>;
        token: z.ZodOptional<z.ZodString>;
    }, z.core.$strict>>;
    listeners: z.ZodRecord<z.ZodString, z.ZodObject<{
        listen: z.ZodPipe<z.ZodUnknown, z.ZodTransform<Address, unknown>>;
        tls: z.ZodOptional<z.ZodObject<{
            cert: z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>;
            key: z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>;
        }, z.core.$strict>>;
        http2: z.ZodDefault<z.ZodBoolean>;
        limits: z.ZodPrefault<z.ZodObject<{
            maxBodySize: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            headersTimeout: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            rateLimit: z.ZodOptional<z.ZodObject<{
                requestsPerSecond: z.ZodNumber;
                burst: z.ZodOptional<z.ZodNumber>;
                key: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<{
                    readonly kind: "ip";
                } | {
                    readonly kind: "header";
                    readonly name: string;
                }, unknown>>>;
            }, z.core.$strict>>;
        }, z.core.$strict>>;
        routes: z.ZodArray<z.ZodObject<{
            match: z.ZodOptional<z.ZodObject<{
                host: z.ZodOptional<z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>>;
                pathPrefix: z.ZodOptional<z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>>;
            }, z.core.$strict>>;
            pool: z.ZodString;
            stripPrefix: z.ZodDefault<z.ZodBoolean>;
        }, z.core.$strict>>;
    }, z.core.$strict>>;
    pools: z.ZodRecord<z.ZodString, z.ZodObject<{
        strategy: z.ZodDefault<z.ZodEnum<{
            "round-robin": "round-robin";
            "weighted-round-robin": "weighted-round-robin";
            "least-connections": "least-connections";
            random: "random";
            "power-of-two": "power-of-two";
            ewma: "ewma";
            "consistent-hash": "consistent-hash";
        }>>;
        hashOn: z.ZodOptional<z.ZodPipe<z.ZodUnknown, z.ZodTransform<{
            readonly kind: "ip";
        } | {
            readonly kind: "header";
            readonly name: string;
        } | {
            readonly kind: "cookie";
            readonly name: string;
        } | {
            readonly kind: "path";
        }, unknown>>>;
        backends: z.ZodDefault<z.ZodArray<z.ZodObject<{
            url: z.ZodPipe<z.ZodUnknown, z.ZodTransform<{
                url: string;
                name: string;
            }, unknown>>;
            name: z.ZodOptional<z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>>;
            weight: z.ZodDefault<z.ZodNumber>;
            backup: z.ZodDefault<z.ZodBoolean>;
        }, z.core.$strict>>>;
        discovery: z.ZodOptional<z.ZodObject<{
            dns: z.ZodOptional<z.ZodObject<{
                name: z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>;
                port: z.ZodNumber;
                refresh: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
                server: z.ZodOptional<z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>>;
            }, z.core.$strict>>;
        }, z.core.$strict>>;
        healthCheck: z.ZodOptional<z.ZodPreprocess<z.ZodObject<{
            path: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>>;
            interval: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            timeout: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            rise: z.ZodDefault<z.ZodNumber>;
            fall: z.ZodDefault<z.ZodNumber>;
            expectStatus: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<[number, number][], unknown>>>;
        }, z.core.$strict>, unknown>>;
        outlierDetection: z.ZodOptional<z.ZodPreprocess<z.ZodObject<{
            consecutiveFailures: z.ZodDefault<z.ZodNumber>;
            baseEjectionTime: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            maxEjectionPercent: z.ZodDefault<z.ZodNumber>;
        }, z.core.$strict>, unknown>>;
        slowStart: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
        retries: z.ZodPrefault<z.ZodObject<{
            attempts: z.ZodDefault<z.ZodNumber>;
            on: z.ZodDefault<z.ZodArray<z.ZodPipe<z.ZodUnknown, z.ZodTransform<"connect-failure" | "reset" | "timeout" | "502" | "503" | "504", unknown>>>>;
        }, z.core.$strict>>;
        timeouts: z.ZodPrefault<z.ZodObject<{
            connect: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            response: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
            idle: z.ZodDefault<z.ZodPipe<z.ZodUnknown, z.ZodTransform<number, unknown>>>;
        }, z.core.$strict>>;
        maxConnectionsPerBackend: z.ZodDefault<z.ZodNumber>;
        panicThreshold: z.ZodDefault<z.ZodNumber>;
        sticky: z.ZodOptional<z.ZodObject<{
            cookie: z.ZodPipe<z.ZodUnknown, z.ZodTransform<string, unknown>>;
        }, z.core.$strict>>;
    }, z.core.$strict>>;
}, z.core.$strict>, z.ZodTransform<Config, {
    workers: number | "auto";
    shutdownTimeout: number;
    log: {
        level: "error" | "trace" | "debug" | "info" | "warn";
        access: boolean;
    };
    admin: {
        listen: Address;
        token?: string | undefined;
    };
    listeners: Record<string, {
        listen: Address;
        http2: boolean;
        limits: {
            maxBodySize: number;
            headersTimeout: number;
            rateLimit?: {
                requestsPerSecond: number;
                key: {
                    readonly kind: "ip";
                } | {
                    readonly kind: "header";
                    readonly name: string;
                };
                burst?: number | undefined;
            } | undefined;
        };
        routes: {
            pool: string;
            stripPrefix: boolean;
            match?: {
                host?: string | undefined;
                pathPrefix?: string | undefined;
            } | undefined;
        }[];
        tls?: {
            cert: string;
            key: string;
        } | undefined;
    }>;
    pools: Record<string, {
        strategy: "round-robin" | "weighted-round-robin" | "least-connections" | "random" | "power-of-two" | "ewma" | "consistent-hash";
        backends: {
            url: {
                url: string;
                name: string;
            };
            weight: number;
            backup: boolean;
            name?: string | undefined;
        }[];
        slowStart: number;
        retries: {
            attempts: number;
            on: ("connect-failure" | "reset" | "timeout" | "502" | "503" | "504")[];
        };
        timeouts: {
            connect: number;
            response: number;
            idle: number;
        };
        maxConnectionsPerBackend: number;
        panicThreshold: number;
        hashOn?: {
            readonly kind: "ip";
        } | {
            readonly kind: "header";
            readonly name: string;
        } | {
            readonly kind: "cookie";
            readonly name: string;
        } | {
            readonly kind: "path";
        } | undefined;
        discovery?: {
            dns?: {
                name: string;
                port: number;
                refresh: number;
                server?: string | undefined;
            } | undefined;
        } | undefined;
        healthCheck?: {
            path: string;
            interval: number;
            timeout: number;
            rise: number;
            fall: number;
            expectStatus: [number, number][];
        } | undefined;
        outlierDetection?: {
            consecutiveFailures: number;
            baseEjectionTime: number;
            maxEjectionPercent: number;
        } | undefined;
        sticky?: {
            cookie: string;
        } | undefined;
    }>;
}>>;
export type PathSegment = string | number;
export interface CrossProblem {
    readonly path: readonly PathSegment[];
    readonly message: string;
    /** Point at the key of the last path segment rather than at its value. */
    readonly atKey?: boolean;
}
type RawMap = Record<string, unknown>;
export declare function crossCheck(raw: RawMap): CrossProblem[];
export {};
