import WebSocket from 'ws';

type Frame = Record<string, unknown> & { type: string };

/** A `ws` client that records every frame and lets a test wait for the next one matching a predicate. */
export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }> = [];
  private cursor = 0;
  closed = false;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        frame = { type: '__unparseable__', raw: data.toString() };
      }
      this.frames.push(frame);
      const index = this.frames.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (index >= w.from && w.match(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, options);
      const client = new TestClient(socket);
      socket.once('open', () => resolve(client));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  /** Connects and waits for the welcome. */
  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const c = await TestClient.connect(url, options);
    await c.next('system.welcome');
    return c;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already consumed by `next`) matching type/predicate. */
  next(type: string | ((f: Frame) => boolean), timeoutMs = 5000): Promise<Frame> {
    const match = typeof type === 'string' ? (f: Frame) => f.type === type : type;
    for (let i = this.cursor; i < this.frames.length; i++) {
      if (match(this.frames[i]!)) {
        this.cursor = i + 1;
        return Promise.resolve(this.frames[i]!);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `timed out waiting for ${typeof type === 'string' ? type : 'a frame'}; got ${JSON.stringify(this.frames.slice(this.cursor))}`,
          ),
        );
      }, timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        this.cursor = this.frames.indexOf(f) + 1;
        resolve(f);
      };
      this.waiters.push({ match, resolve: done, from: this.cursor });
    });
  }

  /** Sends a frame and waits for the reply of the given type. */
  async request(frame: unknown, replyType: string, timeoutMs = 5000): Promise<Frame> {
    const p = this.next(replyType, timeoutMs);
    this.send(frame);
    return p;
  }

  /** Resolves after `ms`, returning frames received meanwhile (to assert that nothing arrived). */
  async quiet(ms: number): Promise<Frame[]> {
    const start = this.frames.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.slice(start);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}
