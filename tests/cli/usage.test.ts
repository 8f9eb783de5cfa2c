/**
 * SPEC section 1: --version, --help, and usage errors (exit 2, a one-line
 * reason plus a usage hint on stderr, never a stack trace).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureBuilt, ROOT } from './build';
import { killAll, nonEmptyLines, removeTempDirs, runCli, STACK_LINE, tempDir } from './harness';

const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

beforeAll(ensureBuilt, 60_000);
afterEach(killAll);
afterAll(removeTempDirs);

describe('fulcrum --version / --help', () => {
  test.each([['--version'], ['-v']])('%s prints the package.json version and exits 0', async (flag) => {
    const r = await runCli([flag]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(version);
    expect(r.code).toBe(0);
  });

  test.each([['--help'], ['-h']])('%s prints usage naming validate, demo and --config, exit 0', async (flag) => {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/usage/i);
    // each command named as a command (listed at the start of a line, or in a [a|b] synopsis)
    for (const cmd of ['validate', 'demo']) expect(r.stdout).toMatch(new RegExp(`(^\\s*|[[|])${cmd}\\b`, 'm'));
    expect(r.stdout).toContain('--config');
    expect(r.stdout).toContain('-c');
  });
});

describe('usage errors exit 2 with one reason line and a usage hint', () => {
  // Run in an empty folder: a usage error must be reported as such even when
  // there is no ./fulcrum.yaml to load (that would be exit 1).
  const cases: [string, string[], RegExp][] = [
    ['unknown option --bogus', ['--bogus'], /--bogus/],
    ['unknown command frobnicate', ['frobnicate'], /frobnicate/],
    ['unknown option after validate', ['validate', '--bogus'], /--bogus/],
    ['an extra argument', ['validate', 'extra'], /extra/],
    ['--config without a value', ['validate', '--config'], /config/],
    ['demo with --config (demo runs its own config)', ['demo', '--config', 'x.yaml'], /config/],
  ];
  test.each(cases)('%s', async (_what, args, mentions) => {
    const r = await runCli(args, { cwd: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(r.stderr);
    // the reason, then at most one hint line
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(lines[0]).toMatch(mentions);
    expect(r.stderr).toMatch(/usage|--help/i);
  });
});
