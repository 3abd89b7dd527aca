/**
 * Soak test (not run in CI): starts the service as a child process on loopback, runs N demo
 * sessions for M minutes, samples the service's RSS, threads and open file descriptors, and at
 * the end checks that everything produced was delivered and that the samples stayed flat.
 *
 *   npm run soak -- --sessions 200 --minutes 2 [--interval-ms 250] [--sample-seconds 5]
 *
 * Exit code 0 when every check holds, 1 otherwise.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { serviceNodeFlags } from '../bench/service-flags.js';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '50' },
    minutes: { type: 'string', default: '5' },
    'interval-ms': { type: 'string', default: '250' },
    'sample-seconds': { type: 'string', default: '5' },
  },
});
const SESSIONS = Number(args.sessions);
const DURATION_MS = Number(args.minutes) * 60_000;
const INTERVAL_MS = Number(args['interval-ms']);
const SAMPLE_MS = Number(args['sample-seconds']) * 1000;
for (const [name, v] of Object.entries({ SESSIONS, DURATION_MS, INTERVAL_MS, SAMPLE_MS })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad ${name}: ${v}`);
}

const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Sample {
  atSeconds: number;
  rssMb: number;
  threads: number;
  fds: number;
}

function sample(pid: number, startedAt: number): Sample {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]);
  return {
    atSeconds: Math.round((Date.now() - startedAt) / 1000),
    rssMb: Math.round(field('VmRSS') / 102.4) / 10,
    threads: field('Threads'),
    fds: fs.readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** One soak client: STARTs the demo, counts transcripts, checks their order. */
class SoakClient {
  readonly ws: WebSocket;
  id: string | null = null;
  received = 0;
  outOfOrder = 0;
  stoppedChunks: number | null = null;
  errors: string[] = [];
  readonly closed: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.closed = new Promise((resolve) => this.ws.once('close', () => resolve()));
    this.ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; session?: string; seq?: number; chunks?: number; code?: string; message?: string };
      if (m.type === 'started') this.id = m.session ?? null;
      else if (m.type === 'transcript') {
        if (m.seq !== this.received + 1) this.outOfOrder++;
        this.received++;
      } else if (m.type === 'stopped') this.stoppedChunks = m.chunks ?? null;
      else if (m.type === 'error') this.errors.push(`${m.code}: ${m.message}`);
    });
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }
}

function stats(values: number[]) {
  return { first: values[0]!, last: values[values.length - 1]!, max: Math.max(...values), min: Math.min(...values) };
}

async function run(): Promise<boolean> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-soak-'));
  // Run as `npm start` runs it: the same node flags.
  const child = spawn(process.execPath, [...serviceNodeFlags(), main], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', MAX_SESSIONS_PER_CLIENT: String(SESSIONS + 10) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      // Reads every log line (so the pipe never fills); the first says where the service listens.
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        const m = /"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      void exited.then((code) => reject(new Error(`the service exited during start-up with ${code}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    console.log(`soak: ${SESSIONS} demo sessions (intervalMs ${INTERVAL_MS}) for ${DURATION_MS / 60_000} min against pid ${child.pid} on ${base}`);

    const startedAt = Date.now();
    const samples: Sample[] = [sample(child.pid!, startedAt)];
    const clients: SoakClient[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const c = new SoakClient(`ws://127.0.0.1:${port}/ws`);
      await c.opened();
      c.ws.send(JSON.stringify({ command: 'START', pipeline: 'demo', options: { intervalMs: INTERVAL_MS } }));
      clients.push(c);
    }
    const timer = setInterval(() => {
      const s = sample(child.pid!, startedAt);
      samples.push(s);
      const received = clients.reduce((n, c) => n + c.received, 0);
      console.log(`  t=${s.atSeconds}s rss=${s.rssMb} MiB threads=${s.threads} fds=${s.fds} transcripts=${received}`);
    }, SAMPLE_MS);
    await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
    clearInterval(timer);

    for (const c of clients) c.ws.send(JSON.stringify({ command: 'STOP' }));
    await Promise.all(clients.map((c) => c.closed));
    samples.push(sample(child.pid!, startedAt));

    // The server's own account of every session (all ended now; pages of 200).
    let produced = 0;
    let deliveredByServer = 0;
    let listed = 0;
    let cursor: string | null = null;
    do {
      const page = (await (await fetch(`${base}/api/sessions?limit=200${cursor ? `&cursor=${cursor}` : ''}`)).json()) as {
        items: Array<{ produced: number; delivered: number; endReason: string | null }>;
        nextCursor: string | null;
      };
      for (const s of page.items) {
        produced += s.produced;
        deliveredByServer += s.delivered;
        listed++;
      }
      cursor = page.nextCursor;
    } while (cursor);

    const received = clients.reduce((n, c) => n + c.received, 0);
    const stoppedChunks = clients.reduce((n, c) => n + (c.stoppedChunks ?? 0), 0);
    const outOfOrder = clients.reduce((n, c) => n + c.outOfOrder, 0);
    const errors = clients.flatMap((c) => c.errors);
    const missingStopped = clients.filter((c) => c.stoppedChunks === null).length;

    // Flat: compare after warm-up (the first quarter of the run) with the end.
    const warm = samples.filter((s) => s.atSeconds >= DURATION_MS / 4000);
    const rss = stats(warm.map((s) => s.rssMb));
    const threads = stats(samples.map((s) => s.threads));
    const fds = stats(samples.map((s) => s.fds));
    const rssFlat = rss.last <= rss.first * 1.2 + 10;
    const threadsFlat = threads.last <= threads.first + 2 && threads.max <= threads.first + 2;
    const fdsFlat = fds.last <= fds.first + 5;

    const checks: Array<[string, boolean]> = [
      [`sessions listed by GET /api/sessions: ${listed} of ${SESSIONS}`, listed === SESSIONS],
      [`transcripts received ${received} = sum of stopped.chunks ${stoppedChunks}`, received === stoppedChunks && missingStopped === 0],
      [`transcripts received ${received} = delivered per GET /api/sessions ${deliveredByServer}`, received === deliveredByServer],
      [`produced ${produced}, delivered ${deliveredByServer}: ${produced - deliveredByServer} chunk(s) still in flight at STOP (at most one per session)`, produced - deliveredByServer <= SESSIONS],
      [`out-of-order transcripts: ${outOfOrder}; error frames: ${errors.length}${errors[0] ? ` (first: ${errors[0]})` : ''}`, outOfOrder === 0 && errors.length === 0],
      [`RSS after warm-up first/last/max ${rss.first}/${rss.last}/${rss.max} MiB`, rssFlat],
      [`threads first/last/max ${threads.first}/${threads.last}/${threads.max}`, threadsFlat],
      [`open fds first/last/max ${fds.first}/${fds.last}/${fds.max} (first sample before any session)`, fdsFlat],
    ];
    console.log('soak result:');
    for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
    const ok = checks.every(([, held]) => held);
    console.log(`verdict: ${ok ? 'PASS: produced = delivered, RSS, threads and fds flat' : 'FAIL'}`);
    return ok;
  } finally {
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000, 'timeout'))]);
    if (code === 'timeout') child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

run().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
