import http, { type Server } from 'node:http';

/**
 * The demo's backends: tiny services that say who they are, echo what they
 * received (so the forwarded headers can be seen) and answer health probes.
 */
export function startDemoBackend(name: string, host: string, port: number): Promise<Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      url: req.url,
      headers: {
        host: req.headers.host,
        'x-forwarded-for': req.headers['x-forwarded-for'],
        'x-forwarded-proto': req.headers['x-forwarded-proto'],
        'x-forwarded-host': req.headers['x-forwarded-host'],
        'x-request-id': req.headers['x-request-id'],
      },
    }, null, 2);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
    res.end(`${body}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`demo backend ${name} cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)));
    server.listen(port, host, () => resolve(server));
  });
}
