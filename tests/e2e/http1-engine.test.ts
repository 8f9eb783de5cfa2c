/**
 * The engine this run of the suite exercises: `.ci/run` runs the end-to-end
 * suites a second time with FULCRUM_HTTP1=node, and this test proves the
 * variable reached the Fulcrum those suites start in process (the CLI suites
 * pass the environment on to their children: tests/cli/harness.ts).
 */
import { startFulcrum } from '../helpers/fulcrum';
import { startBackend } from '../helpers/backends';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { cleanups } = useTeardown();

test(`HTTP/1.1 engine of this run: ${process.env.FULCRUM_HTTP1 === 'node' ? 'the fallback (FULCRUM_HTTP1=node)' : "Node's llhttp binding"}`, async () => {
  const b = await startBackend('alpha');
  cleanups.push(() => b.close());
  const f = await startFulcrum(`
log: { level: info, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes: [{ pool: web }]
pools:
  web:
    backends: [{ url: ${b.url} }]
`);
  cleanups.push(() => f.stop());
  expect((await request(`${f.url()}/x`)).status).toBe(200);
  const lines = f.logs.filter((l) => l.http1 === 'node');
  if (process.env.FULCRUM_HTTP1 === 'node') {
    expect(lines).toEqual([expect.objectContaining({ level: 30, reason: 'FULCRUM_HTTP1=node' })]);
  } else {
    expect(lines).toEqual([]);
  }
});
