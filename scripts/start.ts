/**
 * `npm start`: the whole gateway locally, one command.
 *
 * Redis: REDIS_URL (or REDIS_HOST…) when set, else an embedded throwaway redis-server.
 * Kafka: KAFKA_BROKERS (or KAFKA_HOST…) when set, else librdkafka's mock cluster through kcat.
 * Then serverless-offline (in-process handlers) and the event consumer, each its own process, and,
 * with the embedded Kafka (or DEV_BACKEND=true), the dev backend (scripts/dev-backend.ts) that
 * answers chat and game commands, so the demo page at http://127.0.0.1:9997/ shows the whole loop.
 * Waits until all are ready, prints one banner, and on Ctrl-C / SIGTERM stops every child.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError, loadConfig } from '../lib/config';
import {
  MissingBinaryError,
  type RunningService,
  startKafkaMock,
  startRedis,
  stopProcessGroup,
} from './dev-services';

const root = path.resolve(__dirname, '..');
const devDir = path.join(root, '.dev');
const logDir = path.join(devDir, 'logs');
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);

interface Part {
  name: string;
  stop(): Promise<void>;
}

const parts: Part[] = [];
let stopping = false;

function say(line: string) {
  process.stdout.write(`${line}\n`);
}

function fail(part: string, message: string): never {
  process.stderr.write(`\nws-gateway: ${part} failed to start: ${message}\n`);
  void shutdown(1);
  throw new Error('unreachable');
}

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const part of [...parts].reverse()) {
    await part.stop().catch(() => undefined);
  }
  process.exit(code);
}

function spawnPart(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  { ipc = false }: { ipc?: boolean } = {},
): ChildProcess {
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  const child = spawn(command, args, {
    cwd: root,
    env,
    detached: true,
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (process.env.START_VERBOSE === '1') {
    child.stdout?.pipe(process.stdout);
    child.stderr?.pipe(process.stderr);
  }
  parts.push({ name, stop: () => stopProcessGroup(child) });
  child.once('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(
      `\nws-gateway: ${name} exited unexpectedly (${signal ?? `code ${code}`}); see ${path.join(logDir, `${name}.log`)}\n`,
    );
    void shutdown(1);
  });
  return child;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(what, `not ready within ${Math.round(timeoutMs / 1000)} s; see ${logDir}`);
}

/** Resolves true once `child` sent `{type: 'ready'}` over its IPC channel (whatever its log level). */
function saysReady(child: ChildProcess): () => Promise<boolean> {
  let seen = false;
  child.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') seen = true;
  });
  return async () => seen;
}

/** DEV_BACKEND: `true` / `false`, else on exactly when Kafka is the embedded mock cluster. */
function devBackendWanted(value: string | undefined, externalKafka: boolean): boolean {
  if (value === undefined || value === '') return !externalKafka;
  if (value === 'true' || value === 'false') return value === 'true';
  fail('configuration', `DEV_BACKEND must be true or false (got "${value}")`);
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return res.ok;
}

