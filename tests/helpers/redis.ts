/**
 * A real redis-server for the cluster tests (SPEC section 10), on a free
 * loopback port, no persistence; stopped (or killed, and started again on the
 * same port) by PID. One per test file: it starts in milliseconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from '../cli/harness';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL it (Redis gone without a word); resolves once it has exited. */
  kill(): Promise<void>;
  /** Start it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  /** FLUSHALL: a clean slate between tests. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return command(port, 'PING').then((r) => r.startsWith('+PONG'), () => false);
}

/** One inline command over a raw socket; the first reply line. */
function command(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setTimeout(1000, () => s.destroy(new Error('redis timeout')));
    s.on('connect', () => s.write(`${text}\r\n`));
    s.on('data', (d) => {
      out += d.toString();
      if (out.includes('\r\n')) {
        s.end();
        resolve(out);
      }
    });
    s.on('error', reject);
  });
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child = c;
    const deadline = Date.now() + 5000;
    while (!(await ping(port))) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    process.kill(c.pid!, 'SIGKILL');
    await gone;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    restart: launch,
    flush: async () => {
      await command(port, 'FLUSHALL');
    },
    stop: kill,
  };
}
