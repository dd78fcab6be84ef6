/**
 * The consumer as it ships — the esbuild bundle of consumers/events.ts (`npm run build:consumer`,
 * what the image runs) in a process of its own — tracking many connections: its events/s and its
 * memory, against a bare kafkajs consumer process (bundled the same way) over the same backlog in the
 * same run.
 *
 *   npx tsx bench/consumer-process.ts [--connections=10000] [--events=30000] [--api-latency-ms=10]
 *        [--rounds=2] [--push-concurrency=128] [--budget-rps=0] [--room-size=4]
 *        [--variants=noop,consumer,image] [--image-node-options=…] [--heap-snapshot=<dir>]
 *
 * Redis holds `--connections` authenticated connections (one per user) in rooms of `--room-size`;
 * the backlog is bench/consumer-world.ts's mix (2.35 pushes per event with rooms of 4). The
 * Management API stand-in (child process) answers every push after `--api-latency-ms` (± 2 ms).
 *   noop            (kafkajs no-op) bench/handlers/noop-consumer.ts: reads the backlog, does nothing (RSS, rate
 *                   of Node + kafkajs alone)
 *   consumer        the production consumer with PUSH_CONCURRENCY `--push-concurrency` and
 *                   PUSH_BUDGET_RPS `--budget-rps` (0: no budget; the stand-in does not throttle)
 *   image           the same bundle with source maps, run with the image's NODE_OPTIONS (read from
 *                   the Dockerfile: `--enable-source-maps --max-semi-space-size=16`, V8's young
 *                   generation capped at 2 × 16 MB; left to itself on a host with memory to spare
 *                   it grows to 2 × 64 MB of mostly garbage)
 * Also: the consumer's heap (its /metrics) at the end, and the CPU of each process over the pass
 * (this machine's two cores are shared by the consumer, the stand-in, Redis and the Kafka mock).
 * Events/s: from the first push the stand-in sees to the last expected one. RSS: the child's VmRSS
 * once it is ready (joined), its peak (VmHWM) and VmRSS at the end, from /proc (Linux).
 * Bounded: loopback only, a fixed backlog, a time cap per pass; every process is stopped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { startManagementApiProcess } from '../test/support/management-api-process';
import { freePort, startKafkaMock, startRedis, stopProcessGroup } from '../test/support/services';
import { argReader, runBench } from './args';
import { envelopes, populate, produceBacklog, pushesPerEvent, TOPIC, worldOf } from './consumer-world';

type Variant = 'noop' | 'consumer' | 'image';
const LABEL: Record<Variant, string> = {
  noop: 'kafkajs no-op',
  consumer: 'consumer',
  image: 'consumer as the image runs it',
};

interface Sample {
  perSec: number;
  readyMb: number;
  peakMb: number;
  endMb: number;
  /** The consumer's V8 heap at the end (used / total) and external memory, MB (its /metrics). */
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** CPU over the pass, in cores (1 = one core flat out): the measured process, the stand-in, Redis, the Kafka mock. */
  cpu: { self: number; standIn: number; redis: number; kafka: number };
}

/** utime + stime of a process, seconds (Linux /proc, 100 ticks a second). */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A gauge of the consumer's Prometheus text, MB. */
const gaugeMb = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 1048576;

