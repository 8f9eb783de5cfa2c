import type { Registry } from 'prom-client';

/**
 * Request-path metrics without prom-client's per-call work. prom-client's
 * labelled children re-hash and re-validate their labels on every inc() and
 * observe() (a string built from five labels, per request, twice); here a
 * series is a plain object resolved once per (listener, pool, backend, ...)
 * and bumped with arithmetic. The registry reads them at scrape time through
 * the same interface prom-client's own metrics have (name, help, type,
 * aggregator, get(), reset()), so the text exposition, the JSON that workers
 * send to the primary and AggregatorRegistry's sums are exactly prom-client's
 * (tests/metrics/series.test.ts compares them byte for byte).
 */

type Labels = Readonly<Record<string, string>>;

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Value[];
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}

  inc(): void {
    this.value++;
  }
}

export class CounterFamily {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #series: CounterSeries[] = [];

  constructor(readonly name: string, readonly help: string, registers: readonly Registry[]) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /** A new series (the caller keeps it; asking twice for the same labels is the caller's bug). */
  series(labels: Labels): CounterSeries {
    const s = new CounterSeries(labels);
    this.#series.push(s);
    return s;
  }

  async get(): Promise<MetricJson> {
    return {
      name: this.name, help: this.help, type: this.type, aggregator: this.aggregator,
      values: this.#series.map((s) => ({ value: s.value, labels: { ...s.labels } })),
    };
  }

  reset(): void {
    for (const s of this.#series) s.value = 0;
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly labels: Labels, readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramFamily {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #series: HistogramSeries[] = [];

  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[], registers: readonly Registry[]) {
    for (const r of registers) r.registerMetric(this as never);
  }

  series(labels: Labels): HistogramSeries {
    const s = new HistogramSeries(labels, this.bounds);
    this.#series.push(s);
    return s;
  }

  /** prom-client's shape: per series, cumulative `_bucket`s with `le` first, then +Inf, `_sum`, `_count`. */
  async get(): Promise<MetricJson> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i];
        values.push({ value: acc, labels: { le: this.bounds[i], ...s.labels }, metricName: bucket });
      }
      values.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: bucket });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.#series) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
