/**
 * Consumer faults on the real stack: the consumer process (consumers/events.ts), a Redis
 * and a Kafka mock cluster (kcat) owned by this file — so that they can be stopped and brought back
 * without disturbing other test files — serverless-offline and real `ws` clients where delivery to
 * clients is asserted, and the stand-in Management API (test/support/management-api.ts) for push
 * failures.
 *
 * Every test counts what it tried (events produced, deliveries expected per connection) and what
 * arrived (per connection, per event), and prints a line with the counts (TEST_VERBOSE=1 shows it).
 *
 * Events are `turn_changed` frames carrying a sequence number unique to the test (`turn_number`) and
 * a tag (`room_id`: the room for room events, `u:<userId>` for user events). They are produced with
 * explicit partitions through the test's own producer, so each event's offset is known.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';
import { silentLogger } from '../../lib/logger';
import type { Envelope } from '../../lib/protocol/envelope';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore } from '../../lib/store/session-store';
import { audience, gameEvent, gameRoom } from '../support/backend';
import { type FakeManagementApi, startManagementApi } from '../support/management-api';
import { consumerMetric } from '../support/metrics-text';
import { type ConsumerProcess, type OfflineGateway, startConsumer, startOffline } from '../support/offline';
import { type RunningService, startKafkaMock, startRedis } from '../support/services';
import { connectAs } from '../support/store';
import { TestClient } from '../support/ws-client';

jest.setTimeout(300_000);

const GAMES = 'games.events';
const PARTITIONS = 4;
const TURN = 'games.event.bigger_dice.turn_changed';

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Redis whose data survives a stop: append-only file, fsync on every write, same port on restart. */
class DurableRedis {
  private constructor(
    private service: RunningService,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<DurableRedis> {
    const dir = mkdtempSync(path.join(tmpdir(), 'wsg-faults-redis-'));
    const service = await startRedis({ dir, args: DurableRedis.args });
    return new DurableRedis(service, Number(new URL(service.address).port), dir);
  }

  private static readonly args = ['--appendonly', 'yes', '--appendfsync', 'always'];

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** SIGTERM: Redis writes its file and exits; clients get "connection refused" until `start`. */
  stop(): Promise<void> {
    return this.service.stop();
  }

  async restart(): Promise<void> {
    this.service = await startRedis({ port: this.port, dir: this.dir, args: DurableRedis.args });
  }
}

let redis: DurableRedis;
let kafkaMock: RunningService;
let gateway: OfflineGateway;
let kafka: Kafka;
let producer: Producer;
let admin: Admin;
const consumers: ConsumerProcess[] = [];
/** Exits of consumer processes that the test did not ask for (SIGKILL by the test is not one). */
const unexpectedExits: string[] = [];
let seq = 0;

beforeAll(async () => {
  [redis, kafkaMock] = await Promise.all([DurableRedis.start(), startKafkaMock()]);
  gateway = await startOffline({ REDIS_URL: redis.url, KAFKA_BROKERS: kafkaMock.address });
  kafka = new Kafka({
    clientId: 'consumer-faults-test',
    brokers: [kafkaMock.address],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 10 },
  });
  producer = kafka.producer({ allowAutoTopicCreation: true });
  admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
}, 180_000);

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  await Promise.allSettled([producer?.disconnect(), admin?.disconnect()]);
  await gateway?.stop();
  await Promise.allSettled([redis?.stop(), kafkaMock?.stop()]);
});

/** Starts a consumer process; an exit the test did not cause is recorded. */
async function consumer(group: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ConsumerProcess> {
  const c = await startConsumer(
    gateway,
    { KAFKA_CONSUMER_GROUP: group, KAFKA_START_POSITION: 'earliest', LOG_LEVEL: 'info', ...extraEnv },
    { readyTimeoutMs: 150_000 },
  );
  consumers.push(c);
  c.child.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0)
      unexpectedExits.push(`consumer exited (code ${code}, signal ${signal}):\n${c.output().slice(-3000)}`);
  });
  return c;
}

/** Log lines of a consumer with this message. */
const count = (c: ConsumerProcess, msg: string) => c.output().split(`"msg":"${msg}"`).length - 1;

function alive(c: ConsumerProcess): boolean {
  return c.child.exitCode === null && c.child.signalCode === null;
}

/** One planned event: who gets it and where it goes. */
interface Planned {
  readonly seq: number;
  readonly tag: string;
  readonly partition: number;
  readonly envelope: Envelope;
  /** Filled in by `produce`. */
  offset?: number;
}

