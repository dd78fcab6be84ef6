/**
 * SigV4 signers compared: the hand-written one (lib/aws/sigv4.ts) against `@smithy/signature-v4`
 * (what the AWS SDK uses) and `aws4`, on the request every push makes (`POST
 * /prod/@connections/{id}`, ~190-byte body, temporary credentials with a session token).
 *
 *   npx tsx bench/signer.ts [--n=20000] [--c=64] [--rounds=3]
 *
 * 1. Signing alone: µs per signature, each signer on the same requests (connection ids vary).
 * 2. Signing + posting over the same keep-alive agent (maxSockets = concurrency) to a loopback server
 *    in a child process answering 200: posts/s and client CPU µs per post, rounds interleaved, median.
 * Ratios are against the hand-written signer measured in the same process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import aws4 from 'aws4';
import { createSigner } from '../lib/aws/sigv4';
import { argReader } from './args';

const args = argReader(process.argv.slice(2));
const N = args.int('n', 20_000);
const C = args.int('c', 64);
const ROUNDS = args.int('rounds', 3);

const credentials = {
  accessKeyId: 'ASIABENCH',
  secretAccessKey: 'bench-secret',
  sessionToken: 'bench-session-token',
};
const region = 'eu-west-1';
const body = JSON.stringify({
  type: 'games.event.bigger_dice.turn_changed',
  room_id: 'room-42',
  current_turn: '1234567',
  turn_number: 7,
  timestamp: '2026-12-02T04:00:00.000Z',
  padding: 'x'.repeat(60),
});

class Sha256 {
  private readonly h;
  constructor(secret?: Uint8Array | string) {
    this.h = secret ? createHmac('sha256', secret) : createHash('sha256');
  }
  update(data: Uint8Array | string) {
    this.h.update(data);
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
}

type Sign = (host: string, path: string) => Promise<Record<string, string>> | Record<string, string>;

function signers(): Record<string, Sign> {
  const ours = createSigner({ service: 'execute-api', region, credentials: () => credentials });
  const headers = Object.freeze({ 'content-type': 'application/octet-stream' });
  const smithy = new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 as never });
  return {
    'hand-written (lib/aws/sigv4.ts)': (host, path) => ({
      ...ours.sign({ method: 'POST', host, path, body, headers }),
      'content-type': 'application/octet-stream',
    }),
    '@smithy/signature-v4': async (host, path) => {
      const signed = await smithy.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: host.split(':')[0] ?? host,
        port: Number(host.split(':')[1]) || undefined,
        path,
        headers: { host, 'content-type': 'application/octet-stream' },
        body,
        query: {},
      });
      return signed.headers as Record<string, string>;
    },
    aws4: (host, path) => {
      const opts = aws4.sign(
        {
          host,
          path,
          method: 'POST',
          service: 'execute-api',
          region,
          body,
          headers: { 'content-type': 'application/octet-stream' },
        },
        credentials,
      );
      return opts.headers as Record<string, string>;
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function signOnly(all: Record<string, Sign>): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const samples = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, sign] of Object.entries(all)) {
      for (let i = 0; i < 500; i++)
        await sign('abc.execute-api.eu-west-1.amazonaws.com', `/prod/@connections/w${i}=`);
      const t0 = performance.now();
      for (let i = 0; i < N; i++)
        await sign(
          'abc.execute-api.eu-west-1.amazonaws.com',
          `/prod/@connections/L0SM9cOF${i.toString(36)}%3D`,
        );
      const us = ((performance.now() - t0) * 1000) / N;
      samples.set(name, [...(samples.get(name) ?? []), us]);
    }
  }
  for (const [name, xs] of samples) result.set(name, median(xs));
  return result;
}

function startServer(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s=require('node:http').createServer((q,r)=>{q.resume();q.on('end',()=>{r.writeHead(200);r.end();});});
       s.keepAliveTimeout=60000;s.listen(0,'127.0.0.1',()=>process.stdout.write(String(s.address().port)+'\\n'));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve) => {
    child.stdout?.once('data', (d: Buffer) => resolve({ port: Number(String(d).trim()), child }));
  });
}

async function posts(sign: Sign, port: number): Promise<{ perSec: number; cpuUs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: C, maxFreeSockets: C });
  const host = `127.0.0.1:${port}`;
  let next = 0;
  const one = (i: number) =>
    Promise.resolve(sign(host, `/@connections/L0SM9cOF${i.toString(36)}%3D`)).then(
      (headers) =>
        new Promise<void>((resolve, reject) => {
          const req = http.request(
            {
              agent,
              hostname: '127.0.0.1',
              port,
              method: 'POST',
              path: `/@connections/L0SM9cOF${i.toString(36)}%3D`,
              headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
            },
            (res) => {
              res.resume();
              res.on('end', resolve);
            },
          );
          req.on('error', reject);
          req.end(body);
        }),
    );
  const worker = async () => {
    while (next < N) await one(next++);
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  return { perSec: (N / ms) * 1000, cpuUs: (cpu.user + cpu.system) / N };
}

async function main(): Promise<void> {
  const all = signers();
  const sign = await signOnly(all);
  const { port, child } = await startServer();
  const rate = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  try {
    for (const s of Object.values(all)) await posts(s, port); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, s] of Object.entries(all)) {
        const r = await posts(s, port);
        rate.set(name, [...(rate.get(name) ?? []), r.perSec]);
        cpu.set(name, [...(cpu.get(name) ?? []), r.cpuUs]);
      }
    }
  } finally {
    child.kill();
  }
  const base = Object.keys(all)[0]!;
  const b = { sign: sign.get(base)!, rate: median(rate.get(base)!), cpu: median(cpu.get(base)!) };
  console.log(
    `\nSigV4 signers, N=${N}, concurrency ${C}, ${ROUNDS} rounds (median), Node ${process.versions.node}\n`,
  );
  console.log('signer                            sign µs  ×ours   posts/s  ×ours  client CPU µs/post  ×ours');
  for (const name of Object.keys(all)) {
    const s = sign.get(name)!;
    const r = median(rate.get(name)!);
    const c = median(cpu.get(name)!);
    console.log(
      `${name.padEnd(32)} ${s.toFixed(2).padStart(8)} ${(s / b.sign).toFixed(1).padStart(6)} ${r.toFixed(0).padStart(9)} ${(r / b.rate).toFixed(2).padStart(6)} ${c.toFixed(1).padStart(19)} ${(c / b.cpu).toFixed(2).padStart(6)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
