import { Router } from '../../src/proxy/router';
import type { RouteConfig } from '../../src/config/types';

const routes: RouteConfig[] = [
  { host: 'api.example.com', pathPrefix: '/v1/', pool: 'api-v1', stripPrefix: false },
  { host: '*.example.com', pathPrefix: '/v1/', pool: 'wild-v1', stripPrefix: false },
  { pathPrefix: '/static/', pool: 'static', stripPrefix: false },
  { host: '*.example.com', pool: 'wild', stripPrefix: false },
  { host: 'api.example.com', pool: 'api', stripPrefix: false },
  { pool: 'default', stripPrefix: false },
];
const router = new Router(routes, (name) => name);
const pool = (host: string | undefined, path: string) => router.match(host, path)?.pool;

describe('Router: first match wins across exact, wildcard and host-less routes', () => {
  test.each([
    ['api.example.com', '/v1/x', 'api-v1'],
    ['API.Example.com:8443', '/v1/x', 'api-v1'],
    ['shop.example.com', '/v1/x', 'wild-v1'],
    ['a.b.example.com', '/v1/x', 'wild-v1'],
    ['shop.example.com', '/static/a.png', 'static'],
    ['api.example.com', '/static/a.png', 'static'],
    ['shop.example.com', '/other', 'wild'],
    ['api.example.com', '/other', 'wild'], // the wildcard route comes first in the file
    ['example.com', '/v1/x', 'default'], // "*.example.com" needs a subdomain
    ['evil-example.com', '/other', 'default'],
    ['other.org', '/v1/x', 'default'],
    [undefined, '/x', 'default'],
    ['[::1]:8080', '/x', 'default'],
  ])('%s %s → %s', (host, path, expected) => {
    expect(pool(host, path)).toBe(expected);
  });

  test('without a catch-all, an unmatched request has no route (404)', () => {
    const r = new Router([{ host: 'a.test', pool: 'a', stripPrefix: false }], (n) => n);
    expect(r.match('b.test', '/')).toBeUndefined();
    expect(r.match('a.test', '/')?.pool).toBe('a');
  });

  test('a flood of invented hosts keeps answering correctly (the cache is bounded)', () => {
    for (let i = 0; i < 25_000; i++) expect(pool(`h${i}.example.com`, '/x')).toBe('wild');
    expect(pool('api.example.com', '/v1/')).toBe('api-v1');
  });
});
