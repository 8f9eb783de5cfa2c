/**
 * SPEC sections 1 and 10 (active-passive): on SIGTERM /readyz answers 503 at
 * once; with `shutdownDelay` the listener keeps serving that long, so
 * keepalived's track_script moves the virtual IP before connections are refused.
 */
import { addresses, configYaml, startCli, tempDir, writeFile } from './harness';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';
import { waitFor } from '../helpers/wait';

const { backend } = useTeardown({ blackBox: true });

test.each([['0s'], ['1500ms']])('SIGTERM with shutdownDelay %s: /readyz is 503 at once; the listener serves until the delay is over', async (delay) => {
  const a = await backend('a');
  const dir = tempDir();
  const file = writeFile(dir, 'f.yaml', configYaml({ backends: [{ name: 'a', url: a.url }], top: `shutdownTimeout: 5s\nshutdownDelay: ${delay}` }));
  const p = startCli(['--config', file], { cwd: dir });
  const { url, adminUrl } = await addresses(p);
  expect((await request(`${adminUrl}/readyz`)).status).toBe(200);
  const t0 = Date.now();
  p.signal('SIGTERM');
  await waitFor(async () => (await request(`${adminUrl}/readyz`).catch(() => ({ status: 0 }))).status !== 200, 1000, 'readyz not 200');
  if (delay === '0s') {
    expect((await p.waitForExit(5000)).code).toBe(0);
    return;
  }
  expect((await request(`${adminUrl}/readyz`)).status).toBe(503);
  // Still accepting and serving while the delay runs.
  expect((await request(`${url}/`)).status).toBe(200);
  expect(Date.now() - t0).toBeLessThan(1500);
  expect((await p.waitForExit(8000)).code).toBe(0);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
});
