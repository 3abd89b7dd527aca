/** Starts a bench child (tandem, or the bare `ws` server of the floors) on loopback and talks to it over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildRequest, ChildStats, GcFlavor } from './child-stats.js';
import { openFilesLimit } from './proc.js';
import { serviceNodeFlags } from './service-flags.js';

export type ChildKind = 'tandem' | 'bare-ws';

const files: Record<ChildKind, string> = {
  tandem: fileURLToPath(new URL('./tandem-child.js', import.meta.url)),
  'bare-ws': fileURLToPath(new URL('./bare-ws-child.js', import.meta.url)),
};

export interface BenchChild {
  readonly pid: number;
  readonly port: number;
  wsUrl(path?: string): string;
  /** Event-loop delay since the last reset (and resets it when asked). */
  stats(reset: boolean): Promise<ChildStats>;
  /** A GC of the main isolate (child-stats.ts; memory-reducing unless told); false when it was started without --expose-gc. */
  collectGarbage(flavor?: GcFlavor): Promise<boolean>;
  /** Asks for a clean exit (the profile gets written), killing it after `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

/** `KEY=VALUE` settings for a child's environment, as `--env` and the like take them; `flag` names the option in an error. */
export function envPairs(pairs: readonly string[], flag: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of pairs) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`${flag} takes KEY=VALUE, got ${kv}`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** The script a child of `kind` runs from another build of tandem: its checkout's root folder (built). */
export function childScriptIn(root: string, kind: ChildKind): string {
  return path.join(root, 'dist', 'bench', path.basename(files[kind]));
}

/**
 * Forks a child and resolves once it listens. Every child, tandem and the bare ws floors alike,
 * runs with `npm start`'s node flags (service-flags.ts), so a floor and its scenario share one runtime.
 * @param env added to this process's environment.
 * @param execArgv node flags for the child on top of those (e.g. `--cpu-prof`).
 * @param script the child's script (default: this build's; childScriptIn() names another build's).
 */
export async function startChild(kind: ChildKind, env: Record<string, string>, execArgv: string[] = [], script = files[kind]): Promise<BenchChild> {
  const proc: ChildProcess = fork(script, [], {
    env: { ...process.env, ...env },
    execArgv: [...serviceNodeFlags(), ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  /** Answers awaited, by request id. */
  const waiting = new Map<number, (msg: Extract<ChildMessage, { id: number }>) => void>();
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} child did not start within 30 s`)), 30_000);
    proc.once('exit', (code) => reject(new Error(`${kind} child exited with ${code} before listening`)));
    proc.on('message', (msg: ChildMessage) => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        resolve(msg.port);
      } else {
        waiting.get(msg.id)?.(msg);
        waiting.delete(msg.id);
      }
    });
  });
  const send = (req: ChildRequest) => proc.connected && proc.send(req);
  /** Sends a request and resolves with its answer, bounded by 10 s. */
  const ask = <T extends ChildMessage['type']>(req: Extract<ChildRequest, { id: number }>, answer: T) =>
    new Promise<Extract<ChildMessage, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} child did not answer ${req.type} within 10 s`)), 10_000);
      waiting.set(req.id, (msg) => {
        clearTimeout(timer);
        if (msg.type === answer) resolve(msg as Extract<ChildMessage, { type: T }>);
        else reject(new Error(`${kind} child answered ${req.type} with ${msg.type}`));
      });
      send(req);
    });
  return {
    pid: proc.pid!,
    port,
    wsUrl: (p = '/ws') => `ws://127.0.0.1:${port}${p}`,
    async stats(reset) {
      return (await ask({ type: 'stats', id: nextId++, reset }, 'stats')).stats;
    },
    async collectGarbage(flavor = 'memory-reducing') {
      return (await ask({ type: 'gc', id: nextId++, flavor }, 'gc')).collected;
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

export interface FreshChildOptions {
  /** Folder under which the child's DATA_DIR is made (and removed when it closes). */
  dataRoot: string;
  /** Sessions the scenario opens (sizes MAX_SESSIONS and the open-files check). */
  sessions: number;
  /** Sessions of a warm-up storm opened before them (closed before they open), if any. */
  warmupStormSessions?: number;
  /** Extra environment (tandem configuration). */
  env: Record<string, string>;
  execArgv: string[];
  /** The child's script, when not this build's (childScriptIn). */
  script?: string;
}

/** Open files a scenario needs per process (each session is one socket on each side), plus slack. */
const fdsNeeded = (sessions: number) => sessions + 512;

/**
 * Starts a child for one scenario with a DATA_DIR of its own under `dataRoot`, removed by
 * `close()`. Refuses, naming the command that fixes it, when the open-files limit is too low.
 */
export async function startFreshChild(kind: ChildKind, opts: FreshChildOptions): Promise<BenchChild> {
  const limit = openFilesLimit();
  const sessions = Math.max(opts.sessions, opts.warmupStormSessions ?? 0);
  if (fdsNeeded(sessions) > limit) {
    throw new Error(`${sessions} sessions need ${fdsNeeded(sessions)} open files per process; the soft limit is ${limit} (raise it with \`ulimit -n ${fdsNeeded(sessions)}\`)`);
  }
  fs.mkdirSync(opts.dataRoot, { recursive: true });
  const base = fs.mkdtempSync(path.join(opts.dataRoot, 'tandem-bench-'));
  const remove = () => fs.rmSync(base, { recursive: true, force: true });
  let child: BenchChild;
  try {
    child = await startChild(
      kind,
      {
        LOG_LEVEL: 'silent',
        DATA_DIR: path.join(base, 'data'),
        FILE_ROOT: base,
        MAX_SESSIONS: String(Math.max(20_000, opts.sessions + 100)),
        // Every bench client comes from 127.0.0.1: no per-address limit (default 1000).
        MAX_SESSIONS_PER_CLIENT: '0',
        ...opts.env,
      },
      opts.execArgv,
      opts.script,
    );
  } catch (err) {
    remove();
    throw err;
  }
  return {
    ...child,
    async close(timeoutMs) {
      try {
        await child.close(timeoutMs);
      } finally {
        remove();
      }
    },
  };
}
