import { execFile, spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** Debian's redis-server 7.0 and its CLI (package redis-server, installed by .ci/run). */
const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

export interface TestRedis {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** Runs redis-cli against this server; resolves with its output, trimmed. */
  cli(...args: string[]): Promise<string>;
  /** Every key in the server (KEYS *: test servers are small). */
  keys(): Promise<string[]>;
  /** SIGKILLs the server (nothing is saved: it restarts empty). */
  kill(): Promise<void>;
  /** Sends a signal to the server (SIGSTOP: unreachable with its data kept; SIGCONT: back). */
  signal(sig: NodeJS.Signals): void;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Kills it; safe to call twice. */
  stop(): Promise<void>;
}


/** Starts a real redis-server on a free loopback port (or `port`), without persistence. */
export async function startRedis(port?: number): Promise<TestRedis> {
  port ??= await freePort();
  let child: ChildProcess | null = await spawnRedis(port);
  const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));
  const kill = async () => {
    const c = child;
    child = null;
    if (!c) return;
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await exited(c);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async cli(...args) {
      const { stdout } = await run(REDIS_CLI, ['-p', String(port), ...args]);
      return stdout.trim();
    },
    async keys() {
      const { stdout } = await run(REDIS_CLI, ['-p', String(port), '--raw', 'KEYS', '*']);
      return stdout.split('\n').filter(Boolean).sort();
    },
    kill,
    signal(sig) {
      child?.kill(sig);
    },
    async restart() {
      await kill();
      child = await spawnRedis(port);
    },
    stop: kill,
  };
}

function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    const output: string[] = [];
    lines.on('line', (line) => {
      output.push(line);
      if (line.includes('Ready to accept connections')) {
        child.stdout!.resume();
        resolve(child);
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-5).join('\n')}`)));
  });
}
