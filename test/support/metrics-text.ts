import type { ConsumerProcess } from './offline';

/**
 * The value of one series in Prometheus text: `name` with exactly these labels, whatever order the
 * registry prints them in (prom-client keeps the order of the first `inc`). 0 when absent.
 */
export function seriesValue(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([^{\s]+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (got === wanted) return Number(match[3]);
  }
  return 0;
}

/** `seriesValue` of a running consumer's `/metrics`. */
export async function consumerMetric(
  consumer: ConsumerProcess,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const text = await (await fetch(consumer.metricsUrl)).text();
  return seriesValue(text, name, labels);
}
