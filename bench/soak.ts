/**
 * Soak: many live connections through serverless-offline for minutes, heartbeating, while room
 * events flow through Kafka and the consumer process. Not part of CI.
 *
 *   npm run soak -- [--connections=2000] [--seconds=120] [--room-size=4] [--events-per-sec=20]
 *                   [--heartbeat-ms=2000] [--connect-concurrency=25] [--drain-seconds=30]
 *
 * Starts its own Redis, Kafka mock cluster, serverless-offline (stage `local`) and consumer process
 * (consumers/events.ts), all on loopback. Then:
 * 1. opens --connections `ws` connections (each waits for its welcome and authenticates as its own
 *    user) and joins them to rooms of --room-size through user-targeted `room_state` events;
 * 2. for --seconds, every connection sends `system.heartbeat` every --heartbeat-ms (staggered) and
 *    times its `system.heartbeat_ack`; --events-per-sec room events (`turn_changed`, round-robin
 *    over the rooms, each with a sequence number) are produced to Kafka and timed from produce to
 *    receipt at every member;
 * 3. waits up to --drain-seconds for what is still in flight, then reports, per connection, the
 *    deliveries expected and received (lost = expected but never received; duplicates counted),
 *    errors (failed upgrades/authentications, `system.error` frames, unexpected closes, socket
 *    errors, heartbeats never acknowledged), delivery and heartbeat latency percentiles, and the RSS
 *    of serverless-offline and of the consumer (every process of each group) at start and end.
 *
 * Exits 1 when anything was lost or any error was counted. Bounded: fixed duration and counts.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import WebSocket from 'ws';
import { audience, gameEvent, gameRoom } from '../test/support/backend';
import { startConsumer, startOffline } from '../test/support/offline';
import { startKafkaMock, startRedis } from '../test/support/services';
import { argReader } from './args';

const args = argReader(process.argv.slice(2));
const CONNECTIONS = args.int('connections', 2000);
const SECONDS = args.int('seconds', 120);
const ROOM_SIZE = args.int('room-size', 4);
const EVENTS_PER_SEC = args.int('events-per-sec', 20);
const HEARTBEAT_MS = args.int('heartbeat-ms', 2000);
const CONNECT_CONCURRENCY = args.int('connect-concurrency', 25);
const DRAIN_SECONDS = args.int('drain-seconds', 30);
const GAMES = 'games.events';
const TURN = 'games.event.bigger_dice.turn_changed';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

/** Resident memory of every process in a process group (the child was spawned detached), MB. */
function groupRssMb(pgid: number): number {
  const out = execFileSync('ps', ['-e', '-o', 'pgid=,rss='], { encoding: 'utf8' });
  let kb = 0;
  for (const line of out.split('\n')) {
    const [g, rss] = line.trim().split(/\s+/);
    if (Number(g) === pgid) kb += Number(rss);
  }
  return Math.round(kb / 102.4) / 10;
}

interface Counts {
  upgradeFailed: number;
  authFailed: number;
  systemErrors: number;
  unexpectedCloses: number;
  socketErrors: number;
  heartbeatsSent: number;
  heartbeatsAcked: number;
}

const counts: Counts = {
  upgradeFailed: 0,
  authFailed: 0,
  systemErrors: 0,
  unexpectedCloses: 0,
  socketErrors: 0,
  heartbeatsSent: 0,
  heartbeatsAcked: 0,
};
const errorSamples: string[] = [];
const noteError = (what: string) => {
  if (errorSamples.length < 10) errorSamples.push(what);
};

/** One soak connection: a raw `ws` socket with the little bookkeeping the report needs. */
class Conn {
  socket!: WebSocket;
  readonly userId = String(randomInt(1_000_000, 2 ** 47));
  roomId = '';
  /** Sequence number → times received. */
  readonly received = new Map<number, number>();
  /** Send times of heartbeats not yet acknowledged, in order. */
  readonly pendingAcks: number[] = [];
  closing = false;
  private waiter: { type: string; resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly onEvent: (seq: number, at: number) => void,
    private readonly onAck: (ms: number) => void,
  ) {}

