import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './server.js';
import { freePort } from './ports.js';

/** Root of the repository (tests run from dist/test). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));


export interface PromSample {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

export interface RunningPrometheus {
  readonly url: string;
  /** Instant query at `time` (seconds since the epoch; default now). */
  query(expr: string, time?: number): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Range query from `start` to `end` (seconds since the epoch) every `stepSeconds`. */
  queryRange(expr: string, start: number, end: number, stepSeconds?: number): Promise<PromSample[]>;
  /** Last time (epoch ms) Prometheus scraped each target of `job`. */
  lastScrapes(job: string): Promise<number[]>;
  api<T>(p: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * Starts Debian's `prometheus` on a free loopback port with a temporary storage folder, scraping
 * `targets` (host:port) as job `job` every second and evaluating `ruleFiles` every second.
 */
export async function startPrometheus(opts: { job: string; targets: string[]; ruleFiles?: string[] }): Promise<RunningPrometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-prometheus-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    ...(opts.ruleFiles ?? []).map((f) => `  - ${JSON.stringify(f)}`),
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(opts.job)}`,
    '    static_configs:',
    `      - targets: ${JSON.stringify(opts.targets)}`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  // A binary that cannot start (not installed: ENOENT) emits 'error' and never 'exit': without
  // this the wait below would fail and close() would then wait for an exit for ever.
  let spawnError: Error | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => ((exited = true), resolve()));
    child.once('error', (err) => ((spawnError = err), (exited = true), resolve()));
  });

  async function api<T>(p: string): Promise<T> {
    const res = await fetch(url + p);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${p}: ${body.error ?? res.status}`);
    return body.data;
  }

  const close = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(killer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await eventually(async () => {
      if (spawnError) throw new Error(`cannot run prometheus (${spawnError.message}): install Debian's prometheus package`);
      if (exited) throw new Error(`prometheus exited: ${stderr}`);
      return fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    }, 'Prometheus ready', 30_000);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    url,
    api,
    close,
    query: (expr, time = Date.now() / 1000) =>
      api(`/api/v1/query?${new URLSearchParams({ query: expr, time: String(time) })}`).then(
        (d) => (d as { result: Array<{ metric: Record<string, string>; value: [number, string] }> }).result,
      ),
    queryRange: (expr, start, end, stepSeconds = 1) =>
      api(`/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(stepSeconds) })}`).then(
        (d) => (d as { result: PromSample[] }).result,
      ),
    async lastScrapes(job) {
      const d = await api<{ activeTargets: Array<{ labels: Record<string, string>; lastScrape: string }> }>('/api/v1/targets?state=active');
      return d.activeTargets.filter((t) => t.labels.job === job).map((t) => Date.parse(t.lastScrape));
    },
  };
}
