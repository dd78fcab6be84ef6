/**
 * Events to clients end to end: serverless-offline running the real handlers, the event consumer
 * process (consumers/events.ts) on the Kafka mock cluster, real `ws` clients, and backend-format
 * envelopes produced to Kafka by a fake backend (test/support/backend.ts).
 *
 * Each block runs its own consumer process(es) in its own consumer group, one block after the other,
 * so no two groups deliver the same events to this gateway at once. Groups start from the earliest
 * offset: a group that joins never misses a record produced before its partitions were assigned,
 * and the backlog of other test files finds no recipients under this gateway's key prefix. Topics
 * are shared by the whole run, so every room and user id is unique to its test, and assertions only
 * look at frames about those rooms.
 *
 * To reason about order, a test pins its records to partitions (the backend leaves the choice to the
 * partitioner; order is only promised within a partition).
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Envelope } from '../../lib/protocol/envelope';
import { audience, type FakeBackend, gameEvent, gameRoom, startBackend } from '../support/backend';
import { consumerMetric } from '../support/metrics-text';
import { type ConsumerProcess, type OfflineGateway, startConsumer, startOffline } from '../support/offline';
import { TestClient } from '../support/ws-client';

jest.setTimeout(60_000);

const GAMES = 'games.events';
const PARTITIONS = 4;

type Frame = TestClient['frames'][number];

let gateway: OfflineGateway;
let backend: FakeBackend;
const clients: TestClient[] = [];

const newUserId = () => String(randomInt(1_000_000, 2 ** 47));

beforeAll(async () => {
  [gateway, backend] = await Promise.all([startOffline(), startBackend()]);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await backend?.stop();
  await gateway?.stop();
});

/** A connection that got its welcome; authenticated as `userId` when given (credential form). */
async function open(userId?: string): Promise<TestClient> {
  const client = await TestClient.open(gateway.wsUrl);
  clients.push(client);
  if (userId)
    await client.request(
      { type: 'system.authenticate', user_id: userId, username: `user${userId}` },
      'system.authenticated',
    );
  return client;
}

