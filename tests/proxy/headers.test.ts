import { clientAddress, forwardRequestHeaders, forwardResponseHeaders } from '../../src/proxy/headers';
import { stripPathPrefix } from '../../src/proxy/router';

function toMap(flat: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i].toLowerCase();
    m.set(k, [...(m.get(k) ?? []), flat[i + 1]]);
  }
  return m;
}

describe('request header pass', () => {
  test('drops hop-by-hop headers and those Connection names, keeps Host', () => {
    const { headers } = forwardRequestHeaders([
      'Host', 'a.example', 'Connection', 'keep-alive, X-Secret, host', 'Keep-Alive', 'timeout=5',
      'Proxy-Connection', 'x', 'TE', 'trailers', 'Trailer', 'x', 'Upgrade', 'websocket',
      'X-Secret', 's', 'X-Kept', 'k',
    ], '10.0.0.9', 'http');
    const m = toMap(headers);
    for (const h of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'x-secret']) {
      expect(m.has(h)).toBe(false);
    }
    expect(m.get('host')).toEqual(['a.example']);
    expect(m.get('x-kept')).toEqual(['k']);
  });

  test('appends to X-Forwarded-For (all incoming copies), replaces Proto and Host', () => {
    const { headers } = forwardRequestHeaders([
      'Host', 'h', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2',
      'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil',
    ], '10.0.0.9', 'http');
    const m = toMap(headers);
    expect(m.get('x-forwarded-for')).toEqual(['1.1.1.1, 2.2.2.2, 10.0.0.9']);
    expect(m.get('x-forwarded-proto')).toEqual(['http']);
    expect(m.get('x-forwarded-host')).toEqual(['h']);
  });

  test('keeps X-Request-Id, or makes one', () => {
    expect(forwardRequestHeaders(['X-Request-Id', 'abc'], '1.2.3.4', 'http').requestId).toBe('abc');
    const made = forwardRequestHeaders([], '1.2.3.4', 'http');
    expect(made.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(toMap(made.headers).get('x-request-id')).toEqual([made.requestId]);
  });

  test('issue 20: an X-Forwarded-For the client names in Connection is dropped before ours is added (ours stays)', () => {
    const m = toMap(forwardRequestHeaders(['Connection', 'x-forwarded-for', 'X-Forwarded-For', '6.6.6.6'], '10.0.0.9', 'http').headers);
    expect(m.get('x-forwarded-for')).toEqual(['10.0.0.9']);
    const kept = toMap(forwardRequestHeaders(['Connection', 'keep-alive', 'X-Forwarded-For', '6.6.6.6'], '10.0.0.9', 'http').headers);
    expect(kept.get('x-forwarded-for')).toEqual(['6.6.6.6, 10.0.0.9']);
  });

  test('IPv4-mapped client addresses are written as IPv4', () => {
    expect(clientAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddress('::1')).toBe('::1');
  });
});

describe('response header pass', () => {
  test('drops hop-by-hop and Connection-named headers, keeps repeats', () => {
    const raw = ['Connection', 'close, X-Internal', 'Transfer-Encoding', 'chunked', 'X-Internal', '1',
      'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain'];
    const m = toMap(forwardResponseHeaders(raw));
    expect([...m.keys()].sort()).toEqual(['content-type', 'set-cookie']);
    expect(m.get('set-cookie')).toEqual(['a=1', 'b=2']);
  });
});

describe('stripPathPrefix', () => {
  test.each([
    ['/v1/users', '/v1/', '/users'],
    ['/v1/users', '/v1', '/users'],
    ['/v1', '/v1', '/'],
    ['/v1?x=1', '/v1', '/?x=1'],
    ['/v1/', '/v1/', '/'],
  ])('%s without %s is %s', (path, prefix, out) => {
    expect(stripPathPrefix(path, prefix)).toBe(out);
  });
});
