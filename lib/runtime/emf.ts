/**
 * The Metrics port for Lambda: values recorded during an invocation are buffered and published as
 * CloudWatch EMF (through Powertools Metrics) when it ends, under the same names as the consumer's
 * Prometheus `/metrics`. No prom-client here: it would only add to every function's cold start.
 */
import { MetricUnit, type Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Counter, Labels, MetricRecord, Metrics } from '../metrics';

/**
 * Values of one metric per blob. EMF takes 100; Powertools publishes by itself on the 100th (and
 * clears the dimensions), so a blob is published here before that.
 */
const MAX_VALUES = 99;

interface Series {
  readonly name: string;
  readonly kind: MetricRecord['kind'];
  /** Counters: one running sum; gauges: the last value; histograms: every observation. */
  values: number[];
}

interface Group {
  readonly labels: Labels;
  readonly series: Map<string, Series>;
}

/** The Metrics port that publishes as EMF. */
export interface EmfMetrics extends Metrics {
  /**
   * Publishes everything recorded since the last flush: one EMF blob per distinct label set (the
   * labels become the blob's dimensions, beside Powertools' `service`), counters summed over the
   * invocation, gauges at their last value, histogram observations as value arrays (split every 99).
   */
  flush(metrics: PowertoolsMetrics): void;
}

const keyOf = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');

const unitOf = (s: Series) =>
  s.kind === 'histogram' && s.name.endsWith('_seconds') ? MetricUnit.Seconds : MetricUnit.Count;

/**
 * @example
 * const metrics = createEmfMetrics();
 * metrics.counter('ws_gateway_deliveries_total', 'Pushes by result').inc({ result: 'ok' });
 * metrics.flush(powertoolsMetrics); // at the end of the invocation (lib/runtime/lambda.ts does it)
 */
export function createEmfMetrics(): EmfMetrics {
  let groups = new Map<string, Group>();
  const kinds = new Map<string, MetricRecord['kind']>();
  /** Counter totals over the container's life, for `Counter.get`. */
  const totals = new Map<string, number>();

  const record = (name: string, kind: MetricRecord['kind'], labels: Labels, value: number): void => {
    const key = keyOf(labels);
    let group = groups.get(key);
    if (!group) {
      group = { labels: { ...labels }, series: new Map() };
      groups.set(key, group);
    }
    const series = group.series.get(name);
    if (!series) group.series.set(name, { name, kind, values: [value] });
    else if (kind === 'counter') series.values[0] = (series.values[0] ?? 0) + value;
    else if (kind === 'gauge') series.values[0] = value;
    else series.values.push(value);
  };

  const declare = (name: string, kind: MetricRecord['kind']): void => {
    const known = kinds.get(name);
    if (known === undefined) kinds.set(name, kind);
    else if (known !== kind) throw new TypeError(`metric ${name} is a ${known}, not a ${kind}`);
  };

  return {
    counter(name): Counter {
      declare(name, 'counter');
      return {
        inc: (labels = {}, by = 1) => {
          const total = `${name}\u0001${keyOf(labels)}`;
          totals.set(total, (totals.get(total) ?? 0) + by);
          record(name, 'counter', labels, by);
        },
        get: (labels = {}) => totals.get(`${name}\u0001${keyOf(labels)}`) ?? 0,
      };
    },
    gauge(name) {
      declare(name, 'gauge');
      return { set: (labels, value) => record(name, 'gauge', labels, value) };
    },
    histogram(name) {
      declare(name, 'histogram');
      return { observe: (labels, value) => record(name, 'histogram', labels, value) };
    },
    flush(metrics) {
      const pending = groups;
      groups = new Map();
      for (const { labels, series } of pending.values()) {
        const rounds = Math.max(...[...series.values()].map((s) => Math.ceil(s.values.length / MAX_VALUES)));
        for (let round = 0; round < rounds; round++) {
          // Dimensions are cleared by every publish, so they are set again for each blob.
          for (const [k, v] of Object.entries(labels)) metrics.addDimension(k, v);
          for (const s of series.values()) {
            for (const v of s.values.slice(round * MAX_VALUES, (round + 1) * MAX_VALUES))
              metrics.addMetric(s.name, unitOf(s), v);
          }
          metrics.publishStoredMetrics();
        }
      }
    },
  };
}
