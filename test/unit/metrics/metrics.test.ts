import { createMetrics, type MetricRecord } from '../../../lib/metrics';

describe('createMetrics (prom-client)', () => {
  it('renders counters and gauges with their labels in the Prometheus text format', async () => {
    const metrics = createMetrics();
    metrics
      .counter('ws_gateway_events_total', 'Events consumed')
      .inc({ topic: 'chat.events', event_type: 'x' });
    metrics
      .counter('ws_gateway_events_total', 'Events consumed')
      .inc({ topic: 'chat.events', event_type: 'x' }, 2);
    metrics.gauge('ws_gateway_consumer_lag', 'Lag').set({ topic: 't', partition: '0' }, 7);

    const text = await metrics.render();

    expect(text).toContain('# TYPE ws_gateway_events_total counter');
    expect(text).toContain('ws_gateway_events_total{topic="chat.events",event_type="x"} 3');
    expect(text).toContain('ws_gateway_consumer_lag{topic="t",partition="0"} 7');
    expect(metrics.contentType).toMatch(/^text\/plain/);
  });

  it('returns the current value synchronously for exactly the labels asked', () => {
    const metrics = createMetrics();
    const c = metrics.counter('c_total', 'c');
    c.inc({ result: 'ok' });
    c.inc({ result: 'ok' });
    c.inc({ result: 'gone' });

    expect(c.get({ result: 'ok' })).toBe(2);
    expect(metrics.counter('c_total', '').get({ result: 'gone' })).toBe(1);
    expect(c.get({ result: 'failed' })).toBe(0);
  });

  it('learns a label name that appears later without losing the values recorded before it', async () => {
    const metrics = createMetrics();
    const c = metrics.counter('ws_gateway_restarts_total', 'r');
    c.inc();
    c.inc({ reason: 'crash' }, 4);

    const text = await metrics.render();

    expect(text).toContain('ws_gateway_restarts_total 1');
    expect(text).toContain('ws_gateway_restarts_total{reason="crash"} 4');
    expect(c.get()).toBe(1);
  });

  it('records histogram observations into cumulative buckets with sum and count', async () => {
    const metrics = createMetrics();
    const h = metrics.histogram('ws_gateway_push_duration_seconds', 'Push latency', [0.01, 0.1, 1]);
    h.observe({ result: 'ok' }, 0.005);
    h.observe({ result: 'ok' }, 0.05);
    h.observe({ result: 'ok' }, 5);

    const text = await metrics.render();

    expect(text).toContain('# TYPE ws_gateway_push_duration_seconds histogram');
    expect(text).toContain('ws_gateway_push_duration_seconds_bucket{le="0.01",result="ok"} 1');
    expect(text).toContain('ws_gateway_push_duration_seconds_bucket{le="0.1",result="ok"} 2');
    expect(text).toContain('ws_gateway_push_duration_seconds_bucket{le="+Inf",result="ok"} 3');
    expect(text).toContain('ws_gateway_push_duration_seconds_count{result="ok"} 3');
    expect(text).toMatch(/ws_gateway_push_duration_seconds_sum\{result="ok"\} 5\.055/);
  });

  it('adds the standard process metrics only when asked', async () => {
    expect(await createMetrics().render()).not.toContain('process_cpu_user_seconds_total');
    const text = await createMetrics({ processMetrics: true }).render();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('keeps registries apart', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.counter('only_in_a_total', 'a').inc();
    expect(await b.render()).not.toContain('only_in_a_total');
  });

  it('refuses a name reused as another kind', () => {
    const metrics = createMetrics();
    metrics.counter('x_total', 'x');
    expect(() => metrics.gauge('x_total', 'x')).toThrow(/is a counter, not a gauge/);
  });

  it('reports every recorded value to onRecord', () => {
    const records: MetricRecord[] = [];
    const metrics = createMetrics({ onRecord: (r) => records.push(r) });
    metrics.counter('a_total', 'a').inc({ topic: 't' }, 2);
    metrics.histogram('b_seconds', 'b').observe({}, 0.2);

    expect(records).toEqual([
      { name: 'a_total', kind: 'counter', labels: { topic: 't' }, value: 2 },
      { name: 'b_seconds', kind: 'histogram', labels: {}, value: 0.2 },
    ]);
  });
});
