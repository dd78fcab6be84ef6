/**
 * Throwaway dev/test services: a `redis-server` with no persistence on a free port, and
 * librdkafka's Kafka-protocol mock cluster started through `kcat`. Used by the jest global
 * setup and by `npm start`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

export class MissingBinaryError extends Error {
  override readonly name = 'MissingBinaryError';
}

export interface RunningService {
  readonly address: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const HOW_TO_GET = {
  'redis-server':
    'redis-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: `brew install redis`), or run `docker compose up -d redis` and set REDIS_URL=redis://127.0.0.1:6379.',
  kcat: 'kcat was not found on PATH (it provides the embedded Kafka mock cluster). Install it (Debian/Ubuntu: `sudo apt-get install -y kcat`, macOS: `brew install kcat`), or run `docker compose up -d kafka` and set KAFKA_BROKERS=127.0.0.1:9092.',
} as const;

export function requireBinary(name: keyof typeof HOW_TO_GET): void {
  if (!hasBinary(name)) throw new MissingBinaryError(HOW_TO_GET[name]);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

async function waitForPort(
  port: number,
  timeoutMs: number,
  child: ChildProcess,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${what} exited with code ${child.exitCode} during start-up`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
}

export interface RedisOptions {
  port?: number;
  /** Extra redis-server arguments (e.g. cluster mode). */
  args?: string[];
  dir?: string;
}

/** Starts `redis-server` with no persistence on loopback. */
export async function startRedis({ port, args = [], dir }: RedisOptions = {}): Promise<RunningService> {
  requireBinary('redis-server');
  const p = port ?? (await freePort());
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...(dir ? ['--dir', dir] : []),
      ...args,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await waitForPort(p, 10_000, child, 'redis-server');
  return { address: `redis://127.0.0.1:${p}`, process: child, stop: stopper(child) };
}

/**
 * Starts librdkafka's mock cluster through kcat. kcat prints
 * `… replaced with 127.0.0.1:PORT` on stderr once the mock broker listens.
 */
export async function startKafkaMock({ brokers = 1 }: { brokers?: number } = {}): Promise<RunningService> {
  requireBinary('kcat');
  const child = spawn(
    'kcat',
    ['-b', 'dummy:1', '-X', `test.mock.num.brokers=${brokers}`, '-C', '-t', 'keepalive', '-q'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const address = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`kcat mock cluster did not start within 10 s: ${buf.slice(-500)}`)),
      10_000,
    );
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /replaced with ((?:127\.0\.0\.1|localhost):\d+(?:,[^\s]+)?)/.exec(buf);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kcat exited with code ${code} during start-up: ${buf.slice(-500)}`));
    });
  });
  // Keep draining stderr so the child never blocks on a full pipe.
  child.stderr?.resume();
  return { address, process: child, stop: stopper(child) };
}

/**
 * Stops a child started with `detached: true` together with everything it spawned (serverless
 * starts helpers of its own): SIGTERM to the process group, SIGKILL after `graceMs`.
 */
export function stopProcessGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const pid = child.pid;
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    kill('SIGTERM');
  });
}
