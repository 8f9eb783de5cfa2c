/**
 * Builds dist/ (`npm run build`: scripts/build.mjs) for the CLI tests, at most once per
 * jest run and only when the sources changed: a stamp file records the run and
 * the newest source mtime the last successful build saw, so every later test
 * file (in any jest worker) skips the build. A lock directory keeps two workers from
 * running tsc into dist/ at the same time.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

const STAMP = path.join(ROOT, 'dist', '.cli-tests-build-stamp');
const LOCK = path.join(os.tmpdir(), `fulcrum-cli-tests-build-${createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}.lock`);
const BUILD_TIMEOUT_MS = 60_000;

/** Newest mtime (ms) of everything tsc reads for the build. */
function newestSourceMtime(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(ROOT, 'src'));
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/build.mjs']) {
    newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
  }
  return newest;
}

/**
 * One jest run: workers share their parent (the jest process); in band, the
 * tests run in the jest process itself. Once a run has built, it does not
 * rebuild when src/ changes under it (others edit src/ concurrently), so one
 * test file never rewrites dist/ while another is spawning dist/cli.js.
 */
const RUN = String(process.env.JEST_WORKER_ID !== undefined ? process.ppid : process.pid);

function upToDate(newest: number): boolean {
  try {
    if (!fs.existsSync(CLI)) return false;
    const [run, mtime] = fs.readFileSync(STAMP, 'utf8').split(' ');
    return run === RUN || Number(mtime) >= newest;
  } catch {
    return false;
  }
}

async function acquireLock(): Promise<void> {
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // A lock older than a build can take belongs to a worker that died.
    try {
      if (Date.now() - fs.statSync(LOCK).mtimeMs > BUILD_TIMEOUT_MS) fs.rmSync(LOCK, { recursive: true, force: true });
    } catch {
      // gone in between: try again
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the build lock ${LOCK}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What `npm run build` runs, without npm in between. */
function build(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts', 'build.mjs')],
      { cwd: ROOT, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`npm run build (scripts/build.mjs) failed:\n${stdout}${stderr}`));
        else resolve();
      },
    );
  });
}

/** Make sure dist/cli.js is built from the current src/. Call from beforeAll. */
export async function ensureBuilt(): Promise<void> {
  if (upToDate(newestSourceMtime())) return;
  await acquireLock();
  try {
    const newest = newestSourceMtime();
    if (upToDate(newest)) return; // another worker built it while we waited
    await build();
    fs.writeFileSync(STAMP, `${RUN} ${newest}`);
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}
