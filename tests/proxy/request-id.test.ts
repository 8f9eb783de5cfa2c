import { newRequestId } from '../../src/proxy/request-id';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are version 4 UUIDs, distinct across many refills of the random bytes', () => {
  const seen = new Set<string>();
  const variants = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const id = newRequestId();
    expect(id).toMatch(UUID_V4);
    seen.add(id);
    variants.add(id[19]!);
  }
  expect(seen.size).toBe(20_000);
  expect([...variants].sort()).toEqual(['8', '9', 'a', 'b']);
});

test('each id is its own string, unchanged by the ids made after it', () => {
  const first = newRequestId();
  const copy = `${first}`;
  for (let i = 0; i < 300; i++) newRequestId();
  expect(first).toBe(copy);
  expect(first).toMatch(UUID_V4);
});
