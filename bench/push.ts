/**
 * Push fan-out benchmark: posts/s to a loopback stand-in for the Management API.
 *
 *   npx tsx bench/push.ts [--n=20000] [--c=64,256] [--rounds=3] [--server=child|inline|both] [--max-seconds=300]
 *
 * Clients compared, each for N posts at each concurrency, after a warm-up, rounds interleaved so
 * drift and GC hit all of them alike (the median round is reported):
 *   raw       `http.request` on a keep-alive agent, no signing — the ceiling
 *   sdk       `ApiGatewayManagementApiClient` + `PostToConnectionCommand` (dummy credentials)
 *   pusher    `createManagementApiPusher().push()`, SigV4-signed, session token included
 *   pushMany  a second such pusher through `pushMany` (what the fan-out path calls)
 * All use a keep-alive agent with maxSockets = concurrency. The body is the same ~190-byte JSON
 * frame, as a Buffer for raw, sdk and pusher, and as the string the fan-out path has for pushMany
 * (which lets the signer hash it once per fan-out instead of once per connection).
 *
 * The server answers `POST /@connections/{id}` with 200 and an empty body, as serverless-offline
 * does. By default it runs in a child process: in the same process, client and server share one
 * event loop, so the server's fixed cost per request is added to every client's and compresses
 * the differences between them. In production the server is API Gateway and only the client's
 * CPU is ours, so the child-process numbers (and the client CPU µs/post column) are the fair
 * ones. `--server=inline` reproduces the same-process measurement for comparison.
 *
 * Bounded: loopback only, a fixed number of posts, and a wall-clock cap after which remaining
 * measurements are skipped (and reported as skipped).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { silentLogger } from '../lib/logger';
import { createManagementApiPusher, pushMany } from '../lib/push/pusher';

type ServerMode = 'child' | 'inline';

interface Args {
  readonly n: number;
  readonly concurrencies: readonly number[];
  readonly rounds: number;
  readonly modes: readonly ServerMode[];
  readonly maxSeconds: number;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (name: string): string | undefined =>
    argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const int = (name: string, fallback: number): number => {
    const v = get(name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer`);
    return n;
  };
  const server = get('server') ?? 'child';
  if (!['child', 'inline', 'both'].includes(server)) throw new Error('--server: child, inline or both');
  return {
    n: int('n', 20_000),
    concurrencies: (get('c') ?? '64,256').split(',').map((c) => {
      const n = Number(c);
      if (!Number.isInteger(n) || n <= 0) throw new Error('--c: comma-separated positive integers');
      return n;
    }),
    rounds: int('rounds', 3),
    modes: server === 'both' ? ['child', 'inline'] : [server as ServerMode],
    maxSeconds: int('max-seconds', 300),
  };
}

/** The stand-in server, as plain JS so the child needs no TypeScript loader. */
const SERVER_SOURCE = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/@connections/')) { res.statusCode = 404; res.end(); return; }
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(200, { 'content-length': 0 }); res.end(); });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));
`;

interface RunningServer {
  readonly port: number;
  stop(): Promise<void>;
}

function startChildServer(): Promise<RunningServer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SERVER_SOURCE], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        child.removeAllListeners('exit');
        resolve({
          port: Number(m[1]),
          stop: () =>
            new Promise((r) => {
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
  });
}

function startInlineServer(): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        stop: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** One benchmarked client: `post` sends one message; `close` frees its sockets. */
interface Client {
  readonly name: string;
  post(connectionId: string): Promise<unknown>;
  /** Sends to all ids at the given concurrency; defaults to a worker pool over `post`. */
  fanOut?(ids: readonly string[], concurrency: number): Promise<void>;
  close(): Promise<void>;
}

/** A realistic frame: a chat message of ~200 bytes. */
const PAYLOAD = JSON.stringify({
  type: 'chat.message',
  payload: {
    roomId: 'room-42',
    from: 'user-1234',
    text: 'gg, rematch in five?',
    sentAt: '2025-01-01T00:00:00.000Z',
  },
  eventId: '5f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f',
});

function clients(port: number, concurrency: number): Client[] {
  const endpoint = `http://127.0.0.1:${port}`;
  const body = Buffer.from(PAYLOAD);

  const rawAgent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const raw: Client = {
    name: 'raw http (unsigned)',
    post: (id) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            agent: rawAgent,
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: `/@connections/${encodeURIComponent(id)}`,
            headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: async () => rawAgent.destroy(),
  };

  const sdkAgent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const sdkClient = new ApiGatewayManagementApiClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: { httpAgent: sdkAgent },
  });
  const sdk: Client = {
    name: 'aws sdk client',
    post: (id) => sdkClient.send(new PostToConnectionCommand({ ConnectionId: id, Data: body })),
    close: async () => sdkClient.destroy(),
  };

  const makePusher = () =>
    createManagementApiPusher({
      endpoint,
      region: 'us-east-1',
      logger: silentLogger,
      maxSockets: concurrency,
      credentials: () => ({ accessKeyId: 'local', secretAccessKey: 'local', sessionToken: 'local-session' }),
    });
  const single = makePusher();
  const pusher: Client = {
    name: 'pusher (signed)',
    post: (id) => single.push(id, body),
    close: () => single.close(),
  };
  const many = makePusher();
  const fanned: Client = {
    name: 'pusher via pushMany',
    post: (id) => many.push(id, body),
    fanOut: async (ids, c) => {
      const results = await pushMany(many, ids, PAYLOAD, { concurrency: c });
      for (const r of results.values()) if (r !== 'ok') throw r instanceof Error ? r : new Error(String(r));
    },
    close: () => many.close(),
  };
  return [raw, sdk, pusher, fanned];
}

