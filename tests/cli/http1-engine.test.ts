/**
 * Which HTTP/1.1 code serves plain listeners and reaches http:// backends
 * (issue 13): Node's llhttp binding by default (it passes its self-test on
 * the Node lines CI runs), node:http and undici with FULCRUM_HTTP1=node, said
 * in one log line at start; an unknown value refuses to start.
 */
import { addresses, configYaml, nonEmptyLines, startCli, STACK_LINE, tempDir, writeFile } from './harness';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { backend } = useTeardown({ blackBox: true });

async function start(env: Record<string, string | undefined>) {
  const alpha = await backend('alpha');
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', configYaml({ backends: [{ name: 'alpha', url: alpha.url }], log: { access: false } }));
  return startCli(['--config', file], { cwd: dir, env });
}

const isFallbackLine = (l: Record<string, unknown>) => l.http1 === 'node';

describe('FULCRUM_HTTP1', () => {
  test('=node: one info line says the fallback is in use and why; requests are proxied through it', async () => {
    const p = await start({ FULCRUM_HTTP1: 'node' });
    const { url } = await addresses(p);
    const line = await p.waitForLog(isFallbackLine, 10_000, 'the HTTP/1.1 fallback line');
    expect(line).toMatchObject({ level: 30, http1: 'node', reason: 'FULCRUM_HTTP1=node' });
    expect(String(line.msg)).toContain('node:http');
    const r = await request(`${url}/x`);
    expect(r.status).toBe(200);
    expect(p.logs.filter(isFallbackLine)).toHaveLength(1);
  });

  test('unset: no fallback line (the binding passed its self-test)', async () => {
    const p = await start({ FULCRUM_HTTP1: undefined });
    const { url } = await addresses(p);
    expect((await request(`${url}/x`)).status).toBe(200);
    expect(p.logs.filter(isFallbackLine)).toEqual([]);
  });

  test('an unknown value: exit 1, one line on stderr naming it and the value to use, no stack', async () => {
    const p = await start({ FULCRUM_HTTP1: 'undici' });
    const exit = await p.waitForExit(10_000);
    expect(exit.code).toBe(1);
    expect(p.stderr()).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(p.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('FULCRUM_HTTP1="undici"');
    expect(lines[0]).toContain('FULCRUM_HTTP1=node');
    expect(p.logs.some((l) => l.msg === 'listening')).toBe(false);
  });
});
