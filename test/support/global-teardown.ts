import { existsSync, readFileSync, rmSync } from 'node:fs';
import { STATE_FILE } from './state';

export default async function globalTeardown(): Promise<void> {
  if (!existsSync(STATE_FILE)) return;
  const { pids } = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { pids: number[] };
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(STATE_FILE, { force: true });
}
