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
    /** The dashboard history's sampling interval (5 s by default). */
    historyIntervalMs?: number;
    /** ACME timing (a short first retry). */
    acme?: FulcrumOptions['acme'];
  } = {},
): Promise<RunningFulcrum> {
  const config = parseConfig(yaml, 'test.yaml', env);
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

export { waitFor } from './wait';
