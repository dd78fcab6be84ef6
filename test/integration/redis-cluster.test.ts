/**
 * The stores on a real three-master Redis Cluster (ElastiCache cluster mode in production), with
 * the client created from configuration (REDIS_CLUSTER=true) and a single seed node: the shared
 * SessionStore, LifecycleStores and LivenessStore contracts (test/support/contracts/) run here too,
 * each case in a key space whose shared keys (broadcast set, presence set, a user's connections)
 * sit on three different masters, so every operation spans nodes and slots and any CROSSSLOT error
 * fails it; plus what only a cluster shows (keys spread over nodes, scripts loaded on every node).
 *
 * The cluster is started here (three `redis-server --cluster-enabled yes` on loopback, joined with
 * `redis-cli --cluster create`) and torn down after the file.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { loadConfig } from '../../lib/config';
import { createLifecycleStores } from '../../lib/gateway/lifecycle';
import { silentLogger } from '../../lib/logger';
import type { Identity } from '../../lib/protocol/envelope';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createLivenessStore } from '../../lib/store/liveness';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import {
  type LifecycleHarness,
  lifecycleContract,
  livenessContract,
} from '../support/contracts/lifecycle.contract';
import {
  ALICE,
  BOB,
  newConnectionId,
  sessionStoreContract,
} from '../support/contracts/session-store.contract';
import { freePort, type RunningService, requireBinary, startRedis } from '../support/services';

/** The gate of a connection Redis knows (fails the test when it reports the connection lost). */
async function gated(s: SessionStore, id: string, rate: { burst: number; perSec: number }) {
  const g = await s.gateMessage(id, rate);
  if (!g) throw new Error(`gate: connection ${id} unknown to Redis`);
  return g;
}

const run = promisify(execFile);

const MASTERS = 3;
const CONNECTION_TTL_SECS = 86400;

let dir: string;
const nodes: RunningService[] = [];
let seedUrl: string;
let redis: RedisClient;
let prefix: string;
let store: SessionStore;

async function clusterInfo(port: number): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info']);
  return stdout;
}

