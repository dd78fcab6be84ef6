/**
 * The consumer as the container image runs it: `npm run build:consumer` bundles it into one file,
 * which starts from a directory holding only that file and its source map (no node_modules, as in
 * the Dockerfile's `consumer` stage). A bad configuration exits non-zero with one line; with the
 * test Redis and Kafka it joins its group, answers /ready, and stops cleanly on SIGTERM.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/services';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');

/** The bundle's path, from the build script itself (what the Dockerfile must copy). */
function bundlePath(): string {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const outfile = /--outfile=(\S+)/.exec(pkg.scripts['build:consumer'] ?? '')?.[1];
  if (!outfile) throw new Error('build:consumer has no --outfile');
  return outfile;
}

interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<Exited>;
  output(): string;
}

let imageDir: string;
const started: ChildProcess[] = [];

/** `node consumer.js` in the image-like directory, with exactly the given environment. */
function startConsumer(env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, ['consumer.js'], {
    cwd: imageDir,
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=16 --max-old-space-size=128',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Exited>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, output: () => `${stdout}${stderr}`.slice(-2000) };
}

async function waitForStatus(
  url: string,
  status: number,
  consumer: Started,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (consumer.child.exitCode !== null) {
      throw new Error(`consumer exited with ${consumer.child.exitCode}:\n${consumer.output()}`);
    }
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.status === status) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${url} did not answer ${status} within ${timeoutMs} ms (last: ${last}):\n${consumer.output()}`,
  );
}

beforeAll(async () => {
  await run('npm', ['run', '--silent', 'build:consumer'], { cwd: root, timeout: 60_000 });
  imageDir = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-consumer-image-'));
  const bundle = path.join(root, bundlePath());
  copyFileSync(bundle, path.join(imageDir, 'consumer.js'));
  copyFileSync(`${bundle}.map`, path.join(imageDir, 'consumer.js.map'));
}, 90_000);

afterAll(() => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (imageDir) rmSync(imageDir, { recursive: true, force: true });
});

describe('consumer bundle (npm run build:consumer)', () => {
  it('is one file with its source map next to it, as the Dockerfile copies them', () => {
    const outfile = bundlePath();
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const consumerStage = dockerfile.slice(dockerfile.indexOf(' AS consumer'));

    expect(existsSync(path.join(root, `${outfile}.map`))).toBe(true);
    expect(readFileSync(path.join(root, outfile), 'utf8').trimEnd()).toMatch(
      /\/\/# sourceMappingURL=consumer\.js\.map$/,
    );
    expect(consumerStage).toContain(`COPY --from=build /app/${outfile} /app/${outfile}.map ./`);
    expect(consumerStage).toMatch(/^CMD \["node", "consumer\.js"\]$/m);
    expect(consumerStage).toMatch(/^USER node$/m);
  });

  it.each([
    ['WS_RATE_LIMIT_BURST', { WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9', WS_RATE_LIMIT_BURST: 'lots' }],
    ['WS_MANAGEMENT_ENDPOINT', {}],
    ['REDIS_URL', { WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9', REDIS_URL: 'http://not-redis' }],
  ])('exits 1 with one line naming %s when the configuration is bad', async (variable, env) => {
    const consumer = startConsumer(env);

    const { code, stdout, stderr } = await consumer.exited;

    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^ws-gateway: invalid configuration: ${variable}: `));
  });

  it('becomes ready with the test Redis and Kafka, serves /metrics, and exits 0 on SIGTERM', async () => {
    const metricsPort = await freePort();
    const base = `http://127.0.0.1:${metricsPort}`;
    const consumer = startConsumer({
      REDIS_URL: process.env.REDIS_URL,
      KAFKA_BROKERS: process.env.KAFKA_BROKERS,
      KAFKA_CONSUMER_GROUP: `it-consumer-bundle-${randomUUID()}`,
      // Nothing is delivered in this test; a loopback endpoint needs no AWS credentials.
      WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9',
      CONSUMER_METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'warn',
    });

    await waitForStatus(`${base}/health`, 200, consumer, 10_000);
    await waitForStatus(`${base}/ready`, 200, consumer, 25_000);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    // The process metrics and the latency histograms, listed before the first event.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('# TYPE ws_gateway_delivery_latency_seconds histogram');
    expect(text).toContain('# TYPE ws_gateway_push_duration_seconds histogram');

    consumer.child.kill('SIGTERM');
    const { code, signal } = await consumer.exited;

    expect({ code, signal }).toEqual({ code: 0, signal: null });
  }, 45_000);
});
