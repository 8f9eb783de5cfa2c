import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { waitFor } from './wait';

/**
 * Real peer servers (HAProxy, pebble) started by a test on free loopback
 * ports, their output kept, stopped by PID.
 */

export interface Peer {
  readonly process: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Starts `command` and waits until something accepts on each of `ports`. */
export async function startPeer(command: string, args: string[], ports: number[], env: NodeJS.ProcessEnv = {}, timeoutMs = 10_000): Promise<Peer> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const peer: Peer = {
    process: child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGKILL');
        await exited;
      }
    },
  };
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${command} exited (${child.exitCode}): ${out}`);
      for (const p of ports) if (!(await canConnect(p))) return false;
      return true;
    }, timeoutMs, `${command} to listen on ${ports.join(', ')}`);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return peer;
}
