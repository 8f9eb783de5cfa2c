import { type Server } from 'node:http';
/**
 * The demo's backends: tiny services that say who they are, echo what they
 * received (so the forwarded headers can be seen) and answer health probes.
 */
export declare function startDemoBackend(name: string, host: string, port: number): Promise<Server>;
