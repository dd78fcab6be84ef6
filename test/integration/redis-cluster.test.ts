/**
 * The session store on a real three-master Redis Cluster (ElastiCache cluster mode in production):
 * connect, authenticate, rooms, lobbies, broadcast, the rate-limit Lua gate and cleanup, with the
 * client created from configuration (REDIS_CLUSTER=true) and a single seed node. Every operation
 * touches keys in different hash slots; any CROSSSLOT error fails the operation and so the test.
 *
 * The cluster is started here (three `redis-server --cluster-enabled yes` on loopback, joined with
 * `redis-cli --cluster create`) and torn down after the file.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
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
const ALICE: Identity = { userId: '4', username: 'Alice', roles: ['user'] };
const BOB: Identity = { userId: '9', username: 'Bob', roles: ['user', 'vip'] };

/** An API Gateway-like connection id (base64, may contain `+`, `/`, `=`). */
const newConnectionId = () => randomBytes(10).toString('base64');

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

beforeEach(async () => {
  // A fresh prefix whose shared keys (broadcast set, presence set, Alice's connections) sit on three
  // different masters, so every operation below necessarily spans nodes and slots.
  for (;;) {
    prefix = `it:cluster:${randomUUID()}:`;
    store = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS, keyPrefix: prefix });
    const owners = await Promise.all([
      ownerOf(store.keys.connections()),
      ownerOf(store.keys.presenceOnline()),
      ownerOf(store.keys.userSockets(ALICE.userId)),
    ]);
    if (new Set(owners).size === MASTERS) break;
  }
});

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