function consumer(group: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ConsumerProcess> {
  return startConsumer(gateway, {
    KAFKA_CONSUMER_GROUP: group,
    KAFKA_START_POSITION: 'earliest',
    ...extraEnv,
  });
}

/** The room a game frame is about (`room.room_id` for room_state). */
function roomOf(frame: Frame): unknown {
  const room = frame['room'];
  return typeof room === 'object' && room !== null
    ? (room as Record<string, unknown>)['room_id']
    : frame['room_id'];
}

/** Types of the game frames about `roomId` a client received, in order. */
const about = (client: TestClient, roomId: string) =>
  client.frames.filter((f) => f.type.startsWith('games.event.') && roomOf(f) === roomId).map((f) => f.type);

/** Resolves once `predicate` holds for a client's frames; rejects after `timeoutMs`. */
async function until(
  client: TestClient,
  what: string,
  predicate: (frames: Frame[]) => boolean,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(client.frames)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(client.frames.slice(-20))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const produce = (envelope: Envelope, partition?: number) =>
  backend.produce(GAMES, envelope, partition === undefined ? {} : { partition });

const roomState = (userId: string, roomId: string, spectator = false) =>
  gameEvent('room_state', audience.user(userId), {
    room: gameRoom(roomId, spectator ? { spectators: [Number(userId)] } : { players: [Number(userId)] }),
  });

/** A room event carrying a sequence number (`turn_number`) to the client. */
const numbered = (roomId: string, seq: number) =>
  gameEvent('turn_changed', audience.room(roomId), { room_id: roomId, current_turn: 1, turn_number: seq });

/** The room-event sequence numbers a client received for `roomId`, in arrival order (duplicates kept). */
const seqsAt = (client: TestClient, roomId: string) =>
  client.frames
    .filter((f) => f.type === 'games.event.bigger_dice.turn_changed' && f['room_id'] === roomId)
    .map((f) => f['turn_number'] as number);

/** Joins a user's connections to a room through a user-targeted room_state, and waits until each got it. */
async function join(userId: string, roomId: string, tabs: TestClient[]) {
  await produce(roomState(userId, roomId));
  for (const tab of tabs)
    await until(tab, `room_state of ${roomId}`, (fs) =>
      fs.some((f) => f.type.endsWith('.room_state') && roomOf(f) === roomId),
    );
}

/**
 * Produces `seqs` to the room, partition `seq % 4`, and returns the expected first-arrival order per
 * partition.
 */
async function produceNumbered(roomId: string, seqs: number[]): Promise<Map<number, number[]>> {
  const byPartition = new Map<number, number[]>();
  await Promise.all(
    seqs.map((seq) => {
      const partition = seq % PARTITIONS;
      byPartition.set(partition, [...(byPartition.get(partition) ?? []), seq]);
      return produce(numbered(roomId, seq), partition);
    }),
  );
  return byPartition;
}

/** Each event's first arrival, per partition, must come in produce order (redeliveries may repeat). */
function expectPartitionOrder(received: number[], expected: Map<number, number[]>) {
  const firstArrivals = [...new Set(received)];
  for (const [partition, seqs] of expected) {
    const wanted = new Set(seqs);
    expect({ partition, order: firstArrivals.filter((s) => wanted.has(s)) }).toEqual({
      partition,
      order: seqs,
    });
  }
}

function exited(
  child: ConsumerProcess['child'],
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const isReady = async (c: ConsumerProcess) => (await fetch(c.readyUrl).catch(() => null))?.status === 200;

/**
 * Starts two consumer processes in one new group at the same time, and resolves once both consume
 * at once (both `/ready`: joined the same generation, nobody rebalancing).
 *
 * The mock cluster's group coordinator answers a follower's SyncGroup that arrives after the
 * leader's with INVALID_REQUEST, which kafkajs does not survive; the consumer then starts a new
 * kafkajs consumer in-process (bounded restarts, runConsumer), which costs a full rebalance on the
 * mock (≈ 30 s: the crashed member's session must time out). A process is not ready meanwhile, even
 * if it had joined an earlier generation alone. Should a process give up, the pair is started again
 * in a fresh group.
 */
async function startPair(): Promise<[ConsumerProcess, ConsumerProcess]> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const group = `e2e-pair-${randomUUID()}`;
    const started = await Promise.allSettled([consumer(group), consumer(group)]);
    const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (up.length === 2) {
      const pair: [ConsumerProcess, ConsumerProcess] = [up[0]!, up[1]!];
      const deadline = Date.now() + 120_000;
      // Both ready at two polls 1 s apart: a rebalance that is about to start shows in between.
      let steady = 0;
      while (steady < 2 && Date.now() < deadline) {
        const both = (await Promise.all(pair.map(isReady))).every(Boolean);
        steady = both ? steady + 1 : 0;
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (steady >= 2) return pair;
      failures.push(`attempt ${attempt}: the pair never consumed at the same time`);
    }
    failures.push(
      ...started.flatMap((s) => (s.status === 'rejected' ? [String(s.reason).slice(0, 500)] : [])),
    );
    await Promise.all(up.map((c) => c.stop()));
  }
  throw new Error(`two consumers never joined one group:\n${failures.join('\n')}`);
}

describe('routing through one consumer', () => {
  let events: ConsumerProcess;

  beforeAll(async () => {
    events = await consumer(`e2e-delivery-${randomUUID()}`);
  }, 90_000);

  afterAll(async () => {
    await events?.stop();
  });

  it('reaches exactly its recipients: every tab of a user, users, a room, spectators only, broadcast to all', async () => {
    const [alice, bob, carol, dave] = [newUserId(), newUserId(), newUserId(), newUserId()];
    const [a1, a2, b1, c1, d1, anon] = [
      await open(alice),
      await open(alice),
      await open(bob),
      await open(carol),
      await open(dave),
      await open(),
    ];
    const roomId = randomUUID();
    const p = 0; // one partition: the events reach every connection in this order

    await produce(roomState(alice, roomId), p);
    await produce(roomState(bob, roomId), p);
    await produce(roomState(carol, roomId, true), p);
    await produce(
      gameEvent('user_muted', audience.user(alice), { room_id: roomId, target_user_id: 7 }, null),
      p,
    );
    await produce(
      gameEvent('game_starting', audience.users(alice, bob), { room_id: roomId, players: [] }),
      p,
    );
    await produce(numbered(roomId, 1), p);
    await produce(
      gameEvent('spectator_chat', audience.spectators(roomId), {
        room_id: roomId,
        user_id: Number(carol),
        username: 'Carol',
        avatar_id: null,
        content: 'gg',
        is_system: false,
        timestamp: '2026-01-10T12:00:00Z',
      }),
      p,
    );
    await produce(
      gameEvent('room_created', audience.broadcast(), {
        room_id: roomId,
        room_name: 'Dice',
        host_id: Number(alice),
      }),
      p,
    );
    // Last on the partition: once a client has it, it has everything meant for it.
    await produce(
      gameEvent('room_removed', audience.broadcast(), { room_id: roomId, reason: 'abandoned' }),
      p,
    );
    for (const c of [a1, a2, b1, c1, d1, anon])
      await until(c, 'room_removed', (fs) =>
        fs.some((f) => f.type.endsWith('.room_removed') && f['room_id'] === roomId),
      );

    const bd = (t: string) => `games.event.bigger_dice.${t}`;
    const tab = [
      bd('room_state'),
      'games.event.user_muted',
      bd('game_starting'),
      bd('turn_changed'),
      bd('room_created'),
      bd('room_removed'),
    ];
    expect(about(a1, roomId)).toEqual(tab);
    expect(about(a2, roomId)).toEqual(tab);
    expect(about(b1, roomId)).toEqual([
      bd('room_state'),
      bd('game_starting'),
      bd('turn_changed'),
      bd('room_created'),
      bd('room_removed'),
    ]);
    expect(about(c1, roomId)).toEqual([
      bd('room_state'),
      bd('turn_changed'),
      bd('spectator_chat'),
      bd('room_created'),
      bd('room_removed'),
    ]);
    expect(about(d1, roomId)).toEqual([bd('room_created'), bd('room_removed')]);
    expect(about(anon, roomId)).toEqual([bd('room_created'), bd('room_removed')]);
  });

  it('stops sending room events to a user once a leave event removed them', async () => {
    const [alice, bob] = [newUserId(), newUserId()];
    const [a1, a2, b1] = [await open(alice), await open(alice), await open(bob)];
    const roomId = randomUUID();
    const p = 1;

    await produce(roomState(alice, roomId), p);
    await produce(roomState(bob, roomId), p);
    await produce(numbered(roomId, 1), p);
    await produce(
      gameEvent('player_left', audience.room(roomId), {
        room_id: roomId,
        user_id: Number(alice),
        username: 'A',
      }),
      p,
    );
    await produce(numbered(roomId, 2), p);
    await produce(
      gameEvent('room_removed', audience.broadcast(), { room_id: roomId, reason: 'host_left' }),
      p,
    );
    for (const c of [a1, a2, b1])
      await until(c, 'room_removed', (fs) =>
        fs.some((f) => f.type.endsWith('.room_removed') && f['room_id'] === roomId),
      );

    const bd = (t: string) => `games.event.bigger_dice.${t}`;
    // The leaving user still sees their own player_left, then nothing more of the room.
    const leaver = [bd('room_state'), bd('turn_changed'), bd('player_left'), bd('room_removed')];
    expect(about(a1, roomId)).toEqual(leaver);
    expect(about(a2, roomId)).toEqual(leaver);
    expect(about(b1, roomId)).toEqual([
      bd('room_state'),
      bd('turn_changed'),
      bd('player_left'),
      bd('turn_changed'),
      bd('room_removed'),
    ]);
    expect(seqsAt(b1, roomId)).toEqual([1, 2]);
  });

  it('delivers every one of 50 unkeyed events (and logs the produce → receive latency)', async () => {
    const user = newUserId();
    const client = await open(user);
    const roomId = randomUUID();
    await join(user, roomId, [client]);
    const receivedAt = new Map<number, number>();
    client.socket.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (f.type === 'games.event.bigger_dice.turn_changed' && f['room_id'] === roomId)
        receivedAt.set(f['turn_number'] as number, performance.now());
    });
    const producedAt = new Map<number, number>();
    const seqs = Array.from({ length: 50 }, (_, i) => i);

    for (const seq of seqs) {
      producedAt.set(seq, performance.now());
      await produce(numbered(roomId, seq)); // the partitioner chooses, as for the backend
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(client, '50 events', () => receivedAt.size === seqs.length);

    expect([...new Set(seqsAt(client, roomId))].sort((x, y) => x - y)).toEqual(seqs);
    const latencies = seqs.map((s) => receivedAt.get(s)! - producedAt.get(s)!).sort((x, y) => x - y);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    console.log(
      `delivery latency produce → receive over ${latencies.length} events: p50 ${at(0.5).toFixed(1)} ms, ` +
        `p90 ${at(0.9).toFixed(1)} ms, max ${at(1).toFixed(1)} ms`,
    );
  });
});

describe('two consumers in one group', () => {
  it('share the partitions and still deliver every event to exactly its recipients', async () => {
    const [member, outsider] = [newUserId(), newUserId()];
    const [m1, o1] = [await open(member), await open(outsider)];
    const roomId = randomUUID();
    const [one, two] = await startPair();
    try {
      await join(member, roomId, [m1]);
      const turns = (c: ConsumerProcess) =>
        consumerMetric(c, 'ws_gateway_events_total', {
          topic: GAMES,
          event_type: 'games.event.bigger_dice.turn_changed',
        });
      const before = [await turns(one), await turns(two)];
      const seqs = Array.from({ length: 40 }, (_, i) => i);

      const expected = await produceNumbered(roomId, seqs);
      await until(m1, 'all 40 events', () => {
        const got = new Set(seqsAt(m1, roomId));
        return seqs.every((s) => got.has(s));
      });
      // One broadcast per partition, after the room events: once the outsider has all four, any room
      // event wrongly sent to them would have arrived first.
      await Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) =>
          produce(gameEvent('room_removed', audience.broadcast(), { room_id: roomId, reason: `p${p}` }), p),
        ),
      );
      await until(
        o1,
        'the four broadcasts',
        (fs) =>
          fs.filter((f) => f.type.endsWith('.room_removed') && f['room_id'] === roomId).length === PARTITIONS,
      );

      expect([...new Set(seqsAt(m1, roomId))].sort((x, y) => x - y)).toEqual(seqs);
      expectPartitionOrder(seqsAt(m1, roomId), expected);
      expect(seqsAt(o1, roomId)).toEqual([]);
      const after = [await turns(one), await turns(two)];
      // Each consumer handled part of the room's events: the group split the partitions.
      expect(after[0]! - before[0]!).toBeGreaterThan(0);
      expect(after[1]! - before[1]!).toBeGreaterThan(0);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
  }, 120_000);
});

