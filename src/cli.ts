#!/usr/bin/env node
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { parseCommand, USAGE, type Command } from './cli/args';
import { startDemoBackend } from './cli/demo';
import { loadConfig } from './config';
import { exitCodeOf, isFulcrumError, ConfigError } from './errors';
import { createLogger, flushLogs } from './log';
import { Fulcrum } from './server';
import type { Config } from './config/types';
import { isWorker, runWorker, startPrimary, workerCount } from './cluster';
import { installProcessSeatBelt } from './internal-errors';

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Print a user error as lines on stderr and exit with its code; never a stack trace. */
function fail(err: unknown): never {
  if (err instanceof Error && isFulcrumError(err)) {
    if (err.code === 'FULCRUM_USAGE') process.stderr.write(`fulcrum: ${err.message}\n${USAGE.split('\n')[0]}\n`);
    else process.stderr.write(`${err.message}\n`);
    process.exit(exitCodeOf(err));
  }
  process.stderr.write(`fulcrum: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
}

async function run(config: Config, extra?: () => Promise<void>): Promise<void> {
  const logger = createLogger(config.log);
  installProcessSeatBelt();
  let fulcrum: Fulcrum;
  let stopAll: () => Promise<void>;
  if (workerCount(config) > 1) {
    const primary = await startPrimary(config, logger);
    fulcrum = primary.fulcrum;
    stopAll = () => primary.stop();
  } else {
    fulcrum = new Fulcrum(config, { logger });
    await fulcrum.start();
    stopAll = () => fulcrum.stop();
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Readiness fails at once, so keepalived's track_script (or a load
    // balancer's check) moves traffic away while the listeners still accept.
    fulcrum.startDrain();
    const delayMs = fulcrum.config.shutdownDelayMs;
    if (delayMs > 0) logger.info({ signal, delayMs }, 'drain started: /readyz answers 503; listeners close after shutdownDelay');
    const drain = () => {
      logger.info({ signal, timeoutMs: fulcrum.config.shutdownTimeoutMs }, 'draining: no new connections, waiting for in-flight requests');
      return stopAll();
    };
    const delayed = delayMs > 0 ? new Promise<void>((r) => setTimeout(r, delayMs)).then(drain) : drain();
    delayed.then(async () => {
      await extra?.();
      logger.info('stopped');
      await flushLogs();
      process.exit(0);
    }, (err: Error) => {
      logger.error({ err }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the config');
    fulcrum.reload().catch((err: Error) => logger.error({ err }, 'reload failed'));
  });
}

async function main(cmd: Command): Promise<void> {
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    case 'version':
      process.stdout.write(`${version()}\n`);
      return;
    case 'validate':
      try {
        loadConfig(cmd.config);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(1);
        }
        throw err;
      }
      process.stdout.write('ok\n');
      return;
    case 'run':
      await run(loadConfig(cmd.config));
      return;
    case 'demo': {
      const config = loadConfig(path.join(__dirname, '..', 'examples', 'quickstart.yaml'));
      const backends: Server[] = [];
      const pool = config.pools[0];
      for (const b of pool.backends) {
        const u = new URL(b.url);
        backends.push(await startDemoBackend(b.name, u.hostname, Number(u.port)));
      }
      const stopBackends = () => Promise.all(backends.map((s) => new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }))).then(() => undefined);
      try {
        await run(config, stopBackends);
      } catch (err) {
        await stopBackends();
        throw err;
      }
      const l = config.listeners[0];
      process.stderr.write([
        '',
        `Fulcrum demo: ${pool.backends.length} backends behind http://${l.host}:${l.port} (${pool.strategy}).`,
        `  curl -s http://${l.host}:${l.port}/hello`,
        `  dashboard: http://${config.admin.host}:${config.admin.port}/   (API: /api/pools, metrics: /metrics)`,
        'Ctrl-C stops it.',
        '',
      ].join('\n'));
      return;
    }
  }
}

if (isWorker()) {
  // A worker of `workers: N`: the primary sends the config and says when to stop.
  installProcessSeatBelt();
  runWorker(() => process.exit(0));
} else {
  start();
}

function start(): void {
  let cmd: Command;
  try {
    cmd = parseCommand(process.argv.slice(2), process.env);
  } catch (err) {
    fail(err);
  }
  main(cmd).catch(fail);
}
