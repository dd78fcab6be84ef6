/**
 * Room fan-out latency: one event to a 1,000-member room, from produce to each member's socket.
 *
 *   npx tsx bench/room-fanout.ts [--members=1000] [--events=20] [--push-concurrency=64] [--max-wait-ms=100]
 *                                [--max-seconds=300]
 *
 * Everything real, on loopback: serverless-offline (in-process handlers, stage `local`) with
 * `--members` `ws` clients connected, authenticated (one user each) and joined to one game room by
 * user-targeted `room_state` events; the event consumer (consumers/events.ts) as its own process;
 * Redis and the Kafka mock cluster. For each measured event:
 *   gateway  a backend-format `turn_changed` to the room is produced (kafkajs, unkeyed) and timed
 *            until each member received it: Kafka → consumer (fetch, parse, plan, SMEMBERS) →
 *            signed pushes → offline → socket
 *   direct   the same frame pushed by `pushMany` (createManagementApiPusher, same concurrency) from
 *            this process to the room's connection ids (read from Redis) through offline — the raw
 *            fan-out, so the ratio shows what Kafka and the consumer add
 * The two are interleaved (gateway, direct, gateway, …) with a random pause of 0–100 ms between
 * events, so neither always lands at the same point of the consumer's fetch cycle. Latency is per
 * recipient; each event gives p50/p90/p99 over its recipients, and the table shows the median over
 * events of each (and the pooled max). Two warm-up events of each kind are not counted.
 *
 * Bounded: loopback only, a fixed number of events, each waited for at most 10 s, and a wall-clock
 * cap. Starts its own Redis, Kafka mock, offline and consumer, and stops them all.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { convertEnvelope } from '../lib/events/convert';
import { silentLogger } from '../lib/logger';
import type { Envelope } from '../lib/protocol/envelope';
import { createManagementApiPusher, pushMany } from '../lib/push/pusher';
import { createRedisClient } from '../lib/redis';
import { audience, gameEvent, gameRoom } from '../test/support/backend';
import {
  type ConsumerProcess,
  type OfflineGateway,
  startConsumer,
  startOffline,
} from '../test/support/offline';
import { type RunningService, startKafkaMock, startRedis } from '../test/support/services';
import { TestClient } from '../test/support/ws-client';
import { argReader, runBench } from './args';

const TOPIC = 'games.events';
const WARMUP = 2;
const EVENT_TIMEOUT_MS = 10_000;

interface Args {
  readonly members: number;
  readonly events: number;
  readonly pushConcurrency: number;
  readonly maxSeconds: number;
  /** KAFKA_MAX_WAIT_MS for the consumer; its default (100) when absent. */
  readonly maxWaitMs: number | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const { int, has } = argReader(argv);
  return {
    members: int('members', 1000),
    events: int('events', 20),
    pushConcurrency: int('push-concurrency', 64),
    maxSeconds: int('max-seconds', 300),
    maxWaitMs: has('max-wait-ms') ? int('max-wait-ms', 100) : undefined,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Arrival times of the `turn_changed` frames, by turn number, one entry per member. */
class Arrivals {
  private readonly byTurn = new Map<number, number[]>();
  private readonly waiters = new Map<number, () => void>();
  constructor(private readonly members: number) {}

  record(turn: number, at: number): void {
    const list = this.byTurn.get(turn) ?? [];
    if (list.length === 0) this.byTurn.set(turn, list);
    list.push(at);
    if (list.length === this.members) this.waiters.get(turn)?.();
  }

  /** Resolves with the arrival times once every member got `turn`, or with what arrived by the timeout. */
  async all(turn: number, timeoutMs: number): Promise<number[]> {
    if ((this.byTurn.get(turn)?.length ?? 0) < this.members) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.waiters.set(turn, resolve);
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.waiters.delete(turn);
    }
    return this.byTurn.get(turn) ?? [];
  }
}

