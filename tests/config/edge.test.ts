/** The keys of SPEC 9.3 and 9.4: every problem one FILE:LINE:COL line. */
import { parseConfig } from '../../src/config';
import { selfSigned } from '../helpers/tls';

const cert = selfSigned();
const tlsFiles = `cert: ${cert.cert}, key: ${cert.key}`;

function problems(yaml: string): string {
  try {
    parseConfig(yaml, 'f.yaml', {});
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  }
}

const listener = (extra: string) => `listeners:\n  a:\n    listen: 127.0.0.1:0\n${extra}\n    routes: [{ pool: p }]\npools:\n  p: { backends: [{ url: "https://127.0.0.1:1" }] }\n`;
const pool = (extra: string, url = 'https://127.0.0.1:1') => `listeners:\n  a: { listen: 127.0.0.1:0, routes: [{ pool: p }] }\npools:\n  p:\n    backends: [{ url: "${url}" }]\n${extra}\n`;

describe('edge keys', () => {
  test.each([
    ['proxyProtocol: true', listener('    proxyProtocol: true'), 'ok'],
    ['trusted CIDRs', listener('    proxyProtocol: { trusted: [10.0.0.0/8, "fd00::/8", 127.0.0.1] }'), 'ok'],
    ['a bad CIDR', listener('    proxyProtocol: { trusted: [10.0.0.0/33] }'), /f\.yaml:4:32: .*invalid address or CIDR "10\.0\.0\.0\/33"/],
    ['an unknown key under proxyProtocol', listener('    proxyProtocol: { trust: [10.0.0.0/8] }'), /f\.yaml:4:\d+: .*unknown key "trust" \(did you mean "trusted"\?\)/],
    ['proxyProtocol: yes', listener('    proxyProtocol: "yes"'), /f\.yaml:4:20: .*proxyProtocol must be true, false or \{ trusted: \[CIDR, \.\.\.\] \}/],
    ['pool proxyProtocol v3', pool('    proxyProtocol: v3'), /f\.yaml:6:20: .*unknown proxyProtocol version "v3": expected one of v1, v2/],
    ['pool proxyProtocol with protocol http2', pool('    proxyProtocol: v2\n    protocol: http2'), /f\.yaml:6:20: .*proxyProtocol cannot be used with protocol http2/],
    ['clientAuth without clientCa', listener(`    tls: { ${tlsFiles}, clientAuth: require }`), /f\.yaml:4:\d+: .*clientAuth require needs clientCa/],
    ['clientCa without clientAuth', listener(`    tls: { ${tlsFiles}, clientCa: ${cert.cert} }`), /f\.yaml:4:\d+: .*clientCa has no effect with clientAuth none/],
    ['clientAuth misspelt', listener(`    tls: { ${tlsFiles}, clientCa: ${cert.cert}, clientAuth: required }`), /unknown tls clientAuth "required": expected one of none, optional, require/],
    ['tls with neither cert nor acme', listener('    tls: { minVersion: TLSv1.3 }'), /f\.yaml:4:\d+: .*tls needs cert and key, or acme/],
    ['acme and cert', listener(`    tls: { ${tlsFiles}, acme: { directory: "https://ca/dir", domains: [a.example], storage: ./acme } }`), /tls takes cert and key, or acme, not both/],
    ['acme without domains', listener('    tls: { acme: { directory: "https://ca/dir", domains: [], storage: ./acme } }'), /acme needs at least one domain/],
    ['acme with a bad domain', listener('    tls: { acme: { directory: "https://ca/dir", domains: ["a b"], storage: ./acme } }'), /acme domains must be DNS names/],
    ['acme with workers 2', `workers: 2\n${listener('    tls: { acme: { directory: "https://ca/dir", domains: [a.example], storage: ./acme } }')}`, /tls\.acme needs workers: 1/],
    ['acme', listener('    tls: { acme: { directory: "https://ca/dir", email: ops@a.example, domains: [a.example], storage: ./acme } }'), 'ok'],
    ['pool tls', pool(`    tls: { ca: ${cert.cert}, cert: ${cert.cert}, key: ${cert.key}, serverName: api.internal, verify: false }`), 'ok'],
    ['pool tls cert without key', pool(`    tls: { cert: ${cert.cert} }`), /f\.yaml:6:\d+: .*pool tls needs key too/],
    ['pool tls, a missing ca file', pool('    tls: { ca: ./nope.pem }'), /cannot read tls ca file "\.\/nope\.pem"/],
    ['pool tls on http:// backends only', pool(`    tls: { ca: ${cert.cert} }`, 'http://127.0.0.1:1'), /f\.yaml:6:5: .*pool tls applies to https:\/\/ backends/],
    ['pool tls, an unknown key', pool(`    tls: { ca: ${cert.cert}, verfy: false }`), /unknown key "verfy" \(did you mean "verify"\?\)/],
  ])('%s', (_name, yaml, want) => {
    const got = problems(yaml);
    if (want === 'ok') expect(got).toBe('ok');
    else expect(got).toMatch(want);
  });
});
