/**
 * Our request-path counter and histogram must expose exactly what prom-client's
 * own Counter and Histogram would for the same observations: in the text
 * format, in the JSON workers send, and once summed by AggregatorRegistry.
 */
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { CounterFamily, HistogramFamily } from '../../src/metrics/series';

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const OBSERVED = [0, 0.0005, 0.001, 0.0010001, 0.003, 0.01, 0.2, 0.25, 0.7, 9.99, 10, 10.5, 1e6];
const LABELS = [
  { listener: 'public', pool: 'web', backend: 'a' },
  { listener: 'public', pool: 'web', backend: '' },
  { listener: 'admin "quoted"\\x', pool: 'p\nq', backend: '10.0.0.1:80' },
];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const counter = new CounterFamily('t_requests_total', 'Requests.', [ours]);
  const histogram = new HistogramFamily('t_duration_seconds', 'Duration.', BOUNDS, [ours]);
  const pCounter = new Counter({ name: 't_requests_total', help: 'Requests.', labelNames: ['listener', 'pool', 'backend', 'method', 'code'], registers: [theirs] });
  const pHistogram = new Histogram({ name: 't_duration_seconds', help: 'Duration.', labelNames: ['listener', 'pool', 'backend'], buckets: BOUNDS, registers: [theirs] });
  LABELS.forEach((labels, k) => {
    const h = histogram.series(labels);
    const c = counter.series({ ...labels, method: 'GET', code: '200' });
    for (const v of OBSERVED.slice(k)) {
      h.observe(v);
      pHistogram.observe(labels, v);
      c.inc();
      pCounter.inc({ ...labels, method: 'GET', code: '200' });
    }
  });
  return { ours, theirs, counter, histogram };
}

test('text exposition is byte for byte prom-client\'s', async () => {
  const { ours, theirs } = both();
  expect(await ours.metrics()).toBe(await theirs.metrics());
});

test('JSON (what workers send the primary) and its aggregate are prom-client\'s', async () => {
  const { ours, theirs } = both();
  const a = await ours.getMetricsAsJSON();
  // prom-client adds `exemplar: null` to histogram values; nothing reads it without exemplars.
  const withoutExemplars = (await theirs.getMetricsAsJSON()).map((m) => ({
    ...m, values: m.values.map((v) => {
      const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown };
      return rest;
    }),
  }));
  expect(a).toEqual(withoutExemplars);
  const again = both();
  const summed = await AggregatorRegistry.aggregate([a, await again.ours.getMetricsAsJSON()]).metrics();
  const expected = await AggregatorRegistry.aggregate([await theirs.getMetricsAsJSON(), await again.theirs.getMetricsAsJSON()]).metrics();
  expect(summed).toBe(expected);
  expect(summed).toContain('t_duration_seconds_count{listener="public",pool="web",backend="a"} 26');
});

test('reset zeroes every series and keeps it', async () => {
  const { ours, counter, histogram } = both();
  counter.reset();
  histogram.reset();
  const text = await ours.metrics();
  expect(text).toContain('t_requests_total{listener="public",pool="web",backend="a",method="GET",code="200"} 0');
  expect(text).toContain('t_duration_seconds_bucket{le="+Inf",listener="public",pool="web",backend="a"} 0');
});
