/**
 * `$default` through serverless-offline, against baselines run in the same process.
 *
 *   npx tsx bench/gateway.ts [--clients=50] [--seconds=8] [--rounds=2] [--window=1]
 *                            [--variants=trivial,default,default-every-heartbeat,push-reply]
 *                            [--cycles=200] [--cycle-concurrency=8]
 *
 * Variants, each behind its own serverless-offline (in-process handlers), the same Redis and
 * Kafka mock, the same `ws` clients in closed loop (each client sends its next frame when the
 * reply to the previous one arrived):
 *   trivial      a `$default` that returns a constant route response — the ceiling of offline itself
 *   default      handlers/default.ts: gate script, validation, heartbeat state refresh, reply as
 *                the route response (what the gateway ships)
 *   default-every-heartbeat  the same with WS_HEARTBEAT_REFRESH_SECS=0: every heartbeat refreshes
 *                the session keys (what `default` did before the refresh window)
 *   push-reply   the same work, the reply pushed through the Management API instead
 * Frames are authenticated `system.heartbeat`s (the most frequent client frame: one Redis round
 * trip for the gate, one pipelined round trip for the heartbeat keys).
 *
 * Then the connection cycle, `--cycles` connections (`--cycle-concurrency` at a time), each
 * connect → `system.welcome` received → close, against a trivial `$connect` / `$disconnect`
 * (bench/handlers/trivial-connect.ts: connect → open → close) behind the same offline: cycles per
 * second and welcome latency (upgrade → `system.welcome`). 0 cycles skips it.
 * Bounded: loopback only, fixed duration per variant, a fixed number of cycles.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
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
  variants: Variant[];
  cycles: number;
  cycleConcurrency: number;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (name: string, d: number) => {
    const v = argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const n = v === undefined ? d : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number`);
    return n;
  };
  const raw = argv.find((a) => a.startsWith('--variants='))?.slice('--variants='.length);
  const variants = (raw ?? Object.keys(VARIANTS).join(',')).split(',') as Variant[];
  for (const v of variants) if (!(v in VARIANTS)) throw new Error(`--variants: unknown ${v}`);
  const cycles = argv.find((a) => a.startsWith('--cycles='))?.slice('--cycles='.length);
  return {
    clients: get('clients', 50),
    seconds: get('seconds', 8),
    rounds: get('rounds', 2),
    window: get('window', 1),
    variants,
    cycles: cycles === undefined ? 200 : Number(cycles),
    cycleConcurrency: get('cycle-concurrency', 8),
  };
}

/** Each `$default` variant: its handler and the environment it runs with. */
const VARIANTS = {
  trivial: { handler: 'bench/handlers/trivial.handler', env: {} },
  default: { handler: 'handlers/default.handler', env: {} },
  'default-every-heartbeat': { handler: 'handlers/default.handler', env: { WS_HEARTBEAT_REFRESH_SECS: '0' } },
  'push-reply': { handler: 'bench/handlers/push-reply.handler', env: {} },
} as const;
type Variant = keyof typeof VARIANTS;

