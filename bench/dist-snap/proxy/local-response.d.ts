import type { ServerResponse } from 'node:http';
/** Bodies of the answers Fulcrum gives itself: one line, never a stack trace. */
export declare const LOCAL_MESSAGES: Readonly<Record<number, string>>;
/** Write a one-line text answer; returns the body length. */
export declare function sendLocal(res: ServerResponse, status: number, message: string, headers?: readonly string[]): number;
