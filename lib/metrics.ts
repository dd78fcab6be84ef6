/**
 * A tiny Prometheus registry: counters and gauges with labels, rendered in the text exposition
 * format. Enough for the consumer's `/metrics`; no dependency.
 */
export interface Counter {
  inc(labels?: Record<string, string>, by?: number): void;
  get(labels?: Record<string, string>): number;
}

export interface Gauge {
  set(labels: Record<string, string>, value: number): void;
}

export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  render(): string;
}

const labelKey = (labels: Record<string, string> = {}) =>
  Object.keys(labels)
    .sort()
    .map(
      (k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
    )
    .join(',');

export function createMetrics(): Metrics {
  const series = new Map<string, { help: string; type: 'counter' | 'gauge'; values: Map<string, number> }>();
  const family = (name: string, help: string, type: 'counter' | 'gauge') => {
    let f = series.get(name);
    if (!f) {
      f = { help, type, values: new Map() };
      series.set(name, f);
    }
    return f;
  };
  return {
    counter(name, help) {
      const f = family(name, help, 'counter');
      return {
        inc(labels, by = 1) {
          const k = labelKey(labels);
          f.values.set(k, (f.values.get(k) ?? 0) + by);
        },
        get: (labels) => f.values.get(labelKey(labels)) ?? 0,
      };
    },
    gauge(name, help) {
      const f = family(name, help, 'gauge');
      return { set: (labels, value) => f.values.set(labelKey(labels), value) };
    },
    render() {
      const lines: string[] = [];
      for (const [name, f] of series) {
        lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
        for (const [k, v] of f.values) lines.push(`${name}${k ? `{${k}}` : ''} ${v}`);
      }
      return `${lines.join('\n')}\n`;
    },
  };
}
