import os from 'node:os';
import path from 'node:path';

/** Where the global setup records the pids it started, for the teardown. */
export const STATE_FILE = path.join(os.tmpdir(), `ws-gateway-jest-${process.ppid}-${process.pid}.json`);
