/**
 * The whole local stack exactly as `npm start` runs it (scripts/start.ts: embedded Redis and Kafka
 * mock cluster, serverless-offline, the event consumer and the dev backend), on free ports, for the
 * browser tests. The environment of the test run (its shared Redis and Kafka) is left out, so the
 * stack has its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, stopProcessGroup } from './services';

const root = path.resolve(__dirname, '..', '..');

export interface LocalStack {
  /** The demo page, e.g. `http://127.0.0.1:PORT/`. */
  readonly pageUrl: string;
  readonly wsUrl: string;
  output(): string;
  stop(): Promise<void>;
}

/** Variables of the test run that would point the stack at the run's shared services. */
const INHERITED = /^(REDIS_|KAFKA_|JWT_|AUTH_|WS_|LAMBDA_|CONSUMER_|DEV_BACKEND|START_VERBOSE)/;

export async function startLocalStack(extraEnv: NodeJS.ProcessEnv = {}): Promise<LocalStack> {
  const [ws, http, lambda, metrics] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !INHERITED.test(k)),
  );
  Object.assign(env, {
    WS_PORT: String(ws),
    WS_HEALTH_PORT: String(http),
    LAMBDA_PORT: String(lambda),
    CONSUMER_METRICS_PORT: String(metrics),
    LOG_LEVEL: process.env.TEST_VERBOSE === '1' ? 'debug' : 'warn',
    ...extraEnv,
  });
  let out = '';
  const child: ChildProcess = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), ['scripts/start.ts'], {
    cwd: root,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const append = (d: Buffer) => {
    out = (out + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const deadline = Date.now() + 150_000;
  while (!out.includes('ws-gateway is running')) {
    if (child.exitCode !== null)
      throw new Error(`npm start exited (${child.exitCode}):\n${out.slice(-3000)}`);
    if (Date.now() > deadline) {
      await stopProcessGroup(child);
      throw new Error(`npm start was not ready within 150 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pageUrl: `http://127.0.0.1:${http}/`,
    wsUrl: `ws://127.0.0.1:${ws}`,
    output: () => out,
    // start.ts stops every part it started on SIGTERM; the grace covers serverless-offline's own stop.
    stop: () => stopProcessGroup(child, 20_000),
  };
}
