/**
 * Event consumer throughput: events/s through one consumer process, against baselines in the same run.
 *
 *   npx tsx bench/consumer.ts [--events=20000] [--rounds=3] [--room-size=4] [--max-seconds=300]
 *
 * A backlog of backend-format envelopes (unkeyed, so spread over the 4 partitions of the mock's
 * auto-created topic) is produced to `games.events` once; each variant then consumes all of it in a
 * fresh consumer group from the earliest offset, and is timed from its first record to its last
 * (the ~3 s group join is left out):
 *   kafkajs no-op     a bare kafkajs consumer whose eachBatch resolves the batch — the ceiling of
 *                     consumption on the mock cluster
 *   runConsumer no-op `runConsumer` (lib/consumer/run.ts) with a record handler that does nothing:
 *                     the cost of our batch loop
 *   pipeline          `runConsumer` + `createPipeline`: parse, plan, recipients and membership in a
 *                     real Redis, signed pushes through `createManagementApiPusher` to the Management
 *                     API stand-in (test/support/management-api.ts) in a child process, unthrottled
 *                     (200 to every post, like serverless-offline for a live connection) — what consumers/events.ts runs, with the production
 *                     defaults (PUSH_CONCURRENCY 64, KAFKA_MAX_WAIT_MS 100), pushing with `pushMany`
 *   pipeline+fanout   the same through the fan-out scheduler as consumers/events.ts wires it
 *                     (createPipelineFanout), without a budget: the scheduler's own cost (opt-in:
 *                     --variants=pipeline,pipeline+fanout)
 * The event mix (per 20 events): 9 room events (`turn_changed` to a room of --room-size members),
 * 9 user events (`game_starting` to one user), 2 membership events (`room_state` to a user, which
 * joins the user's connections to its room again: idempotent, so every round sees the same state).
 *
 * Bounded: loopback only, a fixed backlog, a wall-clock cap (remaining measurements are skipped and
 * reported as such). Starts its own Redis, Kafka mock and stand-in server; stops them all.
 */

