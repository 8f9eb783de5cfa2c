import { encodeHeader, encodeLocal, parseHeader, V2_SIGNATURE } from '../../src/proxy-protocol/header';

const c4 = { source: { address: '192.0.2.7', port: 51234 }, destination: { address: '198.51.100.1', port: 443 } };
const c6 = { source: { address: '2001:db8::7', port: 1 }, destination: { address: 'fd00::1', port: 8443 } };

describe('PROXY protocol header', () => {
  test.each([
    ['v1 TCP4', Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\nGET /'), c4, 45],
    ['v1 TCP6', Buffer.from('PROXY TCP6 2001:db8::7 fd00::1 1 8443\r\n'), c6, 39],
  ])('reads %s', (_name, buf, want, length) => {
    expect(parseHeader(buf)).toEqual({ kind: 'ok', length, connection: want });
  });

  test('v1 UNKNOWN and v2 LOCAL leave the peer as the source', () => {
    expect(parseHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ kind: 'ok', length: 15, connection: null });
    expect(parseHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'))).toMatchObject({ kind: 'ok', connection: null });
    expect(parseHeader(encodeLocal('v2'))).toEqual({ kind: 'ok', length: 16, connection: null });
    expect(parseHeader(encodeLocal('v1'))).toEqual({ kind: 'ok', length: 15, connection: null });
  });

  test('encode then parse is the identity, v1 and v2, v4 and v6, with bytes after', () => {
    for (const v of ['v1', 'v2'] as const) {
      for (const c of [c4, c6]) {
        const h = encodeHeader(v, c);
        expect(parseHeader(Buffer.concat([h, Buffer.from('GET / HTTP/1.1\r\n')]))).toEqual({ kind: 'ok', length: h.length, connection: c });
      }
    }
    // Mixed families: the v4 side as v4-mapped v6.
    const mixed = encodeHeader('v2', { source: { address: '10.0.0.1', port: 5 }, destination: { address: '::1', port: 80 } });
    expect(parseHeader(mixed)).toMatchObject({ connection: { source: { address: '::ffff:a00:1' } } });
  });

  test('v2 TLVs after the addresses are skipped', () => {
    const h = encodeHeader('v2', c4);
    const tlv = Buffer.from([0x04, 0x00, 0x02, 0xab, 0xcd]);
    const withTlv = Buffer.concat([h, tlv]);
    withTlv.writeUInt16BE(12 + tlv.length, 14);
    expect(parseHeader(withTlv)).toEqual({ kind: 'ok', length: withTlv.length, connection: c4 });
  });

  test('incomplete until the bytes decide, at every split point', () => {
    for (const h of [encodeHeader('v1', c4), encodeHeader('v2', c6)]) {
      for (let i = 0; i < h.length; i++) expect(parseHeader(h.subarray(0, i)).kind).toBe('incomplete');
    }
  });

  test.each([
    ['HTTP straight away', 'GET / HTTP/1.1\r\n'],
    ['a TLS ClientHello', '\x16\x03\x01\x02\x00'],
    ['lower-case proxy', 'proxy TCP4 1.1.1.1 2.2.2.2 1 2\r\n'],
    ['unknown protocol', 'PROXY UDP4 1.1.1.1 2.2.2.2 1 2\r\n'],
    ['bad address', 'PROXY TCP4 1.1.1 2.2.2.2 1 2\r\n'],
    ['v6 address as TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['port too big', 'PROXY TCP4 1.1.1.1 2.2.2.2 65536 2\r\n'],
    ['leading zero port', 'PROXY TCP4 1.1.1.1 2.2.2.2 01 2\r\n'],
    ['missing field', 'PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n'],
    ['line too long', `PROXY TCP4 ${'1'.repeat(120)}`],
  ])('refuses %s', (_name, text) => {
    expect(parseHeader(Buffer.from(text, 'latin1')).kind).toBe('invalid');
  });

  test('refuses a v2 header of another version, command or family', () => {
    const base = encodeHeader('v2', c4);
    const bad = (at: number, value: number) => {
      const b = Buffer.from(base);
      b[at] = value;
      return parseHeader(b).kind;
    };
    expect(bad(12, 0x11)).toBe('invalid'); // version 1 in a v2 signature
    expect(bad(12, 0x22)).toBe('invalid'); // command 2
    expect(bad(13, 0x41)).toBe('invalid'); // family 4
    const short = Buffer.from(base);
    short.writeUInt16BE(4, 14); // addresses cut short
    expect(parseHeader(short).kind).toBe('invalid');
    expect(parseHeader(Buffer.concat([V2_SIGNATURE.subarray(0, 5), Buffer.from('x')])).kind).toBe('invalid');
  });
});