describe('a consumer killed with SIGKILL', () => {
  it('delivers, once restarted in the same group, every event produced after its last commit, in partition order', async () => {
    const group = `e2e-kill-${randomUUID()}`;
    const user = newUserId();
    const client = await open(user);
    const roomId = randomUUID();
    const first = await consumer(group);
    let second: ConsumerProcess | undefined;
    try {
      await join(user, roomId, [client]);
      const warmUp = await produceNumbered(roomId, [0, 1, 2, 3, 4, 5, 6, 7]);
      await until(client, 'warm-up events', () => new Set(seqsAt(client, roomId)).size === 8);
      expectPartitionOrder(seqsAt(client, roomId), warmUp);

      first.kill();
      expect((await exited(first.child)).signal).toBe('SIGKILL');
      const seqs = Array.from({ length: 40 }, (_, i) => 100 + i);
      const expected = await produceNumbered(roomId, seqs);
      second = await consumer(group);

      await until(
        client,
        'every event produced while down',
        () => {
          const got = new Set(seqsAt(client, roomId));
          return seqs.every((s) => got.has(s));
        },
        60_000,
      );

      expectPartitionOrder(seqsAt(client, roomId), expected);
    } finally {
      first.kill();
      await second?.stop();
    }
  }, 150_000);
});
describe('consumers/events.ts on SIGTERM', () => {
  it('stops cleanly: exits 0, logs "consumer stopped", and a restart does not redeliver what it processed', async () => {
    const group = `e2e-term-${randomUUID()}`;
    const user = newUserId();
    const client = await open(user);
    const roomId = randomUUID();
    const first = await consumer(group, { LOG_LEVEL: 'info' });
    let second: ConsumerProcess | undefined;
    try {
      await join(user, roomId, [client]);
      const seqs = Array.from({ length: 12 }, (_, i) => i);
      await produceNumbered(roomId, seqs);
      await until(client, 'the 12 events', () => new Set(seqsAt(client, roomId)).size === seqs.length);

      const exit = exited(first.child);
      process.kill(-first.child.pid!, 'SIGTERM');
      const stopped = await Promise.race([
        exit,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 10_000).unref()),
      ]);

      expect(stopped).toEqual({ code: 0, signal: null });
      expect(first.output()).toContain('"msg":"consumer stopped"');

      second = await consumer(group, { LOG_LEVEL: 'info' });
      // One marker per partition, after everything else: once all four arrived, a redelivery of the
      // processed events (which precede them in their partitions) would have arrived too.
      await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => produce(numbered(roomId, 1000 + p), p)));
      await until(
        client,
        'the four markers',
        () => seqsAt(client, roomId).filter((s) => s >= 1000).length === PARTITIONS,
      );

      expect(
        seqsAt(client, roomId)
          .filter((s) => s < 1000)
          .sort((x, y) => x - y),
      ).toEqual(seqs);
    } finally {
      first.kill();
      await second?.stop();
    }
  }, 120_000);
});