async function waitForClusterOk(ports: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = await Promise.all(ports.map(clusterInfo));
    if (infos.every((info) => /^cluster_state:ok\r?$/m.test(info))) return;
    if (Date.now() > deadline) throw new Error(`cluster not ok within ${timeoutMs} ms:\n${infos.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The master (host:port) that owns a key, from the client's own slot table. */
async function ownerOf(key: string): Promise<string> {
  if (!(redis instanceof Cluster)) throw new Error('expected a Cluster client');
  const slot = await redis.cluster('KEYSLOT', key);
  const owner = redis.slots[slot]?.[0];
  if (!owner) throw new Error(`no owner known for slot ${slot}`);
  return owner;
}

/** A connection as `$connect` and `system.authenticate` leave it. */
async function connectAs(identity: Identity | null): Promise<string> {
  const id = newConnectionId();
  const connectedAt = new Date();
  await store.registerConnection(id, { connectedAt, bound: null });
  if (identity) await store.authenticate(id, identity, null, connectedAt, connectedAt.toISOString());
  return id;
}

beforeAll(async () => {
  requireBinary('redis-server');
  dir = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-redis-cluster-'));
  for (let i = 0; i < MASTERS; i++) {
    const port = await freePort();
    // The cluster bus needs a port of its own; the default (port + 10000) may be taken or exceed 65535.
    const busPort = await freePort();
    nodes.push(
      await startRedis({
        port,
        dir,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          path.join(dir, `nodes-${port}.conf`),
          '--cluster-port',
          String(busPort),
        ],
      }),
    );
  }
  const ports = nodes.map((n) => Number(new URL(n.address).port));
  await run(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { timeout: 30_000 },
  );
  await waitForClusterOk(ports, 30_000);
  seedUrl = nodes[0]!.address;

  // Exactly what a container does: configuration decides the client, one seed node is enough.
  const config = loadConfig({ REDIS_URL: seedUrl, REDIS_CLUSTER: 'true' });
  redis = createRedisClient({ url: config.redis.url, cluster: config.redis.cluster, logger: silentLogger });
}, 90_000);

afterAll(async () => {
  await redis?.quit();
  await Promise.all(nodes.map((n) => n.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
  const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
  if (alive.length > 0) throw new Error(`redis-server still running: ${alive.map((n) => n.process.pid)}`);
});

/**
 * A fresh key prefix whose shared keys (broadcast set, presence set, Alice's connections) sit on
 * three different masters, so every operation on it necessarily spans nodes and slots.
 */
async function spreadPrefix(): Promise<string> {
  for (;;) {
    const candidate = `it:cluster:${randomUUID()}:`;
    const keys = createSessionStore({
      redis,
      connectionTtlSecs: CONNECTION_TTL_SECS,
      keyPrefix: candidate,
    }).keys;
    const owners = await Promise.all([
      ownerOf(keys.connections()),
      ownerOf(keys.presenceOnline()),
      ownerOf(keys.userSockets(ALICE.userId)),
    ]);
    if (new Set(owners).size === MASTERS) return candidate;
  }
}

describe('Redis Cluster client', () => {
  it('is an ioredis Cluster when REDIS_CLUSTER=true and discovers every master from one seed', async () => {
    expect(redis).toBeInstanceOf(Cluster);
    const cluster = redis as Cluster;
    await cluster.ping();

    expect(cluster.nodes('master')).toHaveLength(MASTERS);
    expect(new Set(cluster.slots.map((owners) => owners[0])).size).toBe(MASTERS);
  });

  it('is a single-node client when REDIS_CLUSTER is not set', async () => {
    const config = loadConfig({ REDIS_URL: seedUrl });
    const single = createRedisClient({
      url: config.redis.url,
      cluster: config.redis.cluster,
      logger: silentLogger,
    });
    try {
      expect(single).not.toBeInstanceOf(Cluster);
    } finally {
      await single.quit();
    }
  });
});

describe('keys and scripts spread over the masters', () => {
  beforeEach(async () => {
    prefix = await spreadPrefix();
    store = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS, keyPrefix: prefix });
  });

  it('records chat message senders on whichever node owns each message key', async () => {
    const ids = Array.from({ length: 12 }, () => randomUUID());
    await Promise.all(
      ids.map((id, i) => store.recordChatMessage(id, i % 2 === 0 ? ALICE.userId : BOB.userId)),
    );

    const owners = new Set(await Promise.all(ids.map((id) => ownerOf(store.keys.chatMessage(id)))));
    expect(owners.size).toBeGreaterThan(1);
    expect(await store.chatMessageSenders([...ids, 'unknown'])).toEqual([
      ...ids.map((_, i) => (i % 2 === 0 ? ALICE.userId : BOB.userId)),
      null,
    ]);
  });

  it('rate-limits with the Lua gate, loading the script on every node on first use', async () => {
    // Fresh connections on all masters, gated at once: each node must load the script (NOSCRIPT
    // fallback) inside auto-pipelined batches.
    const ids = await Promise.all(Array.from({ length: 24 }, () => connectAs(ALICE)));
    const owners = new Set(await Promise.all(ids.map((id) => ownerOf(store.keys.conn(id)))));
    expect(owners.size).toBe(MASTERS);
    await Promise.all(nodes.map((n) => run('redis-cli', ['-u', n.address, 'script', 'flush'])));

    const gates = await Promise.all(ids.map((id) => gated(store, id, { burst: 3, perSec: 0 })));
    for (const gate of gates) {
      expect(gate).toMatchObject({ allowed: true, identity: ALICE, welcome: 'mine' });
    }

    const [id] = ids;
    const next = [];
    for (let i = 0; i < 3; i++) next.push(await gated(store, id!, { burst: 3, perSec: 0 }));
    expect(next.map((g) => g.allowed)).toEqual([true, true, false]);
    expect(next.map((g) => g.welcome)).toEqual(['pending', 'pending', 'pending']);
  });
});

/** The second container's client, created by the first harness that needs it. */
let secondClient: RedisClient | undefined;
const second = () => {
  secondClient ??= createRedisClient({ url: seedUrl, cluster: true, logger: silentLogger });
  return secondClient;
};
afterAll(async () => {
  await secondClient?.quit();
});

const sessionsOn = (
  client: RedisClient,
  keyPrefix: string,
  limits: { connections?: number; lobbies?: number } = {},
) =>
  createSessionStore({
    redis: client,
    connectionTtlSecs: CONNECTION_TTL_SECS,
    keyPrefix,
    maxConnectionsPerUser: limits.connections,
    maxLobbiesPerConnection: limits.lobbies,
  });

async function json(key: string): Promise<Record<string, unknown> | null> {
  const raw = await redis.get(key);
  return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const loseRecord = (s: SessionStore, id: string) => redis.del(s.keys.conn(id)).then(() => undefined);
const online = async (s: SessionStore) => (await redis.smembers(s.keys.presenceOnline())).sort();

sessionStoreContract('Redis Cluster adapter (three masters)', async () => ({
  raceRounds: 50,
  async create(limits) {
    const keyPrefix = await spreadPrefix();
    return { store: sessionsOn(redis, keyPrefix, limits), second: sessionsOn(second(), keyPrefix, limits) };
  },
  advance: sleep,
  loseRecord: ({ store: s }, id) => loseRecord(s, id),
  async tombstone({ store: s }, id) {
    await redis.hset(s.keys.conn(id), 'x', '1');
    await redis.expire(s.keys.conn(id), 300);
  },
  session: ({ store: s }, id) => json(s.keys.socket(id)),
  presence: ({ store: s }, userId) => json(s.keys.userPresence(userId)),
  online: ({ store: s }) => online(s),
}));

const lifecycleOnCluster = async (): Promise<LifecycleHarness> => ({
  async create({ reconnectTtlSecs }) {
    const keyPrefix = await spreadPrefix();
    return {
      lifecycle: createLifecycleStores({ redis, reconnectTtlSecs, keyPrefix }),
      second: createLifecycleStores({ redis: second(), reconnectTtlSecs, keyPrefix }),
      sessions: sessionsOn(redis, keyPrefix),
      liveness: createLivenessStore({ redis, keyPrefix }),
    };
  },
  advance: sleep,
  now: () => new Date(),
  loseRecord: ({ sessions }, id) => loseRecord(sessions, id),
  online: ({ sessions }) => online(sessions),
});
lifecycleContract('Redis Cluster adapters (three masters)', lifecycleOnCluster);
livenessContract('Redis Cluster adapter (three masters)', lifecycleOnCluster);