const root = path.resolve(__dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmRSS / VmHWM of a process in MB (Linux /proc). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** As `npm run build:consumer` does (with `sourcemap`, as the image has it). */
async function bundle(entry: string, outfile: string, sourcemap = false): Promise<string> {
  await build({
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    target: 'node24',
    sourcemap,
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

function spawnNode(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [file, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return { child, out: () => out };
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, out: () => string) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms:\n${out().slice(-2000)}`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  const { int, has, raw } = argReader(process.argv.slice(2));
  const connections = int('connections', 10_000);
  const events = Math.ceil(int('events', 30_000) / 20) * 20;
  const roomSize = int('room-size', 4);
  const rounds = int('rounds', 2);
  const latencyMs = has('api-latency-ms') ? Number(raw('api-latency-ms')) : 10;
  if (!Number.isInteger(latencyMs) || latencyMs < 0) throw new Error('--api-latency-ms: an integer ≥ 0');
  const pushConcurrency = int('push-concurrency', 128);
  const budgetRps = has('budget-rps') ? int('budget-rps', 1) : 0;
  // The image's NODE_OPTIONS (Dockerfile, consumer stage), unless given.
  const imageOptions =
    raw('image-node-options') ??
    /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(path.join(root, 'Dockerfile'), 'utf8'))?.[1] ??
    '';
  // Writes a heap snapshot of the consumer half-way through each pass into this directory.
  const snapshotDir = raw('heap-snapshot');
  const only = raw('variants')?.split(',') as Variant[] | undefined;
  const loads: number[] = [os.loadavg()[0]!];
  const tmp = os.tmpdir();
  const [consumerJs, imageJs, noopJs] = await Promise.all([
    bundle('consumers/events.ts', path.join(tmp, `ws-gateway-bench-consumer-${process.pid}.js`)),
    bundle('consumers/events.ts', path.join(tmp, `ws-gateway-bench-image-${process.pid}.js`), true),
    bundle('bench/handlers/noop-consumer.ts', path.join(tmp, `ws-gateway-bench-noop-${process.pid}.js`)),
  ]);
  const [redis, kafka] = await Promise.all([startRedis(), startKafkaMock()]);
  const api = await startManagementApiProcess({ latencyMs, jitterMs: 2, recordBodies: false });
  try {
    const world = worldOf(connections, roomSize);
    const keyPrefix = 'bench:';
    await populate({ redisUrl: redis.address, keyPrefix }, world, roomSize);
    await produceBacklog(kafka.address, envelopes(world, { events, roomSize }));
    const expectedPushes = Math.round(events * pushesPerEvent(roomSize));

    const pass = async (variant: Variant): Promise<Sample> => {
      const group = `bench-${randomUUID()}`;
      await api.reset();
      const metricsPort = await freePort();
      const { child, out } =
        variant !== 'noop'
          ? spawnNode(variant === 'image' ? imageJs : consumerJs, [], {
              NODE_OPTIONS: [
                variant === 'image' ? imageOptions : '',
                snapshotDir ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}` : '',
              ].join(' '),
              KAFKA_BROKERS: kafka.address,
              KAFKA_CONSUMER_GROUP: group,
              KAFKA_START_POSITION: 'earliest',
              REDIS_URL: redis.address,
              REDIS_KEY_PREFIX: keyPrefix,
              WS_MANAGEMENT_ENDPOINT: api.endpoint,
              CONSUMER_METRICS_PORT: String(metricsPort),
              PUSH_CONCURRENCY: String(pushConcurrency),
              PUSH_BUDGET_RPS: String(budgetRps),
              LOG_LEVEL: 'error',
            })
          : spawnNode(noopJs, [kafka.address, TOPIC, String(events), group], {});
      const pid = child.pid!;
      try {
        // Ready: joined its group (and, for the consumer, /ready answers 200).
        await until(
          async () =>
            variant !== 'noop'
              ? (await fetch(`http://127.0.0.1:${metricsPort}/ready`).catch(() => undefined))?.status === 200
              : out().includes('READY'),
          60_000,
          `${LABEL[variant]} ready`,
          out,
        );
        const readyMb = memoryOf(pid).rss;
        const cpu0 = [pid, api.pid, redis.process.pid, kafka.process.pid].map(cpuSecondsOf);
        const t0 = performance.now();
        let perSec: number;
        if (variant !== 'noop') {
          let first = 0;
          let posts = 0;
          let snapped = false;
          await until(
            async () => {
              posts = (await api.stats()).posts;
              if (posts > 0 && first === 0) first = performance.now();
              if (snapshotDir && !snapped && posts >= expectedPushes / 2) {
                snapped = true;
                child.kill('SIGUSR2');
              }
              return posts >= expectedPushes;
            },
            300_000,
            `all ${expectedPushes} pushes`,
            out,
          );
          perSec = events / ((performance.now() - first) / 1000);
          if (posts !== expectedPushes)
            throw new Error(`consumer: ${posts} pushes, expected ${expectedPushes}`);
        } else {
          await until(() => out().includes('DONE '), 300_000, 'no-op consumer done', out);
          const ms = (JSON.parse(/DONE (.*)/.exec(out())![1]!) as { ms: number }).ms;
          perSec = events / (ms / 1000);
        }
        const seconds = (performance.now() - t0) / 1000;
        const [self, standIn, r, k] = [pid, api.pid, redis.process.pid, kafka.process.pid].map(
          (p, i) => (cpuSecondsOf(p) - cpu0[i]!) / seconds,
        );
        const mem = child.exitCode === null ? memoryOf(pid) : { rss: Number.NaN, hwm: Number.NaN };
        const text =
          variant === 'noop'
            ? ''
            : await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
                (res) => res.text(),
                () => '',
              );
        return {
          perSec,
          readyMb,
          peakMb: mem.hwm,
          endMb: mem.rss,
          heapUsedMb: gaugeMb(text, 'nodejs_heap_size_used_bytes'),
          heapTotalMb: gaugeMb(text, 'nodejs_heap_size_total_bytes'),
          externalMb: gaugeMb(text, 'nodejs_external_memory_bytes'),
          cpu: { self: self!, standIn: standIn!, redis: r!, kafka: k! },
        };
      } finally {
        if (child.exitCode === null) await stopProcessGroup(child);
      }
    };

    const variants: Variant[] = only ?? ['noop', 'consumer', 'image'];
    const samples: Record<Variant, Sample[]> = {
      noop: [],
      consumer: [],
      image: [],
    };
    for (let r = 0; r < rounds; r++) {
      const order: Variant[] = r % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const s = await pass(v);
        samples[v].push(s);
        loads.push(os.loadavg()[0]!);
        process.stderr.write(`round ${r + 1} ${LABEL[v]}: ${JSON.stringify(s)}\n`);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const m = (v: Variant, k: Exclude<keyof Sample, 'cpu'>) => med(samples[v].map((s) => s[k]));
    const c = (v: Variant, k: keyof Sample['cpu']) => med(samples[v].map((s) => s.cpu[k])).toFixed(2);
    const f0 = (x: number) => Math.round(x).toLocaleString('en-US');
    const lines = [
      `consumer process: ${connections.toLocaleString('en-US')} tracked connections (rooms of ${roomSize}), ${events.toLocaleString('en-US')} events, ${pushesPerEvent(roomSize).toFixed(2)} pushes/event, stand-in ${latencyMs} ± 2 ms, PUSH_CONCURRENCY ${pushConcurrency}, PUSH_BUDGET_RPS ${budgetRps}, median of ${rounds}, node ${process.version}, load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
      '',
      `| process | events/s | pushes/s | RSS ready MB | peak RSS MB | RSS at the end MB | heap used / total, external MB | CPU, cores: process / stand-in / Redis / Kafka mock |`,
      '|---|---:|---:|---:|---:|---:|---|---|',
      ...variants.map(
        (v) =>
          `| ${v === 'image' ? `${LABEL[v]} (NODE_OPTIONS=${imageOptions})` : LABEL[v]} | ${f0(m(v, 'perSec'))} | ${v === 'noop' ? '—' : f0(m(v, 'perSec') * pushesPerEvent(roomSize))} | ${f0(m(v, 'readyMb'))} | ${f0(m(v, 'peakMb'))} | ${f0(m(v, 'endMb'))} | ${v === 'noop' ? '—' : `${f0(m(v, 'heapUsedMb'))} / ${f0(m(v, 'heapTotalMb'))}, ${f0(m(v, 'externalMb'))}`} | ${c(v, 'self')} / ${c(v, 'standIn')} / ${c(v, 'redis')} / ${c(v, 'kafka')} |`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await Promise.allSettled([api.stop(), redis.stop(), kafka.stop()]);
    for (const f of [consumerJs, imageJs, `${imageJs}.map`, noopJs]) rmSync(f, { force: true });
  }
}

runBench(main);
