/**
 * `$default` through serverless-offline, against baselines run in the same process.
 *
 *   npx tsx bench/gateway.ts [--clients=50] [--seconds=8] [--rounds=2] [--window=1]
 *
 * Variants, each behind its own serverless-offline (in-process handlers), the same Redis and
 * Kafka mock, the same `ws` clients in closed loop (each client sends its next frame when the
 * reply to the previous one arrived):
 *   trivial      a `$default` that returns a constant route response — the ceiling of offline itself
 *   default      handlers/default.ts: gate script, validation, heartbeat state refresh, reply as
 *                the route response (what the gateway ships)
 *   push-reply   the same work, the reply pushed through the Management API instead
 * Frames are authenticated `system.heartbeat`s (the most frequent client frame: one Redis round
 * trip for the gate, one pipelined round trip for the heartbeat keys).
 *
 * Also measures welcome latency (upgrade → `system.welcome`) over fresh connections.
 * Bounded: loopback only, fixed duration per variant.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startOffline } from '../test/support/offline';
import { startKafkaMock, startRedis } from '../test/support/services';
import { TestClient } from '../test/support/ws-client';

const root = path.resolve(__dirname, '..');

interface Args {
  clients: number;
  seconds: number;
  rounds: number;
  window: number;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (name: string, d: number) => {
    const v = argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const n = v === undefined ? d : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number`);
    return n;
  };
  return {
    clients: get('clients', 50),
    seconds: get('seconds', 8),
    rounds: get('rounds', 2),
    window: get('window', 1),
  };
}

const VARIANTS = {
  trivial: 'bench/handlers/trivial.handler',
  default: 'handlers/default.handler',
  'push-reply': 'bench/handlers/push-reply.handler',
} as const;
type Variant = keyof typeof VARIANTS;

/** A copy of serverless.yml whose `$default` function uses another handler (offline needs a root config). */
function writeConfig(variant: Variant): string {
  const file = `serverless.bench-${variant}.yml`;
  const yml = readFileSync(path.join(root, 'serverless.yml'), 'utf8').replace(
    'handler: handlers/default.handler',
    `handler: ${VARIANTS[variant]}`,
  );
  writeFileSync(path.join(root, file), yml);
  return file;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

interface Result {
  variant: Variant;
  perSec: number;
  p50: number;
  p99: number;
}

async function run(variant: Variant, args: Args, env: NodeJS.ProcessEnv): Promise<Result> {
  const config = writeConfig(variant);
  const gw = await startOffline(
    { ...env, LOG_LEVEL: 'error', WS_RATE_LIMIT_BURST: '1000000', WS_RATE_LIMIT_PER_SEC: '1000000' },
    { config },
  );
  try {
    const clients = await Promise.all(Array.from({ length: args.clients }, () => TestClient.open(gw.wsUrl)));
    await Promise.all(
      clients.map((c, i) =>
        c
          .request(
            { type: 'system.authenticate', user_id: String(1000 + i), username: `u${i}` },
            'system.authenticated',
          )
          .catch(() => undefined),
      ),
    );
    const latencies: number[] = [];
    // Each client keeps `window` heartbeats in flight: window 1 is latency-bound (closed loop),
    // a larger window measures capacity (what the handler chain can process per second).
    const drive = (c: TestClient, until: number, record: boolean) =>
      new Promise<void>((resolve) => {
        const sentAt: number[] = [];
        const send = () => {
          sentAt.push(performance.now());
          c.socket.send('{"type":"system.heartbeat"}');
        };
        const onMessage = () => {
          const t0 = sentAt.shift();
          if (record && t0 !== undefined) latencies.push(performance.now() - t0);
          if (performance.now() < until) send();
          else if (sentAt.length === 0) {
            c.socket.off('message', onMessage);
            resolve();
          }
        };
        c.socket.on('message', onMessage);
        for (let i = 0; i < args.window; i++) send();
      });
    // Warm-up: JIT, connection pools, Redis scripts loaded.
    await Promise.all(clients.map((c) => drive(c, performance.now() + 1500, false)));
    const start = performance.now();
    await Promise.all(clients.map((c) => drive(c, start + args.seconds * 1000, true)));
    const elapsed = (performance.now() - start) / 1000;
    await Promise.all(clients.map((c) => c.close()));
    latencies.sort((a, b) => a - b);
    return { variant, perSec: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99) };
  } finally {
    await gw.stop();
    rmSync(path.join(root, config), { force: true });
  }
}

async function welcomeLatency(
  env: NodeJS.ProcessEnv,
  n: number,
): Promise<{ p50: number; p99: number; max: number }> {
  const gw = await startOffline({ ...env, LOG_LEVEL: 'error' });
  try {
    const lat: number[] = [];
    for (let i = 0; i < n + 5; i++) {
      const t0 = performance.now();
      const c = await TestClient.connect(gw.wsUrl);
      await c.next('system.welcome', 5000);
      if (i >= 5) lat.push(performance.now() - t0);
      await c.close();
    }
    lat.sort((a, b) => a - b);
    return { p50: pct(lat, 50), p99: pct(lat, 99), max: lat[lat.length - 1]! };
  } finally {
    await gw.stop();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [redis, kafka] = await Promise.all([startRedis(), startKafkaMock()]);
  const env = { REDIS_URL: redis.address, KAFKA_BROKERS: kafka.address, AUTH_ALLOW_UNVERIFIED: 'true' };
  try {
    const results: Result[][] = [];
    for (let round = 0; round < args.rounds; round++) {
      const r: Result[] = [];
      for (const v of Object.keys(VARIANTS) as Variant[]) r.push(await run(v, args, env));
      results.push(r);
    }
    const welcome = await welcomeLatency(env, 200);
    const median = (vals: number[]) => vals.sort((a, b) => a - b)[Math.floor(vals.length / 2)]!;
    const rows = (Object.keys(VARIANTS) as Variant[]).map((v) => {
      const all = results.map((r) => r.find((x) => x.variant === v)!);
      return {
        v,
        perSec: median(all.map((x) => x.perSec)),
        p50: median(all.map((x) => x.p50)),
        p99: median(all.map((x) => x.p99)),
      };
    });
    const base = rows.find((r) => r.v === 'trivial')!.perSec;
    console.log(
      `\n$default through serverless-offline — ${args.clients} clients × ${args.window} in flight, ${args.seconds} s × ${args.rounds} rounds (median)\n`,
    );
    console.log('| variant | frames/s | vs trivial | p50 ms | p99 ms |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.v} | ${r.perSec.toFixed(0)} | ${(r.perSec / base).toFixed(2)}× | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
      );
    }
    console.log(
      `\nwelcome latency (upgrade → system.welcome, 200 sequential connections): p50 ${welcome.p50.toFixed(1)} ms, p99 ${welcome.p99.toFixed(1)} ms, max ${welcome.max.toFixed(1)} ms`,
    );
  } finally {
    await Promise.all([redis.stop(), kafka.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
