import { Router, literalPrefix } from '../../src/proxy/router';
import type { RouteConfig, RouteMatchConfig } from '../../src/config/types';

const r = (pool: string, match: RouteMatchConfig = {}): RouteConfig => ({ match, pool, stripPrefix: false });
const routes: RouteConfig[] = [
  r('api-v1', { hosts: ['api.example.com'], pathPrefix: '/v1/' }),
  r('wild-v1', { hosts: ['*.example.com'], pathPrefix: '/v1/' }),
  r('static', { pathPrefix: '/static/' }),
  r('wild', { hosts: ['*.example.com'] }),
  r('api', { hosts: ['api.example.com'] }),
  r('default'),
];
const router = new Router(routes, (c) => c.pool);
const pool = (host: string | undefined, path: string) => router.match(host, path, 'GET', {});

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
    const one = new Router([r('a', { hosts: ['a.test'] })], (c) => c.pool);
    expect(one.match('b.test', '/', 'GET', {})).toBeUndefined();
    expect(one.match('a.test', '/', 'GET', {})).toBe('a');
  });

  test('a flood of invented hosts keeps answering correctly (the cache is bounded)', () => {
    for (let i = 0; i < 25_000; i++) expect(pool(`h${i}.example.com`, '/x')).toBe('wild');
    expect(pool('api.example.com', '/v1/')).toBe('api-v1');
  });
});

describe('Router: every condition of SPEC 8 must hold; the path index keeps file order', () => {
  const table: RouteConfig[] = [
    r('list-host', { hosts: ['a.test', '*.b.test'] }),
    r('exact', { path: '/v1/health' }),
    r('regex', { pathRegex: '^/v1/users/[0-9]+$' }),
    r('methods', { pathPrefix: '/v1/', methods: ['POST', 'PUT'] }),
    r('header', { pathPrefix: '/v1/', headers: [{ name: 'x-canary', exact: 'true' }, { name: 'x-tenant', regex: '^acme-' }] }),
    r('query', { pathPrefix: '/v1/', query: [{ name: 'debug', exact: '1' }, { name: 'q', exact: 'a b' }] }),
    r('short-prefix', { pathPrefix: '/v' }),
    r('catch-all'),
  ];
  const t = new Router(table, (c) => c.pool);
  test.each([
    ['a.test', '/anything', 'GET', {}, 'list-host'],
    ['x.b.test', '/v1/health', 'GET', {}, 'list-host'],
    ['c.test', '/v1/health', 'GET', {}, 'exact'],
    ['c.test', '/v1/health?x=1', 'GET', {}, 'exact'], // the query string is not part of the path
    ['c.test', '/v1/health/', 'GET', {}, 'short-prefix'],
    ['c.test', '/v1/users/42', 'GET', {}, 'regex'],
    ['c.test', '/v1/users/42?full=1', 'GET', {}, 'regex'],
    ['c.test', '/v1/users/abc', 'GET', {}, 'short-prefix'],
    ['c.test', '/v1/orders', 'POST', {}, 'methods'],
    ['c.test', '/v1/orders', 'GET', { 'x-canary': 'true', 'x-tenant': 'acme-eu' }, 'header'],
    ['c.test', '/v1/orders', 'GET', { 'x-canary': 'true', 'x-tenant': 'other' }, 'short-prefix'],
    ['c.test', '/v1/orders', 'GET', { 'x-canary': 'TRUE', 'x-tenant': 'acme-eu' }, 'short-prefix'],
    ['c.test', '/v1/orders?debug=1&q=a+b', 'GET', {}, 'query'],
    ['c.test', '/v1/orders?debug=%31&q=a%20b', 'GET', {}, 'query'], // decoded values
    ['c.test', '/v1/orders?debug=2&debug=1&q=a+b', 'GET', {}, 'query'], // any value of a repeated key
    ['c.test', '/v1/orders?debug=1', 'GET', {}, 'short-prefix'],
    ['c.test', '/video', 'GET', {}, 'short-prefix'],
    ['c.test', '/', 'GET', {}, 'catch-all'],
    ['c.test', '/other/v1/users/1', 'GET', {}, 'catch-all'],
  ])('%s %s %s %j → %s', (host, path, method, headers, expected) => {
    expect(t.match(host, path, method, headers)).toBe(expected);
  });

  test('a regex only runs on requests its literal start could match', () => {
    let runs = 0;
    const counting = new Router([r('regex', { pathRegex: '^/v2/items/[0-9]+$' }), r('rest')], (c) => c.pool);
    const spy = jest.spyOn(RegExp.prototype, 'test').mockImplementation(function (this: RegExp, s: string) {
      runs++;
      return RegExp.prototype.exec.call(this, s) !== null;
    });
    try {
      for (let i = 0; i < 100; i++) expect(counting.match('h', `/other/${i}`, 'GET', {})).toBe('rest');
      expect(runs).toBe(0);
      expect(counting.match('h', '/v2/items/7', 'GET', {})).toBe('regex');
      expect(runs).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });

  test.each([
    ['^/v1/users/[0-9]+$', '/v1/users/'],
    ['^/v1/users/?$', '/v1/users'],
    ['^\\/api\\.v2/x', '/api.v2/x'],
    ['^/a(b)?', '/a'],
    ['^/a|^/b', undefined],
    ['/v1/', undefined],
    ['^/\\d+', '/'],
    ['^[/]x', undefined],
  ])('literalPrefix(%s) = %s', (source, expected) => {
    expect(literalPrefix(source)).toBe(expected);
  });
});
