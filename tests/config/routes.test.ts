/**
 * SPEC section 8's keys in the config file: every rule that spans keys is a
 * problem at its FILE:LINE:COL, and a valid route comes out as types.ts says.
 */
import { parseConfig } from '../../src/config';
import { positions, yaml } from './helpers';

/** A config whose one listener has `routes` (lines indented under "routes:"), and pools web and shadow. */
function withRoutes(...routes: string[]): string {
  return yaml(
    'listeners:',
    '  main:',
    '    listen: 127.0.0.1:0',
    '    routes:',
    ...routes.map((r) => `      ${r}`),
    'pools:',
    '  web: { backends: [ { url: "http://127.0.0.1:3001" } ] }',
    '  shadow: { backends: [ { url: "http://127.0.0.1:3002" } ] }',
  );
}

describe('route validation: each problem at its line and column', () => {
  test.each([
    ['a route with two actions', ['- { pool: web, redirect: { scheme: https } }'],
      ['5:22: listeners.main.routes[0].redirect: a route does exactly one thing: it has both pool and redirect (keep one of pool, pools, redirect, respond)']],
    ['a route with no action', ['- { match: { path: /x } }'],
      ['5:9: listeners.main.routes[0]: a route needs exactly one of pool, pools, redirect, respond']],
    ['rewrite with stripPrefix: true', ['- { match: { pathPrefix: /a/ }, pool: web, stripPrefix: true, rewrite: { path: /b } }'],
      ['5:69: listeners.main.routes[0].rewrite: rewrite cannot be used with stripPrefix: true (rewrite the whole path instead)']],
    ['an unknown pool in pool', ['- pool: nope'],
      ['5:15: listeners.main.routes[0].pool: route points to unknown pool "nope" (pools: web, shadow)']],
    ['an unknown pool in pools', ['- pools: [ { pool: web, weight: 1 }, { pool: nope, weight: 1 } ]'],
      ['5:52: listeners.main.routes[0].pools[1].pool: pools entry points to unknown pool "nope" (pools: web, shadow)']],
    ['an unknown pool in mirror', ['- { pool: web, mirror: { pool: nope } }'],
      ['5:38: listeners.main.routes[0].mirror.pool: mirror points to unknown pool "nope" (pools: web, shadow)']],
    ['a weight above 10000', ['- pools: [ { pool: web, weight: 10001 } ]'],
      ['5:39: listeners.main.routes[0].pools[0].weight: must be at most 10000']],
    ['a negative weight', ['- pools: [ { pool: web, weight: -1 } ]'],
      ['5:39: listeners.main.routes[0].pools[0].weight: must be at least 0']],
    ['every weight 0', ['- pools: [ { pool: web, weight: 0 }, { pool: shadow, weight: 0 } ]'],
      ['5:16: listeners.main.routes[0].pools: every weight is 0: at least one pool must take requests']],
    ['a hop-by-hop header in set', ['- { pool: web, requestHeaders: { set: { Connection: close } } }'],
      ['5:47: listeners.main.routes[0].requestHeaders.set.Connection: connection is a hop-by-hop header (RFC 9110 §7.6.1): it is never forwarded, so it cannot be set']],
    ['a hop-by-hop header in add', ['- { pool: web, responseHeaders: { add: { transfer-encoding: gzip } } }'],
      ['5:48: listeners.main.routes[0].responseHeaders.add.transfer-encoding: transfer-encoding is a hop-by-hop header (RFC 9110 §7.6.1): it is never forwarded, so it cannot be added']],
    ['a bad redirect status', ['- { redirect: { scheme: https, status: 304 } }'],
      ['5:46: listeners.main.routes[0].redirect.status: redirect status must be one of 301, 302, 303, 307, 308, got 304']],
    ['a respond without status', ['- { respond: { body: hi } }'],
      ['5:20: listeners.main.routes[0].respond: missing required key "status"']],
    ['an invalid regex', ['- { match: { pathRegex: "^/(a" }, pool: web }'],
      ['5:31: listeners.main.routes[0].match.pathRegex: invalid regular expression "^/(a": /^/(a/: Unterminated group']],
    ['a regex that backtracks catastrophically', ['- { match: { headers: { x-a: { regex: "^(a+)+$" } } }, pool: web }'],
      ['5:36: listeners.main.routes[0].match.headers.x-a: regular expression "^(a+)+$" could take super-linear time on a crafted request (nested quantifiers such as (a+)+): rewrite it without them']],
    ['a regex in rewrite that backtracks', ['- { pool: web, rewrite: { pathRegex: "(x*)*y", replacement: /z } }'],
      ['5:44: listeners.main.routes[0].rewrite.pathRegex: regular expression "(x*)*y" could take super-linear time on a crafted request (nested quantifiers such as (a+)+): rewrite it without them']],
    ['two path conditions', ['- { match: { path: /a, pathPrefix: /a }, pool: web }'],
      ['5:30: listeners.main.routes[0].match.pathPrefix: use one of path, pathPrefix, pathRegex (this match has path and pathPrefix)']],
    ['a lower-case method', ['- { match: { methods: [get] }, pool: web }'],
      ['5:30: listeners.main.routes[0].match.methods[0]: methods are case-sensitive: write GET, not "get"']],
    ['rewrite on a redirect', ['- { redirect: { path: /b }, rewrite: { path: /c } }'],
      ['5:35: listeners.main.routes[0].rewrite: rewrite only applies to a route that forwards (pool or pools), not to redirect']],
    ['a redirect that replaces nothing', ['- { redirect: { status: 301 } }'],
      ['5:21: listeners.main.routes[0].redirect: redirect needs at least one of scheme, host, port, path (else it points at itself)']],
    ['an unknown key in a route', ['- { pool: web, mirrror: { pool: shadow } }'],
      ['5:22: listeners.main.routes[0]: unknown key "mirrror" (did you mean "mirror"?)']],
    ['idle in a route\'s timeouts', ['- { pool: web, timeouts: { idle: 5s } }'],
      ['5:34: listeners.main.routes[0].timeouts: unknown key "idle": expected one of connect, response']],
    ['a mirror percent above 100', ['- { pool: web, mirror: { pool: shadow, percent: 101 } }'],
      ['5:55: listeners.main.routes[0].mirror.percent: must be at most 100']],
  ])('%s', (_what, routes, expected) => {
    expect(positions(withRoutes(...routes))).toEqual(expected);
  });
});

