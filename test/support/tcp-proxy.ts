/**
 * A small TCP proxy for fault tests: put it in front of Redis (or anything on loopback) and make
 * the dependency unreachable and bring it back without losing it.
 *
 * - `freeze()`: the proxy stops forwarding in both directions but keeps every socket open and
 *   holds the bytes (what a SIGSTOPped or black-holed server looks like to its client: writes
 *   succeed, no reply ever comes); `thaw()` delivers what was held, in order, and resumes.
 * - `cut()`: every open connection is reset and new ones are closed at once (a server that went
 *   away); `restore()` accepts and forwards again.
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` style address for the given scheme. */
  url(scheme: string): string;
  freeze(): void;
  thaw(): void;
  cut(): void;
  restore(): void;
  /** Connections accepted so far (for assertions that a client reconnected). */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Bytes held while frozen, per direction. */
  readonly held: { toUpstream: Buffer[]; toClient: Buffer[] };
}

export async function startTcpProxy({
  targetPort,
  targetHost = '127.0.0.1',
}: {
  targetPort: number;
  targetHost?: string;
}): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;
  let refusing = false;
  let accepted = 0;

  const server = net.createServer((client) => {
    accepted++;
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair: Pair = { client, upstream, held: { toUpstream: [], toClient: [] } };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      if (frozen) pair.held.toUpstream.push(d);
      else upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (frozen) pair.held.toClient.push(d);
      else client.write(d);
    });
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const p of pairs) {
        for (const d of p.held.toUpstream.splice(0)) p.upstream.write(d);
        for (const d of p.held.toClient.splice(0)) p.client.write(d);
      }
    },
    cut() {
      refusing = true;
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
      pairs.clear();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
