import { MetricUnit, type Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Labels, MetricRecord } from '../metrics';

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

/** Buffers the values recorded during an invocation, for `flush` to publish as EMF. */
export interface EmfBuffer {
  /** The `onRecord` hook of `createMetrics`. Cheap: no I/O, no formatting. */
  readonly record: (record: MetricRecord) => void;
  /**
   * Publishes everything recorded since the last flush: one EMF blob per distinct label set (the
   * labels become the blob's dimensions, beside Powertools' `service`), counters summed, gauges at
   * their last value, histogram observations as value arrays (split every 99 values).
   */
  flush(metrics: PowertoolsMetrics): void;
}

const unitOf = (s: Series) =>
  s.kind === 'histogram' && s.name.endsWith('_seconds') ? MetricUnit.Seconds : MetricUnit.Count;

export function createEmfBuffer(): EmfBuffer {
  let groups = new Map<string, Group>();
  return {
    record: ({ name, kind, labels, value }) => {
      const key = Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`)
        .join('\u0000');
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
    },
    flush: (metrics) => {
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
