/**
 * The deployable artifacts, run as AWS runs them:
 *
 * - `serverless package --stage prod` builds one zip per function; each is unzipped and its handler
 *   loaded on this Node (24, as `nodejs24.x`) in a fresh process whose only `node_modules` is the AWS
 *   SDK (`@aws-sdk/*`, which the Lambda runtime provides and the bundles leave out). That process
 *   drives `$connect` (query token) → `$default` `system.authenticate` → the welcome invocation →
 *   the events function fed an MSK event → `$disconnect`, plus health, against the test Redis, the
 *   Kafka mock and stand-ins for the Management API and the Lambda API. Pushes must be signed with
 *   the function role's credentials (the environment, as on Lambda).
 * - The consumer bundle (the container image's file) runs with container credentials served by a
 *   stand-in credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI, as on ECS / EKS), and its
 *   pushes must be signed with them.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { silentLogger } from '../../lib/logger';
import { createRedisClient, type RedisClient } from '../../lib/redis';
import { createSessionStore } from '../../lib/store/session-store';
import {
  type CredentialsEndpoint,
  type SignedRequestRecorder,
  startCredentialsEndpoint,
  startSignedRequestRecorder,
} from '../support/aws-stand-ins';
import { audience, type FakeBackend, gameEvent, startBackend } from '../support/backend';
import { freePort } from '../support/services';
import { connectAs } from '../support/store';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const FUNCTIONS = ['connect', 'default', 'disconnect', 'welcome', 'events', 'health'] as const;
const JWT_SECRET = 'bundle-test-secret';
const ROLE = { id: 'ASIALAMBDAROLE', secret: 'lambda-role-secret', token: 'lambda-role-session-token' };

let work: string;
let api: SignedRequestRecorder;
let lambdaApi: SignedRequestRecorder;
let redis: RedisClient;
const prefix = `it:bundles:${randomUUID()}:`;
const children: ChildProcess[] = [];

/**
 * The driver: loads a handler from its unzipped artifact on demand and answers one JSON line per
 * invocation request read from stdin. Plain JavaScript, no dependency: what the runtime would do.
 */
const DRIVER = `
const path = require('node:path');
const readline = require('node:readline');
const root = process.argv[2];
const handlers = {};
const context = (fn, n) => ({
  awsRequestId: 'req-' + fn + '-' + n, functionName: 'ws-gateway-prod-' + fn, functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ws-gateway-prod-' + fn,
  memoryLimitInMB: '512', logGroupName: '/aws/lambda/ws-gateway-prod-' + fn, logStreamName: 's',
  callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 60000,
});
let n = 0;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const { id, fn, event } = JSON.parse(line);
  try {
    handlers[fn] ??= require(path.join(root, fn, 'handlers', fn + '.js')).handler;
    const result = await handlers[fn](event, context(fn, ++n));
    process.stdout.write('@@' + JSON.stringify({ id, result }) + '\\n');
  } catch (err) {
    process.stdout.write('@@' + JSON.stringify({ id, error: String(err && err.stack || err) }) + '\\n');
  }
});
`;

interface Driver {
  invoke(fn: (typeof FUNCTIONS)[number], event: unknown): Promise<unknown>;
  output(): string;
}

function startDriver(env: NodeJS.ProcessEnv): Driver {
  const child = spawn(process.execPath, [path.join(work, 'driver.js'), path.join(work, 'functions')], {
    cwd: work,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  const waiting = new Map<number, (v: { result?: unknown; error?: string }) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('@@')) {
      log += `${line}\n`;
      return;
    }
    const answer = JSON.parse(line.slice(2)) as { id: number; result?: unknown; error?: string };
    waiting.get(answer.id)?.(answer);
  });
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  let next = 0;
  return {
    output: () => log,
    invoke: (fn, event) =>
      new Promise((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => reject(new Error(`${fn} did not answer:\n${log}`)), 30_000);
        waiting.set(id, ({ result, error }) => {
          clearTimeout(timer);
          if (error) reject(new Error(`${fn} threw: ${error}\n${log}`));
          else resolve(result);
        });
        child.stdin?.write(`${JSON.stringify({ id, fn, event })}\n`);
      }),
  };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-bundles-'));
  const out = path.join(work, 'package');
  const home = path.join(work, 'home');
  mkdirSync(home);
  await run(
    path.join(root, 'node_modules', '.bin', 'serverless'),
    ['package', '--stage', 'prod', '--package', out],
    {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: home, KAFKA_SOURCE: 'msk' },
      timeout: 150_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  mkdirSync(path.join(work, 'functions'));
  for (const fn of FUNCTIONS) {
    await run('unzip', ['-q', path.join(out, `${fn}.zip`), '-d', path.join(work, 'functions', fn)]);
  }
  // Nothing beside the bundles but the AWS SDK, as in the Lambda runtime.
  mkdirSync(path.join(work, 'node_modules'));
  symlinkSync(
    path.join(root, 'node_modules', '@aws-sdk'),
    path.join(work, 'node_modules', '@aws-sdk'),
    'dir',
  );
  writeFileSync(path.join(work, 'driver.js'), DRIVER);

  api = await startSignedRequestRecorder(200);
  lambdaApi = await startSignedRequestRecorder(202);
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (the jest global setup exports it)');
  redis = createRedisClient({ url, cluster: false, logger: silentLogger });
}, 240_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await api?.stop();
  await lambdaApi?.stop();
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

