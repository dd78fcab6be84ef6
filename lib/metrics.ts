/**
 * The metrics port: counters, gauges and histograms with labels, and its Prometheus implementation
 * on `prom-client` (a registry per `createMetrics()`, rendered by the consumer's `/metrics`). In
 * Lambda the same port is implemented without prom-client and published as CloudWatch EMF under the
 * same names (lib/runtime/emf.ts), so the functions' cold start does not load it.
 *
 * The interface stays small on purpose: callers name a metric and its help text, then `inc` /
 * `set` / `observe` with a plain label object. prom-client wants every label name up front; this
 * module learns them from use, so adding a counter is one line at its call site.
 */
import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry,
} from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
  /** The current value for exactly these labels (0 when never incremented). Synchronous. */
  get(labels?: Labels): number;
}

export interface Gauge {
  set(labels: Labels, value: number): void;
}

export interface Histogram {
  /** Records one observation, in the histogram's unit (seconds for `*_seconds`). */
  observe(labels: Labels, value: number): void;
}

/** Bucket bounds in seconds for latencies from sub-millisecond pushes to multi-second backlogs. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/** One recorded value, as an `onRecord` hook sees it. */
export interface MetricRecord {
  readonly name: string;
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly labels: Labels;
  readonly value: number;
}

/** The recording side: what lib/ uses. Asking twice for a name returns the same metric. */
export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram;
}

/** A Prometheus registry: metrics plus their text exposition (the consumer's `/metrics`). */
export interface MetricsRegistry extends Metrics {
  /** The Prometheus text exposition of every metric (and the process metrics when collected). */
  render(): Promise<string>;
  /** The `content-type` of `render()`'s output. */
  readonly contentType: string;
}

export interface MetricsOptions {
  /**
   * Also collect Node's process metrics under their standard names (`process_*`, `nodejs_*`: CPU,
   * memory, event-loop lag, GC), so stock dashboards work. Long-running processes only.
   */
  readonly processMetrics?: boolean;
  /** Called for every recorded value. Must not throw. */
  readonly onRecord?: (record: MetricRecord) => void;
}

type Kind = MetricRecord['kind'];
type PromMetric = PromCounter<string> | PromGauge<string> | PromHistogram<string>;

const labelKey = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');

/**
 * One metric family. The prom-client metric is (re)built when a label name appears that it does
 * not know yet — only during the first few calls — and the values recorded so far are replayed into
 * it, so nothing is lost and callers never declare label names.
 */
class Family {
  private labelNames: string[] = [];
  private metric: PromMetric | undefined = undefined;
  /** Counters and gauges: the current value per label set (for `get` and for replay). */
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  /** Histograms: observations are not kept; a rebuild starts with the new label set's first use. */
  constructor(
    private readonly registry: Registry,
    readonly name: string,
    private readonly help: string,
    readonly kind: Kind,
    private readonly buckets: readonly number[] | undefined,
    private readonly onRecord: ((record: MetricRecord) => void) | undefined,
  ) {
    // Registered at once, so `/metrics` lists the family (HELP, TYPE) before its first value.
    this.metric = this.build();
  }

  private build(): PromMetric {
    const config = { name: this.name, help: this.help, labelNames: this.labelNames, registers: [] };
    const metric =
      this.kind === 'counter'
        ? new PromCounter(config)
        : this.kind === 'gauge'
          ? new PromGauge(config)
          : new PromHistogram({ ...config, buckets: [...(this.buckets ?? LATENCY_BUCKETS_SECONDS)] });
    if (this.registry.getSingleMetric(this.name)) this.registry.removeSingleMetric(this.name);
    this.registry.registerMetric(metric);
    for (const { labels, value } of this.values.values()) {
      if (metric instanceof PromCounter) metric.inc(labels, value);
      else if (metric instanceof PromGauge) metric.set(labels, value);
    }
    return metric;
  }

  private metricFor(labels: Labels): PromMetric {
    let grown = false;
    for (const k of Object.keys(labels)) {
      if (!this.labelNames.includes(k)) {
        this.labelNames.push(k);
        grown = true;
      }
    }
    if (grown || this.metric === undefined) this.metric = this.build();
    return this.metric;
  }

  record(labels: Labels, value: number): void {
    // Before the value is kept: a rebuild replays the values kept so far.
    const metric = this.metricFor(labels);
    if (this.kind !== 'histogram') {
      const k = labelKey(labels);
      const current = this.values.get(k);
      const next = this.kind === 'counter' ? (current?.value ?? 0) + value : value;
      this.values.set(k, { labels: current?.labels ?? { ...labels }, value: next });
    }
    if (metric instanceof PromCounter) metric.inc(labels, value);
    else if (metric instanceof PromGauge) metric.set(labels, value);
    else metric.observe(labels, value);
    this.onRecord?.({ name: this.name, kind: this.kind, labels, value });
  }

  get(labels: Labels): number {
    return this.values.get(labelKey(labels))?.value ?? 0;
  }
}

/**
 * Creates a registry. Asking twice for the same name returns the same metric, so call sites need
 * not share handles; asking for it as another kind is a bug and throws.
 *
 * @example
 * const metrics = createMetrics({ processMetrics: true });
 * metrics.counter('ws_gateway_events_total', 'Events consumed').inc({ topic: 'chat.events' });
 * metrics.histogram('ws_gateway_push_duration_seconds', 'Push latency').observe({ result: 'ok' }, 0.004);
 * res.end(await metrics.render());
 */
export function createMetrics(options: MetricsOptions = {}): MetricsRegistry {
  const registry = new Registry();
  if (options.processMetrics) {
    collectDefaultMetrics({ register: registry });
  }
  const families = new Map<string, Family>();
  const family = (name: string, help: string, kind: Kind, buckets?: readonly number[]): Family => {
    let f = families.get(name);
    if (!f) {
      f = new Family(registry, name, help, kind, buckets, options.onRecord);
      families.set(name, f);
    } else if (f.kind !== kind) {
      throw new TypeError(`metric ${name} is a ${f.kind}, not a ${kind}`);
    }
    return f;
  };
  return {
    counter(name, help) {
      const f = family(name, help, 'counter');
      return {
        inc: (labels = {}, by = 1) => f.record(labels, by),
        get: (labels = {}) => f.get(labels),
      };
    },
    gauge(name, help) {
      const f = family(name, help, 'gauge');
      return { set: (labels, value) => f.record(labels, value) };
    },
    histogram(name, help, buckets) {
      const f = family(name, help, 'histogram', buckets);
      return { observe: (labels, value) => f.record(labels, value) };
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
