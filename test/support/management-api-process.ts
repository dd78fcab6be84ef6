/**
 * The Management API stand-in (./management-api.ts) in a child process, for benchmarks: the
 * measured process then pays nothing for the stand-in's own CPU. Driven over its control routes
 * (`/_standin/configure`, `/stats`, `/requests`, `/reset`).
 *
 * Run directly (`node --import tsx test/support/management-api-process.ts '{"rate":2000}'`), it
 * serves with the options given as JSON and prints `PORT n` once listening.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import {
  type ManagementApiConfig,
  type ManagementApiOptions,
  type ManagementApiStats,
  type RecordedPush,
  startManagementApi,
} from './management-api';

export interface ManagementApiProcess {
  readonly endpoint: string;
  readonly pid: number | undefined;
  configure(config: ManagementApiConfig): Promise<void>;
  stats(): Promise<ManagementApiStats>;
  /** Every POST recorded (bodies included unless `recordBodies: false`). */
  requests(): Promise<RecordedPush[]>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

function control<T>(endpoint: string, route: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${endpoint}/_standin/${route}`,
      { method: body === undefined ? 'GET' : 'POST', agent: false, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`stand-in ${route}: ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text) as T);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`stand-in ${route}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * Spawns the stand-in in a child process (node with the tsx loader) and resolves once it listens.
 *
 * @example
 * const api = await startManagementApiProcess({ rate: 2000, burst: 500, recordBodies: false });
 * await api.configure({ connections: { slow1: { kind: 'slow' } } });
 * const { throttled } = await api.stats();
 */
export function startManagementApiProcess(options: ManagementApiOptions = {}): Promise<ManagementApiProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', __filename, JSON.stringify(options)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the stand-in did not start within 30 s'));
    }, 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the stand-in exited with ${code}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /PORT (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      const endpoint = `http://127.0.0.1:${m[1]}`;
      resolve({
        endpoint,
        pid: child.pid,
        configure: async (config) => {
          await control(endpoint, 'configure', config);
        },
        stats: () => control<ManagementApiStats>(endpoint, 'stats'),
        requests: () => control<RecordedPush[]>(endpoint, 'requests'),
        reset: async () => {
          await control(endpoint, 'reset', {});
        },
        stop: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

if (require.main === module) {
  const options = JSON.parse(process.argv[2] ?? '{}') as ManagementApiOptions;
  void startManagementApi(options).then((api) => {
    process.stdout.write(`PORT ${new URL(api.endpoint).port}\n`);
    process.on('SIGTERM', () => void api.stop().then(() => process.exit(0)));
  });
}