it('packages one minified bundle per function, the packages it loads on first use beside it, with no node_modules and no source map', () => {
  for (const fn of FUNCTIONS) {
    const files = readdirSync(path.join(work, 'functions', fn), { recursive: true }).map(String);
    // kafkajs and jsonwebtoken in files of their own (deploy/esbuild-plugins.js), not in the bundle.
    expect(files.sort()).toEqual(
      ['handlers', `handlers/${fn}.js`, 'handlers/jsonwebtoken.js', 'handlers/kafkajs.js'].sort(),
    );
    for (const file of files.filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(path.join(work, 'functions', fn, file), 'utf8');
      // Minified: a few hundred lines (template literals such as the Lua scripts) for hundreds of KB,
      // where unminified code averages under 50 characters a line; no source map reference.
      expect(code.length / code.split('\n').length).toBeGreaterThan(400);
      expect(code).not.toContain('sourceMappingURL');
    }
    const bundle = readFileSync(path.join(work, 'functions', fn, 'handlers', `${fn}.js`), 'utf8');
    expect(bundle).toContain('require("./kafkajs.js")');
    expect(bundle).not.toContain('KafkaJSProtocolError');
  }
});

it('runs $connect → $default authenticate → welcome → events (MSK) → $disconnect and health from the artifacts', async () => {
  const connectionId = randomBytes(10).toString('base64');
  const userId = String(randomInt(1_000_000, 2 ** 40));
  const token = jwt.sign({ sub: userId, username: 'ada', roles: ['user'] }, JWT_SECRET, {
    algorithm: 'HS256',
    expiresIn: 600,
  });
  const driver = startDriver({
    PATH: process.env.PATH,
    STAGE: 'prod',
    AWS_REGION: 'eu-west-1',
    // What Lambda puts in a function's environment for its role.
    AWS_ACCESS_KEY_ID: ROLE.id,
    AWS_SECRET_ACCESS_KEY: ROLE.secret,
    AWS_SESSION_TOKEN: ROLE.token,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    REDIS_URL: process.env.REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    JWT_SECRET,
    AUTH_ALLOW_UNVERIFIED: 'false',
    WS_MANAGEMENT_ENDPOINT: api.endpoint,
    LAMBDA_ENDPOINT: lambdaApi.endpoint,
    WELCOME_FUNCTION_NAME: 'ws-gateway-prod-welcome',
    LOG_LEVEL: 'info',
  });
  const requestContext = (routeKey: string, eventType: string) => ({
    routeKey,
    eventType,
    connectionId,
    domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
    stage: 'prod',
    apiId: 'abc123',
    requestId: randomUUID(),
    connectedAt: Date.now(),
    requestTimeEpoch: Date.now(),
    messageDirection: 'IN',
  });

  // $connect with a query token: bound, registered, the welcome handed to an async invocation.
  const connected = await driver.invoke('connect', {
    requestContext: requestContext('$connect', 'CONNECT'),
    headers: { Host: 'abc123.execute-api.eu-west-1.amazonaws.com' },
    queryStringParameters: { token },
    isBase64Encoded: false,
  });
  expect(connected).toMatchObject({ statusCode: 200 });
  expect(lambdaApi.requests).toHaveLength(1);
  const invocation = lambdaApi.requests[0]!;
  expect(invocation.path).toBe('/2015-03-31/functions/ws-gateway-prod-welcome/invocations');
  expect(invocation.accessKeyId).toBe(ROLE.id);

  // The welcome function, with the event $connect queued.
  await expect(driver.invoke('welcome', JSON.parse(invocation.body))).resolves.toMatchObject({
    result: 'sent',
  });
  const welcome = api.requests.find((r) => r.path === `/@connections/${encodeURIComponent(connectionId)}`);
  expect(JSON.parse(welcome?.body ?? '{}')).toMatchObject({
    type: 'system.welcome',
    connection_id: connectionId,
  });

  // $default: authenticate with the same token; the reply is the route response.
  const reply = (await driver.invoke('default', {
    requestContext: requestContext('$default', 'MESSAGE'),
    body: JSON.stringify({ type: 'system.authenticate', token }),
    isBase64Encoded: false,
  })) as { statusCode: number; body: string };
  expect(reply.statusCode).toBe(200);
  expect(JSON.parse(reply.body)).toMatchObject({
    type: 'system.authenticated',
    user_id: userId,
    username: 'ada',
  });

  // The events function fed an MSK batch for that user.
  const envelope = gameEvent('turn_changed', audience.user(userId), { room_id: 'r1', current_turn: userId });
  const before = api.requests.length;
  const outcome = await driver.invoke('events', {
    eventSource: 'aws:kafka',
    eventSourceArn: 'arn:aws:kafka:eu-west-1:123456789012:cluster/ws/00000000-0000-0000-0000-000000000000-1',
    bootstrapServers: 'b-1.ws.kafka.eu-west-1.amazonaws.com:9098',
    records: {
      'games.events-0': [
        {
          topic: 'games.events',
          partition: 0,
          offset: 41,
          timestamp: Date.now(),
          timestampType: 'CREATE_TIME',
          value: Buffer.from(JSON.stringify(envelope)).toString('base64'),
          headers: [],
        },
      ],
    },
  });
  expect(outcome).toEqual({ records: 1, skipped: 0 });
  const pushed = api.requests.slice(before);
  expect(pushed).toHaveLength(1);
  expect(JSON.parse(pushed[0]!.body)).toMatchObject({ type: 'games.event.bigger_dice.turn_changed' });

  // Every push signed with the role's credentials from the environment.
  for (const r of api.requests) {
    expect(r.accessKeyId).toBe(ROLE.id);
    expect(r.securityToken).toBe(ROLE.token);
  }

  await expect(
    driver.invoke('disconnect', {
      requestContext: requestContext('$disconnect', 'DISCONNECT'),
      isBase64Encoded: false,
    }),
  ).resolves.toMatchObject({ statusCode: 200 });
  expect(await redis.exists(`${prefix}socket:${connectionId}`)).toBe(0);

  const health = (await driver.invoke('health', {
    version: '2.0',
    routeKey: 'GET /health',
    rawPath: '/health',
    requestContext: { http: { method: 'GET', path: '/health' } },
  })) as { statusCode: number; body: string };
  expect(health).toMatchObject({ statusCode: 200, body: '{"status":"ok"}' });

  // Powertools' structured lines: request id and function name on the handlers' entries.
  const entries = driver
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(
    entries.some((e) => e.function_name === 'ws-gateway-prod-connect' && 'function_request_id' in e),
  ).toBe(true);
}, 120_000);

