import { parseDuration, parseSize } from '../../src/config';

describe('parseDuration', () => {
  test.each([
    ['250ms', 250],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['0s', 0],
    ['0ms', 0],
    [0, 0],
  ] as const)('%p → %p ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test.each(['5 seconds', '5', '-5s', '', 's', '5d', '5sec', '1e3ms', 'ms5', '5.s'])('rejects %p', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });

  test('rejects bare numbers other than 0', () => {
    expect(parseDuration(5)).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });
});

describe('parseSize', () => {
  test.each([
    ['512kb', 512 * 1024],
    ['10mb', 10 * 1024 * 1024],
    ['10MB', 10 * 1024 * 1024],
    ['1gb', 1024 ** 3],
    ['1Gb', 1024 ** 3],
    ['100b', 100],
    ['1.5kb', 1536],
    ['0', 0],
    ['0kb', 0],
    [0, 0],
  ] as const)('%p → %p bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  test.each(['10', '10 mb', '-1kb', '', 'mb', '1tb', '1k'])('rejects %p', (input) => {
    expect(parseSize(input)).toBeUndefined();
  });

  test('rejects bare numbers other than 0', () => {
    expect(parseSize(1024)).toBeUndefined();
  });
});
