import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { CONSUMED_TOPICS } from '../protocol/envelope';
import { deliverInOrder, preparerOf, RECORDS_IN_FLIGHT } from './in-order';
import type { InboundRecord, ProcessRecord } from './pipeline';

export interface ConsumerOptions {
  readonly kafka: Kafka;
  readonly config: Config['kafka'];
  readonly processRecord: ProcessRecord;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Aborting it stops the consumer cleanly: stop fetching, finish in-flight records, commit, disconnect. */
  readonly signal: AbortSignal;
  /** Called each time the consumer has joined its group and got its partitions (readiness). */
  readonly onReady?: () => void;
  /**
   * Called when it stops consuming for a while: the group rebalances, or the consumer crashed and
   * is being restarted. `onReady` follows once it has joined again.
   */
  readonly onNotReady?: () => void;
  readonly topics?: readonly string[];
  /** Records of one partition in flight at once (see `deliverInOrder`). Default {@link RECORDS_IN_FLIGHT}. */
  readonly recordsInFlight?: number;
  /**
   * Fatal crashes (ones kafkajs does not restart from) survived in a row by starting a new consumer
   * in-process, with backoff, before giving up. Default {@link MAX_RESTARTS}; joining the group resets the count.
   */
  readonly maxRestarts?: number;
}

/** See {@link ConsumerOptions.maxRestarts}. */
export const MAX_RESTARTS = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The event consumer as a service: resolves when stopped through `signal`, rejects on a fatal
 * error. At-least-once: a record's offset is resolved only after its deliveries were attempted,
 * and committed after that. Records of one partition overlap (`deliverInOrder`) without giving up
 * their order: each connection gets them in order, and each record's recipients reflect the
 * membership changes of the records before it.
 */
export async function runConsumer(opts: ConsumerOptions): Promise<void> {
  const { logger, signal } = opts;
  const maxRestarts = opts.maxRestarts ?? MAX_RESTARTS;
  const restarts = opts.metrics.counter(
    'ws_gateway_consumer_restarts_total',
    'Consumers restarted after a fatal crash',
  );
  let failedInARow = 0;
  for (;;) {
    try {
      await runSession(opts, () => {
        failedInARow = 0;
      });
      return;
    } catch (err) {
      // Offsets are committed only for delivered records, so a new consumer resumes without loss
      // (at-least-once). A coordinator that keeps refusing us still ends the service.
      if (signal.aborted || failedInARow >= maxRestarts) throw err;
      failedInARow++;
      restarts.inc();
      const delayMs = Math.min(1000 * 2 ** (failedInARow - 1), 15_000);
      logger.warn('restarting consumer after a fatal crash', { attempt: failedInARow, delayMs, err });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delayMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
      if (signal.aborted) return;
    }
  }
}

/** One kafkajs consumer, from connect to disconnect. Resolves when stopped, rejects on a fatal crash. */
async function runSession(opts: ConsumerOptions, joined: () => void): Promise<void> {
  const { kafka, config, processRecord, logger, metrics, signal } = opts;
  const lag = metrics.gauge('ws_gateway_consumer_lag', 'Offset lag per topic partition at the last batch');
  const retries = metrics.counter(
    'ws_gateway_record_retries_total',
    'Records retried after a transient failure',
  );
  const consumer: Consumer = kafka.consumer({
    groupId: config.consumerGroup,
    // The old gateway waited at most 500 ms for a fetch; we wait less, since delivery latency is
    // measured (the mock cluster never answers a waiting fetch early).
    maxWaitTimeInMs: config.maxWaitMs,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    rebalanceTimeout: 30_000,
    allowAutoTopicCreation: true,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    logger.info('consumer joined group', {
      groupId: e.payload.groupId,
      memberId: e.payload.memberId,
      leaderId: e.payload.leaderId,
      isLeader: e.payload.isLeader,
      // topic → partitions this member consumes now
      assignment: e.payload.memberAssignment,
    });
    joined();
    opts.onReady?.();
  });
  // Resolves on the stop signal, or when kafkajs gave up: it restarts itself after a retriable
  // error, but after any other it has stopped for good, and a process that stays up without
  // consuming would still look healthy. That ends the service with the error instead (the
  // orchestrator restarts it).
  let failure: { readonly error: unknown } | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  if (signal.aborted) finish();
  signal.addEventListener('abort', () => finish(), { once: true });
  consumer.on(consumer.events.REBALANCING, (e) => {
    logger.info('consumer group rebalancing', { groupId: e.payload.groupId, memberId: e.payload.memberId });
    opts.onNotReady?.();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    logger.error('consumer crashed', { err: e.payload.error, restart: e.payload.restart });
    opts.onNotReady?.();
    if (!e.payload.restart) {
      failure = { error: e.payload.error };
      finish();
    }
  });

  await consumer.connect();
  await consumer.subscribe({
    topics: [...(opts.topics ?? CONSUMED_TOPICS)],
    fromBeginning: config.startPosition === 'earliest',
  });

  const prepare = preparerOf(processRecord);
  const window = opts.recordsInFlight ?? RECORDS_IN_FLIGHT;

  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 1000,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 16,
    eachBatch: async (payload: EachBatchPayload) => {
      const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
      const records = batch.messages.map(
        (message): InboundRecord => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          value: message.value,
        }),
      );
      // Set when `heartbeat()` throws: the group is rebalancing (or this member was fenced) and the
      // partition may already belong to another member. Retrying on would push what the new owner
      // pushes too, so every step in flight gives up; the error then goes to kafkajs, which commits
      // what was resolved and rejoins. Unguarded, it escaped the retry loop and ended the process.
      let interrupted: { readonly error: unknown } | undefined;
      const beat = async (): Promise<boolean> => {
        if (interrupted) return false;
        try {
          await heartbeat();
          return true;
        } catch (error) {
          interrupted ??= { error };
          logger.warn('heartbeat failed, giving the batch back', {
            topic: batch.topic,
            partition: batch.partition,
            err: error,
          });
          return false;
        }
      };
      const complete = await deliverInOrder(records, prepare, {
        window,
        // Transient failures (Redis down) retry the same step of the same record with backoff: order
        // is kept and nothing after it is resolved. Stopping or a rebalance interrupts the wait; the
        // record is redelivered.
        attempt: async (offset, step) => {
          for (let attempt = 0; ; attempt++) {
            try {
              return { value: await step() };
            } catch (err) {
              retries.inc({ topic: batch.topic });
              logger.warn('record failed, retrying', {
                topic: batch.topic,
                partition: batch.partition,
                offset,
                attempt,
                err,
              });
              if (signal.aborted || interrupted) return undefined;
              await sleep(Math.min(100 * 2 ** attempt, 5000));
              if (!(await beat())) return undefined;
            }
          }
        },
        resolved: async (offset) => {
          resolveOffset(offset);
          await beat();
        },
        proceed: () => isRunning() && !isStale() && !signal.aborted && !interrupted,
      });
      if (interrupted) throw interrupted.error;
      if (!complete) return;
      await commitOffsetsIfNecessary();
      lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    },
  });

  await finished;
  if (failure) {
    await consumer.disconnect();
    throw failure.error;
  }
  logger.info('consumer stopping');
  // disconnect() stops fetching, waits for the running batches, commits resolved offsets, leaves the group.
  await consumer.disconnect();
  logger.info('consumer stopped');
}