describe('the consumer bundle with container credentials', () => {
  let creds: CredentialsEndpoint;
  let backend: FakeBackend;

  beforeAll(async () => {
    creds = await startCredentialsEndpoint({ authorization: 'pod-token' });
    backend = await startBackend();
  });

  afterAll(async () => {
    await backend?.stop();
    await creds?.stop();
  });

  it('signs its pushes with the credentials the container endpoint hands out', async () => {
    // The build script's own command, into a directory of this test (the image holds one file).
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const outfile = path.join(work, 'image', 'consumer.js');
    const args = (pkg.scripts['build:consumer'] ?? '')
      .split(/\s+/)
      .slice(1)
      .map((a) => (a.startsWith('--outfile=') ? `--outfile=${outfile}` : a));
    await run(path.join(root, 'node_modules', '.bin', 'esbuild'), args, { cwd: root, timeout: 90_000 });

    const metricsPort = await freePort();
    const userId = String(randomInt(1_000_000, 2 ** 40));
    const connectionId = randomBytes(10).toString('base64');
    await connectAs(
      createSessionStore({ redis, connectionTtlSecs: 3600, keyPrefix: prefix }),
      connectionId,
      userId,
    );
    const before = api.requests.length;
    const child = spawn(process.execPath, ['consumer.js'], {
      cwd: path.join(work, 'image'),
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'eu-west-1',
        // ECS / EKS Pod Identity: no keys in the environment, an endpoint that serves them.
        AWS_CONTAINER_CREDENTIALS_FULL_URI: creds.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-token',
        REDIS_URL: process.env.REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        KAFKA_BROKERS: process.env.KAFKA_BROKERS,
        KAFKA_CONSUMER_GROUP: `it-bundles-${randomUUID()}`,
        WS_MANAGEMENT_ENDPOINT: api.endpoint,
        CONSUMER_METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let log = '';
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const deadline = Date.now() + 40_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`consumer exited ${child.exitCode}:\n${log}`);
      const ready = await fetch(`http://127.0.0.1:${metricsPort}/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`consumer not ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // Produced until it arrives: the group may still be settling its partitions when it says ready.
    const target = `/@connections/${encodeURIComponent(connectionId)}`;
    const until = Date.now() + 40_000;
    while (!api.requests.slice(before).some((r) => r.path === target) && Date.now() < until) {
      await backend.produce(
        'games.events',
        gameEvent('turn_changed', audience.user(userId), { room_id: 'r2' }),
      );
      await new Promise((r) => setTimeout(r, 1000));
    }
    const pushes = api.requests.slice(before).filter((r) => r.path === target);
    expect(pushes.length).toBeGreaterThan(0);
    for (const p of pushes) {
      expect(p.accessKeyId).toBe('ASIACONTAINER1');
      expect(p.securityToken).toBe('container-token-1');
    }
    expect(creds.issued).toHaveLength(1);
    child.kill('SIGTERM');
  }, 150_000);
});
