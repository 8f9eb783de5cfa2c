import { rampWeight } from '../../src/health/slow-start';

describe('rampWeight', () => {
  test.each([
    [0, 10],
    [500, 55],
    [1000, 100],
    [5000, 100],
  ])('at %i ms of 1000 a weight of 100 is %d', (elapsed, w) => {
    expect(rampWeight(100, elapsed, 1000)).toBeCloseTo(w, 6);
  });
  test('never zero', () => {
    expect(rampWeight(1, -5, 1000)).toBeGreaterThan(0);
  });
});