/** A copy of serverless.yml with some handlers swapped (offline needs a root config). */
function writeConfig(name: string, swaps: Readonly<Record<string, string>>): string {
  const file = `serverless.bench-${name}.yml`;
  let yml = readFileSync(path.join(root, 'serverless.yml'), 'utf8');
  for (const [from, to] of Object.entries(swaps)) {
    if (!yml.includes(`handler: ${from}`)) throw new Error(`serverless.yml has no handler ${from}`);
    yml = yml.replace(`handler: ${from}`, `handler: ${to}`);
  }
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
  const config = writeConfig(variant, { 'handlers/default.handler': VARIANTS[variant].handler });
  const gw = await startOffline(
    {
      ...env,
      ...VARIANTS[variant].env,
      LOG_LEVEL: 'error',
      WS_RATE_LIMIT_BURST: '1000000',
      WS_RATE_LIMIT_PER_SEC: '1000000',
    },
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

type CycleVariant = 'trivial-connect' | 'connect-welcome';

interface CycleResult {
  perSec: number;
  welcomeP50: number;
  welcomeP99: number;
  /** p50 of the cycle's parts: upgrade → open, open → welcome, close → closed. */
  openP50: number;
  afterOpenP50: number;
  closeP50: number;
}

/**
 * `cycles` connections, `concurrency` at a time: connect → (the welcome) → close. The trivial
 * variant swaps `$connect` and `$disconnect` for handlers that do nothing, and waits for the open.
 */
async function cycle(variant: CycleVariant, args: Args, env: NodeJS.ProcessEnv): Promise<CycleResult> {
  const config =
    variant === 'trivial-connect'
      ? writeConfig(variant, {
          'handlers/connect.handler': 'bench/handlers/trivial-connect.handler',
          'handlers/disconnect.handler': 'bench/handlers/trivial-connect.handler',
        })
      : writeConfig(variant, {});
  const gw = await startOffline({ ...env, LOG_LEVEL: 'error' }, { config });
  try {
    const parts = { open: [] as number[], welcome: [] as number[], close: [] as number[] };
    const once = async (record: number[] | null) => {
      const t0 = performance.now();
      const c = await TestClient.connect(gw.wsUrl);
      const t1 = performance.now();
      if (variant === 'connect-welcome') {
        await c.next('system.welcome', 10_000);
        record?.push(performance.now() - t0);
      }
      const t2 = performance.now();
      await c.close();
      if (record) {
        parts.open.push(t1 - t0);
        parts.welcome.push(t2 - t1);
        parts.close.push(performance.now() - t2);
      }
    };
    const runMany = async (n: number, record: number[] | null) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(n, args.cycleConcurrency) }, async () => {
          while (next++ < n) await once(record);
        }),
      );
    };
    // Warm-up: handler modules loaded, Redis scripts, the welcome function's first invocation.
    await runMany(10, null);
    const lat: number[] = [];
    const start = performance.now();
    await runMany(args.cycles, lat);
    const perSec = args.cycles / ((performance.now() - start) / 1000);
    lat.sort((a, b) => a - b);
    const p50 = (xs: number[]) =>
      pct(
        [...xs].sort((a, b) => a - b),
        50,
      );
    return {
      perSec,
      welcomeP50: pct(lat, 50),
      welcomeP99: pct(lat, 99),
      openP50: p50(parts.open),
      afterOpenP50: p50(parts.welcome),
      closeP50: p50(parts.close),
    };
  } finally {
    await gw.stop();
    rmSync(path.join(root, config), { force: true });
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [redis, kafka] = await Promise.all([startRedis(), startKafkaMock()]);
  const env = { REDIS_URL: redis.address, KAFKA_BROKERS: kafka.address, AUTH_ALLOW_UNVERIFIED: 'true' };
  const loads: number[] = [os.loadavg()[0]!];
  const median = (vals: number[]) => [...vals].sort((a, b) => a - b)[Math.floor(vals.length / 2)]!;
  try {
    const results: Result[][] = [];
    for (let round = 0; round < args.rounds; round++) {
      const r: Result[] = [];
      // Alternate the order: the machine's load drifts.
      const order = round % 2 === 0 ? args.variants : [...args.variants].reverse();
      for (const v of order) {
        r.push(await run(v, args, env));
        loads.push(os.loadavg()[0]!);
      }
      results.push(r);
    }
    const rows = args.variants.map((v) => {
      const all = results.map((r) => r.find((x) => x.variant === v)!);
      return {
        v,
        perSec: median(all.map((x) => x.perSec)),
        p50: median(all.map((x) => x.p50)),
        p99: median(all.map((x) => x.p99)),
        ratios: results.map((r) => {
          const t = r.find((x) => x.variant === 'trivial');
          return t ? r.find((x) => x.variant === v)!.perSec / t.perSec : Number.NaN;
        }),
      };
    });
    console.log(
      `\n$default through serverless-offline — ${args.clients} clients × ${args.window} in flight, ${args.seconds} s × ${args.rounds} rounds (median), node ${process.version}\n`,
    );
    console.log('| variant | frames/s | vs trivial (median ratio) | each round | p50 ms | p99 ms |');
    console.log('|---|---:|---:|---|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.v} | ${r.perSec.toFixed(0)} | ${median(r.ratios).toFixed(2)}× | ${r.ratios.map((x) => x.toFixed(2)).join(', ')} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
      );
    }
    if (args.cycles > 0) {
      const cycles: Record<CycleVariant, CycleResult[]> = { 'trivial-connect': [], 'connect-welcome': [] };
      for (let round = 0; round < args.rounds; round++) {
        const order: CycleVariant[] =
          round % 2 === 0 ? ['trivial-connect', 'connect-welcome'] : ['connect-welcome', 'trivial-connect'];
        for (const v of order) {
          cycles[v].push(await cycle(v, args, env));
          loads.push(os.loadavg()[0]!);
        }
      }
      const ratios = cycles['connect-welcome'].map((x, i) => x.perSec / cycles['trivial-connect'][i]!.perSec);
      const t = cycles['trivial-connect'];
      const w = cycles['connect-welcome'];
      console.log(
        `\nconnection cycle — ${args.cycles} connections, ${args.cycleConcurrency} at a time, ${args.rounds} rounds (median)\n`,
      );
      const m = (xs: CycleResult[], k: keyof CycleResult) => median(xs.map((x) => x[k])).toFixed(1);
      console.log(
        '| variant | cycles/s | vs trivial | each round | welcome p50 ms | welcome p99 ms | p50 ms: open / open → welcome / close |',
      );
      console.log('|---|---:|---:|---|---:|---:|---|');
      console.log(
        `| trivial $connect (connect → open → close) | ${m(t, 'perSec')} | 1.00× | | — | — | ${m(t, 'openP50')} / — / ${m(t, 'closeP50')} |`,
      );
      console.log(
        `| connect → system.welcome → close | ${m(w, 'perSec')} | ${median(ratios).toFixed(2)}× | ${ratios.map((x) => x.toFixed(2)).join(', ')} | ${m(w, 'welcomeP50')} | ${m(w, 'welcomeP99')} | ${m(w, 'openP50')} / ${m(w, 'afterOpenP50')} / ${m(w, 'closeP50')} |`,
      );
    }
    console.log(
      `\nload average (1 min) between variants: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
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