describe('session store on a three-master cluster', () => {
  it('registers connections and lists them for a broadcast', async () => {
    const anonymous = await connectAs(null);
    const alice = await connectAs(ALICE);

    expect((await store.allConnections()).sort()).toEqual([anonymous, alice].sort());
  });

  it('authenticates, tracks presence across tabs and re-authentication as another user', async () => {
    const connectedAt = new Date();
    const tab1 = newConnectionId();
    const tab2 = newConnectionId();
    await store.registerConnection(tab1, { connectedAt, bound: null });
    await store.registerConnection(tab2, { connectedAt, bound: null });

    const first = await store.authenticate(tab1, ALICE, null, connectedAt, connectedAt.toISOString());
    const second = await store.authenticate(tab2, ALICE, null, connectedAt, connectedAt.toISOString());
    expect(first).toMatchObject({ cameOnline: true, previous: null });
    expect(second).toMatchObject({ cameOnline: false, previous: null });
    expect((await store.connectionsOfUsers([ALICE.userId])).sort()).toEqual([tab1, tab2].sort());
    expect((await redis.smembers(store.keys.presenceOnline())).sort()).toEqual([ALICE.userId]);
    expect(await store.usernameOf(ALICE.userId)).toBe('Alice');

    const again = await store.authenticate(tab2, BOB, ALICE, connectedAt, connectedAt.toISOString());
    expect(again).toMatchObject({ cameOnline: true, previous: { identity: ALICE, wentOffline: false } });
    expect(await store.connectionsOfUsers([ALICE.userId, BOB.userId])).toHaveLength(2);
    expect((await redis.smembers(store.keys.presenceOnline())).sort()).toEqual(
      [ALICE.userId, BOB.userId].sort(),
    );

    await store.heartbeat(tab1, ALICE, new Date(), connectedAt.toISOString());
    const presence = await redis.get(store.keys.userPresence(ALICE.userId));
    expect(JSON.parse(presence ?? 'null')).toMatchObject({ status: 'online' });
  });

  it('joins and leaves game rooms for every connection of a user, spectators included', async () => {
    const alice1 = await connectAs(ALICE);
    const alice2 = await connectAs(ALICE);
    const bob = await connectAs(BOB);
    const room = `room-${randomUUID()}`;

    await store.joinRoom(ALICE.userId, room, { spectator: false });
    await store.joinRoom(BOB.userId, room, { spectator: true });

    expect((await store.roomConnections(room)).sort()).toEqual([alice1, alice2, bob].sort());
    expect(await store.roomConnections(`spectators:${room}`)).toEqual([bob]);
    expect(await store.roomsOf(alice1)).toEqual([room]);
    expect((await store.roomsOf(bob)).sort()).toEqual([room, `spectators:${room}`].sort());

    await store.leaveRoom(ALICE.userId, room);

    expect(await store.roomConnections(room)).toEqual([bob]);
    expect(await store.roomsOf(alice2)).toEqual([]);
  });

  it('subscribes connections to chat lobbies and unsubscribes them', async () => {
    const alice = await connectAs(ALICE);
    const bob = await connectAs(BOB);
    const lobby = `lobby-${randomUUID()}`;

    await store.joinLobby(alice, lobby);
    await store.joinLobby(bob, lobby);
    expect((await store.lobbyConnections(lobby)).sort()).toEqual([alice, bob].sort());

    await store.leaveLobby(alice, lobby);
    expect(await store.lobbyConnections(lobby)).toEqual([bob]);
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

  it('reports a connection Redis lost as lost and writes nothing', async () => {
    const id = newConnectionId();

    expect(await store.gateMessage(id, { burst: 10, perSec: 1 })).toBeNull();
    expect(await store.allConnections()).toEqual([]);
  });

  it('cleans up every key of a connection once, across rooms, lobbies, users and presence', async () => {
    const tab1 = await connectAs(ALICE);
    const tab2 = await connectAs(ALICE);
    const room = `room-${randomUUID()}`;
    const lobby = `lobby-${randomUUID()}`;
    await store.joinRoom(ALICE.userId, room, { spectator: true });
    await store.joinLobby(tab1, lobby);
    await store.joinLobby(tab2, lobby);

    const first = await store.removeConnection(tab1);
    expect(first).toEqual({
      identity: ALICE,
      rooms: [room],
      spectating: [`spectators:${room}`],
      wentOffline: false,
    });
    expect(await store.removeConnection(tab1)).toBeNull();
    expect(await store.allConnections()).toEqual([tab2]);
    expect(await store.roomConnections(room)).toEqual([tab2]);
    expect(await store.roomConnections(`spectators:${room}`)).toEqual([tab2]);
    expect(await store.lobbyConnections(lobby)).toEqual([tab2]);
    // One key per EXISTS: the two live in different slots.
    expect(await redis.exists(store.keys.conn(tab1))).toBe(0);
    expect(await redis.exists(store.keys.socket(tab1))).toBe(0);

    const last = await store.removeConnection(tab2);
    expect(last).toEqual({
      identity: ALICE,
      rooms: [room],
      spectating: [`spectators:${room}`],
      wentOffline: true,
    });
    expect(await store.allConnections()).toEqual([]);
    expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
    expect(await redis.smembers(store.keys.presenceOnline())).toEqual([]);
    expect(await store.roomConnections(room)).toEqual([]);
    expect(await store.lobbyConnections(lobby)).toEqual([]);
  });

  it('cleans up a connection whose hash is gone through its reverse index, across nodes', async () => {
    const id = await connectAs(ALICE);
    const room = `room-${randomUUID()}`;
    const lobby = `lobby-${randomUUID()}`;
    await store.joinRoom(ALICE.userId, room, { spectator: false });
    await store.joinLobby(id, lobby);
    await redis.del(store.keys.conn(id));

    expect(await store.removeConnection(id)).toEqual({
      identity: ALICE,
      rooms: [room],
      spectating: [],
      wentOffline: true,
    });
    expect(await store.connectionsOfUsers([ALICE.userId])).toEqual([]);
    expect(await store.roomConnections(room)).toEqual([]);
    expect(await store.lobbyConnections(lobby)).toEqual([]);
    expect(await redis.smembers(store.keys.presenceOnline())).toEqual([]);
  });

  it('enforces the per-user connection limit and the lobby limit with single-key scripts', async () => {
    const limited = createSessionStore({
      redis,
      connectionTtlSecs: CONNECTION_TTL_SECS,
      keyPrefix: prefix,
      maxConnectionsPerUser: 2,
      maxLobbiesPerConnection: 1,
    });
    const now = new Date();
    const ids = [newConnectionId(), newConnectionId(), newConnectionId()];
    for (const id of ids) await limited.registerConnection(id, { connectedAt: now, bound: null });

    const results = await Promise.all(
      ids.map((id) => limited.authenticate(id, ALICE, null, now, now.toISOString())),
    );

    expect(results.filter((r) => r === 'connection-limit')).toHaveLength(1);
    expect(await limited.connectionsOfUsers([ALICE.userId])).toHaveLength(2);
    expect(await limited.joinLobby(ids[0]!, 'a')).toBeUndefined();
    expect(await limited.joinLobby(ids[0]!, 'b')).toBe('lobby-limit');
  });
});

describe('connections that come and go (D10) on a three-master cluster', () => {
  it('schedules, cancels and claims departures once, with the reconnection and order keys on any slot', async () => {
    const lifecycle = createLifecycleStores({ redis, reconnectTtlSecs: 300, keyPrefix: prefix });
    const liveness = createLivenessStore({ redis, keyPrefix: prefix });
    const rooms = Array.from({ length: 6 }, () => `room-${randomUUID()}`);

    await lifecycle.departures.schedule(
      [
        { kind: 'offline', identity: ALICE },
        ...rooms.map((roomId) => ({ kind: 'room' as const, identity: ALICE, roomId })),
        { kind: 'offline', identity: BOB },
      ],
      0,
    );
    expect(await lifecycle.departures.cancelOffline(BOB.userId)).toBe(true);
    expect(await lifecycle.departures.cancelRooms(ALICE.userId, [rooms[0]!])).toBe(1);
    const claims = await Promise.all([
      lifecycle.departures.claimDue(100),
      lifecycle.departures.claimDue(100),
    ]);
    expect(claims.flat()).toHaveLength(1 + rooms.length - 1);
    expect(await lifecycle.departures.pending()).toBe(0);

    // Records and their index in different slots; a spectator set voided with its room.
    await lifecycle.reconnect.remember(ALICE.userId, [...rooms, `spectators:${rooms[1]}`]);
    await lifecycle.reconnect.forget(ALICE.userId, rooms[0]!);
    await lifecycle.reconnect.roomRemoved(rooms[1]!);
    expect((await lifecycle.reconnect.take(ALICE.userId)).sort()).toEqual(rooms.slice(2).sort());
    expect(await lifecycle.reconnect.take(ALICE.userId)).toEqual([]);

    expect(await lifecycle.order.admit(rooms[2]!, ALICE.userId, 2000)).toBe(true);
    expect(await lifecycle.order.admit(rooms[2]!, ALICE.userId, 1000)).toBe(false);
    expect(await lifecycle.order.admit(rooms[3]!, ALICE.userId, 1000)).toBe(true);

    const tab = await connectAs(ALICE);
    expect(await store.joinConnection(tab, [rooms[2]!, `spectators:${rooms[2]}`])).toHaveLength(2);
    let cursor = '0';
    const seen: string[] = [];
    do {
      const res = await liveness.scanConnections(cursor, 100);
      cursor = res.cursor;
      seen.push(...res.page.map((c) => c.connectionId));
    } while (cursor !== '0');
    expect(seen).toContain(tab);
    expect(await liveness.claimSweep(1000)).toBe(true);
    expect(await liveness.claimSweep(1000)).toBe(false);
  });
});
