/**
 * `runConsumer` as a service, against a scripted stand-in for the kafkajs consumer passed in through
 * its `kafka` parameter (no module is mocked): how it ends (stop signal, fatal crash), and the
 * at-least-once rule of its batch loop (an offset is resolved only after its record was processed,
 * a failing record is retried in place). The real consumer on the mock cluster is covered by
 * test/e2e/delivery.test.ts.
 */
import type { EachBatchPayload, Kafka } from 'kafkajs';
import { loadConfig } from '../../../lib/config';
import type { InboundRecord, PreparedRecord, ProcessRecord } from '../../../lib/consumer/pipeline';
import { runConsumer } from '../../../lib/consumer/run';
import { silentLogger } from '../../../lib/logger';
import { createMetrics } from '../../../lib/metrics';

const EVENTS = {
  GROUP_JOIN: 'consumer.group_join',
  CRASH: 'consumer.crash',
  REBALANCING: 'consumer.rebalancing',
} as const;

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
    runs: 0,
    on(event: string, listener: Listener) {
      listeners.set(event, [...(listeners.get(event) ?? []), listener]);
      return () => {};
    },
    connect: async () => {},
    subscribe: async () => {},
    async run(opts: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
      consumer.runs++;
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
    /**
     * Feeds one batch of `offsets` on games.events/0; returns the offsets resolved, in order (also
     * pushed to `resolved` as they are, for a test to look at while the batch runs).
     */
    async batch(
      offsets: string[],
      resolved: string[] = [],
      heartbeat: () => Promise<void> = async () => {},
    ): Promise<string[]> {
      const payload = {
        batch: {
          topic: 'games.events',
          partition: 0,
          messages: offsets.map((offset) => ({ offset, value: Buffer.from(`{"n":${offset}}`) })),
          offsetLag: () => '0',
        },
        resolveOffset: (o: string) => resolved.push(o),
        heartbeat,
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

function start(
  kafka: Kafka,
  processRecord: ProcessRecord,
  signal: AbortSignal,
  recordsInFlight?: number,
  maxRestarts?: number,
) {
  return runConsumer({
    kafka,
    config: kafkaConfig,
    processRecord,
    logger: silentLogger,
    metrics: createMetrics(),
    signal,
    ...(recordsInFlight === undefined ? {} : { recordsInFlight }),
    ...(maxRestarts === undefined ? {} : { maxRestarts }),
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

  it('rejects with the error when kafkajs crashes without restarting and no restart is left, so the process ends', async () => {
    const script = scriptedConsumer();
    const service = start(script.kafka, delivered, new AbortController().signal, undefined, 0);
    await script.started;
    const error = new Error('INVALID_REQUEST');

    script.emit(EVENTS.CRASH, { error, restart: false, groupId: 'g' });

    await expect(service).rejects.toBe(error);
    expect(script.consumer.disconnects).toBe(1);
  });

  it('starts a new consumer after a crash kafkajs does not restart from, and consumes again', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    const service = start(script.kafka, delivered, controller.signal, undefined, 1);
    await script.started;

    script.emit(EVENTS.CRASH, { error: new Error('INVALID_REQUEST'), restart: false, groupId: 'g' });
    const deadline = Date.now() + 5000;
    while (script.consumer.runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    expect(script.consumer.runs).toBe(2);
    expect(await script.batch(['7'])).toEqual(['7']);
    controller.abort();
    await expect(service).resolves.toBeUndefined();
  });

  it('is ready while it consumes: not during a rebalance, nor from a crash until it has joined again', async () => {
    const script = scriptedConsumer();
    const controller = new AbortController();
    const readiness: boolean[] = [];
    const service = runConsumer({
      kafka: script.kafka,
      config: kafkaConfig,
      processRecord: delivered,
      logger: silentLogger,
      metrics: createMetrics(),
      signal: controller.signal,
      maxRestarts: 1,
      onReady: () => readiness.push(true),
      onNotReady: () => readiness.push(false),
    });
    await script.started;
    const joined = { groupId: 'g', memberId: 'm', leaderId: 'm', isLeader: true, memberAssignment: {} };

    script.emit(EVENTS.GROUP_JOIN, joined);
    script.emit(EVENTS.REBALANCING, { groupId: 'g', memberId: 'm' });
    script.emit(EVENTS.GROUP_JOIN, joined);
    script.emit(EVENTS.CRASH, { error: new Error('INVALID_REQUEST'), restart: false, groupId: 'g' });
    const deadline = Date.now() + 5000;
    while (script.consumer.runs < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    script.emit(EVENTS.GROUP_JOIN, joined);

    // Transitions (the scripted consumer is reused by the restart, so its first listeners fire too).
    const transitions = readiness.filter((ready, i) => i === 0 || ready !== readiness[i - 1]);
    expect(transitions).toEqual([true, false, true, false, true]);
    controller.abort();
    await expect(service).resolves.toBeUndefined();
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

  describe('when the group rebalances while a record is being retried (finding: heartbeat unguarded)', () => {
    /** What kafkajs's `heartbeat()` throws while the group rebalances. */
    const rebalancing = () =>
      Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), {
        name: 'KafkaJSProtocolError',
        type: 'REBALANCE_IN_PROGRESS',
        code: 27,
        retriable: false,
      });

    /** Collects unhandled rejections while `body` runs (and a little after): each one would end the process. */
    async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
      const seen: unknown[] = [];
      const listener = (reason: unknown) => seen.push(reason);
      process.on('unhandledRejection', listener);
      try {
        await body();
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        process.off('unhandledRejection', listener);
      }
      return seen;
    }

    it.each([
      ['one record at a time', false],
      ['records in flight together', true],
    ])(
      'lets no rejection escape, leaves the record unresolved and hands the rebalance to kafkajs (%s)',
      async (_, twoStep) => {
        const script = scriptedConsumer();
        const controller = new AbortController();
        let rebalance = false;
        const seen: string[] = [];
        const fail = (record: InboundRecord) => {
          seen.push(record.offset);
          if (record.offset === '2') {
            // Redis went away, and the group starts rebalancing while the record backs off.
            rebalance = true;
            throw new Error('Connection is closed.');
          }
        };
        const oneStep: ProcessRecord = async (record) => {
          fail(record);
          return delivered(record);
        };
        const prepare = async (record: InboundRecord): Promise<PreparedRecord> => ({
          recipients: [`c${record.offset}`],
          barrier: false,
          deliver: async () => {
            fail(record);
            return delivered(record);
          },
        });
        const processRecord = twoStep ? Object.assign(oneStep, { prepare }) : oneStep;
        let settled = false;
        const service = start(script.kafka, processRecord, controller.signal).finally(() => {
          settled = true;
        });
        await script.started;
        const resolved: string[] = [];
        let outcome: unknown;

        const unhandled = await unhandledDuring(async () => {
          outcome = await script
            .batch(['1', '2', '3'], resolved, async () => {
              if (rebalance) throw rebalancing();
            })
            .then(
              () => 'resolved',
              (err: unknown) => err,
            );
        });

        expect(unhandled).toEqual([]);
        // kafkajs rejoins the group when eachBatch throws its rebalance error; 2 and 3 are redelivered.
        expect(outcome).toMatchObject({ type: 'REBALANCE_IN_PROGRESS' });
        expect(resolved).toEqual(['1']);
        expect(seen.filter((o) => o === '2')).toHaveLength(1);
        expect(settled).toBe(false);
        controller.abort();
        await expect(service).resolves.toBeUndefined();
      },
    );
  });

  describe('with a two-step pipeline (records of a partition in flight together)', () => {
    /** What each record pushes to, and whether it changes memberships after its send (a barrier). */
    type Spec = Record<string, { to: string[]; barrier?: boolean; failOnce?: boolean }>;

    /**
     * A two-step pipeline a test steers: every step is logged (`prepare 1`, `deliver 1`, `delivered 1`)
     * and a record's delivery can be held until `release(offset)`.
     */
    function steered(spec: Spec, held: string[] = []) {
      const log: string[] = [];
      const gates = new Map<string, () => void>();
      const waits = new Map(
        held.map((offset) => [offset, new Promise<void>((r) => gates.set(offset, r))] as const),
      );
      const failing = new Set(Object.keys(spec).filter((o) => spec[o]!.failOnce));
      const prepare = async (record: InboundRecord): Promise<PreparedRecord> => {
        const { offset } = record;
        log.push(`prepare ${offset}`);
        const { to, barrier = false } = spec[offset]!;
        return {
          recipients: to,
          barrier,
          async deliver() {
            log.push(`deliver ${offset}`);
            await waits.get(offset);
            if (failing.delete(offset)) throw new Error('redis down');
            log.push(`delivered ${offset}`);
            return delivered(record);
          },
        };
      };
      const processRecord: ProcessRecord = Object.assign(
        async (record: InboundRecord) => (await prepare(record)).deliver(),
        { prepare },
      );
      return { log, processRecord, release: (offset: string) => gates.get(offset)!() };
    }

    /** Lets the batch loop run until `condition` holds (or fails the test after a while). */
    async function until(condition: () => boolean): Promise<void> {
      for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setImmediate(r));
      expect(condition()).toBe(true);
    }

    /** Lets the batch loop run for a while, for a test to check that something did not happen. */
    const settleDown = () => new Promise((r) => setTimeout(r, 20));

    async function run(spec: Spec, held: string[], recordsInFlight?: number) {
      const script = scriptedConsumer();
      const controller = new AbortController();
      const pipeline = steered(spec, held);
      const service = start(script.kafka, pipeline.processRecord, controller.signal, recordsInFlight);
      await script.started;
      const resolved: string[] = [];
      const batch = script.batch(Object.keys(spec), resolved);
      return {
        ...pipeline,
        resolved,
        batch,
        stop: async () => {
          controller.abort();
          await service;
        },
      };
    }

    it('delivers later records while an earlier one is still being pushed, and resolves offsets in order', async () => {
      const r = await run({ '1': { to: ['a'] }, '2': { to: ['b'] }, '3': { to: ['c'] } }, ['1']);

      await until(() => r.log.includes('delivered 3'));
      expect(r.log).not.toContain('delivered 1');
      expect(r.resolved).toEqual([]);

      r.release('1');

      expect(await r.batch).toEqual(['1', '2', '3']);
      await r.stop();
    });

    it('starts a delivery only after every earlier delivery to one of its connections has settled', async () => {
      const r = await run({ '1': { to: ['a'] }, '2': { to: ['b', 'a'] }, '3': { to: ['c'] } }, ['1']);

      await until(() => r.log.includes('delivered 3'));
      expect(r.log).toContain('prepare 2');
      expect(r.log).not.toContain('deliver 2');

      r.release('1');

      expect(await r.batch).toEqual(['1', '2', '3']);
      expect(r.log.indexOf('deliver 2')).toBeGreaterThan(r.log.indexOf('delivered 1'));
      await r.stop();
    });

    it('prepares no later record before a record that changes memberships after its send was delivered', async () => {
      const r = await run({ '1': { to: ['a'], barrier: true }, '2': { to: ['b'] } }, ['1']);

      await until(() => r.log.includes('deliver 1'));
      await settleDown();
      expect(r.log).toEqual(['prepare 1', 'deliver 1']);

      r.release('1');

      expect(await r.batch).toEqual(['1', '2']);
      expect(r.log).toEqual([
        'prepare 1',
        'deliver 1',
        'delivered 1',
        'prepare 2',
        'deliver 2',
        'delivered 2',
      ]);
      await r.stop();
    });

    it('retries a failing delivery in place while later deliveries to its connections wait for it', async () => {
      const r = await run({ '1': { to: ['a'], failOnce: true }, '2': { to: ['a'] }, '3': { to: ['b'] } }, []);

      expect(await r.batch).toEqual(['1', '2', '3']);
      const log = r.log.filter((l) => !l.startsWith('prepare'));
      // 3 shares no connection with 1: it went out during 1's backoff; 2 waited for 1's retry.
      expect(log).toEqual([
        'deliver 1',
        'deliver 3',
        'delivered 3',
        'deliver 1',
        'delivered 1',
        'deliver 2',
        'delivered 2',
      ]);
      await r.stop();
    });

    it('keeps at most recordsInFlight records between prepared and resolved', async () => {
      const r = await run({ '1': { to: ['a'] }, '2': { to: ['b'] }, '3': { to: ['c'] } }, ['1'], 2);

      await until(() => r.log.includes('delivered 2'));
      await settleDown();
      expect(r.log).not.toContain('prepare 3');

      r.release('1');

      expect(await r.batch).toEqual(['1', '2', '3']);
      await r.stop();
    });
  });
});