/** Produces events in the order given (per partition), in sends of `chunk`; records each offset. */
async function produce(events: Planned[], chunk = 200): Promise<void> {
  for (let i = 0; i < events.length; i += chunk) {
    const slice = events.slice(i, i + chunk);
    const byPartition = new Map<number, Planned[]>();
    for (const e of slice) byPartition.set(e.partition, [...(byPartition.get(e.partition) ?? []), e]);
    const meta = await producer.send({
      topic: GAMES,
      messages: [...byPartition.values()].flat().map((e) => ({
        partition: e.partition,
        value: JSON.stringify(e.envelope),
      })),
    });
    for (const m of meta) {
      const list = byPartition.get(m.partition) ?? [];
      list.forEach((e, k) => {
        e.offset = Number(m.baseOffset) + k;
      });
    }
  }
}

const userEvent = (userId: string): Planned => {
  const n = seq++;
  const tag = `u:${userId}`;
  return {
    seq: n,
    tag,
    partition: n % PARTITIONS,
    envelope: gameEvent('turn_changed', audience.user(userId), {
      room_id: tag,
      current_turn: 1,
      turn_number: n,
    }),
  };
};

const roomEvent = (roomId: string): Planned => {
  const n = seq++;
  return {
    seq: n,
    tag: roomId,
    partition: n % PARTITIONS,
    envelope: gameEvent('turn_changed', audience.room(roomId), {
      room_id: roomId,
      current_turn: 1,
      turn_number: n,
    }),
  };
};

/** `count` user events per user and room events per room, interleaved. */
function plan(users: string[], rooms: string[], perUser: number, perRoom: number): Planned[] {
  const out: Planned[] = [];
  for (let i = 0; i < Math.max(perUser, perRoom); i++) {
    if (i < perUser) for (const u of users) out.push(userEvent(u));
    if (i < perRoom) for (const r of rooms) out.push(roomEvent(r));
  }
  return out;
}

/** Users with one `ws` connection each, in rooms of `roomSize` (joined through room_state events). */
async function population(users: number, roomSize: number) {
  const ids = Array.from({ length: users }, newUserId);
  const clients = new Map<string, TestClient>();
  for (const u of ids) {
    const c = await TestClient.open(gateway.wsUrl);
    await c.request(
      { type: 'system.authenticate', user_id: u, username: `user${u}` },
      'system.authenticated',
    );
    clients.set(u, c);
  }
  const rooms: string[] = [];
  const roomOf = new Map<string, string>();
  for (let i = 0; i < users; i += roomSize) {
    const roomId = randomUUID();
    rooms.push(roomId);
    for (const u of ids.slice(i, i + roomSize)) roomOf.set(u, roomId);
  }
  return {
    users: ids,
    rooms,
    clients,
    roomOf,
    /** Joins every user to their room; resolves once every connection got its room_state. */
    async join() {
      await producer.send({
        topic: GAMES,
        messages: ids.map((u, i) => ({
          partition: i % PARTITIONS,
          value: JSON.stringify(
            gameEvent('room_state', audience.user(u), {
              room: gameRoom(roomOf.get(u)!, { players: [Number(u)] }),
            }),
          ),
        })),
      });
      for (const [u, c] of clients)
        await c
          .next((f) => f.type.endsWith('.room_state'), 60_000)
          .catch(() => {
            throw new Error(`user ${u} never got its room_state`);
          });
    },
    close: () => Promise.all([...clients.values()].map((c) => c.close())),
  };
}

type Population = Awaited<ReturnType<typeof population>>;

/** What each connection should get, and what it got: per connection, per event. */
function tally(pop: Population, events: Planned[]) {
  let expected = 0;
  let missing = 0;
  let duplicates = 0;
  const duplicated: Planned[] = [];
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  for (const u of pop.users) {
    const wanted = events.filter((e) => e.tag === `u:${u}` || e.tag === pop.roomOf.get(u));
    const got = new Map<number, number>();
    for (const f of pop.clients.get(u)!.frames) {
      if (f.type !== TURN) continue;
      const n = f['turn_number'] as number;
      if (bySeq.has(n)) got.set(n, (got.get(n) ?? 0) + 1);
    }
    expected += wanted.length;
    for (const e of wanted) {
      const n = got.get(e.seq) ?? 0;
      if (n === 0) missing++;
      if (n > 1) {
        duplicates += n - 1;
        duplicated.push(e);
      }
    }
  }
  return { expected, missing, duplicates, duplicated };
}

async function untilAllArrived(pop: Population, events: Planned[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = tally(pop, events);
    if (t.missing === 0 || Date.now() > deadline) return t;
    await sleep(250);
  }
}