function devSecret(): string {
  const file = path.join(devDir, 'jwt-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

async function main() {
  mkdirSync(logDir, { recursive: true });
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const env: NodeJS.ProcessEnv = { ...process.env };
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) fail('configuration', err.message);
    throw err;
  }
  const wsPort = Number(env.WS_PORT || 9998);
  const httpPort = Number(env.WS_HEALTH_PORT || 9997);
  const lambdaPort = Number(env.LAMBDA_PORT || 3002);
  const metricsPort = Number(env.CONSUMER_METRICS_PORT || 9996);
  for (const [what, port] of [
    ['WebSocket port (WS_PORT)', wsPort],
    ['HTTP port (WS_HEALTH_PORT)', httpPort],
    ['Lambda port (LAMBDA_PORT)', lambdaPort],
    ['consumer metrics port (CONSUMER_METRICS_PORT)', metricsPort],
  ] as const) {
    if (!(await portFree(port))) fail('serverless-offline', `${what} ${port} is already in use`);
  }

  const embedded = async (name: string, start: () => Promise<RunningService>): Promise<string> => {
    try {
      const svc = await start();
      parts.push({ name, stop: svc.stop });
      return svc.address;
    } catch (err) {
      if (err instanceof MissingBinaryError) fail(name, err.message);
      fail(name, (err as Error).message);
    }
  };
  const externalRedis = Boolean(env.REDIS_URL || env.REDIS_HOST);
  const externalKafka = Boolean(env.KAFKA_BROKERS || env.KAFKA_HOST);
  const withBackend = devBackendWanted(env.DEV_BACKEND, externalKafka);
  const started = Date.now();
  const [redisUrl, brokers] = await Promise.all([
    externalRedis ? Promise.resolve(loadConfig(env).redis.url) : embedded('redis', () => startRedis()),
    externalKafka
      ? Promise.resolve(loadConfig(env).kafka.brokers.join(','))
      : embedded('kafka', () => startKafkaMock()),
  ]);
  env.REDIS_URL = redisUrl;
  env.KAFKA_BROKERS = brokers;
  env.JWT_SECRET ||= devSecret();
  // serverless-offline gets these from the `local` stage parameters; the consumer reads them here.
  env.WS_MANAGEMENT_ENDPOINT ||= `http://127.0.0.1:${wsPort}`;
  env.CONSUMER_METRICS_PORT ||= String(metricsPort);
  env.AUTH_ALLOW_UNVERIFIED ||= 'true';
  // The mock cluster has no other clients yet: read from the beginning so nothing produced early is missed.
  if (!externalKafka) env.KAFKA_START_POSITION ||= 'earliest';

  spawnPart('offline', bin('serverless'), ['offline', 'start', '--stage', 'local'], env);
  // Node with tsx's loader, one process: the `tsx` command would relay Ctrl+C and SIGKILL a consumer
  // too busy to confirm it within 30 ms, instead of letting it stop cleanly.
  spawnPart(
    'consumer',
    process.execPath,
    ['--import', 'tsx', path.join(root, 'consumers', 'events.ts')],
    env,
  );
  const backendReady = withBackend
    ? saysReady(
        spawnPart('backend', bin('tsx'), [path.join(root, 'scripts', 'dev-backend.ts')], env, { ipc: true }),
      )
    : undefined;

  await Promise.all([
    waitFor('serverless-offline', () => httpOk(`http://127.0.0.1:${httpPort}/health`), 90_000),
    waitFor('consumer', () => httpOk(`http://127.0.0.1:${metricsPort}/ready`), 90_000),
    ...(backendReady ? [waitFor('dev backend', backendReady, 90_000)] : []),
  ]);
  if (stopping) return;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const redisShown = redisUrl.replace(/\/\/[^@/]*@/, '//***@');
  say('');
  say(`ws-gateway is running (ready in ${secs} s)`);
  say(`  Demo page     http://127.0.0.1:${httpPort}/   (open it in two windows)`);
  say(`  WebSocket     ws://127.0.0.1:${wsPort}`);
  say(`  Health        http://127.0.0.1:${httpPort}/health`);
  say(`  Ready         http://127.0.0.1:${httpPort}/ready`);
  say(`  Metrics       http://127.0.0.1:${metricsPort}/metrics   (event consumer)`);
  say(`  Redis         ${redisShown}${externalRedis ? '' : '   (embedded, no persistence)'}`);
  say(
    `  Kafka         ${brokers}${externalKafka ? '' : '   (embedded mock cluster: point a backend at it with KAFKA_BROKERS)'}`,
  );
  say(
    `  Auth          credential form ${env.AUTH_ALLOW_UNVERIFIED === 'true' ? 'allowed' : 'off'}; dev HS256 secret in .dev/jwt-secret`,
  );
  say(
    `  Dev backend   ${withBackend ? 'on: answers chat and game commands (DEV_BACKEND=false to bring your own)' : 'off (DEV_BACKEND=true to run it against this Kafka)'}`,
  );
  say(
    `  Logs          ${path.relative(root, logDir)}/offline.log, consumer.log${withBackend ? ', backend.log' : ''} (START_VERBOSE=1 to stream them here)`,
  );
  say('Press Ctrl-C to stop.');
}

main().catch((err: unknown) => {
  if (stopping) return;
  process.stderr.write(`ws-gateway: start-up failed: ${(err as Error).message}\n`);
  void shutdown(1);
});
