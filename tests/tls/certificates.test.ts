import { X509Certificate } from 'node:crypto';
import { describeCertificate, selfSigned } from '../../src/tls/certificates';

describe('the self-signed placeholder (DER written by hand)', () => {
  // Its serial is random: one time in 256 the old code wrote a padded INTEGER
  // (a leading 0x00 before a byte below 0x80), which OpenSSL refuses. Enough
  // draws that such a bug fails this test with near certainty.
  test('every one of 2000 parses, with its names, and a positive serial in DER\'s shortest form', () => {
    for (let i = 0; i < 2000; i++) {
      const { cert } = selfSigned(['example.test', 'www.example.test'], 'placeholder', 7);
      const x = new X509Certificate(cert);
      expect(x.serialNumber).toMatch(/^[4-7][0-9A-F]/);
      if (i === 0) expect(describeCertificate(cert, 'placeholder').names).toEqual(['example.test', 'www.example.test']);
    }
  });
});
