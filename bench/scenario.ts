/**
 * One bench scenario: start a fresh child on loopback, open N sessions, let them settle,
 * measure for a window, stop them all at once, and return one row of figures.
 */
import { startFreshChild, type BenchChild, type ChildKind } from './child.js';
import { Load } from './load.js';
import { sampleProcess, type ProcSample } from './proc.js';

export interface ScenarioSpec {
  /** What `--only` selects it by, and what targets.ts finds it by (`crowd`, `crowd-floor`, …). */
  key: string;
  name: string;
  kind: ChildKind;
  sessions: number;
  /** START frame fields besides `command`. */
  start: Record<string, unknown>;
  /** Time after the last session started before measuring, s. */
  warmupSeconds: number;
  /** Measurement window, s (0: none, the scenario is about its stop). */
  measureSeconds: number;
  /** Before stopping, wait until every session has delivered a result (bounded by this, ms; 0 = don't). */
  firstResultTimeoutMs: number;
  /** Extra environment for the child (tandem configuration). */
  env: Record<string, string>;
  /** Node flags for the child (e.g. `--cpu-prof`). */
  execArgv: string[];
  /** Folder under which the child's DATA_DIR is made (and removed afterwards). */
  dataRoot: string;
  /** STARTs sent evenly over this long, ms (Load's openSpreadMs); 0 or absent: as fast as the server takes them. */
  openSpreadMs?: number;
  /**
   * A stop scenario only: this many sessions are started and stopped at once before the measured
   * ones, and the measured storm is the server's second (0 or absent: its first, cold). Both the
   * storm and its floor get the same one, so both are measured with their stop paths compiled.
   */
  warmupStormSessions?: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export interface Row {
  key: string;
  name: string;
  kind: ChildKind;
  sessions: number;
  openSeconds: number;
  windowSeconds: number;
  results: number;
  resultsPerSecond: number;
  /** Results/s the sessions ask for (sessions × 1000 / intervalMs); null when unbounded. */
  offeredPerSecond: number | null;
  /** End-to-end latency in ms (null when nothing was recorded). */
  latencyMs: Percentiles | null;
  gaps: number;
  reorders: number;
  duplicates: number;
  /** Results stamped later than received (clock skew); counted, recorded as ~0. */
  negativeLatencies: number;
  errors: string[];
  rssBaseMiB: number;
  rssPeakMiB: number;
  rssPerSessionKiB: number;
  threadsBase: number;
  threadsPeak: number;
  /** The service's step pool maximum (GET /api/pool `maxThreads`); null for the bare `ws` server. */
  poolMaxThreads: number | null;
  eventLoopP99Ms: number;
  /** Client STOP → client sees the close, ms. */
  stopCloseMs: Percentiles | null;
  /** Client STOP → client receives `stopped` (sent just before the close), ms. */
  stopStoppedMs: Percentiles | null;
  /** STOP → close of the warm-up storm (ScenarioSpec.warmupStormSessions): the server's first, cold; null without one. */
  coldStopCloseMs: Percentiles | null;
  /** Sessions that took longer than 100 ms (or never closed). */
  stopsOver100Ms: number;
  /** Server CPU (all threads) from the first STOP until every session closed, per STOP, µs. */
  stopCpuUsPerStop: number | null;
  serverCpuPercent: number;
  clientCpuPercent: number;
}

export function percentiles(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

function offered(spec: ScenarioSpec): number | null {
  const intervalMs = (spec.start.options as { intervalMs?: number } | undefined)?.intervalMs;
  return intervalMs && intervalMs > 0 ? (spec.sessions * 1000) / intervalMs : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** After the warm-up storm, the server's deferred work (its spools' removal) is waited out for at most this long, ms. */
const STORM_SETTLE_MAX_MS = 30_000;
/** And then this long more, for both servers alike (a collection, the sockets' last closes), ms. */
const STORM_SETTLE_MS = 1000;

/**
 * A storm of spec.warmupStormSessions started and stopped at once, before the measured one: the
 * code a stop runs is compiled by the end of it (a first storm spends a core's worth of V8's
 * compiler threads on it, docs/PERFORMANCE.md "The storm, measured warm"). Waits until tandem
 * lists no session still stopping. Returns its STOP → close times.
 */
async function warmupStorm(spec: ScenarioSpec, child: BenchChild, log: (line: string) => void): Promise<Percentiles | null> {
  const warm = new Load({ url: child.wsUrl('/ws'), sessions: spec.warmupStormSessions!, start: spec.start });
  // (Tandem keeps up to SESSION_RETAIN_COUNT ended sessions listed: after the warm-up the list is
  // full, and each measured stop drops the oldest, as in a service that has run a while.)
  let closeMs: number[];
  try {
    await warm.open();
    if (spec.firstResultTimeoutMs > 0) await warm.waitForResults(1, spec.firstResultTimeoutMs);
    ({ closeMs } = await warm.stopAll(30_000));
  } finally {
    // Whatever did not close is cut now, not in the measured storm.
    warm.terminate();
  }
  const cold = percentiles(closeMs);
  const unclosed = closeMs.filter((t) => !Number.isFinite(t)).length;
  log(`  ${spec.name}: warm-up storm of ${warm.size}, STOP → close p99 ${cold ? cold.p99.toFixed(1) : '–'} ms (cold)${unclosed > 0 ? `; ${unclosed} did not close` : ''}`);
  if (spec.kind === 'tandem') {
    const deadline = Date.now() + STORM_SETTLE_MAX_MS;
    while (Date.now() < deadline && (await sessionsListed(child.port, 'stopping')) + (await sessionsListed(child.port, 'running')) > 0) await sleep(100);
  }
  await sleep(STORM_SETTLE_MS);
  // Its garbage is not the measured storm's to collect (both servers run with --expose-gc): a
  // plain major collection, which leaves the young generation's size as the warm-up grew it.
  if (!(await child.collectGarbage('major'))) log(`  ${spec.name}: no collection after the warm-up storm (no --expose-gc)`);
  return cold;
}

/** How many sessions in `state` tandem lists (GET /api/sessions, open on loopback). */
async function sessionsListed(port: number, state: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/api/sessions?state=${state}&limit=1`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET /api/sessions?state=${state}: ${res.status}`);
  return ((await res.json()) as { total: number }).total;
}

export async function runScenario(spec: ScenarioSpec, log: (line: string) => void): Promise<Row> {
  let child: BenchChild | undefined;
  let load: Load | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    child = await startFreshChild(spec.kind, spec);
    const pid = child.pid;
    const poolMaxThreads = spec.kind === 'tandem' ? await poolMaxThreadsOf(child) : null;
    await sleep(500);
    const idle = sampleProcess(pid)!;
    let threadsPeak = idle.threads;
    let windowRssPeak = 0;
    let inWindow = false;
    sampler = setInterval(() => {
      const s = sampleProcess(pid);
      if (!s) return;
      threadsPeak = Math.max(threadsPeak, s.threads);
      if (inWindow) windowRssPeak = Math.max(windowRssPeak, s.rssBytes);
    }, 200);

    const coldStopCloseMs = spec.measureSeconds === 0 && (spec.warmupStormSessions ?? 0) > 0 ? await warmupStorm(spec, child, log) : null;
    load = new Load({ url: child.wsUrl('/ws'), sessions: spec.sessions, start: spec.start, openSpreadMs: spec.openSpreadMs ?? 0 });
    const openedAt = Date.now();
    await load.open();
    const openSeconds = (Date.now() - openedAt) / 1000;
    log(`  ${spec.name}: ${spec.sessions} sessions started in ${openSeconds.toFixed(1)} s`);
    if (spec.firstResultTimeoutMs > 0) {
      const ready = await load.waitForResults(1, spec.firstResultTimeoutMs);
      if (ready < load.size) log(`  ${spec.name}: only ${ready} of ${load.size} sessions delivered a result before the stop`);
    }
    await sleep(spec.warmupSeconds * 1000);

    // ---- measurement window ----
    let windowSeconds = 0;
    let eventLoopP99Ms = 0;
    let serverCpuPercent = 0;
    let clientCpuPercent = 0;
    let rssAtWindow: ProcSample = sampleProcess(pid)!;
    if (spec.measureSeconds > 0) {
      await child.stats(true);
      const before = sampleProcess(pid)!;
      const clientBefore = process.cpuUsage();
      const t0 = performance.now();
      inWindow = true;
      windowRssPeak = before.rssBytes;
      load.startRecording();
      await sleep(spec.measureSeconds * 1000);
      load.stopRecording();
      inWindow = false;
      windowSeconds = (performance.now() - t0) / 1000;
      const after = sampleProcess(pid)!;
      const clientCpu = process.cpuUsage(clientBefore);
      eventLoopP99Ms = (await child.stats(true)).eventLoop.p99Ms;
      serverCpuPercent = ((after.cpuMs - before.cpuMs) / (windowSeconds * 1000)) * 100;
      clientCpuPercent = ((clientCpu.user + clientCpu.system) / 1000 / (windowSeconds * 1000)) * 100;
      rssAtWindow = { ...after, rssBytes: Math.max(windowRssPeak, after.rssBytes) };
    }

    // ---- stop them all at once ----
    if (spec.measureSeconds === 0) await child.stats(true);
    const beforeStops = sampleProcess(pid);
    const stopsSent = load.size;
    const { closeMs: stopTimes, stoppedMs } = await load.stopAll(30_000);
    const afterStops = sampleProcess(pid);
    const stopCpuUsPerStop = beforeStops && afterStops && stopsSent > 0 ? ((afterStops.cpuMs - beforeStops.cpuMs) * 1000) / stopsSent : null;
    if (spec.measureSeconds === 0) eventLoopP99Ms = (await child.stats(true)).eventLoop.p99Ms;
    const stopCloseMs = percentiles(stopTimes);
    const stopStoppedMs = percentiles(stoppedMs);
    const stopsOver100Ms = stopTimes.filter((t) => !(t <= 100)).length;

    const h = load.latencyUs;
    const results = load.received;
    return {
      key: spec.key,
      name: spec.name,
      kind: spec.kind,
      sessions: spec.sessions,
      openSeconds,
      windowSeconds,
      results,
      resultsPerSecond: windowSeconds > 0 ? results / windowSeconds : 0,
      offeredPerSecond: offered(spec),
      latencyMs: results > 0 ? { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000 } : null,
      gaps: load.gaps,
      reorders: load.reorders,
      duplicates: load.duplicates,
      negativeLatencies: load.negative,
      errors: load.errors,
      rssBaseMiB: idle.rssBytes / MiB,
      rssPeakMiB: rssAtWindow.rssBytes / MiB,
      rssPerSessionKiB: Math.max(0, rssAtWindow.rssBytes - idle.rssBytes) / 1024 / spec.sessions,
      threadsBase: idle.threads,
      threadsPeak,
      poolMaxThreads,
      eventLoopP99Ms,
      stopCloseMs,
      stopStoppedMs,
      coldStopCloseMs,
      stopsOver100Ms,
      stopCpuUsPerStop,
      serverCpuPercent,
      clientCpuPercent,
    };
  } finally {
    clearInterval(sampler);
    load?.terminate();
    await child?.close();
  }
}

/** POOL_MAX_THREADS as the service reports it (REST, open on loopback without ADMIN_TOKEN). */
async function poolMaxThreadsOf(child: BenchChild): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${child.port}/api/pool`);
    if (!res.ok) return null;
    return ((await res.json()) as { maxThreads?: number }).maxThreads ?? null;
  } catch {
    return null;
  }
}
