/**
 * Fan-out at scale: game traffic during a broadcast storm, today's pusher against the fan-out
 * scheduler (budget + priorities), on the same Management API stand-in in the same run.
 *
 *   npx tsx bench/fanout.ts [--connections=5000] [--seconds=20] [--budget=2000] [--rounds=3]
 *                           [--variants=today,fanout] [--api-latency-ms=10] [--api-jitter-ms=3]
 *
 * The stand-in (test/support/management-api.ts, in a child process) throttles like an account:
 * 2,500 requests/s, burst 1,250 (API Gateway's 10,000 / 5,000 scaled to this machine), 10 ± 3 ms
 * per round trip. Traffic for `--seconds`: 100 rooms × 2 players, 2 events/s per room (400 pushes/s),
 * and one broadcast to every connection every 2 s.
 *   today    each event pushed with `pushMany` (PUSH_CONCURRENCY 64, PUSH_MAX_RETRIES 3), as the
 *            pipeline does without a scheduler
 *   fanout   `createFanout` with the Redis budget (`--budget` rps, burst 500), game events at
 *            `game` priority, broadcasts at `broadcast` priority
 *   fanout-noreserve  the same without the tokens and slots reserved for `game` (opt-in variant,
 *            for measuring the reserve: `--variants=today,fanout,fanout-noreserve`)
 * This drives the pusher layer directly (no Kafka): latency is submit → successful push. Where a
 * game frame's time goes is split into its wait in the benchmark process before its request starts
 * (tokens, a free socket, the event loop) and the request's round trip; the event loop's delay
 * (`monitorEventLoopDelay`) and the load average are reported beside them.
 * Bounded: loopback only, a fixed schedule, a drain cap of 60 s per variant.
 */
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger } from '../lib/logger';
import { createPushBudget } from '../lib/push/budget';
import { type ClientPusher, createManagementApiPusher, type PushResult, pushMany } from '../lib/push/pusher';
import { createFanout, type Fanout } from '../lib/push/scheduler';
import { createRedisClient } from '../lib/redis';
import { startManagementApiProcess } from '../test/support/management-api-process';
import { startRedis } from '../test/support/services';
import { argReader, runBench } from './args';

type Variant = 'today' | 'fanout' | 'fanout-noreserve';
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
  /** Game frames: submit → request start, and the request's round trip (p99, ms). */
  gameWaitP99: number;
  /** The same, after the connection's own earlier frame settled: tokens, sockets, event loop. */
  gameOwnWaitP99: number;
  gameRttP99: number;
  /** The benchmark process's event-loop delay, p99 ms. */
  loopP99: number;
  /** 1-minute load average at the end of the round. */
  load: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
};

