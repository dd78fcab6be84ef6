/**
 * Fan-out at scale: game traffic during a broadcast storm, today's pusher against the fan-out
 * scheduler (budget + priorities), on the same Management API stand-in in the same run.
 *
 *   npx tsx bench/fanout.ts [--connections=5000] [--seconds=20] [--budget=2000] [--rounds=1]
 *
 * The stand-in (test/support/management-api.ts, in a child process) throttles like an account:
 * 2,500 requests/s, burst 1,250 (API Gateway's 10,000 / 5,000 scaled to this machine), 10 ± 3 ms
 * per round trip. Traffic for `--seconds`: 100 rooms × 2 players, 2 events/s per room (400 pushes/s),
 * and one broadcast to every connection every 2 s.
 *   today    each event pushed with `pushMany` (PUSH_CONCURRENCY 64, PUSH_MAX_RETRIES 3), as the
 *            pipeline does without a scheduler
 *   fanout   `createFanout` with the Redis budget (`--budget` rps, burst 500), game events at
 *            `game` priority, broadcasts at `broadcast` priority
 * This drives the pusher layer directly (no Kafka): latency is submit → successful push.
 * Bounded: loopback only, a fixed schedule, a drain cap of 60 s per variant.
 */
import { silentLogger } from '../lib/logger';
import { createPushBudget } from '../lib/push/budget';
import { type ClientPusher, createManagementApiPusher, type PushResult, pushMany } from '../lib/push/pusher';
import { createFanout, type Fanout } from '../lib/push/scheduler';
import { createRedisClient } from '../lib/redis';
import { startManagementApiProcess } from '../test/support/management-api-process';
import { startRedis } from '../test/support/services';
import { argReader } from './args';

type Variant = 'today' | 'fanout';
const credentials = () => ({ accessKeyId: 'local', secretAccessKey: 'local' });

interface Result {
  gameP50: number;
  gameP99: number;
  gameFailed: number;
  requests: number;
  throttled: number;
  okPerSec: number;
  broadcastDelivered: number;
  broadcastExpected: number;
  lastBroadcastMs: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
};

