import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, type App, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { LogCapture } from './logs.js';

/** Compiled fixture pipelines (test/fixtures/pipelines → dist/test/fixtures/pipelines). */
export const FIXTURE_PIPELINES = fileURLToPath(new URL('../fixtures/pipelines/', import.meta.url));
export const BROKEN_PIPELINES = fileURLToPath(new URL('../fixtures/broken-pipelines/', import.meta.url));

export interface TestServer {
  readonly app: App;
  readonly config: Config;
  readonly dataDir: string;
  readonly fileRoot: string;
  readonly port: number;
  httpUrl(p: string): string;
  wsUrl(p?: string): string;
  /** Spool folders currently on disk. */
  spools(): string[];
  close(): Promise<void>;
}

export interface StartOptions {
  /** Receives the server's log lines instead of stdout (set LOG_LEVEL in `env` to see any). */
  logs?: LogCapture;
  /** Where other instances' sessions run (AppDeps.relay). */
  relay?: AppDeps['relay'];
}

/** Starts a real tandem on 127.0.0.1 with a fresh DATA_DIR and FILE_ROOT; `env` overrides config. */
export async function startServer(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-test-'));
  const dataDir = path.join(base, 'data');
  const fileRoot = path.join(base, 'files');
  fs.mkdirSync(fileRoot, { recursive: true });
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    FILE_ROOT: fileRoot,
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const app = await createApp({ config, logger: createLogger(config.logLevel, options.logs), relay: options.relay });
  const { port } = await app.listen(0, '127.0.0.1');
  return {
    app,
    config,
    dataDir,
    fileRoot,
    port,
    httpUrl: (p) => `http://127.0.0.1:${port}${p}`,
    wsUrl: (p = '/ws') => `ws://127.0.0.1:${port}${p}`,
    spools() {
      const dir = path.join(dataDir, 'spool');
      return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    },
    async close() {
      await app.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Threads of this process right now (Linux). */
export function threadCount(pid: number | 'self' = 'self'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^Threads:\s+(\d+)/m.exec(status)![1]);
}

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