async function run(
  variant: Variant,
  opts: { connections: number; seconds: number; budget: number; latencyMs: number; jitterMs: number },
  redisUrl: string,
): Promise<Result> {
  const api = await startManagementApiProcess({
    rate: 2500,
    burst: 1250,
    latencyMs: opts.latencyMs,
    jitterMs: opts.jitterMs,
    recordBodies: false,
  });
  // Game frames by their (unique) body: when they were submitted, and their requests' timings.
  const submittedAt = new Map<string, number>();
  const gameWait: number[] = [];
  const gameOwnWait: number[] = [];
  const gameRtt: number[] = [];
  /** Per connection, when its last request settled. */
  const settledAt = new Map<string, number>();
  const timed = (inner: ClientPusher): ClientPusher => ({
    push(id, data) {
      const at = typeof data === 'string' ? submittedAt.get(data) : undefined;
      const start = performance.now();
      const p = inner.push(id, data);
      const settled = () => {
        const t = performance.now();
        settledAt.set(id, t);
        if (at !== undefined) gameRtt.push(t - start);
      };
      p.then(settled, settled);
      if (at !== undefined) {
        gameWait.push(start - at);
        // Not counting the wait for the connection's own earlier frame (order is kept per connection).
        gameOwnWait.push(start - Math.max(at, settledAt.get(id) ?? 0));
      }
      return p;
    },
    close: () => inner.close(),
  });
  const redis = createRedisClient({ url: redisUrl, cluster: false, logger: silentLogger });
  const all = Array.from({ length: opts.connections }, (_, i) => `c${i}`);
  let pusher: ClientPusher | undefined;
  let fanout: Fanout | undefined;
  if (variant === 'today') {
    pusher = timed(
      createManagementApiPusher({
        endpoint: api.endpoint,
        region: 'us-east-1',
        logger: silentLogger,
        maxRetries: 3,
        maxSockets: 64,
        credentials,
      }),
    );
  } else {
    const single = timed(
      createManagementApiPusher({
        endpoint: api.endpoint,
        region: 'us-east-1',
        logger: silentLogger,
        maxRetries: 0,
        suspendUnansweredMs: 0,
        maxSockets: 64,
        credentials,
      }),
    );
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
      ...(variant === 'fanout-noreserve' ? { reservedTokens: 0, reservedInFlight: 0 } : {}),
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
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
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
      const frame = JSON.stringify({ type: 'games.event.turn_changed', n: n++ });
      submittedAt.set(frame, submitted);
      pending.push(
        send([`c${room * 2}`, `c${room * 2 + 1}`], frame, 'game').then((r) => {
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
  loop.disable();
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
    gameWaitP99: pct(gameWait, 99),
    gameOwnWaitP99: pct(gameOwnWait, 99),
    gameRttP99: pct(gameRtt, 99),
    loopP99: loop.percentile(99) / 1e6,
    load: os.loadavg()[0]!,
  };
}

async function main(): Promise<void> {
  const { int, raw } = argReader(process.argv.slice(2));
  const opts = {
    connections: int('connections', 5000),
    seconds: int('seconds', 20),
    budget: int('budget', 2000),
    latencyMs: int('api-latency-ms', 10),
    jitterMs: int('api-jitter-ms', 3),
  };
  const rounds = int('rounds', 3);
  const variants = (raw('variants') ?? 'today,fanout').split(',') as Variant[];
  const loadAtStart = os.loadavg()[0]!;
  const redis = await startRedis();
  try {
    const results = new Map<Variant, Result[]>(variants.map((v) => [v, []]));
    for (let r = 0; r < rounds; r++) {
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
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
    const f1 = (x: number) => x.toFixed(1);
    const row = (label: string, cell: (v: Variant) => string, ratio?: keyof Result) => {
      const cells = variants.map(cell);
      const r =
        ratio && variants.includes('today') && variants.includes('fanout')
          ? (med('fanout', ratio) / med('today', ratio)).toFixed(2)
          : '';
      return `| ${label} | ${cells.join(' | ')} | ${r} |`;
    };
    const lines = [
      `fan-out: ${opts.connections} connections, budget ${opts.budget}/s, account 2,500/s burst 1,250, stand-in ${opts.latencyMs} ± ${opts.jitterMs} ms, ${opts.seconds} s storm, median of ${rounds} round(s), node ${process.version}, load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0]!.toFixed(1)} at end`,
      '',
      `| | ${variants.join(' | ')} | fanout / today |`,
      `|---|${variants.map(() => '---:|').join('')}---:|`,
      row('game p50 ms', (v) => f(med(v, 'gameP50')), 'gameP50'),
      row('game p99 ms', (v) => f(med(v, 'gameP99')), 'gameP99'),
      row('game p99: wait before its request, ms', (v) => f(med(v, 'gameWaitP99'))),
      row("… of which after the connection's own earlier frame settled, ms", (v) =>
        f(med(v, 'gameOwnWaitP99')),
      ),
      row('game p99: request round trip, ms', (v) => f(med(v, 'gameRttP99'))),
      row('event-loop delay p99, ms', (v) => f1(med(v, 'loopP99'))),
      row('game pushes failed', (v) => f(med(v, 'gameFailed'))),
      row('requests', (v) => f(med(v, 'requests'))),
      row(
        '429s (% of requests)',
        (v) =>
          `${f(med(v, 'throttled'))} (${((med(v, 'throttled') / med(v, 'requests')) * 100).toFixed(2)} %)`,
      ),
      row('successful pushes/s', (v) => f(med(v, 'okPerSec'))),
      row(
        'broadcast frames delivered / expected',
        (v) => `${f(med(v, 'broadcastDelivered'))} / ${f(med(v, 'broadcastExpected'))}`,
      ),
      row('slowest broadcast, start → last recipient, ms', (v) => f(med(v, 'lastBroadcastMs'))),
      row('load average (1 min) at the end of the round', (v) => f1(med(v, 'load'))),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await redis.stop();
  }
}

runBench(main);