async function run(
  variant: Variant,
  opts: { connections: number; seconds: number; budget: number },
  redisUrl: string,
): Promise<Result> {
  const api = await startManagementApiProcess({
    rate: 2500,
    burst: 1250,
    latencyMs: 10,
    jitterMs: 3,
    recordBodies: false,
  });
  const redis = createRedisClient({ url: redisUrl, cluster: false, logger: silentLogger });
  const all = Array.from({ length: opts.connections }, (_, i) => `c${i}`);
  let pusher: ClientPusher | undefined;
  let fanout: Fanout | undefined;
  if (variant === 'today') {
    pusher = createManagementApiPusher({
      endpoint: api.endpoint,
      region: 'us-east-1',
      logger: silentLogger,
      maxRetries: 3,
      maxSockets: 64,
      credentials,
    });
  } else {
    const single = createManagementApiPusher({
      endpoint: api.endpoint,
      region: 'us-east-1',
      logger: silentLogger,
      maxRetries: 0,
      maxSockets: 64,
      credentials,
    });
    const budget = createPushBudget({
      redis,
      key: `bench:fanout:${Date.now()}`,
      rps: opts.budget,
      burst: 500,
      logger: silentLogger,
    });
    fanout = createFanout({
      pusher: single,
      budget,
      maxInFlight: 64,
      maxRetries: 3,
      slowClientMs: 30_000,
      tokenBatch: Math.ceil(opts.budget / 20),
      logger: silentLogger,
    });
  }
  const send = (
    ids: string[],
    data: string,
    priority: 'game' | 'broadcast',
  ): Promise<Map<string, PushResult | Error>> =>
    fanout ? fanout.submit(ids, data, priority) : pushMany(pusher!, ids, data, { concurrency: 64 });

  const game: number[] = [];
  let gameFailed = 0;
  let okCount = 0;
  let broadcastDelivered = 0;
  let lastBroadcastMs = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const end = t0 + opts.seconds * 1000;
  let nextGame = t0;
  let nextBroadcast = t0;
  let n = 0;
  while (performance.now() < end) {
    const now = performance.now();
    if (now >= nextBroadcast) {
      nextBroadcast += 2000;
      const started = now;
      pending.push(
        send(all, JSON.stringify({ type: 'games.event.room_created', n: n++ }), 'broadcast').then((r) => {
          for (const v of r.values()) {
            if (v === 'ok') {
              broadcastDelivered++;
              okCount++;
            }
          }
          lastBroadcastMs = Math.max(lastBroadcastMs, performance.now() - started);
        }),
      );
    }
    while (nextGame <= now) {
      nextGame += 5; // 200 events/s, 2 recipients each
      const room = Math.floor(Math.random() * 100);
      const submitted = performance.now();
      pending.push(
        send(
          [`c${room * 2}`, `c${room * 2 + 1}`],
          JSON.stringify({ type: 'games.event.turn_changed', n: n++ }),
          'game',
        ).then((r) => {
          for (const v of r.values()) {
            if (v === 'ok') {
              okCount++;
              game.push(performance.now() - submitted);
            } else gameFailed++;
          }
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 60_000))]);
  const elapsed = (performance.now() - t0) / 1000;
  const stats = await api.stats();
  await fanout?.close(1000);
  await pusher?.close();
  await api.stop();
  redis.disconnect();
  return {
    gameP50: pct(game, 50),
    gameP99: pct(game, 99),
    gameFailed,
    requests: stats.posts,
    throttled: stats.throttled + stats.bufferFull,
    okPerSec: okCount / elapsed,
    broadcastDelivered,
    broadcastExpected: Math.ceil(opts.seconds / 2) * opts.connections,
    lastBroadcastMs,
  };
}

async function main(): Promise<void> {
  const { int } = argReader(process.argv.slice(2));
  const opts = {
    connections: int('connections', 5000),
    seconds: int('seconds', 20),
    budget: int('budget', 2000),
  };
  const rounds = int('rounds', 1);
  const redis = await startRedis();
  try {
    const results = new Map<Variant, Result[]>([
      ['today', []],
      ['fanout', []],
    ]);
    for (let r = 0; r < rounds; r++) {
      for (const v of r % 2 === 0 ? (['today', 'fanout'] as const) : (['fanout', 'today'] as const)) {
        const res = await run(v, opts, redis.address);
        results.get(v)!.push(res);
        process.stderr.write(`round ${r + 1} ${v}: ${JSON.stringify(res)}\n`);
      }
    }
    const med = (v: Variant, k: keyof Result) =>
      pct(
        results.get(v)!.map((x) => x[k]),
        50,
      );
    const f = (x: number) => Math.round(x).toLocaleString('en-US');
    const lines = [
      `fan-out: ${opts.connections} connections, budget ${opts.budget}/s, account 2,500/s burst 1,250, ${opts.seconds} s storm, ${rounds} round(s), node ${process.version}`,
      '',
      '| | today | fanout | fanout / today |',
      '|---|---:|---:|---:|',
      `| game p50 ms | ${f(med('today', 'gameP50'))} | ${f(med('fanout', 'gameP50'))} | ${(med('fanout', 'gameP50') / med('today', 'gameP50')).toFixed(2)} |`,
      `| game p99 ms | ${f(med('today', 'gameP99'))} | ${f(med('fanout', 'gameP99'))} | ${(med('fanout', 'gameP99') / med('today', 'gameP99')).toFixed(2)} |`,
      `| game pushes failed | ${f(med('today', 'gameFailed'))} | ${f(med('fanout', 'gameFailed'))} | |`,
      `| requests | ${f(med('today', 'requests'))} | ${f(med('fanout', 'requests'))} | |`,
      `| 429s (% of requests) | ${f(med('today', 'throttled'))} (${((med('today', 'throttled') / med('today', 'requests')) * 100).toFixed(1)} %) | ${f(med('fanout', 'throttled'))} (${((med('fanout', 'throttled') / med('fanout', 'requests')) * 100).toFixed(2)} %) | |`,
      `| successful pushes/s | ${f(med('today', 'okPerSec'))} | ${f(med('fanout', 'okPerSec'))} | |`,
      `| broadcast frames delivered / expected | ${f(med('today', 'broadcastDelivered'))} / ${f(med('today', 'broadcastExpected'))} | ${f(med('fanout', 'broadcastDelivered'))} / ${f(med('fanout', 'broadcastExpected'))} | |`,
      `| slowest broadcast, start → last recipient, ms | ${f(med('today', 'lastBroadcastMs'))} | ${f(med('fanout', 'lastBroadcastMs'))} | |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
