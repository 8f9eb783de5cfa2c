/**
 * What every suite that starts things needs: whatever a test starts is
 * stopped after it, newest first. Black-box suites also get the built CLI
 * before they start, every CLI process they spawned killed after each test,
 * and their temp folders removed at the end.
 */
import { ensureBuilt } from '../cli/build';
import { killAll, removeTempDirs } from '../cli/harness';
import { startBackend, type Handler, type TestBackend } from './backends';

export interface Teardown {
  /** Run after the current test, newest first. */
  readonly cleanups: (() => Promise<void>)[];
  /** A node:http backend on loopback, closed after the test. */
  backend(name: string, handler?: Handler): Promise<TestBackend>;
  /** A backend answering its name, whose status (`status`) and health path (`/health`) can be switched at any time. */
  switchable(name: string): Promise<TestBackend & { status: number; health: number }>;
}

export function useTeardown(options: { blackBox?: boolean } = {}): Teardown {
  const cleanups: (() => Promise<void>)[] = [];
  if (options.blackBox === true) {
    beforeAll(ensureBuilt, 60_000);
    afterAll(removeTempDirs);
  }
  afterEach(async () => {
    if (options.blackBox === true) await killAll();
    while (cleanups.length > 0) await cleanups.pop()!();
  });
  const backend = async (name: string, handler?: Handler): Promise<TestBackend> => {
    const b = await startBackend(name, handler);
    cleanups.push(() => b.close());
    return b;
  };
  return {
    cleanups,
    backend,
    async switchable(name) {
      const sw = { status: 200, health: 200 };
      const b = await backend(name, (req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(req.url === '/health' ? sw.health : sw.status, { 'x-backend': name }).end(name));
      });
      return Object.assign(sw, b);
    },
  };
}
