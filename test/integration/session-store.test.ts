/**
 * What only Redis can show about the session store: the contract key names of docs/architecture.md,
 * their types and TTLs, and that the cases that must write nothing — or must remove everything —
 * leave no key at all. Everything the port promises (authentication, presence, removal, rooms and
 * lobbies, the rate-limit gate, the welcome claim, limits, races) is the shared suite of
 * test/support/contracts/session-store.contract.ts, run on this adapter in
 * test/integration/contracts/session-store.contract.test.ts and on the in-memory fake.
 * Every test gets its own key prefix.
 */
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../lib/logger';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore, type SessionStore } from '../../lib/store/session-store';
import { ALICE, newConnectionId } from '../support/contracts/session-store.contract';
import { keysWithPrefix } from '../support/store';

const CONNECTION_TTL_SECS = 86400;

let redis: RedisClient;
let prefix: string;
let store: SessionStore;

const keysUnderPrefix = () => keysWithPrefix(redis, prefix);

/** Registers a connection and authenticates it, as `$connect` + `system.authenticate` do. */
async function connectAs(identity: typeof ALICE | null, connectedAt = new Date()): Promise<string> {
  const id = newConnectionId();
  await store.registerConnection(id, { connectedAt, bound: null });
  if (identity) await store.authenticate(id, identity, null, connectedAt, connectedAt.toISOString());
  return id;
}

beforeAll(() => {
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
});

afterAll(async () => {
  await redis.quit();
});

beforeEach(() => {
  prefix = `it:store:${randomUUID()}:`;
  store = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS, keyPrefix: prefix });
});

afterEach(async () => {
  const keys = await keysUnderPrefix();
  if (keys.length > 0) await redis.del(...keys);
});

describe('contract keys (docs/architecture.md)', () => {
  it('names the four contract keys exactly as the Rust gateway did', () => {
    const plain = createSessionStore({ redis, connectionTtlSecs: CONNECTION_TTL_SECS }).keys;

    expect(plain.socket('L0SM9cOFvHcCIhw=')).toBe('socket:L0SM9cOFvHcCIhw=');
    expect(plain.userSockets('4')).toBe('user:sockets:4');
    expect(plain.presenceOnline()).toBe('presence:online');
    expect(plain.userPresence('4')).toBe('user:presence:4');
  });

  it('writes exactly the contract keys, the connection record and its reverse index on authenticate and heartbeat', async () => {
    const id = await connectAs(ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    expect(await keysUnderPrefix()).toEqual(
      [
        `${prefix}socket:${id}`,
        `${prefix}user:sockets:4`,
        `${prefix}presence:online`,
        `${prefix}user:presence:4`,
        `${prefix}gw:conn:${id}`,
        `${prefix}gw:ix:${id}`,
        `${prefix}gw:connections`,
      ].sort(),
    );
    expect(await redis.type(`${prefix}socket:${id}`)).toBe('string');
    expect(await redis.type(`${prefix}user:sockets:4`)).toBe('set');
    expect(await redis.type(`${prefix}presence:online`)).toBe('set');
    expect(await redis.type(`${prefix}user:presence:4`)).toBe('string');
  });

  it('gives socket:{id} a 86400 s TTL and user:presence:{uid} 120 s, both renewed by a heartbeat', async () => {
    const id = await connectAs(ALICE);
    const ttl = await redis.ttl(`${prefix}socket:${id}`);
    expect(ttl).toBeGreaterThan(86390);
    expect(ttl).toBeLessThanOrEqual(86400);
    await redis.expire(`${prefix}socket:${id}`, 100);

    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    expect(await redis.ttl(`${prefix}socket:${id}`)).toBeGreaterThan(86390);
    const presenceTtl = await redis.ttl(`${prefix}user:presence:4`);
    expect(presenceTtl).toBeGreaterThan(110);
    expect(presenceTtl).toBeLessThanOrEqual(120);
  });
});

describe('nothing left behind', () => {
  it('removing a connection leaves no key of it or its user, rooms and lobbies included', async () => {
    const id = await connectAs(ALICE);
    await store.joinRoom('4', 'room-a', { spectator: true });
    await store.joinLobby(id, '1');

    await store.removeConnection(id);

    expect(await keysUnderPrefix()).toEqual([]);
  });

  it('leaves only the expiring user:presence:{uid} behind after a heartbeat (never deleted, as docs/architecture.md)', async () => {
    const id = await connectAs(ALICE);
    await store.heartbeat(id, ALICE, new Date(), new Date().toISOString());

    await store.removeConnection(id);

    expect(await keysUnderPrefix()).toEqual([`${prefix}user:presence:4`]);
    expect(await redis.ttl(`${prefix}user:presence:4`)).toBeGreaterThan(0);
  });

  it.each<[string, (id: string) => Promise<unknown>]>([
    ['authenticate', (id) => store.authenticate(id, ALICE, null, new Date(), new Date().toISOString())],
    ['markWelcomed', (id) => store.markWelcomed(id)],
    ['claimWelcome', (id) => store.claimWelcome(id)],
    ['dropBinding', (id) => store.dropBinding(id)],
    ['joinLobby', (id) => store.joinLobby(id, '1')],
    ['joinConnection', (id) => store.joinConnection(id, ['room-a'])],
    ['gateMessage', (id) => store.gateMessage(id, { burst: 10, perSec: 0 })],
  ])('%s on a removed connection writes no key (it is never re-created)', async (_name, call) => {
    const id = await connectAs(null);
    await store.removeConnection(id);

    await call(id);

    expect(await keysUnderPrefix()).toEqual([]);
  });

  it('a gate for a connection Redis never knew writes no key (docs/decisions.md D9)', async () => {
    expect(await store.gateMessage(newConnectionId(), { burst: 10, perSec: 0 })).toBeNull();
    expect(await keysUnderPrefix()).toEqual([]);
  });
});
