/** The pieces of a route's action, with randomness pinned: the weighted choice, header rules, rewrites, redirects. */
import { WeightedChoice } from '../../src/routes/weighted';
import { HeaderRules, headerRules } from '../../src/routes/header-rules';
import { pathRewriter } from '../../src/routes/rewrite';
import { Redirect } from '../../src/routes/redirect';
import type { RouteConfig } from '../../src/config/types';

describe('WeightedChoice', () => {
  test.each([
    [0, 'a'], [0.8999, 'a'], [0.9, 'b'], [0.9999999, 'b'],
  ])('90/0/10 with random() = %s → %s (weight 0 takes nothing)', (r, expected) => {
    const c = new WeightedChoice([{ target: 'a', weight: 90 }, { target: 'zero', weight: 0 }, { target: 'b', weight: 10 }], () => r);
    expect(c.pick()).toBe(expected);
  });
});

describe('HeaderRules: remove, then set (replaces), then add (appends)', () => {
  test('on a flat list, names case-insensitive', () => {
    const rules = new HeaderRules({ remove: ['x-debug'], set: [['X-Env', 'prod']], add: [['x-env', 'extra'], ['x-seen-by', 'fulcrum']] });
    expect(rules.apply(['X-Debug', '1', 'x-env', 'dev', 'X-ENV', 'dev2', 'x-seen-by', 'client', 'host', 'h']))
      .toEqual(['x-seen-by', 'client', 'host', 'h', 'X-Env', 'prod', 'x-env', 'extra', 'x-seen-by', 'fulcrum']);
  });
  test('no rules: null (the request path pays one null check)', () => {
    expect(headerRules(undefined)).toBeNull();
    expect(headerRules({ remove: [], set: [], add: [] })).toBeNull();
  });
});

describe('pathRewriter keeps the query string', () => {
  const route = (extra: Partial<RouteConfig>): RouteConfig => ({ match: { pathPrefix: '/v1/' }, pool: 'p', stripPrefix: false, ...extra });
  test.each<[Partial<RouteConfig>, string, string]>([
    [{ stripPrefix: true }, '/v1/users?id=7', '/users?id=7'],
    [{ stripPrefix: true }, '/v1/', '/'],
    [{ rewrite: { path: '/fixed' } }, '/v1/a?b=c', '/fixed?b=c'],
    [{ rewrite: { pathRegex: '^/v1/(.*)$', replacement: '/v2/$1' } }, '/v1/a/b?x=1', '/v2/a/b?x=1'],
    [{ rewrite: { pathRegex: '^/v1/(.*)$', replacement: '$1' } }, '/v1/a', '/a'],
    [{ rewrite: { pathRegex: '^/nope/', replacement: '/x/' } }, '/v1/a?q', '/v1/a?q'],
  ])('%j: %s → %s', (extra, path, expected) => {
    expect(pathRewriter(route(extra))!(path)).toBe(expected);
  });
  test('neither: null', () => {
    expect(pathRewriter(route({}))).toBeNull();
  });
});

describe('Redirect.location', () => {
  test.each<[ConstructorParameters<typeof Redirect>[0], 'http' | 'https', string, string, string | undefined]>([
    [{ scheme: 'https', status: 301 }, 'http', 'a.test:080', '/x?y', 'https://a.test/x?y'],
    [{ port: 80, status: 302 }, 'http', 'a.test:8080', '/x', 'http://a.test/x'],
    [{ port: 443, status: 302 }, 'http', 'a.test', '/x', 'http://a.test:443/x'],
    [{ host: 'b.test', status: 302 }, 'https', 'a.test:443', '/x', 'https://b.test/x'],
    [{ path: '/p', status: 302 }, 'http', '[::1]:8080', '/x?a=1&b', 'http://[::1]:8080/p?a=1&b'],
    [{ scheme: 'https', status: 302 }, 'http', 'a b', '/x', undefined],
    [{ scheme: 'https', status: 302 }, 'http', 'a.test/evil', '/x', undefined],
  ])('%j over %s, Host %s, %s → %s', (config, proto, host, target, expected) => {
    expect(new Redirect(config).location(proto, host, target)).toBe(expected);
  });
});
