/**
 * Fan-out at scale, against the Management API stand-in (account throttle, slow and gone
 * connections) and a real Redis: the fleet-wide push budget, the priorities, and the slow-client
 * policy — each through the production pusher, and through the event pipeline where the rule is
 * about events.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { staticCredentialsFor } from '../../lib/aws/credentials';
import { loadConfig } from '../../lib/config';
import { createPipeline, type ProcessRecord } from '../../lib/consumer/pipeline';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { deliverWelcome } from '../../lib/gateway/welcome';
import type { EventPublisher, OutboundRecord } from '../../lib/kafka/publisher';
import { silentLogger } from '../../lib/logger';
import { createMetrics, type Metrics } from '../../lib/metrics';
import type { Envelope } from '../../lib/protocol/envelope';
import { createPushBudget, type PushBudget } from '../../lib/push/budget';
import { createManagementApiCloser } from '../../lib/push/closer';
import { type ClientPusher, createManagementApiPusher } from '../../lib/push/pusher';
import { createFanout, type Fanout, type FanoutResults } from '../../lib/push/scheduler';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createPipelineFanout } from '../../lib/runtime/fanout';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { audience, gameEvent } from '../support/backend';
import { type FakeManagementApi, startManagementApi } from '../support/management-api';
import { connectAs, keysWithPrefix } from '../support/store';

function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  return url;
}

const newConnectionId = () => randomBytes(10).toString('base64');
const ids = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);
const frame = (type: string) => JSON.stringify({ type });
const credentials = () => ({ accessKeyId: 'local', secretAccessKey: 'local' });

let redis: RedisClient;
let api: FakeManagementApi | undefined;
let pusher: ClientPusher | undefined;
let fanout: Fanout | undefined;
let prefix: string;

beforeAll(() => {
  redis = createRedisClient({ url: redisUrl(), cluster: false, logger: silentLogger });
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(() => {
  prefix = `it:fanout:${randomUUID()}:`;
});

afterEach(async () => {
  await fanout?.close(1000);
  fanout = undefined;
  await api?.stop();
  api = undefined;
  const keys = await keysWithPrefix(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
});

function singleAttemptPusher(endpoint: string, extraTimeout?: number): ClientPusher {
  pusher = createManagementApiPusher({
    endpoint,
    region: 'us-east-1',
    logger: silentLogger,
    maxRetries: 0,
    timeoutMs: extraTimeout ?? 2000,
    // As in production (lib/runtime/fanout.ts): the scheduler suspends unanswered connections.
    suspendUnansweredMs: 0,
    credentials,
  });
  return pusher;
}

function budgetOf(rps: number, burst: number, client: RedisClient | null = redis): PushBudget {
  return createPushBudget({
    redis: client,
    key: `${prefix}gw:push:budget`,
    rps,
    burst,
    logger: silentLogger,
  });
}

function fanoutOf(
  endpoint: string,
  budget: PushBudget | null,
  extra: {
    slowClientMs?: number;
    metrics?: Metrics;
    maxInFlight?: number;
    timeoutMs?: number;
    reservedTokens?: number;
    reservedInFlight?: number;
  } = {},
): Fanout {
  const p = singleAttemptPusher(endpoint, extra.timeoutMs);
  fanout = createFanout({
    pusher: p,
    closer: createManagementApiCloser({ endpoint, region: 'us-east-1', credentials }),
    budget,
    maxInFlight: extra.maxInFlight ?? 16,
    maxRetries: 2,
    slowClientMs: extra.slowClientMs ?? 30_000,
    tokenBatch: 10,
    reservedTokens: extra.reservedTokens,
    reservedInFlight: extra.reservedInFlight,
    backoffBaseMs: 20,
    logger: silentLogger,
    metrics: extra.metrics,
  });
  return fanout;
}

const okCount = (results: FanoutResults) => [...results.values()].filter((r) => r === 'ok').length;

describe('the fleet-wide push budget', () => {
  it('grants two processes sharing the Redis bucket no more than one budget between them', async () => {
    const other = createRedisClient({ url: redisUrl(), cluster: false, logger: silentLogger });
    try {
      const a = budgetOf(50, 20);
      const b = budgetOf(50, 20, other);
      // Connected and the script loaded: a first call slower than the deadline would fall back to
      // a local bucket for a second (that case has its own test).
      await Promise.all([a.acquire(1), b.acquire(1)]);
      const t0 = performance.now();
      let granted = 0;
      const take = async (budget: PushBudget) => {
        while (performance.now() - t0 < 1000) granted += await budget.acquire(5);
      };
      await Promise.all([take(a), take(b)]);
      const elapsed = (performance.now() - t0) / 1000;
      // Burst plus the rate over the elapsed time — shared, not twice that. The last call of each
      // may have started just before the second was up, and grants at most 5.
      expect(granted).toBeLessThanOrEqual(18 + 50 * elapsed + 10);
      expect(granted).toBeGreaterThanOrEqual(18);
      expect(a.mode).toBe('shared');
    } finally {
      await other.quit();
    }
  });

  it('keeps the fleet under the account throttle: a budget below it gets no 429s, and every push arrives', async () => {
    api = await startManagementApi({ rate: 400, burst: 150, latencyMs: 2, jitterMs: 1 });
    const f = fanoutOf(api.endpoint, budgetOf(300, 100));
    const t0 = performance.now();
    const results = await f.submit(ids(600, 'c'), frame('t'), 'broadcast');
    const elapsed = performance.now() - t0;
    expect(okCount(results)).toBe(600);
    expect(api.stats().throttled).toBe(0);
    // Paced: 500 pushes beyond the burst at 300/s take at least ~1.6 s.
    expect(elapsed).toBeGreaterThanOrEqual(1500);
  });

  it('backs off fleet-wide when the account answers 429 anyway, and still delivers every push', async () => {
    // The account throttle is far below the budget: something else of the account uses it.
    api = await startManagementApi({ rate: 150, burst: 30, latencyMs: 2, jitterMs: 1 });
    const budget = budgetOf(1000, 100);
    const f = fanoutOf(api.endpoint, budget);
    const results = await f.submit(ids(500, 'c'), frame('t'), 'broadcast');
    expect(okCount(results)).toBe(500);
    const { throttled } = api.stats();
    expect(throttled).toBeGreaterThan(0);
    expect(budget.factor).toBeLessThan(1);
    // The adapted rate is in Redis, for every process of the fleet.
    const shared = await redis.hget(`${prefix}gw:push:budget`, 'f');
    expect(Number(shared)).toBeLessThan(1);
    // Each frame arrived once.
    expect(api.requests.filter((r) => r.status === 200)).toHaveLength(500);
  });

  it('degrades to a local budget when Redis is unreachable, and keeps delivering', async () => {
    const dead = createRedisClient({
      url: 'redis://127.0.0.1:1',
      cluster: false,
      logger: silentLogger,
      maxRetriesPerRequest: 0,
    });
    try {
      api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
      const budget = budgetOf(200, 50, dead);
      const f = fanoutOf(api.endpoint, budget);
      const results = await f.submit(ids(100, 'c'), frame('t'), 'game');
      expect(okCount(results)).toBe(100);
      expect(budget.mode).toBe('local');
    } finally {
      dead.disconnect();
    }
  });
});

describe('welcome pushes and the budget', () => {
  const tokensLeft = async () => Number(await redis.hget(`${prefix}gw:push:budget`, 'tk'));

  it('debits the welcome from the fleet budget, without waiting for a token', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    const store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
    const id = await connectAs(store, newConnectionId());
    // A budget of 1 token a second, already spent: a grant would wait about a second.
    const budget = budgetOf(1, 1);
    await budget.acquire(1);
    const p = singleAttemptPusher(api.endpoint);
    const result = await deliverWelcome(
      { store, pusherFor: () => p, logger: silentLogger, now: () => new Date(), pushBudget: budget },
      { connectionId: id, endpoint: api.endpoint },
    );
    expect(result).toBe('sent');
    expect(api.delivered(id).map((b) => b['type'])).toEqual(['system.welcome']);
    // Sent at once, and owed: the bucket is in debt by about that token.
    expect(await tokensLeft()).toBeLessThan(-0.5);
  });

  it('lets the debt delay the next grant, and owes at most one burst', async () => {
    const budget = budgetOf(100, 10);
    await budget.debit(50);
    // Down to -burst, not -40.
    expect(await tokensLeft()).toBeGreaterThanOrEqual(-10);
    expect(await tokensLeft()).toBeLessThan(-9);
    const t0 = performance.now();
    expect(await budget.acquire(1)).toBe(1);
    // 11 tokens to refill at 100/s before one can be granted.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
  });
});

describe('priorities', () => {
  it('sends game frames ahead of spectator frames ahead of a broadcast queued before both', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    const f = fanoutOf(api.endpoint, budgetOf(100, 5), { maxInFlight: 2 });
    const broadcast = f.submit(ids(200, 'all'), frame('room_created'), 'broadcast');
    const spectators = f.submit(ids(5, 'spec'), frame('spectator_joined'), 'spectator');
    const game = f.submit(ids(5, 'player'), frame('turn_changed'), 'game');
    expect(okCount(await game)).toBe(5);
    expect(okCount(await spectators)).toBe(5);
    expect(okCount(await broadcast)).toBe(200);
    const order = api.requests.filter((r) => r.status === 200).map((r) => r.body['type']);
    const last = (t: string) => order.lastIndexOf(t);
    expect(last('turn_changed')).toBeLessThan(order.indexOf('spectator_joined'));
    // Only what was already in flight (2) and the burst went before them.
    expect(last('spectator_joined')).toBeLessThan(20);
    expect(last('room_created')).toBe(order.length - 1);
  });

  it('keeps a request slot for game frames: one submitted while a broadcast fills the others goes out at once', async () => {
    api = await startManagementApi({ latencyMs: 400, jitterMs: 0 });
    const stand = api;
    // 4 slots, 1 of them reserved (the default share, an eighth, is at least 1).
    const f = fanoutOf(api.endpoint, null, { maxInFlight: 4 });
    const broadcast = f.submit(ids(12, 'all'), frame('room_created'), 'broadcast');
    while (stand.requests.length < 3) await new Promise((r) => setTimeout(r, 2));
    const game = f.submit(['player'], frame('turn_changed'), 'game');
    expect(okCount(await game)).toBe(1);
    // The broadcast had the other three slots; the game frame did not wait for one of them.
    const order = stand.requests.map((r) => r.body['type']);
    expect(order.indexOf('turn_changed')).toBe(3);
    expect(okCount(await broadcast)).toBe(12);
  });

  it('keeps tokens for game frames: the broadcast does not spend the last ones, a game frame does not wait for a grant', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    const stand = api;
    // Burst 3 and 2 tokens a second: the next grant after the burst is half a second away. Two of
    // the three are reserved for game frames.
    const f = fanoutOf(api.endpoint, budgetOf(2, 3), { reservedTokens: 2 });
    void f.submit(ids(4, 'all'), frame('room_created'), 'broadcast');
    while (stand.requests.length < 1) await new Promise((r) => setTimeout(r, 2));
    const game = await f.submit(['player'], frame('turn_changed'), 'game');
    expect(game.get('player')).toBe('ok');
    // One broadcast frame went with the burst, then the game frame with a reserved token.
    expect(stand.requests.map((r) => r.body['type'])).toEqual(['room_created', 'turn_changed']);
  });

  describe('through the event pipeline', () => {
    let store: SessionStore;
    let processRecord: ProcessRecord;
    let metrics: Metrics;
    let offset = 0;
    const publisher: EventPublisher = {
      publish: async () => {},
      ping: async () => {},
      disconnect: async () => {},
    };
    const record = (e: Envelope) => ({
      topic: 'games.events',
      partition: 0,
      offset: String(offset++),
      value: JSON.stringify(e),
    });

    beforeEach(async () => {
      api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
      store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
      const f = fanoutOf(api.endpoint, budgetOf(60, 10), { maxInFlight: 4 });
      metrics = createMetrics();
      processRecord = createPipeline({
        config: loadConfig({ LOG_LEVEL: 'silent' }),
        store,
        publisher,
        pusher: pusher!,
        fanout: f,
        lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
        metrics,
        logger: silentLogger,
        pushConcurrency: 4,
        newId: randomUUID,
        now: () => new Date(),
      });
    });

    const broadcastRecord = () =>
      record(gameEvent('room_created', audience.broadcast(), { room_id: randomUUID(), room_name: 'r' }));
    const deliveries = (result: string) => metrics.counter('ws_gateway_deliveries_total', '').get({ result });

    // The semantics of a handed-off broadcast (docs/architecture.md, "Broadcasts are handed off"):
    // its record is done, and may be committed, once its pushes are queued; a clean stop delivers
    // the queue; what a stop gives up on (or a crash loses) is not redelivered.
    it('lets a broadcast record finish before its pushes; a clean stop still delivers every queued frame', async () => {
      const lobby = [];
      for (let i = 0; i < 40; i++) lobby.push(await connectAs(store, newConnectionId()));
      const outcome = await processRecord(broadcastRecord());
      expect(outcome).toMatchObject({ status: 'delivered', recipients: 40, queued: 40 });
      // Done before its pushes: 40 at 60/s (burst 10) take half a second.
      expect(api!.requests.length).toBeLessThan(40);
      await fanout!.close(20_000);
      for (const c of lobby) expect(api!.delivered(c)).toHaveLength(1);
      await new Promise((r) => setImmediate(r));
      expect(deliveries('ok')).toBe(40);
      expect(deliveries('failed')).toBe(0);
    });

    it('counts the frames of a broadcast a stop gives up on as failed deliveries: they are not redelivered', async () => {
      const lobby = [];
      for (let i = 0; i < 200; i++) lobby.push(await connectAs(store, newConnectionId()));
      expect(await processRecord(broadcastRecord())).toMatchObject({ queued: 200 });
      // 200 pushes at 60/s take over 3 s; the stop waits 300 ms.
      await fanout!.close(300);
      await new Promise((r) => setImmediate(r));
      const delivered = lobby.filter((c) => api!.delivered(c).length === 1).length;
      expect(delivered).toBeLessThan(200);
      expect(deliveries('ok')).toBe(delivered);
      expect(deliveries('failed')).toBe(200 - delivered);
    });

    it('delivers a room event while a broadcast queued before it is still paced out; each player gets both in order', async () => {
      const roomId = randomUUID();
      const players = [String(randomInt(1e6, 2e9)), String(randomInt(1e6, 2e9))];
      const playerConns: string[] = [];
      for (const userId of players) {
        const id = await connectAs(store, newConnectionId(), userId);
        await store.joinRoom(userId, roomId, { spectator: false });
        playerConns.push(id);
      }
      const lobby = [];
      for (let i = 0; i < 150; i++) lobby.push(await connectAs(store, newConnectionId()));

      const broadcast = await processRecord(
        record(gameEvent('room_created', audience.broadcast(), { room_id: randomUUID(), room_name: 'r' })),
      );
      // Handed off: the record is done, its pushes are queued.
      expect(broadcast).toMatchObject({ status: 'delivered', recipients: 152, queued: 152 });
      const turn = await processRecord(
        record(
          gameEvent('turn_changed', audience.room(roomId), {
            room_id: roomId,
            current_turn: 1,
            turn_number: 2,
          }),
        ),
      );
      expect(turn).toMatchObject({ status: 'delivered', recipients: 2, ok: 2 });
      // 152 pushes at 60/s take more than 2 s; the room event did not wait for them.
      const broadcastSoFar = api!.requests.filter(
        (r) => r.status === 200 && String(r.body['type']).endsWith('room_created'),
      );
      expect(broadcastSoFar.length).toBeLessThan(100);
      for (const c of playerConns) {
        expect(api!.delivered(c).map((b) => String(b['type']).split('.').pop())).toEqual([
          'room_created',
          'turn_changed',
        ]);
      }
      await fanout!.idle();
      for (const c of [...playerConns, ...lobby]) {
        expect(String(api!.delivered(c)[0]?.['type'])).toMatch(/\.room_created$/);
      }
      expect(api!.requests.filter((r) => r.status === 200)).toHaveLength(154);
    });
  });
});

describe('connections that do not answer', () => {
  it('retries a push that timed out once and delivers every later frame to that connection', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    api.behave('blip', { kind: 'hang', times: 1 });
    // The production wiring of the scheduler and its pusher.
    fanout = createPipelineFanout({
      config: loadConfig({ LOG_LEVEL: 'silent', PUSH_TIMEOUT_MS: '300', PUSH_BUDGET_RPS: '0' }),
      endpoint: api.endpoint,
      redis,
      logger: silentLogger,
      metrics: createMetrics(),
      credentials: staticCredentialsFor(api.endpoint, {})!,
      closer: createManagementApiCloser({ endpoint: api.endpoint, region: 'us-east-1', credentials }),
    });
    const f = fanout;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => f.submit(['blip', 'other'], frame(`m${i}`), 'game')),
    );
    // Issue 8: the pipeline's pusher suspended a connection for 10 s after one unanswered request,
    // so the scheduler's retries and every later frame to it failed at once — all lost.
    expect(results.map((r) => r.get('blip'))).toEqual(Array(10).fill('ok'));
    expect(api.delivered('blip').map((b) => b['type'])).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
    expect(api.delivered('other')).toHaveLength(10);
  });

  it('suspends a connection whose retries all went unanswered: its later frames fail without a request', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    api.behave('stuck', { kind: 'hang' });
    const f = fanoutOf(api.endpoint, null, { timeoutMs: 200 });
    const first = await f.submit(['stuck', 'other'], frame('m0'), 'game');
    expect(first.get('stuck')).toBeInstanceOf(Error);
    const attemptsAfterFirst = api.attempts('stuck');
    // 1 + maxRetries (2) requests, each timed out.
    expect(attemptsAfterFirst).toBe(3);
    const later = await Promise.all(
      Array.from({ length: 20 }, (_, i) => f.submit(['stuck', 'other'], frame(`m${i + 1}`), 'game')),
    );
    expect(later.map((r) => (r.get('stuck') as Error & { errorType?: string }).errorType)).toEqual(
      Array(20).fill('Suspended'),
    );
    expect(api.attempts('stuck')).toBe(attemptsAfterFirst);
    expect(api.delivered('other')).toHaveLength(21);
  });
});

describe('slow clients', () => {
  it('backs a "buffer full" connection off on its own, then closes it and settles it gone', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    api.behave('slow', { kind: 'slow' });
    const metrics = createMetrics();
    const f = fanoutOf(api.endpoint, budgetOf(1000, 100), { slowClientMs: 1500, metrics });
    const slowFrames = [
      f.submit(['slow', 'fast'], frame('a'), 'game'),
      f.submit(['slow', 'fast'], frame('b'), 'game'),
    ];
    // The fast connection gets its frames without waiting for the slow one.
    const fast = await Promise.race([
      (async () => {
        for (let i = 0; i < 20; i++) await f.submit(['fast'], frame(`f${i}`), 'game');
        return 'fast done';
      })(),
      Promise.all(slowFrames).then(() => 'slow settled first'),
    ]);
    expect(fast).toBe('fast done');
    expect(api.delivered('fast')).toHaveLength(22);
    const [a, b] = await Promise.all(slowFrames);
    expect(a?.get('slow')).toBe('gone');
    expect(b?.get('slow')).toBe('gone');
    expect(a?.get('fast')).toBe('ok');
    expect(api.calls.filter((c) => c.method === 'DELETE').map((c) => c.connectionId)).toEqual(['slow']);
    expect(metrics.counter('ws_gateway_slow_clients_closed_total', '').get()).toBe(1);
    // Backed off, not hammered: far fewer requests than 1.5 s of retries at once would make.
    expect(api.attempts('slow')).toBeLessThan(30);
    expect(api.attempts('slow')).toBeGreaterThan(2);
  });

  it('does not close a connection whose buffer drains before the limit; its frames arrive in order', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    api.behave('busy', { kind: 'slow' });
    const f = fanoutOf(api.endpoint, null, { slowClientMs: 3000 });
    const pending = [1, 2, 3].map((n) => f.submit(['busy'], frame(`m${n}`), 'game'));
    const stand = api;
    setTimeout(() => stand.behave('busy', { kind: 'normal' }), 500);
    const results = await Promise.all(pending);
    expect(results.map((r) => r.get('busy'))).toEqual(['ok', 'ok', 'ok']);
    expect(api.delivered('busy').map((b) => b['type'])).toEqual(['m1', 'm2', 'm3']);
    expect(api.calls).toHaveLength(0);
  });

  it('is cleaned up by the pipeline like a 410: its state is removed and its departure published', async () => {
    api = await startManagementApi({ latencyMs: 1, jitterMs: 0 });
    const store = createSessionStore({ redis, connectionTtlSecs: 86400, keyPrefix: prefix });
    const records: OutboundRecord[] = [];
    const publisher: EventPublisher = {
      publish: async (batch) => {
        records.push(...batch);
      },
      ping: async () => {},
      disconnect: async () => {},
    };
    const userId = String(randomInt(1e6, 2e9));
    const slow = await connectAs(store, newConnectionId(), userId);
    api.behave(slow, { kind: 'slow' });
    const f = fanoutOf(api.endpoint, budgetOf(1000, 100), { slowClientMs: 1000 });
    const processRecord = createPipeline({
      config: loadConfig({ LOG_LEVEL: 'silent', DISCONNECT_GRACE_SECS: '0' }),
      store,
      publisher,
      pusher: pusher!,
      fanout: f,
      lifecycle: createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix }),
      metrics: createMetrics(),
      logger: silentLogger,
      pushConcurrency: 4,
      newId: randomUUID,
      now: () => new Date(),
    });
    const outcome = await processRecord({
      topic: 'games.events',
      partition: 0,
      offset: '0',
      value: JSON.stringify(
        gameEvent('game_starting', audience.user(userId), { room_id: randomUUID(), players: [] }),
      ),
    });
    expect(outcome).toMatchObject({ status: 'delivered', recipients: 1, gone: 1 });
    expect(await store.connectionsOfUsers([userId])).toEqual([]);
    expect(records.map((r) => r.envelope.event_type)).toContain('system.event.user_disconnected');
  });
});
