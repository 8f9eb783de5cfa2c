/**
 * Black-box harness: spawns the built CLI (`node dist/cli.js ...`), collects its
 * stdout (JSON log lines) and stderr, and waits on them with deadlines.
 * Every process started here is tracked and killed by PID in `killAll()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI } from './build';

export type LogLine = Record<string, unknown>;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  cwd?: string;
  /** Added to the environment (undefined removes a variable). FULCRUM_CONFIG is always removed first. */
  env?: Record<string, string | undefined>;
  /** Run under `ulimit -n` of this many file descriptors (through bash, which execs node: the pid is node's). */
  fdLimit?: number;
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Raw stdout lines so far. */
  readonly stdoutLines: string[];
  /** stdout lines that parsed as JSON objects. */
  readonly logs: LogLine[];
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<Exit>;
  exited(): boolean;
  /** Resolve with the first log line (past or future) matching `pred`; reject at the deadline or if the process exits. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  /** Resolve with the exit status; reject (and SIGKILL the process) at the deadline. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  signal(sig: NodeJS.Signals): void;
}

const live = new Set<CliProcess>();

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.FULCRUM_CONFIG;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function startCli(args: readonly string[], options: SpawnOptions = {}): CliProcess {
  const [command, argv] = options.fdLimit === undefined
    ? [process.execPath, [CLI, ...args]]
    : ['bash', ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, CLI, ...args]];
  const child = spawn(command, argv, {
    cwd: options.cwd ?? os.tmpdir(),
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('could not spawn the CLI');
  const stdoutLines: string[] = [];
  const logs: LogLine[] = [];
  let stdoutText = '';
  let stderrText = '';
  let partial = '';
  let exitStatus: Exit | undefined;
  type Waiter = { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void; reject: (e: Error) => void };
  const waiters = new Set<Waiter>();

  const onLine = (line: string) => {
    stdoutLines.push(line);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
    const log = parsed as LogLine;
    logs.push(log);
    for (const w of [...waiters]) {
      if (w.pred(log)) {
        waiters.delete(w);
        w.resolve(log);
      }
    }
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdoutText += chunk;
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.trim() !== '') onLine(line);
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderrText += chunk;
  });

  const exit = new Promise<Exit>((resolve) => {
    // 'close' fires after the process exited and its stdio streams ended, so all output is in.
    child.on('close', (code, signal) => {
      if (partial.trim() !== '') onLine(partial);
      partial = '';
      exitStatus = { code, signal };
      live.delete(proc);
      for (const w of [...waiters]) {
        waiters.delete(w);
        w.reject(new Error(`fulcrum exited (code ${code}, signal ${signal}) before the awaited log line\nstdout:\n${stdoutText}\nstderr:\n${stderrText}`));
      }
      resolve(exitStatus);
    });
  });

  const proc: CliProcess = {
    child,
    pid: child.pid,
    stdoutLines,
    logs,
    stdout: () => stdoutText,
    stderr: () => stderrText,
    exit,
    exited: () => exitStatus !== undefined,
    waitForLog(pred, timeoutMs = 10_000, what = 'a log line') {
      const seen = logs.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      if (exitStatus !== undefined) {
        return Promise.reject(new Error(`fulcrum already exited (code ${exitStatus.code}) without ${what}\nstdout:\n${stdoutText}\nstderr:\n${stderrText}`));
      }
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstdout:\n${stdoutText}\nstderr:\n${stderrText}`));
        }, timeoutMs);
        const w: Waiter = {
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        waiters.add(w);
      });
    },
    async waitForExit(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          if (exitStatus === undefined) kill(proc, 'SIGKILL');
          reject(new Error(`fulcrum did not exit within ${timeoutMs} ms\nstdout:\n${stdoutText}\nstderr:\n${stderrText}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exit, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    signal(sig) {
      kill(proc, sig);
    },
  };
  live.add(proc);
  return proc;
}

function kill(p: CliProcess, sig: NodeJS.Signals): void {
  if (p.exited()) return;
  try {
    process.kill(p.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Run the CLI to completion (a short command such as validate or --version). */
