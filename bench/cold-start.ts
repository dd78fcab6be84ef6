/**
 * Cold start of every Lambda handler, as deployed: each handler is bundled exactly as serverless.yml
 * bundles it (minified, tree-shaken, `@aws-sdk/*` left to the runtime), then, in a fresh Node
 * process per run, the bundle is loaded (`require`) and invoked once with a realistic event against
 * a local Redis, the Kafka mock and stand-ins for the Management and Lambda APIs. Reported beside a
 * trivial handler bundle measured the same way, plus two variants that justify choices:
 * `connect` with source maps (`--enable-source-maps`), and loading `@aws-sdk/client-lambda` (the
 * SDK alternative to the hand-written welcome invoker).
 *
 *   npx tsx bench/cold-start.ts [--runs=7]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { startKafkaMock, startRedis } from '../scripts/dev-services';
import { startSignedRequestRecorder } from '../test/support/aws-stand-ins';
import { argReader } from './args';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const args = argReader(process.argv.slice(2));
const RUNS = args.int('runs', 7);

/** Loads `file`, invokes its handler once with `event`, prints the two durations (ms). */
const PROBE = `
const [file, eventJson] = process.argv.slice(1);
const t0 = performance.now();
const { handler } = require(file);
const t1 = performance.now();
const context = { awsRequestId: 'bench', functionName: 'ws-gateway-bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ws-gateway-bench', memoryLimitInMB: '512',
  logGroupName: 'g', logStreamName: 's', getRemainingTimeInMillis: () => 60000 };
Promise.resolve(handler(JSON.parse(eventJson), context)).then((result) => {
  const t2 = performance.now();
  process.stderr.write('@@' + JSON.stringify({ load: t1 - t0, first: t2 - t1, result }) + '\\n');
  process.exit(0);
}, (err) => { process.stderr.write('@@' + JSON.stringify({ error: String(err) }) + '\\n'); process.exit(1); });
`;

const SDK_PROBE = `
const t0 = performance.now();
const { LambdaClient } = require('@aws-sdk/client-lambda');
new LambdaClient({ region: 'eu-west-1' });
const t1 = performance.now();
process.stderr.write('@@' + JSON.stringify({ load: t1 - t0, first: 0 }) + '\\n');
`;

interface Sample {
  readonly load: number;
  readonly first: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

async function probe(script: string, argv: string[], env: NodeJS.ProcessEnv, extraNodeArgs: string[] = []) {
  const { stderr } = await run(process.execPath, [...extraNodeArgs, '-e', script, ...argv], {
    env,
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stderr?: string }) => ({ stderr: err.stderr ?? String(err) }));
  const line = stderr.split('\n').find((l) => l.startsWith('@@'));
  if (!line) throw new Error(`probe printed nothing:\n${stderr.slice(-2000)}`);
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
  try {
    const bundle = async (entry: string, name: string, sourcemap = false) => {
      const outfile = path.join(out, `${name}.js`);
      // The options of serverless.yml's custom.esbuild.
      await build({
        entryPoints: [path.join(root, entry)],
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
    const ws = (routeKey: string, body?: string) => ({
      requestContext: {
        routeKey,
        connectionId: `bench${Math.random().toString(36).slice(2)}=`,
        domainName: 'abc.execute-api.eu-west-1.amazonaws.com',
        stage: 'prod',
        requestId: 'r',
      },
      headers: {},
      queryStringParameters: null,
      isBase64Encoded: false,
      ...(body === undefined ? {} : { body }),
    });
    const mskRecord = Buffer.from(
      JSON.stringify({
        event_id: 'e1',
        event_type: 'games.event.bigger_dice.turn_changed',
        timestamp: new Date().toISOString(),
        correlation_id: null,
        producer: 'bench',
        actor: { user_id: '0', username: 'system', roles: [] },
        audience: { type: 'user', user_ids: ['999999'], room_id: null, game_id: null },
        payload: { type: 'turn_changed', room_id: 'r' },
      }),
    ).toString('base64');
    const cases: Array<{ name: string; entry: string; event: () => unknown; sourcemap?: boolean }> = [
      { name: 'trivial', entry: 'bench/handlers/trivial.ts', event: () => ws('$default', '{}') },
      { name: 'connect', entry: 'handlers/connect.ts', event: () => ws('$connect') },
      {
        name: 'default',
        entry: 'handlers/default.ts',
        event: () => ws('$default', '{"type":"system.heartbeat"}'),
      },
      { name: 'disconnect', entry: 'handlers/disconnect.ts', event: () => ws('$disconnect') },
      {
        name: 'welcome',
        entry: 'handlers/welcome.ts',
        event: () => ({ connectionId: 'bench=', endpoint: api.endpoint }),
      },
      {
        name: 'events',
        entry: 'handlers/events.ts',
        event: () => ({
          eventSource: 'aws:kafka',
          records: {
            'games.events-0': [{ topic: 'games.events', partition: 0, offset: 1, value: mskRecord }],
          },
        }),
      },
      { name: 'health', entry: 'handlers/health.ts', event: () => ({ rawPath: '/health' }) },
      {
        name: 'connect + source maps',
        entry: 'handlers/connect.ts',
        event: () => ws('$connect'),
        sourcemap: true,
      },
    ];

    const rows: Array<{ name: string; load: number; first: number; bytes: number }> = [];
    for (const c of cases) {
      const file = await bundle(c.entry, c.name.replace(/\W+/g, '-'), c.sourcemap);
      const samples: Sample[] = [];
      for (let i = 0; i < RUNS; i++) {
        // Interleaved with the trivial baseline would be fairer still; runs are short, so sequential.
        samples.push(
          await probe(
            PROBE,
            [file, JSON.stringify(c.event())],
            env,
            c.sourcemap ? ['--enable-source-maps'] : [],
          ),
        );
      }
      rows.push({
        name: c.name,
        load: median(samples.map((s) => s.load)),
        first: median(samples.map((s) => s.first)),
        bytes: statSync(file).size,
      });
    }
    const sdk: Sample[] = [];
    for (let i = 0; i < RUNS; i++) sdk.push(await probe(SDK_PROBE, [], env));
    rows.push({
      name: '@aws-sdk/client-lambda (load + client)',
      load: median(sdk.map((s) => s.load)),
      first: 0,
      bytes: 0,
    });

    const base = rows[0]!;
    const pad = (s: string, n: number) => s.padEnd(n);
    const num = (n: number) => n.toFixed(1).padStart(7);
    console.log(
      `\nCold start, median of ${RUNS} fresh processes each (Node ${process.versions.node}, load ${os.loadavg()[0]?.toFixed(1)})\n`,
    );
    console.log(`${pad('handler', 40)}  load ms  ×trivial  first ms  ×trivial  bundle KB`);
    for (const r of rows) {
      console.log(
        `${pad(r.name, 40)}  ${num(r.load)}  ${(r.load / base.load).toFixed(1).padStart(8)}  ${num(r.first)}  ${(
          r.first / base.first
        )
          .toFixed(1)
          .padStart(8)}  ${(r.bytes / 1024).toFixed(0).padStart(9)}`,
      );
    }
    writeFileSync(path.join(out, 'result.json'), JSON.stringify(rows));
  } finally {
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
