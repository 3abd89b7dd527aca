/** Starts a bench child (tandem or the ceiling) on loopback and talks to it over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildRequest, ChildStats } from './child-stats.js';

export type ChildKind = 'tandem' | 'ceiling';

const files: Record<ChildKind, string> = {
  tandem: fileURLToPath(new URL('./tandem-child.js', import.meta.url)),
  ceiling: fileURLToPath(new URL('./ceiling-child.js', import.meta.url)),
};

export interface BenchChild {
  readonly pid: number;
  readonly port: number;
  wsUrl(path?: string): string;
  /** Event-loop delay since the last reset (and resets it when asked). */
  stats(reset: boolean): Promise<ChildStats>;
  /** Asks for a clean exit (the profile gets written), killing it after `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Forks a child and resolves once it listens.
 * @param env added to this process's environment.
 * @param execArgv node flags for the child (e.g. `--cpu-prof`).
 */
export async function startChild(kind: ChildKind, env: Record<string, string>, execArgv: string[] = []): Promise<BenchChild> {
  const proc: ChildProcess = fork(files[kind], [], {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map<number, (s: ChildStats) => void>();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} child did not start within 30 s`)), 30_000);
    proc.once('exit', (code) => reject(new Error(`${kind} child exited with ${code} before listening`)));
    proc.on('message', (msg: ChildMessage) => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve(msg.port);
      } else if (msg.type === 'stats') {
        waiting.get(msg.id)?.(msg.stats);
        waiting.delete(msg.id);
      }
    });
  });
  const send = (req: ChildRequest) => proc.connected && proc.send(req);
  return {
    pid: proc.pid!,
    port,
    wsUrl: (p = '/ws') => `ws://127.0.0.1:${port}${p}`,
    stats(reset) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind} child did not answer stats within 10 s`)), 10_000);
        waiting.set(id, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        send({ type: 'stats', id, reset });
      });
    },
    async close(timeoutMs = 20_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      send({ type: 'close' });
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
