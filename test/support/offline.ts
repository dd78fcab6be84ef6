/**
 * Starts serverless-offline (and optionally the event consumer) as child processes on free ports,
 * for e2e tests. Each call gets its own ports and Redis key prefix.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, stopProcessGroup } from './services';

const root = path.resolve(__dirname, '..', '..');

export interface OfflineGateway {
  /** Of serverless-offline, leader of its own process group (for signals and RSS). */
  readonly pid: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly managementEndpoint: string;
  readonly env: NodeJS.ProcessEnv;
  output(): string;
  stop(): Promise<void>;
}

async function waitHttp(
  url: string,
  child: ChildProcess,
  out: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`process exited (${child.exitCode}):\n${out().slice(-3000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms:\n${out().slice(-3000)}`);
}

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv) {
  let out = '';
  const child = spawn(command, args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return { child, output: () => out };
}

export interface OfflineOptions {
  /** A serverless config file in the repo root other than serverless.yml (benchmarks). */
  readonly config?: string;
}

export async function startOffline(
  extraEnv: NodeJS.ProcessEnv = {},
  options: OfflineOptions = {},
): Promise<OfflineGateway> {
  const [wsPort, httpPort, lambdaPort] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WS_PORT: String(wsPort),
    WS_HEALTH_PORT: String(httpPort),
    LAMBDA_PORT: String(lambdaPort),
    REDIS_KEY_PREFIX: `e2e:${wsPort}:`,
    LOG_LEVEL: process.env.TEST_VERBOSE === '1' ? 'debug' : 'warn',
    ...extraEnv,
  };
  const args = [
    'offline',
    'start',
    '--stage',
    'local',
    ...(options.config ? ['--config', options.config] : []),
  ];
  const { child, output } = spawnLogged(path.join(root, 'node_modules', '.bin', 'serverless'), args, env);
  try {
    await waitHttp(`http://127.0.0.1:${httpPort}/health`, child, output, 60_000);
  } catch (err) {
    // Not left running behind a failed start (it may still come up later on a loaded machine).
    await stopProcessGroup(child);
    throw err;
  }
  return {
    pid: child.pid!,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    managementEndpoint: `http://127.0.0.1:${wsPort}`,
    env,
    output,
    stop: () => stopProcessGroup(child),
  };
}

export interface ConsumerProcess {
  readonly metricsUrl: string;
  /** `/ready`: 200 while it consumes (joined its group, not rebalancing). */
  readonly readyUrl: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
  kill(): void;
}

/**
 * Starts `consumers/events.ts` against a running offline gateway; resolves once it joined its group
 * and consumes (within `readyTimeoutMs`, default 120 s: a join that meets the mock cluster's SyncGroup
 * race costs an in-process restart and another rebalance of ≈ 30 s, during which `/ready` is 503 —
 * for both members of a pair started together — and a loaded machine adds to it).
 */
export async function startConsumer(
  gateway: OfflineGateway,
  extraEnv: NodeJS.ProcessEnv = {},
  { readyTimeoutMs = 120_000 }: { readyTimeoutMs?: number } = {},
): Promise<ConsumerProcess> {
  const metricsPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...gateway.env,
    WS_MANAGEMENT_ENDPOINT: gateway.managementEndpoint,
    CONSUMER_METRICS_PORT: String(metricsPort),
    ...extraEnv,
  };
  // Node itself with tsx's loader, not the `tsx` command: the command is a second process that relays
  // signals and, when the consumer does not confirm one within 30 ms (a busy event loop on a loaded
  // machine), SIGKILLs it and exits 143 — a stop that is not the consumer's own clean stop.
  const { child, output } = spawnLogged(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'consumers', 'events.ts')],
    env,
  );
  try {
    await waitHttp(`http://127.0.0.1:${metricsPort}/ready`, child, output, readyTimeoutMs);
  } catch (err) {
    await stopProcessGroup(child);
    throw err;
  }
  return {
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    readyUrl: `http://127.0.0.1:${metricsPort}/ready`,
    child,
    output,
    stop: () => stopProcessGroup(child),
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    },
  };
}
