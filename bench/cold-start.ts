/**
 * Cold start of every Lambda handler, as deployed: each handler is bundled exactly as serverless.yml
 * bundles it (minified, tree-shaken, `@aws-sdk/*` left to the runtime, the packages of
 * deploy/esbuild-plugins.js in files beside it), then, in a fresh Node process per sample, the
 * bundle is loaded (`require`) and invoked once with the event a cold container really gets first
 * (a valid token, a connection Redis knows) against a local Redis, the Kafka mock and stand-ins for
 * the Management and Lambda APIs. A result that is not the handler's success, or a warning or error
 * it logs, stops the run. Cases run round robin, so a change of the machine's load hits all alike.
 * Each span is reported as wall time and as the process's CPU time. Reported beside: a trivial
 * handler bundle (the ratios), `connect` with source maps (`--enable-source-maps`), ioredis, kafkajs
 * and jsonwebtoken bundled and loaded alone (the floor of a bundle's load), and loading
 * `@aws-sdk/client-lambda` (the SDK alternative to the hand-written welcome invoker).
 *
 *   npx tsx bench/cold-start.ts [--runs=7] [--only=<regexp of case names>] [--baseline=<checkout>]
 *
 * `--baseline` bundles the same handlers from another checkout with its own node_modules (e.g.
 * `git archive <commit> | tar -x -C /tmp/before` and a link to this node_modules) and runs them in
 * the same rounds, so a before/after comparison sees the same machine load.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import jwt from 'jsonwebtoken';
import { silentLogger } from '../lib/logger';
import { createRedisClient, type RedisClient } from '../lib/redis';
import { createSessionStore } from '../lib/store/session-store';
import { startKafkaMock, startRedis } from '../scripts/dev-services';
import { startSignedRequestRecorder } from '../test/support/aws-stand-ins';
import { connectAs } from '../test/support/store';
import { argReader } from './args';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const args = argReader(process.argv.slice(2));
const RUNS = args.int('runs', 7);
/** Another checkout (with its node_modules) bundled and run in the same rounds: before / after. */
const BASELINE = args.raw('baseline');
/** Only the cases whose name matches (the trivial baseline always runs). */
const ONLY = args.has('only') ? new RegExp(args.raw('only')!) : undefined;

/** Loads `file`, invokes its handler once with `event`, prints the two durations (ms). */
const PROBE = `
const [file, eventJson] = process.argv.slice(1);
const c0 = process.cpuUsage();
const t0 = performance.now();
const { handler } = require(file);
const t1 = performance.now();
const c1 = process.cpuUsage();
const context = { awsRequestId: 'bench', functionName: 'ws-gateway-bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ws-gateway-bench', memoryLimitInMB: '512',
  logGroupName: 'g', logStreamName: 's', getRemainingTimeInMillis: () => 60000 };
Promise.resolve(handler(JSON.parse(eventJson), context)).then((result) => {
  const t2 = performance.now();
  const c2 = process.cpuUsage();
  const cpu = (a, b) => (b.user - a.user + b.system - a.system) / 1000;
  process.stderr.write('@@' + JSON.stringify({ load: t1 - t0, first: t2 - t1, loadCpu: cpu(c0, c1), firstCpu: cpu(c1, c2), result }) + '\\n');
  process.exit(0);
}, (err) => { process.stderr.write('@@' + JSON.stringify({ error: String(err) }) + '\\n'); process.exit(1); });
`;

const SDK_PROBE = `
const c0 = process.cpuUsage();
const t0 = performance.now();
const { LambdaClient } = require('@aws-sdk/client-lambda');
new LambdaClient({ region: 'eu-west-1' });
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
process.stderr.write('@@' + JSON.stringify({ load: t1 - t0, first: 0, loadCpu: (c1.user + c1.system) / 1000, firstCpu: 0 }) + '\\n');
`;

/** Loads the bundle `file` (one library) and reports the time: what that library alone costs. */
const LIBRARY_PROBE = `
const c0 = process.cpuUsage();
const t0 = performance.now();
require(process.argv[1]);
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
process.stderr.write('@@' + JSON.stringify({ load: t1 - t0, first: 0, loadCpu: (c1.user + c1.system) / 1000, firstCpu: 0 }) + '\\n');
`;

/** Libraries whose load is reported alone, bundled like the functions: the floor of a bundle's load. */
const LIBRARIES = ['ioredis', 'kafkajs', 'jsonwebtoken'] as const;

