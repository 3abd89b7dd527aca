/**
 * What a bench child (the tandem service, or the bare `ws` server) reports to the bench over its
 * IPC channel: event-loop delay since the last reset, and whatever else the child adds.
 * Bench-only: the service itself exposes none of this.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * How often the child samples its event loop, ms: the service's own default
 * (METRICS_LOOP_DELAY_RESOLUTION_MS). At 10 ms this sampler woke an idle main thread 100 times a
 * second, which cost the child as much CPU as the service's own sampler it hid (docs/PERFORMANCE.md,
 * "The loop-delay sampler woke the main thread"). A 20 s window still gives 200 samples.
 */
const RESOLUTION_MS = 100;

export type ChildRequest = { type: 'stats'; id: number; reset: boolean } | { type: 'gc'; id: number; flavor: GcFlavor } | { type: 'close' };

export interface ChildStats {
  /** Event-loop lag (delay beyond the sampling interval) since the last reset, in ms. */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
  extra: Record<string, unknown>;
}

export type ChildMessage =
  | { type: 'ready'; port: number }
  | { type: 'stats'; id: number; stats: ChildStats }
  /** `collected`: false when the child was started without --expose-gc. */
  | { type: 'gc'; id: number; collected: boolean };

/**
 * How the main isolate is collected: `memory-reducing`, V8's "last resort" flavour (the young
 * generation is shrunk and freed pages are given back), so two RSS samples compare what is live
 * and what the allocators keep, not where V8's heap sizing happened to be; `major`, a full
 * collection that leaves the heap sized as it was, so the next work starts with no garbage and its
 * usual young generation.
 */
export type GcFlavor = 'memory-reducing' | 'major';

/** Collects the main isolate's garbage; false without --expose-gc. */
function collectGarbage(flavor: GcFlavor): boolean {
  const gc = (globalThis as { gc?: (options?: object) => void }).gc;
  if (!gc) return false;
  gc(flavor === 'memory-reducing' ? { type: 'major', execution: 'sync', flavor: 'last-resort' } : { type: 'major', execution: 'sync' });
  return true;
}

/**
 * Serves the bench's requests on `process` IPC. `extra()` adds child-specific facts;
 * `close()` ends the child cleanly so `--cpu-prof` can write its profile.
 */
export function serveChildStats(port: number, extra: () => Record<string, unknown>, close: () => Promise<void>): void {
  if (!process.send) throw new Error('bench child must be spawned with an IPC channel');
  // The histogram records the whole interval between samples, so the resolution is subtracted to get the lag.
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  let closing = false;
  const end = () => {
    if (closing) return;
    closing = true;
    delay.disable();
    const hardStop = setTimeout(() => process.exit(1), 15_000);
    hardStop.unref();
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('message', (msg: ChildRequest) => {
    if (msg.type === 'close') return end();
    if (msg.type === 'gc') return void process.send!({ type: 'gc', id: msg.id, collected: collectGarbage(msg.flavor) } satisfies ChildMessage);
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
    const stats: ChildStats = {
      eventLoop: { p50Ms: ms(delay.percentile(50)), p99Ms: ms(delay.percentile(99)), maxMs: ms(delay.max) },
      extra: extra(),
    };
    if (msg.reset) delay.reset();
    process.send!({ type: 'stats', id: msg.id, stats } satisfies ChildMessage);
  });
  // The bench went away: never outlive it.
  process.on('disconnect', end);
  process.send({ type: 'ready', port } satisfies ChildMessage);
}