describe('a valid route, normalised', () => {
  test('every key of SPEC 8', () => {
    const c = parseConfig(withRoutes(
      '- match:',
      '    host: [API.Example.com:8443, "*.api.example.com"]',
      '    pathRegex: "^/v1/users/[0-9]+$"',
      '    methods: [GET, HEAD]',
      '    headers: { X-Canary: "true", x-tenant: { regex: "^acme-" } }',
      '    query: { debug: 1 }',
      '  pools: [ { pool: web, weight: 90 }, { pool: shadow } ]',
      '  rewrite: { pathRegex: "^/v1/(.*)$", replacement: "/$1" }',
      '  requestHeaders: { set: { X-Env: prod }, add: { x-seen-by: fulcrum }, remove: [X-Debug] }',
      '  responseHeaders: { remove: [server] }',
      '  timeouts: { response: 120s }',
      '  retries: { attempts: 0 }',
      '  mirror: { pool: shadow, percent: 10 }',
      '- { match: { host: old.example.com }, redirect: { scheme: https, host: www.example.com, port: 443, path: /landing, status: 301 } }',
      '- { match: { path: /robots.txt }, respond: { status: 200, body: "x", headers: { content-type: text/plain } } }',
    ), 'f.yaml', {});
    const [a, b, d] = c.listeners[0]!.routes;
    expect(a).toEqual({
      match: {
        hosts: ['api.example.com', '*.api.example.com'],
        pathRegex: '^/v1/users/[0-9]+$',
        methods: ['GET', 'HEAD'],
        headers: [{ name: 'x-canary', exact: 'true' }, { name: 'x-tenant', regex: '^acme-' }],
        query: [{ name: 'debug', exact: '1' }],
      },
      pools: [{ pool: 'web', weight: 90 }, { pool: 'shadow', weight: 1 }],
      stripPrefix: false,
      rewrite: { pathRegex: '^/v1/(.*)$', replacement: '/$1' },
      requestHeaders: { remove: ['x-debug'], set: [['X-Env', 'prod']], add: [['x-seen-by', 'fulcrum']] },
      responseHeaders: { remove: ['server'], set: [], add: [] },
      timeouts: { responseMs: 120_000 },
      retries: { attempts: 0, on: ['connect-failure'] },
      mirror: { pool: 'shadow', percent: 10, maxBodySize: 65_536 },
    });
    expect(b).toEqual({
      match: { hosts: ['old.example.com'] },
      redirect: { scheme: 'https', host: 'www.example.com', port: 443, path: '/landing', status: 301 },
      stripPrefix: false,
    });
    expect(d).toEqual({ match: { path: '/robots.txt' }, respond: { status: 200, body: 'x', headers: [['content-type', 'text/plain']] }, stripPrefix: false });
  });
});
