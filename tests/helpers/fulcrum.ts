import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { Fulcrum, type FulcrumOptions } from '../../src/server';
import type { RequestRecord } from '../../src/proxy/exchange';

export interface RunningFulcrum {
  readonly fulcrum: Fulcrum;
  /** http://127.0.0.1:PORT of the first (or named) listener. */
  url(listener?: string): string;
  adminUrl: string;
  /** Log lines written so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Every finished request, as the observers saw it. */
  readonly records: RequestRecord[];
  stop(): Promise<void>;
}

/**
 * An in-process Fulcrum from YAML text. Listeners and admin should use port 0
 * (`127.0.0.1:0`); the real ports are read back after binding.
 */
export async function startFulcrum(
  yaml: string,
  env: NodeJS.ProcessEnv = {},
  options: {
    onRequestEnd?: (r: RequestRecord) => void;
    /** Only for tests that plant a bug: otherwise an `internal error` line fails stop(). */
    internalErrorsExpected?: boolean;
    /** Write the YAML to this file and load it from there, so a reload has a file to read again. */
    file?: string;
    /** The dashboard history's sampling interval (5 s by default). */
    historyIntervalMs?: number;
    /** ACME timing (a short first retry). */
    acme?: FulcrumOptions['acme'];
  } = {},
): Promise<RunningFulcrum> {
  if (options.file !== undefined) writeFileSync(options.file, yaml);
  const config = parseConfig(yaml, options.file ?? 'test.yaml', env);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const records: RequestRecord[] = [];
  const fulcrum = new Fulcrum(config, {
    logger: createLogger(config.log, sink),
    historyIntervalMs: options.historyIntervalMs,
    ...(options.acme !== undefined ? { acme: options.acme } : {}),
    onRequestEnd: (r) => {
      records.push(r);
      options.onRequestEnd?.(r);
    },
  });
  await fulcrum.start();
  return {
    fulcrum,
    url: (listener = config.listeners[0].name) => `http://${fulcrum.address(listener)}`,
    adminUrl: `http://${fulcrum.adminAddress()}`,
    logs,
    records,
    stop: async () => {
      await fulcrum.stop(2000);
      const bugs = logs.filter((l) => l.msg === 'internal error');
      if (bugs.length > 0 && options.internalErrorsExpected !== true) {
        throw new Error(`Fulcrum caught ${bugs.length} internal error(s): ${JSON.stringify(bugs[0])}`);
      }
    },
  };
}

/**
 * startFulcrum on one HTTP/1.1 engine: `llhttp` (our own server and client,
 * the default) or `node` (the FULCRUM_HTTP1=node fallback: node:http
 * listeners, undici to http:// backends), which is chosen when the modules
 * load, so the fallback gets a module graph of its own.
 */
export function startFulcrumOn(engine: 'llhttp' | 'node'): typeof startFulcrum {
  if (engine === 'llhttp') return startFulcrum;
  const saved = process.env.FULCRUM_HTTP1;
  process.env.FULCRUM_HTTP1 = 'node';
  try {
    let start!: typeof startFulcrum;
    jest.isolateModules(() => {
      start = (require('./fulcrum') as typeof import('./fulcrum')).startFulcrum;
    });
    return start;
  } finally {
    if (saved === undefined) delete process.env.FULCRUM_HTTP1;
    else process.env.FULCRUM_HTTP1 = saved;
  }
}

export { waitFor } from './wait';