export async function runCli(args: readonly string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const p = startCli(args, options);
  const status = await p.waitForExit(options.timeoutMs ?? 10_000);
  return { ...status, stdout: p.stdout(), stderr: p.stderr() };
}

/** SIGKILL every process this file started that is still running, by PID, and wait for each to go. */
/**
 * Kill every CLI process still running. Issue 20's seat belt is not a fix: a
 * process that logged an `internal error` (fulcrum_internal_errors_total > 0)
 * fails the test that started it.
 */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) kill(p, 'SIGKILL');
  await Promise.all(procs.map((p) => p.exit));
  const bugs = procs.flatMap((p) => p.logs.filter((l) => l.msg === 'internal error'));
  if (bugs.length > 0) throw new Error(`Fulcrum caught ${bugs.length} internal error(s): ${JSON.stringify(bugs[0])}`);
}

/** The URLs a started `fulcrum --config` reports in its log (listeners and admin on port 0). */
export async function addresses(p: CliProcess, listener = 'public', timeoutMs = 10_000): Promise<{ url: string; adminUrl: string }> {
  const l = await p.waitForLog((x) => x.msg === 'listening' && x.listener === listener, timeoutMs, `"listening" for listener ${listener}`);
  const a = await p.waitForLog((x) => x.msg === 'admin API listening', timeoutMs, '"admin API listening"');
  return { url: `http://${String(l.address)}`, adminUrl: `http://${String(a.address)}` };
}

// ---------------------------------------------------------------------------
// Temp files.

const dirs: string[] = [];

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-cli-'));
  dirs.push(dir);
  return dir;
}

/** Write `text` to `dir/name` (creating folders) and return the absolute path. */
export function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Configs and sockets.

export interface ConfigOptions {
  backends: { name: string; url: string }[];
  listen?: string;
  adminListen?: string;
  /** Extra top-level YAML (e.g. "shutdownTimeout: 5s"). */
  top?: string;
  log?: { level?: string; access?: boolean };
  token?: string;
}

/** A pool's `backends:` list, indented for a pool body at 4 spaces; `extra` adds keys (", backup: true") per backend. */
export function backendsYaml(bs: readonly { name: string; url: string }[], extra: (name: string) => string = () => ''): string {
  return `    backends:\n${bs.map((b) => `      - { url: ${b.url}, name: ${b.name}${extra(b.name)} }`).join('\n')}\n`;
}

/** A minimal valid config: listener "public" → pool "web" (round-robin). */
export function configYaml(o: ConfigOptions): string {
  const lines = [
    o.top ?? 'shutdownTimeout: 5s',
    'log:',
    `  level: ${o.log?.level ?? 'info'}`,
    `  access: ${o.log?.access ?? true}`,
    'admin:',
    `  listen: ${o.adminListen ?? '127.0.0.1:0'}`,
    ...(o.token !== undefined ? [`  token: ${o.token}`] : []),
    'listeners:',
    '  public:',
    `    listen: ${o.listen ?? '127.0.0.1:0'}`,
    '    routes:',
    '      - pool: web',
    'pools:',
    '  web:',
    '    strategy: round-robin',
    '    backends:',
    ...o.backends.flatMap((b) => [`      - url: ${b.url}`, `        name: ${b.name}`]),
    '',
  ];
  return lines.join('\n');
}

/** A port that was free a moment ago (for configs where the log cannot tell us the port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Poll until a TCP connect to host:port is refused (the listener stopped accepting). */
export async function waitRefused(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} still accepted connections after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function nonEmptyLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** A stack frame as V8 prints it. */
export const STACK_LINE = /^\s+at /m;

/**
 * Poll `check` until it returns true, or fail after `timeoutMs` (the same
 * contract as tests/helpers/fulcrum.ts, which is not imported here because it
 * loads src/ into the test process; these tests only talk to the built CLI).
 */
export { waitFor } from '../helpers/wait';