/** Connects, authenticates and listens; `count` connections, `batch` at a time (offline runs $connect serially). */
async function openMembers(gw: OfflineGateway, count: number, arrivals: Arrivals): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, async (_, k) => {
        const userId = String(5_000_000 + start + k);
        const c = await TestClient.open(gw.wsUrl);
        await c.request(
          { type: 'system.authenticate', user_id: userId, username: `user${userId}` },
          'system.authenticated',
          20_000,
        );
        c.socket.on('message', (data) => {
          const at = performance.now();
          const frame = JSON.parse(String(data)) as { type?: string; turn_number?: number };
          if (frame.type === 'games.event.bigger_dice.turn_changed' && typeof frame.turn_number === 'number')
            arrivals.record(frame.turn_number, at);
        });
        return { c, userId };
      }),
    );
    clients.push(...batch.map((b) => b.c));
  }
  return clients;
}

const pct = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
const median = (xs: readonly number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );

interface EventStats {
  readonly first: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly last: number;
  readonly missing: number;
}

function statsOf(t0: number, arrivals: readonly number[], members: number): EventStats {
  const lat = arrivals.map((a) => a - t0).sort((a, b) => a - b);
  return {
    first: lat[0] ?? Number.NaN,
    p50: pct(lat, 50),
    p90: pct(lat, 90),
    p99: pct(lat, 99),
    last: lat[lat.length - 1] ?? Number.NaN,
    missing: members - lat.length,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const deadline = Date.now() + args.maxSeconds * 1000;
  const services: RunningService[] = [];
  let gateway: OfflineGateway | undefined;
  let consumer: ConsumerProcess | undefined;
  let producer: Producer | undefined;
  let clients: TestClient[] = [];
  const redisClients: Array<ReturnType<typeof createRedisClient>> = [];
  let pusher: ReturnType<typeof createManagementApiPusher> | undefined;
  try {
    const started = await Promise.allSettled([startRedis(), startKafkaMock()]);
    for (const r of started) if (r.status === 'fulfilled') services.push(r.value);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const [redis, kafkaMock] = services as [RunningService, RunningService];
    gateway = await startOffline({
      REDIS_URL: redis.address,
      KAFKA_BROKERS: kafkaMock.address,
      AUTH_ALLOW_UNVERIFIED: 'true',
      LOG_LEVEL: 'error',
      ...(process.env.BENCH_CHILD_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_CHILD_NODE_OPTIONS } : {}),
    });
    const kafka = new Kafka({
      clientId: 'bench-backend',
      brokers: [kafkaMock.address],
      logLevel: logLevel.NOTHING,
    });
    producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    // Creates the topic (4 partitions) before the consumer subscribes.
    await producer.send({ topic: TOPIC, messages: [{ value: 'not an envelope: skipped' }] });
    consumer = await startConsumer(gateway, {
      KAFKA_CONSUMER_GROUP: `bench-fanout-${randomUUID()}`,
      KAFKA_START_POSITION: 'earliest',
      PUSH_CONCURRENCY: String(args.pushConcurrency),
      LOG_LEVEL: 'error',
      ...(args.maxWaitMs === undefined ? {} : { KAFKA_MAX_WAIT_MS: String(args.maxWaitMs) }),
    });

    process.stderr.write(
      `pids: redis ${redis.process.pid}, kafka mock ${kafkaMock.process.pid}, consumer ${consumer.child.pid}\n`,
    );
    const arrivals = new Arrivals(args.members);
    const t = performance.now();
    clients = await openMembers(gateway, args.members, arrivals);
    process.stderr.write(
      `${clients.length} members connected in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );

    // Joins as the backend makes them: a room_state to each user as they enter the room.
    const roomId = randomUUID();
    const joined = clients.map((c) => c.next((f) => f.type.endsWith('.room_state'), 60_000));
    await producer.sendBatch({
      topicMessages: [
        {
          topic: TOPIC,
          messages: clients.map((_, i) => {
            const userId = 5_000_000 + i;
            return {
              value: JSON.stringify(
                gameEvent('room_state', audience.user(userId), {
                  room: gameRoom(roomId, { players: [userId] }),
                }),
              ),
            };
          }),
        },
      ],
    });
    await Promise.all(joined);
    const store = createRedisClient({ url: redis.address, cluster: false, logger: silentLogger });
    redisClients.push(store);
    const connectionIds = await store.smembers(`${gateway.env.REDIS_KEY_PREFIX}room:sockets:${roomId}`);
    if (connectionIds.length !== args.members)
      throw new Error(`room has ${connectionIds.length} members, expected ${args.members}`);
    process.stderr.write(`room of ${connectionIds.length} joined\n`);

    pusher = createManagementApiPusher({
      endpoint: gateway.managementEndpoint,
      region: 'us-east-1',
      logger: silentLogger,
      maxSockets: args.pushConcurrency,
      credentials: () => ({ accessKeyId: 'local', secretAccessKey: 'local' }),
    });

    const results = { gateway: [] as EventStats[], direct: [] as EventStats[] };
    let turn = 0;
    let capped = false;
    for (let i = 0; i < WARMUP + args.events; i++) {
      if (Date.now() > deadline) {
        capped = true;
        break;
      }
      for (const path of ['gateway', 'direct'] as const) {
        await sleep(Math.random() * 100);
        const n = ++turn;
        const envelope: Envelope = gameEvent('turn_changed', audience.room(roomId), {
          room_id: roomId,
          current_turn: 5_000_000,
          turn_number: n,
        });
        const t0 = performance.now();
        if (path === 'gateway') {
          await producer.send({ topic: TOPIC, messages: [{ value: JSON.stringify(envelope) }] });
        } else {
          const frame = JSON.stringify(convertEnvelope(envelope, TOPIC));
          const pushed = await pushMany(pusher, connectionIds, frame, { concurrency: args.pushConcurrency });
          const failed = [...pushed.values()].filter((r) => r !== 'ok').length;
          if (failed > 0) throw new Error(`direct fan-out: ${failed} pushes not ok`);
        }
        const s = statsOf(t0, await arrivals.all(n, EVENT_TIMEOUT_MS), args.members);
        if (i >= WARMUP) results[path].push(s);
        process.stderr.write(
          `${path} #${n}: p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, last ${s.last.toFixed(0)} ms${s.missing ? `, ${s.missing} MISSING` : ''}\n`,
        );
      }
    }

    const row = (name: string, ss: EventStats[], base: number) => {
      const p50 = median(ss.map((s) => s.p50));
      return `| ${name} | ${ss.length} | ${median(ss.map((s) => s.first)).toFixed(0)} | ${p50.toFixed(0)} | ${median(ss.map((s) => s.p90)).toFixed(0)} | ${median(ss.map((s) => s.p99)).toFixed(0)} | ${Math.max(...ss.map((s) => s.last)).toFixed(0)} | ${ss.reduce((n, s) => n + s.missing, 0)} | ${(p50 / base).toFixed(2)}× |`;
    };
    const directP50 = median(results.direct.map((s) => s.p50));
    process.stdout.write(
      `\nroom fan-out: ${args.members} members, ${results.gateway.length} events per path (median over events), ` +
        `push concurrency ${args.pushConcurrency}, KAFKA_MAX_WAIT_MS ${args.maxWaitMs ?? '100 (default)'}, node ${process.version}\n\n` +
        '| path | events | first ms | p50 ms | p90 ms | p99 ms | max ms | missing | p50 vs direct |\n' +
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
        `${row('gateway (Kafka → consumer → offline)', results.gateway, directP50)}\n` +
        `${row('direct pushMany → offline', results.direct, directP50)}\n` +
        (capped ? '\n(time cap reached: fewer events)\n' : ''),
    );
  } finally {
    await pusher?.close();
    for (const c of clients) c.socket.terminate();
    await Promise.allSettled([
      consumer?.stop(),
      producer?.disconnect(),
      ...redisClients.map((r) => r.quit()),
    ]);
    await gateway?.stop();
    await Promise.allSettled(services.map((s) => s.stop()));
  }
}

runBench(main);
