import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

/** Leases short enough that a lost instance is noticed within a test's patience (1.5 s), renewed every 200 ms. */
export const SHORT_LEASES = { CLUSTER_HEARTBEAT_MS: '200', CLUSTER_LEASE_MS: '1500', REDIS_COMMAND_TIMEOUT_MS: '500' };

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface TestInstance {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ChildProcess;
  httpUrl(p: string): string;
  wsUrl(p?: string): string;
  /** Log lines (JSON) the instance printed so far. */
  readonly logs: string[];
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process has exited. */
  exited(): Promise<void>;
}

export interface TestCluster {
  readonly instances: TestInstance[];
  /** SIGKILLs every instance still running and removes their folders; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts `count` real tandem processes (dist/src/main.js) on free loopback ports, sharing one
 * REDIS_URL, each with its own DATA_DIR and INSTANCE_ID `i1`, `i2`, ... `env` applies to all.
 */
export async function startCluster(count: number, redisUrl: string, env: Record<string, string> = {}): Promise<TestCluster> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-cluster-'));
  const instances: TestInstance[] = [];
  const cluster: TestCluster = {
    instances,
    async close() {
      for (const i of instances) i.kill('SIGCONT');
      for (const i of instances) i.kill('SIGKILL');
      await Promise.all(instances.map((i) => i.exited()));
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    for (let n = 1; n <= count; n++) instances.push(await startInstance(`i${n}`, base, redisUrl, env));
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

async function startInstance(id: string, base: string, redisUrl: string, env: Record<string, string>): Promise<TestInstance> {
  const port = await freePort();
  const dataDir = path.join(base, id);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      FILE_ROOT: base,
      LOG_LEVEL: 'info',
      REDIS_URL: redisUrl,
      INSTANCE_ID: id,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => logs.push(line));
  const lines = readline.createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      logs.push(line);
      if (line.includes('"tandem listening"')) resolve();
    });
    void exit.then(() => reject(new Error(`instance ${id} exited before listening: ${logs.slice(-5).join('\n')}`)));
  });
  return {
    id,
    port,
    dataDir,
    process: child,
    logs,
    httpUrl: (p) => `http://127.0.0.1:${port}${p}`,
    wsUrl: (p = '/ws') => `ws://127.0.0.1:${port}${p}`,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    exited: () => exit,
  };
}
