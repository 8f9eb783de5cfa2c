/**
 * SPEC sections 1 and 2: `fulcrum validate`, where the config comes from
 * (--config / -c, $FULCRUM_CONFIG, ./fulcrum.yaml), problems as FILE:LINE:COL,
 * ${VAR} interpolation, and missing files (exit 1, one line, no stack).
 */
import { ensureBuilt } from './build';
import { configYaml, killAll, nonEmptyLines, removeTempDirs, runCli, STACK_LINE, tempDir, writeFile } from './harness';

beforeAll(ensureBuilt, 60_000);
afterEach(killAll);
afterAll(removeTempDirs);

const GOOD = configYaml({ backends: [{ name: 'alpha', url: 'http://127.0.0.1:9' }] });

/** Two problems: a bad duration on line 1, a typo'd key (stratgy) on line 9. */
const BAD = [
  'shutdownTimeout: 5 parsecs',
  'listeners:',
  '  public:',
  '    listen: 127.0.0.1:0',
  '    routes:',
  '      - pool: web',
  'pools:',
  '  web:',
  '    stratgy: round-robin',
  '    backends:',
  '      - url: http://127.0.0.1:9',
  '',
].join('\n');

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Every stderr line is FILE:LINE:COL: message, FILE exactly as given on the command line. */
function expectProblemLines(stderr: string, file: string): { line: number; col: number; message: string }[] {
  expect(stderr).not.toMatch(STACK_LINE);
  const lines = nonEmptyLines(stderr);
  expect(lines.length).toBeGreaterThan(0);
  const re = new RegExp(`^${escape(file)}:(\\d+):(\\d+): (.+)$`);
  return lines.map((l) => {
    expect(l).toMatch(/^.+:\d+:\d+: .+$/);
    expect(l).toMatch(re);
    const m = re.exec(l)!;
    return { line: Number(m[1]), col: Number(m[2]), message: m[3]! };
  });
}

