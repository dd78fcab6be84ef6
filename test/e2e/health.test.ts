/**
 * `GET /health` and `GET /ready` through serverless-offline, and the smallest lifecycle smoke test:
 * a connection shows up in Redis while open and is gone after it closes.
 */
import { silentLogger } from '../../lib/logger';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { type OfflineGateway, startOffline } from '../support/offline';
import { freePort } from '../support/services';
import { TestClient } from '../support/ws-client';

jest.setTimeout(90_000);

let healthy: OfflineGateway;
let noKafka: OfflineGateway;
let redis: RedisClient;

beforeAll(async () => {
  // A port nothing listens on: Kafka is "down" for the second gateway.
  const deadBroker = `127.0.0.1:${await freePort()}`;
  [healthy, noKafka] = await Promise.all([startOffline(), startOffline({ KAFKA_BROKERS: deadBroker })]);
  redis = createRedisClient({ url: process.env.REDIS_URL!, cluster: false, logger: silentLogger });
});

afterAll(async () => {
  await Promise.all([healthy?.stop(), noKafka?.stop(), redis?.quit()]);
});

describe('GET /health', () => {
  it('answers 200 {"status":"ok"} exactly, as the old gateway did', async () => {
    const res = await fetch(`${healthy.httpUrl}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.text()).toBe('{"status":"ok"}');
  });

  it('stays 200 when a dependency is down (liveness, no dependency checks)', async () => {
    const res = await fetch(`${noKafka.httpUrl}/health`);
    expect(res.status).toBe(200);
  });
});

describe('GET /ready', () => {
  it('answers 200 with Redis and Kafka ok when both answer', async () => {
    const res = await fetch(`${healthy.httpUrl}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', redis: 'ok', kafka: 'ok' });
  });

  it('answers 503 and names Kafka when the broker cannot be reached', async () => {
    const res = await fetch(`${noKafka.httpUrl}/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable', redis: 'ok', kafka: 'down' });
  });
});

describe('a ws client through serverless-offline', () => {
  it('is registered in Redis while connected and removed after it closes', async () => {
    const prefix = healthy.env.REDIS_KEY_PREFIX!;
    const client = await TestClient.open(healthy.wsUrl);
    const id = client.frames[0]!.connection_id as string;

    expect(await redis.sismember(`${prefix}gw:connections`, id)).toBe(1);
    expect(await redis.exists(`${prefix}gw:conn:${id}`)).toBe(1);

    await client.close();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await redis.exists(`${prefix}gw:conn:${id}`)) === 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await redis.exists(`${prefix}gw:conn:${id}`)).toBe(0);
    expect(await redis.sismember(`${prefix}gw:connections`, id)).toBe(0);
  });
});
