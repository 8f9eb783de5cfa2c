import { randomFillSync } from 'node:crypto';

/** Ids per refill of the random bytes (node's randomUUID buffers as many). */
const BATCH = 128;
const random = Buffer.allocUnsafe(16 * BATCH);
let next = BATCH;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const text = Buffer.allocUnsafe(36);

/**
 * A new X-Request-Id: a random (version 4) UUID, as crypto.randomUUID makes
 * it, from the same CSPRNG, buffered the same way. Written into bytes and
 * read back as one flat string: randomUUID's is a rope of twenty pieces, which
 * the request head, the access log and JSON each flattened again.
 */
export function newRequestId(): string {
  if (next === BATCH) {
    randomFillSync(random);
    next = 0;
  }
  const from = 16 * next++;
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[at++] = 0x2d; // -
    let b = random[from + i]!;
    // RFC 9562 §5.4: version 4 in the high nibble of byte 6, variant 10 in the high bits of byte 8.
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    text[at++] = HEX[b >> 4]!;
    text[at++] = HEX[b & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