async function committed(group: string): Promise<Map<number, number>> {
  const [topic] = await admin.fetchOffsets({ groupId: group, topics: [GAMES] });
  return new Map((topic?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

// Each test's consumers stop with it: every group reads the same topic and pushes through the same
// gateway, so a consumer left running would deliver the next test's events too (as duplicates).
afterEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()));
  expect(unexpectedExits).toEqual([]);
});

describe('a consumer SIGKILLed mid-stream', () => {
  it('delivers, after a restart, every event after the last commit to every recipient; duplicates only past the commit', async () => {
    const group = `faults-kill-${randomUUID()}`;
    const pop = await population(24, 4);
    const first = await consumer(group);
    try {
      await pop.join();
      const events = plan(pop.users, pop.rooms, 50, 200); // 1,200 user + 1,200 room events
      const expectedDeliveries = tally(pop, events).expected;

      const producing = produce(events, 100);
      // Kill once about a third of the deliveries arrived.
      const deadline = Date.now() + 60_000;
      while (
        expectedDeliveries - tally(pop, events).missing < expectedDeliveries / 3 &&
        Date.now() < deadline
      )
        await sleep(20);
      const arrivedBeforeKill = expectedDeliveries - tally(pop, events).missing;
      first.kill();
      await new Promise((r) => (alive(first) ? first.child.once('exit', r) : r(undefined)));
      await producing;
      const commits = await committed(group);
      const second = await consumer(group);

      const after = await untilAllArrived(pop, events, 150_000);

      console.log(
        `SIGKILL: ${events.length} events produced, ${after.expected} deliveries expected over ${pop.users.length} connections; ` +
          `${arrivedBeforeKill} arrived before the kill; after restart: missing ${after.missing}, duplicates ${after.duplicates} ` +
          `(committed at kill: ${JSON.stringify([...commits])})`,
      );
      expect(after.missing).toBe(0);
      // A duplicate is a redelivery of a record the killed consumer had not committed: never one before the commit.
      const belowCommit = after.duplicated.filter((e) => e.offset! < (commits.get(e.partition) ?? 0));
      expect(belowCommit).toEqual([]);
      expect(alive(second)).toBe(true);
    } finally {
      await pop.close();
    }
  });
});

describe('a second consumer joining (rebalance) while Redis is down', () => {
  it('exits no process and delivers every event once Redis is back', async () => {
    const group = `faults-rebalance-${randomUUID()}`;
    const pop = await population(8, 4);
    const first = await consumer(group);
    try {
      await pop.join();
      const events = plan(pop.users, pop.rooms, 50, 200); // 400 user + 400 room events, counted
      // Interleaved with room-audience leaves of a user who has no connection: delivered to the room
      // (not counted) and then applied in Redis *after* the send, so records already prepared when
      // Redis goes away fail in their delivery step — the retry loop that met the rebalance.
      const outsider = newUserId();
      const stream: Planned[] = events.flatMap((e, i) =>
        e.tag.startsWith('u:') || i % 2 === 1
          ? [e]
          : [
              e,
              {
                seq: -1,
                tag: 'leave',
                partition: e.partition,
                envelope: gameEvent('player_left', audience.room(e.tag), {
                  room_id: e.tag,
                  user_id: Number(outsider),
                  username: 'gone',
                }),
              },
            ],
      );

      const producing = (async () => {
        for (let i = 0; i < stream.length; i += 40) {
          await produce(stream.slice(i, i + 40));
          await sleep(100);
        }
      })();
      const expected = tally(pop, events).expected;
      for (const end = Date.now() + 60_000; Date.now() < end; await sleep(10))
        if (expected - tally(pop, events).missing >= expected / 4) break;
      await redis.stop();
      await producing;
      // The first consumer is now retrying its records against a dead Redis; a second one joins the
      // group, which makes the coordinator rebalance under it (heartbeats then fail).
      const joining = consumer(group);
      await sleep(15_000);
      await redis.restart();
      const second = await joining;

      const after = await untilAllArrived(pop, events, 150_000);

      const restarts = (
        await Promise.all([first, second].map((c) => consumerMetric(c, 'ws_gateway_consumer_restarts_total')))
      ).reduce((a, b) => a + b, 0);
      console.log(
        `rebalance while Redis down: ${events.length} counted events (+${stream.length - events.length} leaves), ${after.expected} deliveries expected; missing ${after.missing}, ` +
          `duplicates ${after.duplicates}; processes alive: ${[first, second].filter(alive).length}/2; in-process restarts ${restarts}; ` +
          `first consumer: ${count(first, 'record failed, retrying')} retries, ${count(first, 'heartbeat failed, giving the batch back')} rebalances met while retrying`,
      );
      expect(after.missing).toBe(0);
      expect([alive(first), alive(second)]).toEqual([true, true]);
    } finally {
      await pop.close();
    }
  });
});