async function drive(client: Client, ids: readonly string[], concurrency: number): Promise<void> {
  if (client.fanOut) return client.fanOut(ids, concurrency);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) await client.post(ids[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
}

interface Sample {
  readonly postsPerSec: number;
  /** Client-process CPU (user + system) per post, in µs; in inline mode it includes the server. */
  readonly cpuUsPerPost: number;
}

async function measure(client: Client, ids: readonly string[], concurrency: number): Promise<Sample> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await drive(client, ids, concurrency);
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  return { postsPerSec: (ids.length / ms) * 1000, cpuUsPerPost: (used.user + used.system) / ids.length };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

async function benchMode(mode: ServerMode, args: Args, deadline: number): Promise<string[]> {
  const server = mode === 'child' ? await startChildServer() : await startInlineServer();
  const lines: string[] = [];
  try {
    // Connection ids as AWS shapes them (base64 with '='), so path encoding is exercised.
    const ids = Array.from({ length: args.n }, (_, i) => `L0SM9cOFvHcC${i.toString(36).padStart(4, '0')}=`);
    const warmIds = ids.slice(0, Math.min(2000, ids.length));
    for (const concurrency of args.concurrencies) {
      const cs = clients(server.port, concurrency);
      const samples = new Map<string, Sample[]>(cs.map((c) => [c.name, []]));
      for (const c of cs) await drive(c, warmIds, concurrency);
      let skipped = false;
      for (let round = 0; round < args.rounds && !skipped; round++) {
        // Rotate the order each round so no client always runs right after the same one.
        const order = cs.map((_, i) => cs[(i + round) % cs.length]!);
        for (const c of order) {
          if (Date.now() > deadline) {
            skipped = true;
            break;
          }
          global.gc?.();
          samples.get(c.name)!.push(await measure(c, ids, concurrency));
        }
      }
      for (const c of cs) await c.close();
      const rate = (name: string) => median((samples.get(name) ?? []).map((s) => s.postsPerSec));
      const sdkRate = rate('aws sdk client');
      const rawRate = rate('raw http (unsigned)');
      for (const c of cs) {
        const ss = samples.get(c.name) ?? [];
        if (ss.length === 0) {
          lines.push(`| ${mode} | ${concurrency} | ${c.name} | skipped (time cap) | | | |`);
          continue;
        }
        const r = rate(c.name);
        const cpu = median(ss.map((s) => s.cpuUsPerPost));
        lines.push(
          `| ${mode} | ${concurrency} | ${c.name} | ${Math.round(r).toLocaleString('en-US')} | ${cpu.toFixed(0)} | ${(r / sdkRate).toFixed(2)}× | ${((r / rawRate) * 100).toFixed(0)}% |`,
        );
      }
      if (skipped) lines.push(`| ${mode} | ${concurrency} | (time cap reached: fewer rounds) | | | | |`);
    }
  } finally {
    await server.stop();
  }
  return lines;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const deadline = Date.now() + args.maxSeconds * 1000;
  process.stdout.write(
    `push fan-out: N=${args.n}, concurrency ${args.concurrencies.join('/')}, ${args.rounds} rounds (median), ` +
      `payload ${Buffer.byteLength(PAYLOAD)} B, node ${process.version}\n\n`,
  );
  const header = [
    '| server | concurrency | client | posts/s | client CPU µs/post | vs SDK | vs raw |',
    '|---|---:|---|---:|---:|---:|---:|',
  ];
  const lines: string[] = [];
  for (const mode of args.modes) lines.push(...(await benchMode(mode, args, deadline)));
  process.stdout.write(`${[...header, ...lines].join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