  open(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket = new WebSocket(url);
      const timer = setTimeout(() => reject(new Error('no welcome within 30 s')), 30_000);
      this.waiter = {
        type: 'system.welcome',
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      };
      this.socket.on('message', (data) => this.frame(data.toString()));
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.socket.on('error', (err) => {
        counts.socketErrors++;
        noteError(`socket error: ${err.message}`);
        reject(err);
      });
      this.socket.on('close', (code) => {
        if (!this.closing) {
          counts.unexpectedCloses++;
          noteError(`closed by the gateway: ${code}`);
        }
      });
    });
  }

  request(frame: object, reply: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${reply} within 30 s`)), 30_000);
      this.waiter = {
        type: reply,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      };
      this.socket.send(JSON.stringify(frame));
    });
  }

  heartbeat(): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    counts.heartbeatsSent++;
    this.pendingAcks.push(performance.now());
    this.socket.send('{"type":"system.heartbeat"}');
  }

  private frame(text: string): void {
    let f: { type?: unknown; turn_number?: unknown; room_id?: unknown; message?: unknown; code?: unknown };
    try {
      f = JSON.parse(text);
    } catch {
      noteError(`unparseable frame: ${text.slice(0, 100)}`);
      counts.systemErrors++;
      return;
    }
    if (f.type === TURN && f.room_id === this.roomId) {
      const seq = f.turn_number as number;
      this.received.set(seq, (this.received.get(seq) ?? 0) + 1);
      this.onEvent(seq, performance.now());
    } else if (f.type === 'system.heartbeat_ack') {
      const sent = this.pendingAcks.shift();
      if (sent !== undefined) {
        counts.heartbeatsAcked++;
        this.onAck(performance.now() - sent);
      }
    } else if (f.type === 'system.error') {
      counts.systemErrors++;
      noteError(`system.error ${String(f.code)}: ${String(f.message)}`);
    }
    if (this.waiter && f.type === this.waiter.type) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve();
    }
  }

  close(): void {
    this.closing = true;
    this.socket.close();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const log = (msg: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${msg}`);
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  // This process holds one socket per connection; offline as many again, plus push sockets.
  if (Number.isFinite(limit) && limit < CONNECTIONS + 500)
    throw new Error(`ulimit -n is ${limit}: too low for ${CONNECTIONS} connections (raise it)`);

  const [redis, kafkaMock] = await Promise.all([startRedis(), startKafkaMock()]);
  const env = {
    REDIS_URL: redis.address,
    KAFKA_BROKERS: kafkaMock.address,
    LOG_LEVEL: 'warn',
    WS_MAX_CONNECTIONS_PER_USER: '16',
  };
  // A loaded machine may not bring serverless-offline up in time: stop what was started, then fail.
  let gateway: Awaited<ReturnType<typeof startOffline>> | undefined;
  let consumer: Awaited<ReturnType<typeof startConsumer>>;
  try {
    gateway = await startOffline(env);
    consumer = await startConsumer(
      gateway,
      { KAFKA_CONSUMER_GROUP: 'soak', KAFKA_START_POSITION: 'earliest' },
      { readyTimeoutMs: 120_000 },
    );
  } catch (err) {
    await gateway?.stop();
    await Promise.all([redis.stop(), kafkaMock.stop()]);
    throw err;
  }
  const kafka = new Kafka({ clientId: 'soak', brokers: [kafkaMock.address], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const conns: Conn[] = [];
  try {
    const rss = { offlineStart: groupRssMb(gateway.pid), consumerStart: groupRssMb(consumer.child.pid!) };
    log(
      `services up (ulimit -n ${limit}); offline RSS ${rss.offlineStart} MB, consumer RSS ${rss.consumerStart} MB`,
    );

    const producedAt = new Map<number, number>();
    const deliveryMs: number[] = [];
    const ackMs: number[] = [];
    const onEvent = (seq: number, at: number) => {
      const p = producedAt.get(seq);
      if (p !== undefined) deliveryMs.push(at - p);
    };

    // 1. Connections, authenticated, in rooms.
    let next = 0;
    const openOne = async () => {
      while (next < CONNECTIONS) {
        next++;
        const c = new Conn(onEvent, (ms) => ackMs.push(ms));
        try {
          await c.open(gateway.wsUrl);
        } catch (err) {
          counts.upgradeFailed++;
          noteError(`upgrade: ${(err as Error).message}`);
          continue;
        }
        try {
          await c.request(
            { type: 'system.authenticate', user_id: c.userId, username: `soak${c.userId}` },
            'system.authenticated',
          );
          conns.push(c);
        } catch (err) {
          counts.authFailed++;
          noteError(`authenticate: ${(err as Error).message}`);
          c.close();
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, openOne));
    log(`${conns.length} of ${CONNECTIONS} connections open and authenticated`);
    const rooms: string[] = [];
    for (let i = 0; i < conns.length; i += ROOM_SIZE) {
      const roomId = `soak-${i / ROOM_SIZE}`;
      rooms.push(roomId);
      for (const c of conns.slice(i, i + ROOM_SIZE)) c.roomId = roomId;
    }
    const joined = new Set<Conn>();
    for (const c of conns) {
      c.socket.on('message', (data) => {
        if (!joined.has(c) && data.toString().includes('room_state')) joined.add(c);
      });
    }
    for (let i = 0; i < conns.length; i += 500) {
      await producer.send({
        topic: GAMES,
        messages: conns.slice(i, i + 500).map((c) => ({
          value: JSON.stringify(
            gameEvent('room_state', audience.user(c.userId), {
              room: gameRoom(c.roomId, { players: [Number(c.userId)] }),
            }),
          ),
        })),
      });
    }
    for (const end = Date.now() + 120_000; joined.size < conns.length && Date.now() < end; ) await sleep(200);
    log(`${joined.size} of ${conns.length} connections joined their rooms (${rooms.length} rooms)`);

    // 2. Heartbeats and room events for SECONDS.
    const timers: NodeJS.Timeout[] = [];
    for (const c of conns) {
      timers.push(
        setTimeout(() => {
          c.heartbeat();
          timers.push(setInterval(() => c.heartbeat(), HEARTBEAT_MS));
        }, Math.random() * HEARTBEAT_MS),
      );
    }
    let seq = 0;
    const expected = new Map<string, number[]>();
    const loadStart = Date.now();
    const tickMs = 1000 / EVENTS_PER_SEC;
    let produceErrors = 0;
    const sends: Promise<unknown>[] = [];
    for (let k = 0; Date.now() - loadStart < SECONDS * 1000; k++) {
      const due = loadStart + k * tickMs;
      if (due > Date.now()) await sleep(due - Date.now());
      const roomId = rooms[k % rooms.length]!;
      const n = seq++;
      expected.set(roomId, [...(expected.get(roomId) ?? []), n]);
      producedAt.set(n, performance.now());
      sends.push(
        producer
          .send({
            topic: GAMES,
            messages: [
              {
                value: JSON.stringify(
                  gameEvent('turn_changed', audience.room(roomId), {
                    room_id: roomId,
                    current_turn: 1,
                    turn_number: n,
                  }),
                ),
              },
            ],
          })
          .catch((err: Error) => {
            produceErrors++;
            noteError(`produce: ${err.message}`);
          }),
      );
      if (k % (EVENTS_PER_SEC * 30) === 0 && k > 0)
        log(
          `${k} events produced, ${deliveryMs.length} deliveries, ${counts.heartbeatsAcked} acks; ` +
            `RSS offline ${groupRssMb(gateway.pid)} MB, consumer ${groupRssMb(consumer.child.pid!)} MB`,
        );
    }
    await Promise.all(sends);
    for (const t of timers) clearTimeout(t);
    log(`load phase over: ${seq} events produced; draining`);

    // 3. Drain, then count.
    const lostNow = () => {
      let lost = 0;
      for (const c of conns) for (const s of expected.get(c.roomId) ?? []) if (!c.received.has(s)) lost++;
      return lost;
    };
    for (const end = Date.now() + DRAIN_SECONDS * 1000; Date.now() < end; await sleep(500))
      if (lostNow() === 0 && conns.every((c) => c.pendingAcks.length === 0)) break;
    const rssEnd = { offline: groupRssMb(gateway.pid), consumer: groupRssMb(consumer.child.pid!) };

    let expectedDeliveries = 0;
    let duplicates = 0;
    let connectionsMissing = 0;
    for (const c of conns) {
      const want = expected.get(c.roomId) ?? [];
      expectedDeliveries += want.length;
      if (want.some((s) => !c.received.has(s))) connectionsMissing++;
      for (const n of c.received.values()) duplicates += n - 1;
    }
    const lost = lostNow();
    const unacked = conns.reduce((a, c) => a + c.pendingAcks.length, 0);
    deliveryMs.sort((a, b) => a - b);
    ackMs.sort((a, b) => a - b);
    const errors =
      counts.upgradeFailed +
      counts.authFailed +
      counts.systemErrors +
      counts.unexpectedCloses +
      counts.socketErrors +
      unacked +
      produceErrors;

    const rows: Array<[string, string]> = [
      ['connections open / asked', `${conns.length} / ${CONNECTIONS}`],
      [
        'duration (load phase)',
        `${SECONDS} s, heartbeat every ${HEARTBEAT_MS} ms, ${EVENTS_PER_SEC} room events/s`,
      ],
      ['rooms × size', `${rooms.length} × ${ROOM_SIZE}`],
      ['events produced', String(seq)],
      ['deliveries expected / received', `${expectedDeliveries} / ${expectedDeliveries - lost}`],
      ['lost deliveries (connections affected)', `${lost} (${connectionsMissing})`],
      ['duplicate deliveries', String(duplicates)],
      [
        'delivery latency p50 / p99 / max',
        `${pct(deliveryMs, 50).toFixed(1)} / ${pct(deliveryMs, 99).toFixed(1)} / ${pct(deliveryMs, 100).toFixed(1)} ms`,
      ],
      ['heartbeats sent / acked', `${counts.heartbeatsSent} / ${counts.heartbeatsAcked}`],
      [
        'heartbeat ack p50 / p99 / max',
        `${pct(ackMs, 50).toFixed(1)} / ${pct(ackMs, 99).toFixed(1)} / ${pct(ackMs, 100).toFixed(1)} ms`,
      ],
      [
        'errors (upgrade, auth, system.error, closes, socket, unacked, produce)',
        `${errors} (${counts.upgradeFailed}, ${counts.authFailed}, ${counts.systemErrors}, ${counts.unexpectedCloses}, ${counts.socketErrors}, ${unacked}, ${produceErrors})`,
      ],
      ['serverless-offline RSS start → end', `${rss.offlineStart} → ${rssEnd.offline} MB`],
      ['consumer RSS start → end', `${rss.consumerStart} → ${rssEnd.consumer} MB`],
      ['ulimit -n', String(limit)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(`\n| ${'measure'.padEnd(width)} | value |\n| ${'-'.repeat(width)} | ----- |`);
    for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
    if (errorSamples.length > 0) console.log(`\nfirst errors:\n  ${errorSamples.join('\n  ')}`);
    // What the consumer warned about (at LOG_LEVEL=warn): retries and redeliveries explain duplicates.
    const warnings = new Map<string, number>();
    for (const m of consumer.output().matchAll(/"level":"(?:warn|error)","msg":"([^"]*)"/g))
      warnings.set(m[1]!, (warnings.get(m[1]!) ?? 0) + 1);
    if (warnings.size > 0)
      console.log(
        `\nconsumer warnings and errors:\n  ${[...warnings].map(([msg, n]) => `${n} × ${msg}`).join('\n  ')}`,
      );
    if (counts.upgradeFailed > 0 || counts.unexpectedCloses > 0)
      console.log(`\nserverless-offline output (tail):\n${gateway.output().slice(-3000)}`);
    process.exitCode = lost > 0 || errors > 0 ? 1 : 0;
  } finally {
    for (const c of conns) c.close();
    try {
      await producer.disconnect();
    } catch (err) {
      console.error('producer disconnect failed', err);
    }
    await consumer.stop();
    await gateway.stop();
    await Promise.all([redis.stop(), kafkaMock.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