describe('Kafka unreachable for the consumer (its broker stopped)', () => {
  it('reconnects and resumes from its committed offsets when the broker is back; nothing lost', async () => {
    const group = `faults-kafka-${randomUUID()}`;
    const pop = await population(8, 4);
    const c = await consumer(group);
    try {
      await pop.join();
      const before = plan(pop.users, pop.rooms, 25, 100);
      await produce(before);
      const first = await untilAllArrived(pop, before, 60_000);
      expect(first.missing).toBe(0);
      await sleep(2000); // an auto-commit interval
      const commits = await committed(group);

      // Longer than the session timeout (30 s): the coordinator has forgotten the member when it wakes.
      process.kill(kafkaMock.process.pid!, 'SIGSTOP');
      await sleep(40_000);
      process.kill(kafkaMock.process.pid!, 'SIGCONT');
      const afterEvents = plan(pop.users, pop.rooms, 25, 100);
      await produce(afterEvents);

      const after = await untilAllArrived(pop, afterEvents, 150_000);
      const all = tally(pop, [...before, ...afterEvents]);

      console.log(
        `Kafka stopped 40 s: ${before.length} events before, ${afterEvents.length} after, ${all.expected} deliveries expected; ` +
          `missing ${all.missing}, duplicates ${all.duplicates}; consumer alive: ${alive(c)}`,
      );
      expect(after.missing).toBe(0);
      expect(all.missing).toBe(0);
      // Resumed from its commits: nothing committed before the outage came again.
      expect(all.duplicated.filter((e) => e.offset! < (commits.get(e.partition) ?? 0))).toEqual([]);
      expect(alive(c)).toBe(true);
    } finally {
      require('node:fs').writeFileSync('/tmp/kafka-consumer.log', c.output());
      if (kafkaMock.process.pid) process.kill(kafkaMock.process.pid, 'SIGCONT');
      await pop.close();
    }
  });
});

