import { ipv6Bytes, parseQuery, respond, type DnsRecords } from '../helpers/dns-server';

/** A query as a stub resolver sends it: id 0x1234, RD, one question. */
function query(name: string, type: number, klass = 1): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(klass, 2);
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

const records = new Map<string, DnsRecords>([['web.internal', { a: ['10.0.0.1', '10.0.0.2'], aaaa: [] }]]);

describe('the test DNS server wire format', () => {
  test('parses the question', () => {
    expect(parseQuery(query('Web.Internal', 28))).toMatchObject({ id: 0x1234, name: 'web.internal', type: 28, klass: 1, questionEnd: 12 + 14 + 4 });
  });

  test('A answers: header, echoed question, compressed owner names, TTL 1', () => {
    const q = query('web.internal', 1);
    const r = respond(q, records)!;
    expect(r.readUInt16BE(0)).toBe(0x1234);
    expect(r.readUInt16BE(2)).toBe(0x8000 | 0x0400 | 0x0100); // QR AA RD, NOERROR
    expect([r.readUInt16BE(4), r.readUInt16BE(6), r.readUInt16BE(8), r.readUInt16BE(10)]).toEqual([1, 2, 0, 0]);
    expect(r.subarray(12, q.length)).toEqual(q.subarray(12));
    const rr = r.subarray(q.length);
    expect(rr.length).toBe(2 * 16);
    expect(rr.readUInt16BE(0)).toBe(0xc00c);
    expect(rr.readUInt16BE(2)).toBe(1);
    expect(rr.readUInt16BE(4)).toBe(1);
    expect(rr.readUInt32BE(6)).toBe(1);
    expect(rr.readUInt16BE(10)).toBe(4);
    expect([...rr.subarray(12, 16)]).toEqual([10, 0, 0, 1]);
    expect([...rr.subarray(28, 32)]).toEqual([10, 0, 0, 2]);
  });

  test('NODATA, NXDOMAIN, SERVFAIL, drop, FORMERR', () => {
    const nodata = respond(query('web.internal', 28), records)!;
    expect([nodata.readUInt16BE(2) & 0xf, nodata.readUInt16BE(6)]).toEqual([0, 0]);
    expect(respond(query('nope.internal', 1), records)!.readUInt16BE(2) & 0xf).toBe(3);
    expect(respond(query('web.internal', 1), records, 'servfail')!.readUInt16BE(2) & 0xf).toBe(2);
    expect(respond(query('web.internal', 1), records, 'drop')).toBeUndefined();
    expect(respond(query('web.internal', 1).subarray(0, 15), records)!.readUInt16BE(2) & 0xf).toBe(1);
  });

  test('IPv6 addresses in 16 bytes', () => {
    expect(ipv6Bytes('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipv6Bytes('2001:db8::5').toString('hex')).toBe('20010db8000000000000000000000005');
    expect(ipv6Bytes('fe80::').toString('hex')).toBe('fe800000000000000000000000000000');
    expect(ipv6Bytes('1:2:3:4:5:6:7:8').toString('hex')).toBe('00010002000300040005000600070008');
  });
});