interface Sample {
  readonly load: number;
  readonly first: number;
  /** CPU time (user + system, all threads) of the same spans: less sensitive to the machine's load. */
  readonly loadCpu: number;
  readonly firstCpu: number;
  readonly result?: unknown;
}

interface Case {
  readonly name: string;
  readonly entry: string;
  /** Prepares Redis for connection `id` (before the process starts) and returns the event. */
  readonly event: (id: string) => Promise<unknown>;
  /** The handler really did its work: a refusal or an error is not a cold start. */
  readonly check: (result: unknown) => boolean;
  readonly sourcemap?: boolean;
  /** The checkout the handler is bundled from (default this one; `--baseline` adds others). */
  readonly root?: string;
}

interface Row {
  readonly name: string;
  readonly load: number;
  readonly first: number;
  readonly loadCpu: number;
  readonly firstCpu: number;
  readonly bytes: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

async function probe(script: string, argv: string[], env: NodeJS.ProcessEnv, extraNodeArgs: string[] = []) {
  const { stdout, stderr } = await run(process.execPath, [...extraNodeArgs, '-e', script, ...argv], {
    env,
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stdout?: string; stderr?: string }) => ({
    stdout: err.stdout ?? '',
    stderr: err.stderr ?? String(err),
  }));
  const line = stderr.split('\n').find((l) => l.startsWith('@@'));
  if (!line) throw new Error(`probe printed nothing:\n${stderr.slice(-2000)}`);
  // LOG_LEVEL=warn: a warning or an error (a publish that failed behind a successful reply, say)
  // means the handler did not do all its work.
  const complaint = `${stdout}\n${stderr}`.split('\n').find((l) => /"level":"(WARN|ERROR)"/.test(l));
  if (complaint) throw new Error(`the handler logged: ${complaint.slice(0, 2000)}`);
  const parsed = JSON.parse(line.slice(2)) as Sample & { error?: string };
  if (parsed.error) throw new Error(parsed.error);
  return parsed;
}

