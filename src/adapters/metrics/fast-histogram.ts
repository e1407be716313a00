import type { Metric, Registry } from 'prom-client';

/** A prom-client Histogram and Counter for the per-request path: label children kept by the caller, a few array writes per observation. */
/** One exposed sample, as a Registry renders it. */
interface Sample {
  metricName: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A histogram for the per-request path, registered in a prom-client Registry like any metric. An
 * observation is a few array writes on a child the caller keeps (no label hashing, no validation, no
 * allocation), where prom-client's own Histogram spends about half a microsecond per call. The optional
 * companion counter (`counterName`) is the children's `_count` exposed as a counter: one observation
 * feeds both `request_latency_seconds` and `http_request_total`.
 */
export class FastHistogram<L extends string> {
  private readonly children = new Map<string, FastHistogramChild>();
  private readonly bounds: Float64Array;
  private readonly boundLabels: string[];

  constructor(
    readonly options: {
      name: string;
      help: string;
      labelNames: readonly L[];
      /** Upper bounds, ascending (+Inf is added). */
      buckets: readonly number[];
      registers: readonly Registry[];
      counter?: { name: string; help: string };
    },
  ) {
    const buckets = [...options.buckets];
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number)))) {
      throw new RangeError(`${options.name}: buckets must be finite and strictly ascending`);
    }
    this.bounds = Float64Array.from(buckets);
    this.boundLabels = [...buckets.map(String), '+Inf'];
    for (const registry of options.registers) {
      registry.registerMetric(this.exposed('histogram', options.name, options.help, () => this.histogramValues()));
      if (options.counter) {
        registry.registerMetric(this.exposed('counter', options.counter.name, options.counter.help, () => this.counterValues()));
      }
    }
  }

  /** The child for these label values, created on first use. Keep it: observing through it is the cheap path. */
  child(labels: Record<L, string>): FastHistogramChild {
    const values = this.options.labelNames.map((name) => labels[name]);
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = new FastHistogramChild(this.bounds, { ...labels });
      this.children.set(key, child);
    }
    return child;
  }

  reset(): void {
    this.children.clear();
  }

  private histogramValues(): Sample[] {
    const { name } = this.options;
    const values: Sample[] = [];
    for (const child of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i < child.counts.length; i++) {
        cumulative += child.counts[i] as number;
        values.push({ metricName: `${name}_bucket`, labels: { ...child.labels, le: this.boundLabels[i] as string }, value: cumulative });
      }
      values.push({ metricName: `${name}_sum`, labels: child.labels, value: child.sum });
      values.push({ metricName: `${name}_count`, labels: child.labels, value: child.count });
    }
    return values;
  }

  private counterValues(): Sample[] {
    const values: Sample[] = [];
    for (const child of this.children.values()) values.push({ metricName: this.options.counter?.name ?? '', labels: child.labels, value: child.count });
    return values;
  }

  /** The object a Registry renders: name, help, type, get(). */
  private exposed(type: 'histogram' | 'counter', name: string, help: string, values: () => Sample[]): Metric {
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => this.reset(),
    };
    return metric as unknown as Metric;
  }
}

/**
 * A counter for the per-request path, the counterpart of FastHistogram: an increment is one addition on
 * a child the caller keeps (prom-client's Counter validates and hashes the labels on every call).
 */
export class FastCounter<L extends string> {
  private readonly children = new Map<string, FastCounterChild>();

  constructor(readonly options: { name: string; help: string; labelNames: readonly L[]; registers: readonly Registry[] }) {
    const { name, help } = options;
    const metric = {
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type: 'counter', aggregator: 'sum', values: this.values() }),
      reset: () => this.reset(),
    };
    for (const registry of options.registers) registry.registerMetric(metric as unknown as Metric);
  }

  /** The child for these label values, created on first use. Keep it. */
  child(labels: Record<L, string>): FastCounterChild {
    const key = this.options.labelNames.map((name) => labels[name]).join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = new FastCounterChild({ ...labels });
      this.children.set(key, child);
    }
    return child;
  }

  reset(): void {
    this.children.clear();
  }

  private values(): Sample[] {
    const values: Sample[] = [];
    for (const child of this.children.values()) values.push({ metricName: this.options.name, labels: child.labels, value: child.value });
    return values;
  }
}

export class FastCounterChild {
  value = 0;

  constructor(readonly labels: Record<string, string>) {}

  inc(by = 1): void {
    this.value += by;
  }
}

export class FastHistogramChild {
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: Float64Array,
    readonly labels: Record<string, string>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!(value >= 0)) return; // NaN or negative: a clock went backwards; not a duration
    const bounds = this.bounds;
    // Binary search for the first bound ≥ value (le is inclusive).
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((bounds[mid] as number) < value) lo = mid + 1;
      else hi = mid;
    }
    this.counts[lo] = (this.counts[lo] as number) + 1;
    this.sum += value;
    this.count++;
  }
}
