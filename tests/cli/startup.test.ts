/**
 * SPEC sections 1 and 5: a port that cannot be bound (exit 1, one line, no
 * stack) and the admin bearer token.
 */
import net from 'node:net';
import { addresses, configYaml, nonEmptyLines, startCli, STACK_LINE, tempDir, writeFile } from './harness';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown({ blackBox: true });

/** A port held by this test, so fulcrum cannot bind it. */
async function occupiedPort(): Promise<number> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

function start(yaml: string, env?: Record<string, string>) {
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', yaml);
  return startCli(['--config', file], { cwd: dir, env });
}

describe('a port that cannot be bound', () => {
  test.each([
    ['a listener port', 'listen'],
    ['the admin port', 'adminListen'],
  ] as const)('%s in use: exit 1, exactly one line on stderr naming the address, no stack', async (_what, key) => {
    const alpha = await backend('alpha');
    const port = await occupiedPort();
    const p = start(configYaml({ backends: [{ name: 'alpha', url: alpha.url }], [key]: `127.0.0.1:${port}` }));
    const exit = await p.waitForExit(10_000);
    expect(exit.code).toBe(1);
    const stderr = p.stderr();
    expect(stderr).not.toMatch(STACK_LINE);
    const lines = nonEmptyLines(stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`127.0.0.1:${port}`);
    // it never claimed to be serving
    expect(p.logs.some((l) => l.msg === 'listening' && String(l.address).endsWith(`:${port}`))).toBe(false);
  });
});

describe('admin.token', () => {
  const TOKEN = 'T0ken-for-cli-tests';

  test('/api/pools and /readyz need Authorization: Bearer TOKEN (401 without), /healthz does not', async () => {
    const alpha = await backend('alpha');
    const p = start(configYaml({ backends: [{ name: 'alpha', url: alpha.url }], token: TOKEN }));
    const { adminUrl } = await addresses(p);

    expect((await request(`${adminUrl}/healthz`)).status).toBe(200);

    expect((await request(`${adminUrl}/api/pools`)).status).toBe(401);
    expect((await request(`${adminUrl}/api/pools`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await request(`${adminUrl}/api/pools`, { headers: { authorization: TOKEN } })).status).toBe(401);
    expect((await request(`${adminUrl}/readyz`)).status).toBe(401);

    const ok = await request(`${adminUrl}/api/pools`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const body = JSON.parse(ok.body) as { pools: { name: string }[] };
    expect(body.pools.map((x) => x.name)).toEqual(['web']);
    expect((await request(`${adminUrl}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  test('a token from ${VAR} is interpolated from the environment at run time', async () => {
    const alpha = await backend('alpha');
    const p = start(
      configYaml({ backends: [{ name: 'alpha', url: alpha.url }], token: '${FULCRUM_CLI_TEST_ADMIN_TOKEN}' }),
      { FULCRUM_CLI_TEST_ADMIN_TOKEN: TOKEN },
    );
    const { adminUrl } = await addresses(p);
    expect((await request(`${adminUrl}/api/pools`)).status).toBe(401);
    expect((await request(`${adminUrl}/api/pools`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });
});
