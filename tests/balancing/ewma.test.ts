import { updateEwma } from '../../src/balancing/ewma';

describe('updateEwma', () => {
  test('the first sample (no previous average) is taken as is', () => {
    expect(updateEwma(0, 42, 0)).toBe(42);
    expect(updateEwma(0, 42, 123_456)).toBe(42);
  });

  test('decays by exp(-elapsed / decay)', () => {
    // After one time constant the old average keeps e^-1 of its weight.
    const w = Math.exp(-1);
    expect(updateEwma(100, 200, 10_000)).toBeCloseTo(100 * w + 200 * (1 - w), 10);
    expect(updateEwma(100, 200, 500, 1000)).toBeCloseTo(100 * Math.exp(-0.5) + 200 * (1 - Math.exp(-0.5)), 10);
  });

  test.each([
    [10, 0.001],
    [1000, 0.1],
    [5000, 0.4],
  ])('a sample %p ms after the last moves the average by about %p of the gap', (elapsed, atLeast) => {
    const next = updateEwma(100, 200, elapsed);
    expect(next).toBeGreaterThan(100);
    expect(next).toBeLessThan(200);
    expect((next - 100) / 100).toBeGreaterThanOrEqual(atLeast * 0.9);
  });

  test('no elapsed time leaves the average; a long quiet time makes it the sample', () => {
    expect(updateEwma(100, 900, 0)).toBe(100);
    expect(updateEwma(100, 900, -5)).toBe(100); // a clock going backwards is no time
    expect(updateEwma(100, 900, 10_000_000)).toBeCloseTo(900, 6);
  });

  test('converges to a steady sample', () => {
    let avg = 0;
    for (let i = 0; i < 200; i++) avg = updateEwma(avg, i === 0 ? 500 : 20, 1000);
    expect(avg).toBeCloseTo(20, 3);
  });

  test('ignores samples that are not a duration', () => {
    expect(updateEwma(100, Number.NaN, 1000)).toBe(100);
    expect(updateEwma(100, -1, 1000)).toBe(100);
    expect(updateEwma(100, Number.POSITIVE_INFINITY, 1000)).toBe(100);
  });

  test('is pure', () => {
    expect(updateEwma(37, 81, 2500, 7000)).toBe(updateEwma(37, 81, 2500, 7000));
  });
});