describe('push failures from the Management API (429, 5xx, timeouts, one connection that always fails)', () => {
  let api: FakeManagementApi;
  let store: ReturnType<typeof createSessionStore>;
  let redisClient: RedisClient;
  const prefix = `faults-push:${randomUUID()}:`;

  beforeAll(async () => {
    api = await startManagementApi({ latencyMs: 2, jitterMs: 1 });
    redisClient = createRedisClient({ url: redis.url, cluster: false, logger: silentLogger });
    store = createSessionStore({ redis: redisClient, connectionTtlSecs: 3600, keyPrefix: prefix });
  });

  afterAll(async () => {
    await redisClient?.quit();
    await api?.stop();
  });

  it('retries each push a bounded number of times, counts what failed, and does not hold the other connections back', async () => {
    const conn = () => randomBytes(10).toString('base64');
    // Room 1: three healthy connections and one that always answers 503.
    // Room 2: three healthy connections and one that never answers.
    // Room 3: one healthy connection and three that recover: throttled twice, 500 twice, one timeout.
    const rooms = [randomUUID(), randomUUID(), randomUUID()];
    type Member = { readonly user: string; readonly id: string };
    const room = (): [Member, Member, Member, Member] =>
      [0, 1, 2, 3].map(() => ({ user: newUserId(), id: conn() })) as never;
    const members: [ReturnType<typeof room>, ReturnType<typeof room>, ReturnType<typeof room>] = [
      room(),
      room(),
      room(),
    ];
    const [[h1, h2, h3, failing], [h4, h5, h6, hanging], [h7, throttled, erroring, slow]] = members;
    for (const m of members.flat()) await connectAs(store, m.id, m.user);
    const c = await consumer(`faults-push-${randomUUID()}`, {
      WS_MANAGEMENT_ENDPOINT: api.endpoint,
      REDIS_KEY_PREFIX: prefix,
      PUSH_MAX_RETRIES: '3',
      PUSH_TIMEOUT_MS: '1000',
    });
    await producer.send({
      topic: GAMES,
      messages: members.flatMap((room, r) =>
        room.map((m) => ({
          value: JSON.stringify(
            gameEvent('room_state', audience.user(m.user), {
              room: gameRoom(rooms[r]!, { players: [Number(m.user)] }),
            }),
          ),
        })),
      ),
    });
    const deadline = Date.now() + 60_000;
    while (members.flat().some((m) => api.delivered(m.id).length === 0) && Date.now() < deadline)
      await sleep(100);
    expect(members.flat().filter((m) => api.delivered(m.id).length === 0)).toEqual([]);

    api.behave(failing.id, { kind: 'fail', status: 503 });
    api.behave(hanging.id, { kind: 'hang' });
    api.behave(throttled.id, { kind: 'fail', status: 429, times: 2 });
    api.behave(erroring.id, { kind: 'fail', status: 500, times: 2 });
    api.behave(slow.id, { kind: 'hang', times: 1 });
    const perRoom = 30;
    const events: Planned[] = [];
    for (let i = 0; i < perRoom; i++) for (const r of rooms) events.push(roomEvent(r));
    const started = Date.now();
    await produce(events);

    const seqsOf = (id: string) =>
      api
        .delivered(id)
        .filter((b) => b['type'] === TURN)
        .map((b) => b['turn_number'] as number);
    const healthy = [h1, h2, h3, h4, h5, h6, h7];
    const recovering = [throttled, erroring, slow];
    const wantedBy = (id: string) => {
      const r = members.findIndex((room) => room.some((m) => m.id === id));
      return events.filter((e) => e.tag === rooms[r]).map((e) => e.seq);
    };
    const complete = (id: string) => new Set(seqsOf(id)).size === wantedBy(id).length;
    const until = Date.now() + 120_000;
    while (![...healthy, ...recovering].every((m) => complete(m.id)) && Date.now() < until) await sleep(100);
    // Every push to the two bad connections settles (fails) after its bounded retries.
    let failed = 0;
    for (const end = Date.now() + 60_000; Date.now() < end; await sleep(200)) {
      failed = await consumerMetric(c, 'ws_gateway_deliveries_total', { result: 'failed' });
      if (failed >= 2 * perRoom) break;
    }

    const lastHealthyArrival = Math.max(
      ...api.requests
        .filter((r) => healthy.some((h) => h.id === r.connectionId) && r.status === 200)
        .map((r) => r.at),
    );
    const attempts = (id: string) =>
      api.requests.filter((r) => r.connectionId === id && r.body['type'] === TURN).length;
    console.log(
      `push failures: ${events.length} room events (${perRoom} per room) to 12 connections; ` +
        `healthy ${healthy.filter((m) => complete(m.id)).length}/7 and recovering ${recovering.filter((m) => complete(m.id)).length}/3 complete; ` +
        `attempts: always-503 ${attempts(failing.id)}, never-answers ${attempts(hanging.id)}, throttled ${attempts(throttled.id)}, ` +
        `500×2 ${attempts(erroring.id)}, one timeout ${attempts(slow.id)}; failed deliveries counted ${failed}; ` +
        `last healthy arrival ${lastHealthyArrival - started} ms after produce`,
    );
    for (const m of [...healthy, ...recovering])
      expect({ id: m.id, seqs: [...new Set(seqsOf(m.id))].sort((a, b) => a - b) }).toEqual({
        id: m.id,
        seqs: wantedBy(m.id),
      });
    // Bounded: at most 1 + PUSH_MAX_RETRIES requests per event to the connection that always fails …
    expect(attempts(failing.id)).toBe(perRoom * 4);
    // … and far fewer to the one that never answers: after one push's retries it is suspended.
    expect(attempts(hanging.id)).toBeLessThan(perRoom * 4);
    expect(seqsOf(failing.id)).toEqual([]);
    // Logged and counted: every event to the two bad connections is a failed delivery.
    expect(failed).toBe(2 * perRoom);
    // Not held back: the healthy connections of room 1 had each event before the 503 connection's
    // last retry of it …
    for (const e of events.filter((x) => x.tag === rooms[0])) {
      const firstHealthy = Math.min(
        ...api.requests
          .filter((r) => r.connectionId === h1.id && r.body['turn_number'] === e.seq && r.status === 200)
          .map((r) => r.at),
      );
      const lastRetry = Math.max(
        ...api.requests
          .filter((r) => r.connectionId === failing.id && r.body['turn_number'] === e.seq)
          .map((r) => r.at),
      );
      expect(firstHealthy).toBeLessThanOrEqual(lastRetry);
    }
    // … and room 2's healthy connections got all 30 events long before 30 pushes of 4 timeouts each
    // (120 s) to the connection that never answers would have let them.
    expect(lastHealthyArrival - started).toBeLessThan(60_000);
    expect(alive(c)).toBe(true);
  });
});