async function main(): Promise<void> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-cold-start-'));
  const redis = await startRedis();
  const kafka = await startKafkaMock();
  const api = await startSignedRequestRecorder(200);
  const lambdaApi = await startSignedRequestRecorder(202);
  let seedRedis: RedisClient | undefined;
  try {
    const checkouts: string[] = [];
    const bundle = async (from: string, entry: string, name: string, sourcemap = false) => {
      // One folder per checkout: the files its plugins write beside the handlers are its own.
      if (!checkouts.includes(from)) checkouts.push(from);
      const outfile = path.join(out, String(checkouts.indexOf(from)), `${name}.js`);
      // serverless.yml's custom.esbuild.plugins (a checkout from before it had none).
      const pluginsFile = path.join(from, 'deploy', 'esbuild-plugins.js');
      const plugins = existsSync(pluginsFile) ? (require(pluginsFile) as Plugin[]) : [];
      // The options of serverless.yml's custom.esbuild.
      await build({
        plugins,
        entryPoints: [path.join(from, entry)],
        bundle: true,
        minify: true,
        keepNames: true,
        sourcemap,
        mainFields: ['module', 'main'],
        target: 'node24',
        platform: 'node',
        format: 'cjs',
        external: ['@aws-sdk/*'],
        outfile,
        logLevel: 'error',
      });
      return outfile;
    };
    // `@aws-sdk/*` from the repository, as the runtime provides it.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_PATH: path.join(root, 'node_modules'),
      STAGE: 'prod',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'ASIABENCH',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      REDIS_URL: redis.address,
      KAFKA_BROKERS: kafka.address,
      JWT_SECRET: 'bench',
      WS_MANAGEMENT_ENDPOINT: api.endpoint,
      LAMBDA_ENDPOINT: lambdaApi.endpoint,
      LOG_LEVEL: 'warn',
    };
    const prefix = `bench:cold:${Date.now()}:`;
    env.REDIS_KEY_PREFIX = prefix;
    seedRedis = createRedisClient({ url: redis.address, cluster: false, logger: silentLogger });
    const store = createSessionStore({ redis: seedRedis, connectionTtlSecs: 3600, keyPrefix: prefix });
    // A user per sample: the store caps connections per user.
    let users = 4000;
    const newUser = () => {
      const userId = String(++users);
      const token = jwt.sign({ sub: userId, username: 'ada', roles: ['user'] }, env.JWT_SECRET!, {
        algorithm: 'HS256',
        expiresIn: 3600,
      });
      return { userId, token };
    };
    const ws = (routeKey: string, connectionId: string, extra: Record<string, unknown> = {}) => ({
      requestContext: {
        routeKey,
        connectionId,
        domainName: 'abc.execute-api.eu-west-1.amazonaws.com',
        stage: 'prod',
        requestId: 'r',
      },
      headers: {},
      queryStringParameters: null,
      isBase64Encoded: false,
      ...extra,
    });
    const mskRecord = (userId: string) =>
      Buffer.from(
        JSON.stringify({
          event_id: 'e1',
          event_type: 'games.event.bigger_dice.turn_changed',
          timestamp: new Date().toISOString(),
          correlation_id: null,
          producer: 'bench',
          actor: { user_id: '0', username: 'system', roles: [] },
          audience: { type: 'user', user_ids: [userId], room_id: null, game_id: null },
          payload: { type: 'turn_changed', room_id: 'r' },
        }),
      ).toString('base64');
    const ok200 = (r: unknown) => (r as { statusCode?: number }).statusCode === 200;
    // Each case is the first invocation a cold container really sees: a valid token, a registered
    // (and where it matters authenticated) connection prepared in Redis before the process starts.
    const cases: Case[] = [
      {
        name: 'trivial',
        entry: 'bench/handlers/trivial.ts',
        event: async (id) => ws('$default', id),
        check: ok200,
      },
      {
        name: '$connect (query token)',
        entry: 'handlers/connect.ts',
        event: async (id) => ws('$connect', id, { queryStringParameters: { token: newUser().token } }),
        check: ok200,
      },
      {
        name: '$default system.authenticate',
        entry: 'handlers/default.ts',
        event: async (id) => {
          await connectAs(store, id);
          const { token } = newUser();
          return ws('$default', id, { body: JSON.stringify({ type: 'system.authenticate', token }) });
        },
        check: (r) => ok200(r) && (r as { body: string }).body.includes('system.authenticated'),
      },
      {
        name: '$default system.heartbeat',
        entry: 'handlers/default.ts',
        event: async (id) => {
          await connectAs(store, id, newUser().userId);
          return ws('$default', id, { body: '{"type":"system.heartbeat"}' });
        },
        check: (r) => ok200(r) && (r as { body: string }).body.includes('heartbeat_ack'),
      },
      {
        name: '$disconnect',
        entry: 'handlers/disconnect.ts',
        event: async (id) => {
          await connectAs(store, id, newUser().userId);
          return ws('$disconnect', id);
        },
        check: ok200,
      },
      {
        name: 'welcome',
        entry: 'handlers/welcome.ts',
        event: async (id) => {
          await connectAs(store, id);
          return { connectionId: id, endpoint: api.endpoint };
        },
        check: (r) => (r as { result?: string }).result === 'sent',
      },
      {
        name: 'events (MSK, one push)',
        entry: 'handlers/events.ts',
        event: async (id) => {
          const { userId } = newUser();
          await connectAs(store, id, userId);
          return {
            eventSource: 'aws:kafka',
            records: {
              'games.events-0': [
                { topic: 'games.events', partition: 0, offset: 1, value: mskRecord(userId) },
              ],
            },
          };
        },
        check: (r) => (r as { records?: number }).records === 1,
      },
      {
        name: 'health /health',
        entry: 'handlers/health.ts',
        event: async () => ({ rawPath: '/health' }),
        check: ok200,
      },
      {
        name: 'health /ready',
        entry: 'handlers/health.ts',
        event: async () => ({ rawPath: '/ready' }),
        check: ok200,
      },
      {
        name: '$connect + source maps',
        entry: 'handlers/connect.ts',
        event: async (id) => ws('$connect', id, { queryStringParameters: { token: newUser().token } }),
        check: ok200,
        sourcemap: true,
      },
    ];

    const selected = cases.filter((c, k) => k === 0 || !ONLY || ONLY.test(c.name));
    const all: Array<Case & { readonly label: string }> = selected.flatMap((c, k) => [
      { ...c, label: c.name },
      ...(BASELINE && k > 0 ? [{ ...c, label: `${c.name} [baseline]`, root: path.resolve(BASELINE) }] : []),
    ]);
    const fileKey = (c: Case) => `${c.root ?? root}:${c.entry}${c.sourcemap ? '+map' : ''}`;
    const files = new Map<string, string>();
    for (const c of all) {
      const key = fileKey(c);
      if (!files.has(key))
        files.set(key, await bundle(c.root ?? root, c.entry, `${files.size}`, c.sourcemap));
    }
    const samples = all.map((): Sample[] => []);
    const loads: number[] = [];
    // Round robin: a change of the machine's load during the run hits every case alike.
    for (let i = 0; i < RUNS; i++) {
      loads.push(os.loadavg()[0] ?? Number.NaN);
      for (const [k, c] of all.entries()) {
        const id = `bench${i}x${k}${Math.random().toString(36).slice(2)}=`;
        const event = await c.event(id);
        const sample = await probe(
          PROBE,
          [files.get(fileKey(c))!, JSON.stringify(event)],
          { ...env, NODE_PATH: path.join(c.root ?? root, 'node_modules') },
          c.sourcemap ? ['--enable-source-maps'] : [],
        );
        if (!c.check(sample.result))
          throw new Error(`${c.label}: unexpected result ${JSON.stringify(sample.result)}`);
        samples[k]!.push(sample);
      }
    }
    const rows: Row[] = all.map((c, k) => ({
      name: c.label,
      load: median(samples[k]!.map((s) => s.load)),
      first: median(samples[k]!.map((s) => s.first)),
      loadCpu: median(samples[k]!.map((s) => s.loadCpu)),
      firstCpu: median(samples[k]!.map((s) => s.firstCpu)),
      bytes: statSync(files.get(fileKey(c))!).size,
    }));
    if (!ONLY) {
      for (const lib of LIBRARIES) {
        const outfile = path.join(out, `lib-${lib}.js`);
        await build({
          stdin: { contents: `module.exports = require('${lib}');`, resolveDir: root, loader: 'js' },
          bundle: true,
          minify: true,
          keepNames: true,
          mainFields: ['module', 'main'],
          target: 'node24',
          platform: 'node',
          format: 'cjs',
          outfile,
          logLevel: 'error',
        });
        const alone: Sample[] = [];
        for (let i = 0; i < RUNS; i++) alone.push(await probe(LIBRARY_PROBE, [outfile], env));
        rows.push({
          name: `${lib} alone (bundled, load only)`,
          load: median(alone.map((s) => s.load)),
          first: 0,
          loadCpu: median(alone.map((s) => s.loadCpu)),
          firstCpu: 0,
          bytes: statSync(outfile).size,
        });
      }
      const sdk: Sample[] = [];
      for (let i = 0; i < RUNS; i++) sdk.push(await probe(SDK_PROBE, [], env));
      rows.push({
        name: '@aws-sdk/client-lambda (load + client)',
        load: median(sdk.map((s) => s.load)),
        first: 0,
        loadCpu: median(sdk.map((s) => s.loadCpu)),
        firstCpu: 0,
        bytes: 0,
      });
    }

    const base = rows[0]!;
    const ratio = (n: number, of: number) => (n === 0 ? '—' : (n / of).toFixed(0));
    console.log(
      `\nCold start, median of ${RUNS} fresh processes per case (Node ${process.versions.node}, ` +
        `${os.cpus().length} CPUs, 1-min load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} during the runs)\n`,
    );
    console.log(
      '| handler (first invocation) | load ms | CPU ms | × trivial | first invocation ms | CPU ms | × trivial | bundle KB |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      const cells = [
        r.name,
        r.load.toFixed(1),
        r.loadCpu.toFixed(0),
        ratio(r.load, base.load),
        r.first === 0 ? '—' : r.first.toFixed(1),
        r.first === 0 ? '—' : r.firstCpu.toFixed(0),
        ratio(r.first, base.first),
        r.bytes === 0 ? '—' : (r.bytes / 1024).toFixed(0),
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
    for (const [i, from] of checkouts.entries()) {
      const dir = path.join(out, String(i));
      const beside = readdirSync(dir).filter((f) => !/^\d+\.js(\.map)?$/.test(f));
      if (beside.length === 0) continue;
      const sizes = beside.map((f) => `${f} ${(statSync(path.join(dir, f)).size / 1024).toFixed(0)} KB`);
      console.log(
        `\nBeside the handlers of ${from === root ? 'this checkout' : from} (loaded on first use): ${sizes.join(', ')}`,
      );
    }
  } finally {
    await seedRedis?.quit();
    await api.stop();
    await lambdaApi.stop();
    await kafka.stop();
    await redis.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