import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { type EachBatchPayload, Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../lib/config';
import {
  createPipeline,
  type InboundRecord,
  type PreparedRecord,
  type ProcessRecord,
  type RecordOutcome,
} from '../lib/consumer/pipeline';
import { runConsumer } from '../lib/consumer/run';
import { createLifecycleStores } from '../lib/gateway/lifecycle';
import { createKafka } from '../lib/kafka/client';
import type { EventPublisher } from '../lib/kafka/publisher';
import { silentLogger } from '../lib/logger';
import { createMetrics } from '../lib/metrics';
import { createManagementApiCloser } from '../lib/push/closer';
import { createManagementApiPusher } from '../lib/push/pusher';
import { createRedisClient } from '../lib/redis';
import { createPipelineFanout } from '../lib/runtime/fanout';
import { createSessionStore } from '../lib/store/session-store';
import { startManagementApiProcess } from '../test/support/management-api-process';
import { startKafkaMock, startRedis } from '../test/support/services';
import { argReader, runBench } from './args';
import { envelopes, populate, produceBacklog, pushesPerEvent, TOPIC, worldOf } from './consumer-world';

type Variant = 'kafkajs no-op' | 'runConsumer no-op' | 'pipeline' | 'pipeline+fanout';
const VARIANTS: readonly Variant[] = ['kafkajs no-op', 'runConsumer no-op', 'pipeline', 'pipeline+fanout'];
const DEFAULT_VARIANTS: readonly Variant[] = ['kafkajs no-op', 'runConsumer no-op', 'pipeline'];

interface Args {
  readonly events: number;
  readonly rounds: number;
  readonly roomSize: number;
  readonly maxSeconds: number;
  /** The stand-in answers each post after this many ms (API Gateway's round trip; 0: at once). */
  readonly apiLatencyMs: number;
  readonly variants: readonly Variant[];
  /** Writes a CPU profile of each pipeline pass (first record to last) to this file prefix. */
  readonly cpuProfile: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const { int, has, raw } = argReader(argv);
  return {
    events: int('events', 20_000),
    rounds: int('rounds', 3),
    roomSize: int('room-size', 4),
    maxSeconds: int('max-seconds', 300),
    apiLatencyMs: has('api-latency-ms') ? int('api-latency-ms', 0) : 0,
    variants: (raw('variants')?.split(',') ?? DEFAULT_VARIANTS).map((v) => {
      const variant = VARIANTS.find((x) => x === v || x.startsWith(`${v} `));
      if (!variant) throw new Error(`--variants: one or more of ${VARIANTS.join(', ')}`);
      return variant;
    }),
    cpuProfile: raw('cpu-profile'),
  };
}

interface Sample {
  readonly perSec: number;
  /** Process CPU (user + system) per event, µs: everything but Redis, Kafka and the stub server. */
  readonly cpuUs: number;
}

/** Times one pass over the backlog: from the first record seen to the `total`-th done. */
class Stopwatch {
  private done = 0;
  private t0 = 0;
  private cpu0: NodeJS.CpuUsage | undefined;
  private profiler: Session | undefined;
  private finished!: (s: Sample) => void;
  readonly result = new Promise<Sample>((r) => {
    this.finished = r;
  });
  /** @param profile where to write a CPU profile of the timed span (none when undefined) */
  constructor(
    private readonly total: number,
    private readonly profile?: string,
  ) {}

  started(): void {
    if (this.cpu0) return;
    if (this.profile) {
      this.profiler = new Session();
      this.profiler.connect();
      void this.profiler.post('Profiler.enable').then(() => this.profiler?.post('Profiler.start'));
    }
    this.cpu0 = process.cpuUsage();
    this.t0 = performance.now();
  }

  completed(n = 1): void {
    this.done += n;
    if (this.done !== this.total || !this.cpu0) return;
    const ms = performance.now() - this.t0;
    const cpu = process.cpuUsage(this.cpu0);
    const sample = { perSec: (this.total / ms) * 1000, cpuUs: (cpu.user + cpu.system) / this.total };
    const { profiler, profile } = this;
    if (!profiler || !profile) {
      this.finished(sample);
      return;
    }
    void profiler.post('Profiler.stop').then(({ profile: data }) => {
      writeFileSync(profile, JSON.stringify(data));
      profiler.disconnect();
      this.finished(sample);
    });
  }
}

interface Env {
  readonly brokers: string;
  readonly redisUrl: string;
  readonly endpoint: string;
  readonly keyPrefix: string;
}

async function bareKafkajs(env: Env, total: number, timeoutMs: number): Promise<Sample> {
  const kafka = new Kafka({ clientId: 'bench-noop', brokers: [env.brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${randomUUID()}`, maxWaitTimeInMs: 100 });
  const watch = new Stopwatch(total);
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: 16,
      eachBatch: async ({ batch }: EachBatchPayload) => {
        watch.started();
        watch.completed(batch.messages.length);
      },
    });
    return await withTimeout(watch.result, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
}

async function throughRunConsumer(
  env: Env,
  variant: Variant,
  total: number,
  timeoutMs: number,
  profile: string | undefined,
) {
  const config = loadConfig({
    KAFKA_BROKERS: env.brokers,
    KAFKA_CONSUMER_GROUP: `bench-${randomUUID()}`,
    KAFKA_START_POSITION: 'earliest',
    REDIS_URL: env.redisUrl,
    REDIS_KEY_PREFIX: env.keyPrefix,
    WS_MANAGEMENT_ENDPOINT: env.endpoint,
    LOG_LEVEL: 'silent',
    // The scheduler alone (pipeline+fanout), not the budget: the stand-in does not throttle.
    PUSH_BUDGET_RPS: '0',
  });
  const redis = createRedisClient({ url: env.redisUrl, cluster: false, logger: silentLogger });
  const pusher = createManagementApiPusher({
    endpoint: env.endpoint,
    region: 'us-east-1',
    logger: silentLogger,
    maxSockets: config.push.concurrency,
    credentials: () => ({ accessKeyId: 'local', secretAccessKey: 'local' }),
  });
  const publisher: EventPublisher = {
    publish: async () => {},
    ping: async () => {},
    disconnect: async () => {},
  };
  const store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: env.keyPrefix });
  const metrics = createMetrics();
  const credentials = () => ({ accessKeyId: 'local', secretAccessKey: 'local' });
  const fanout =
    variant === 'pipeline+fanout'
      ? createPipelineFanout({
          config,
          endpoint: env.endpoint,
          redis,
          logger: silentLogger,
          metrics,
          credentials: { get: credentials, ready: async () => {}, kind: 'local', close: () => {} },
          closer: createManagementApiCloser({ endpoint: env.endpoint, region: 'us-east-1', credentials }),
        })
      : undefined;
  const pipeline =
    variant === 'pipeline' || variant === 'pipeline+fanout'
      ? createPipeline({
          config,
          store,
          lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: env.keyPrefix }),
          publisher,
          pusher,
          fanout,
          metrics,
          logger: silentLogger,
          pushConcurrency: config.push.concurrency,
          newId: randomUUID,
          now: () => new Date(),
        })
      : undefined;
  const watch = new Stopwatch(total, pipeline ? profile : undefined);
  let failed = 0;
  const count = (outcome: RecordOutcome): RecordOutcome => {
    if (outcome.status !== 'delivered' || outcome.failed > 0) failed++;
    watch.completed();
    return outcome;
  };
  const noop: RecordOutcome = {
    status: 'delivered',
    eventType: '',
    recipients: 0,
    ok: 0,
    gone: 0,
    failed: 0,
  };
  // Counts each record as it completes; keeps the pipeline's two-step form (records in flight).
  const twoStep = pipeline?.prepare;
  const processRecord: ProcessRecord = !pipeline
    ? async () => {
        watch.started();
        return count(noop);
      }
    : twoStep
      ? Object.assign(async (record: InboundRecord) => count(await pipeline(record)), {
          prepare: async (record: InboundRecord): Promise<PreparedRecord> => {
            watch.started();
            const prepared = await twoStep(record);
            return { ...prepared, deliver: async () => count(await prepared.deliver()) };
          },
        })
      : async (record: InboundRecord) => {
          watch.started();
          return count(await pipeline(record));
        };
  const controller = new AbortController();
  const service = runConsumer({
    kafka: createKafka(config.kafka, silentLogger),
    config: config.kafka,
    processRecord,
    logger: silentLogger,
    metrics,
    signal: controller.signal,
    topics: [TOPIC],
  });
  try {
    const sample = await withTimeout(Promise.race([watch.result, service.then(() => never)]), timeoutMs);
    if (failed > 0) throw new Error(`${variant}: ${failed} records not delivered in full`);
    return sample;
  } finally {
    controller.abort();
    await service.catch(() => undefined);
    await fanout?.close(1000);
    await pusher.close();
    await redis.quit();
  }
}

const never = new Promise<never>(() => {});

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const deadline = Date.now() + args.maxSeconds * 1000;
  const started = await Promise.allSettled([
    startRedis(),
    startKafkaMock(),
    startManagementApiProcess({ latencyMs: args.apiLatencyMs, jitterMs: 0, recordBodies: false }),
  ]);
  const value = <T>(r: PromiseSettledResult<T>) => (r.status === 'fulfilled' ? r.value : undefined);
  const [redis, kafka, api] = [value(started[0]), value(started[1]), value(started[2])];
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    if (!redis || !kafka || !api) throw new Error('a service did not start');
    process.stderr.write(
      `pids: redis ${redis.process.pid}, kafka mock ${kafka.process.pid}, stand-in ${api.pid}\n`,
    );
    const env: Env = {
      brokers: kafka.address,
      redisUrl: redis.address,
      endpoint: api.endpoint,
      keyPrefix: 'bench:',
    };
    const world = worldOf(500 * args.roomSize, args.roomSize);
    await populate(env, world, args.roomSize);
    const list = envelopes(world, args);
    await produceBacklog(env.brokers, list);
    const avgBytes = list.reduce((s, e) => s + JSON.stringify(e).length, 0) / list.length;
    const perEvent = pushesPerEvent(args.roomSize);
    process.stdout.write(
      `event consumer: ${fmt(args.events)} events (${avgBytes.toFixed(0)} B avg, ~${perEvent.toFixed(2)} pushes/event, ` +
        `rooms of ${args.roomSize}), stand-in latency ${args.apiLatencyMs} ms, ${args.rounds} rounds (median), ` +
        `node ${process.version}\n\n`,
    );

    const variants = args.variants;
    const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
    let capped = false;
    for (let round = 0; round < args.rounds && !capped; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const v of order) {
        const left = deadline - Date.now();
        if (left < 5000) {
          capped = true;
          break;
        }
        global.gc?.();
        const s =
          v === 'kafkajs no-op'
            ? await bareKafkajs(env, args.events, left)
            : await throughRunConsumer(
                env,
                v,
                args.events,
                left,
                args.cpuProfile && `${args.cpuProfile}-${round + 1}.cpuprofile`,
              );
        samples.get(v)!.push(s);
        process.stderr.write(
          `round ${round + 1} ${v}: ${fmt(s.perSec)} events/s, ${s.cpuUs.toFixed(0)} µs/event\n`,
        );
      }
    }

    const rate = (v: Variant) => median((samples.get(v) ?? []).map((s) => s.perSec));
    const ceiling = rate('kafkajs no-op');
    const lines = [
      '| variant | events/s | pushes/s | consumer CPU µs/event | vs kafkajs no-op |',
      '|---|---:|---:|---:|---:|',
    ];
    for (const v of variants) {
      const ss = samples.get(v) ?? [];
      if (ss.length === 0) {
        lines.push(`| ${v} | skipped (time cap) | | | |`);
        continue;
      }
      const r = rate(v);
      const pushes = v.startsWith('pipeline') ? fmt(r * perEvent) : '—';
      lines.push(
        `| ${v} | ${fmt(r)} | ${pushes} | ${median(ss.map((s) => s.cpuUs)).toFixed(0)} | ${Number.isNaN(ceiling) ? '—' : `${((r / ceiling) * 100).toFixed(1)}%`} |`,
      );
    }
    if (capped) lines.push('| (time cap reached: fewer rounds) | | | | |');
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await Promise.allSettled([redis?.stop(), kafka?.stop(), api?.stop()]);
  }
}

runBench(main);
