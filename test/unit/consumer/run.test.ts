/**
 * `runConsumer` as a service, against a scripted stand-in for the kafkajs consumer passed in through
 * its `kafka` parameter (no module is mocked): how it ends (stop signal, fatal crash), and the
 * at-least-once rule of its batch loop (an offset is resolved only after its record was processed,
 * a failing record is retried in place). The real consumer on the mock cluster is covered by
 * test/e2e/delivery.test.ts.
 */
import type { EachBatchPayload, Kafka } from 'kafkajs';
import { loadConfig } from '../../../lib/config';
import type { InboundRecord, ProcessRecord } from '../../../lib/consumer/pipeline';
import { runConsumer } from '../../../lib/consumer/run';
import { silentLogger } from '../../../lib/logger';
import { createMetrics } from '../../../lib/metrics';

const EVENTS = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' } as const;

type Listener = (event: { payload: Record<string, unknown> }) => void;

/** The part of a kafkajs consumer `runConsumer` uses, with hooks to drive it. */
function scriptedConsumer() {
  const listeners = new Map<string, Listener[]>();
  let eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  let running: () => void;
  const started = new Promise<void>((r) => {
    running = r;
  });
  const consumer = {
    events: EVENTS,
    disconnects: 0,
    on(event: string, listener: Listener) {
      listeners.set(event, [...(listeners.get(event) ?? []), listener]);
      return () => {};
    },
    connect: async () => {},
    subscribe: async () => {},
    async run(opts: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
      eachBatch = opts.eachBatch;
      running();
    },
    async disconnect() {
      consumer.disconnects++;
    },
  };
  return {
    consumer,
    kafka: { consumer: () => consumer } as unknown as Kafka,
    started,
    emit(event: string, payload: Record<string, unknown>) {
      for (const l of listeners.get(event) ?? []) l({ payload });
    },
    /** Feeds one batch of `offsets` on games.events/0; returns the offsets resolved, in order. */
    async batch(offsets: string[]): Promise<string[]> {
      const resolved: string[] = [];
      const payload = {
        batch: {
          topic: 'games.events',
          partition: 0,
          messages: offsets.map((offset) => ({ offset, value: Buffer.from(`{"n":${offset}}`) })),
          offsetLag: () => '0',
        },
        resolveOffset: (o: string) => resolved.push(o),
        heartbeat: async () => {},
        commitOffsetsIfNecessary: async () => {},
        isRunning: () => true,
        isStale: () => false,
      } as unknown as EachBatchPayload;
      await eachBatch!(payload);
      return resolved;
    },
  };
}

const kafkaConfig = loadConfig({}).kafka;

function start(kafka: Kafka, processRecord: ProcessRecord, signal: AbortSignal) {
  return runConsumer({
    kafka,
    config: kafkaConfig,
    processRecord,
    logger: silentLogger,
    metrics: createMetrics(),
    signal,
  });
}

const delivered: ProcessRecord = async () => ({
  status: 'delivered',
  eventType: 'x',
  recipients: 0,
  ok: 0,
  gone: 0,
  failed: 0,
});

describe('runConsumer', () => {
  it('resolves after disconnecting when the stop signal fires', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    const service = start(script.kafka, delivered, controller.signal);
    await script.started;

    controller.abort();

    await expect(service).resolves.toBeUndefined();
    expect(script.consumer.disconnects).toBe(1);
  });

  it('rejects with the error when kafkajs crashes without restarting, so the process ends', async () => {
    const script = scriptedConsumer();
    const service = start(script.kafka, delivered, new AbortController().signal);
    await script.started;
    const error = new Error('INVALID_REQUEST');

    script.emit(EVENTS.CRASH, { error, restart: false, groupId: 'g' });

    await expect(service).rejects.toBe(error);
    expect(script.consumer.disconnects).toBe(1);
  });

  it('keeps running after a crash kafkajs restarts from', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    let settled = false;
    const service = start(script.kafka, delivered, controller.signal).finally(() => {
      settled = true;
    });
    await script.started;

    script.emit(EVENTS.CRASH, { error: new Error('broker gone'), restart: true, groupId: 'g' });
    // Still consuming: a batch is processed after the restartable crash.
    expect(await script.batch(['1'])).toEqual(['1']);
    expect(settled).toBe(false);

    controller.abort();
    await expect(service).resolves.toBeUndefined();
  });

  it('resolves each offset only after its record was processed, in order, retrying a failing record in place', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    const seen: string[] = [];
    let failures = 1;
    const processRecord: ProcessRecord = async (record: InboundRecord) => {
      seen.push(record.offset);
      if (record.offset === '6' && failures-- > 0) throw new Error('redis down');
      return delivered(record);
    };
    const service = start(script.kafka, processRecord, controller.signal);
    await script.started;

    const resolved = await script.batch(['5', '6', '7']);

    expect(seen).toEqual(['5', '6', '6', '7']);
    expect(resolved).toEqual(['5', '6', '7']);
    controller.abort();
    await service;
  });

  it('leaves a record unresolved when stopped while it keeps failing', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    const processRecord: ProcessRecord = async (record: InboundRecord) => {
      if (record.offset === '9') {
        controller.abort();
        throw new Error('redis down');
      }
      return delivered(record);
    };
    const service = start(script.kafka, processRecord, controller.signal);
    await script.started;

    const resolved = await script.batch(['8', '9', '10']);

    // 9 and what follows are redelivered after the restart.
    expect(resolved).toEqual(['8']);
    await service;
  });
});