describe('fulcrum validate', () => {
  test('--config good.yaml prints ok and exits 0', async () => {
    const dir = tempDir();
    const file = writeFile(dir, 'good.yaml', GOOD);
    const r = await runCli(['validate', '--config', file], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });

  test('-c good.yaml (short form, relative path) prints ok and exits 0', async () => {
    const dir = tempDir();
    writeFile(dir, 'good.yaml', GOOD);
    const r = await runCli(['validate', '-c', 'good.yaml'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });

  test('a bad file: each problem as FILE:LINE:COL: message on stderr, exit 1, no stack', async () => {
    const dir = tempDir();
    writeFile(dir, 'configs/bad.yaml', BAD);
    const r = await runCli(['validate', '--config', 'configs/bad.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('ok');
    const problems = expectProblemLines(r.stderr, 'configs/bad.yaml');
    for (const p of problems) expect(p.col).toBeGreaterThanOrEqual(1);
    const typo = problems.find((p) => p.message.includes('stratgy'));
    expect(typo).toBeDefined();
    expect(typo!.line).toBe(9);
    const duration = problems.find((p) => p.line === 1);
    expect(duration).toBeDefined();
    expect(duration!.message).toMatch(/duration|parsecs/i);
  });

  test('the same bad file given by absolute path is reported with that path', async () => {
    const dir = tempDir();
    const file = writeFile(dir, 'bad.yaml', BAD);
    const r = await runCli(['validate', '--config', file], { cwd: tempDir() });
    expect(r.code).toBe(1);
    const problems = expectProblemLines(r.stderr, file);
    expect(problems.map((p) => p.line).sort((a, b) => a - b)).toEqual(expect.arrayContaining([1, 9]));
  });

  test('a duration Node.js timers cannot hold (above 2^31-1 ms) is one FILE:LINE:COL line, exit 1', async () => {
    const dir = tempDir();
    writeFile(dir, 'long.yaml', GOOD.replace('shutdownTimeout: 5s', 'shutdownTimeout: 600h'));
    const r = await runCli(['validate', '-c', 'long.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(expectProblemLines(r.stderr, 'long.yaml')).toEqual([
      { line: 1, col: 18, message: 'shutdownTimeout: duration "600h" is too long: at most 2147483647ms (about 24.8 days, the longest timer Node.js keeps)' },
    ]);
  });

  test('a YAML syntax error is reported as FILE:LINE:COL, exit 1', async () => {
    const dir = tempDir();
    writeFile(dir, 'broken.yaml', 'listeners:\n  public:\n    listen: [127.0.0.1:0\npools: {}\n');
    const r = await runCli(['validate', '-c', 'broken.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expectProblemLines(r.stderr, 'broken.yaml');
  });

  test('running (not validate) on a bad file: exit 1 with the same FILE:LINE:COL lines, nothing bound', async () => {
    const dir = tempDir();
    writeFile(dir, 'bad.yaml', BAD);
    const r = await runCli(['-c', 'bad.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    const problems = expectProblemLines(r.stderr, 'bad.yaml');
    expect(problems.some((p) => p.line === 9 && p.message.includes('stratgy'))).toBe(true);
    expect(r.stdout).not.toMatch(/listening/);
  });

  test('admin.listen on a non-loopback address without admin.token is a validation error', async () => {
    const dir = tempDir();
    const yaml = configYaml({ backends: [{ name: 'alpha', url: 'http://127.0.0.1:9' }], adminListen: '0.0.0.0:0' });
    writeFile(dir, 'open-admin.yaml', yaml);
    const r = await runCli(['validate', '-c', 'open-admin.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    const problems = expectProblemLines(r.stderr, 'open-admin.yaml');
    expect(problems.some((p) => /token/.test(p.message))).toBe(true);
  });

  test('a missing file: exit 1, one line naming the file, no stack', async () => {
    const dir = tempDir();
    const r = await runCli(['validate', '--config', 'nope/missing.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('ok');
    expect(r.stderr).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('nope/missing.yaml');
  });

  test('running (not validate) on a missing file: exit 1, one line naming the file, no stack', async () => {
    const dir = tempDir();
    const r = await runCli(['--config', 'missing.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('missing.yaml');
  });
});

describe('where the config comes from', () => {
  test('FULCRUM_CONFIG is used when there is no --config', async () => {
    const dir = tempDir();
    const good = writeFile(dir, 'from-env.yaml', GOOD);
    writeFile(dir, 'fulcrum.yaml', BAD); // must not be the one read
    const r = await runCli(['validate'], { cwd: dir, env: { FULCRUM_CONFIG: good } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });

  test('FULCRUM_CONFIG pointing at a bad file is what gets reported', async () => {
    const dir = tempDir();
    writeFile(dir, 'env-bad.yaml', BAD);
    writeFile(dir, 'fulcrum.yaml', GOOD);
    const r = await runCli(['validate'], { cwd: dir, env: { FULCRUM_CONFIG: 'env-bad.yaml' } });
    expect(r.code).toBe(1);
    expectProblemLines(r.stderr, 'env-bad.yaml');
  });

  test('--config wins over FULCRUM_CONFIG', async () => {
    const dir = tempDir();
    writeFile(dir, 'good.yaml', GOOD);
    writeFile(dir, 'env-bad.yaml', BAD);
    const r = await runCli(['validate', '--config', 'good.yaml'], { cwd: dir, env: { FULCRUM_CONFIG: 'env-bad.yaml' } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });

  test('with neither flag nor env, ./fulcrum.yaml in the working directory is used', async () => {
    const dir = tempDir();
    writeFile(dir, 'fulcrum.yaml', GOOD);
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });

  test('with neither flag nor env, a bad ./fulcrum.yaml is read and reported', async () => {
    const dir = tempDir();
    writeFile(dir, 'fulcrum.yaml', BAD);
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(1);
    const problems = expectProblemLines(r.stderr, r.stderr.split(':')[0]!);
    expect(r.stderr.split(':')[0]).toMatch(/fulcrum\.yaml$/);
    expect(problems.some((p) => p.message.includes('stratgy'))).toBe(true);
  });

  test('with neither flag nor env and no ./fulcrum.yaml: exit 1 naming fulcrum.yaml', async () => {
    const r = await runCli(['validate'], { cwd: tempDir() });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('fulcrum.yaml');
  });
});

describe('${VAR} interpolation', () => {
  const VAR = 'FULCRUM_CLI_TEST_UNSET_9F2';
  const yaml = configYaml({ backends: [{ name: 'alpha', url: 'http://127.0.0.1:9' }], token: `\${${VAR}}` });
  const tokenLine = yaml.split('\n').findIndex((l) => l.includes(VAR)) + 1;

  test('an unset variable: validate exits 1 naming it, at its line', async () => {
    const dir = tempDir();
    writeFile(dir, 'env.yaml', yaml);
    const r = await runCli(['validate', '-c', 'env.yaml'], { cwd: dir, env: { [VAR]: undefined } });
    expect(r.code).toBe(1);
    const problems = expectProblemLines(r.stderr, 'env.yaml');
    const p = problems.find((x) => x.message.includes(VAR));
    expect(p).toBeDefined();
    expect(p!.line).toBe(tokenLine);
  });

  test('the same file with the variable set is ok', async () => {
    const dir = tempDir();
    writeFile(dir, 'env.yaml', yaml);
    const r = await runCli(['validate', '-c', 'env.yaml'], { cwd: dir, env: { [VAR]: 'sekret' } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
    expect(r.code).toBe(0);
  });
});
