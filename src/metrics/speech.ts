import { Gauge, type Registry } from 'prom-client';
import type { WorkerPool } from '../pool/worker-pool.js';
import { METRIC_PREFIX } from './buckets.js';
import { totalCounter } from './tally.js';

const STATES = ['idle', 'busy'] as const;

/**
 * Speech decoders alive in loop threads (src/pipelines/speech/decoder-shelf.ts), read from
 * `pool.decoders()` at scrape time: `busy` lent to a running session, `idle` kept for the next
 * one until SPEECH_DECODER_IDLE_SECONDS pass (each is ~100 MB of the process's memory), and how
 * many were loaded (sessions over loads is how well reuse works) or lost with a terminated thread.
 */
export function speechMetrics(registry: Registry, deps: { pool: WorkerPool }): void {
  new Gauge({
    name: METRIC_PREFIX + 'speech_decoders',
    help: 'Speech decoders (loaded models) alive in pool threads: busy = lent to a session, idle = kept for the next one.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = deps.pool.decoders();
      for (const state of STATES) this.set({ state }, counts[state]);
    },
  });
  const counter = (name: string, help: string, read: () => number) => totalCounter(registry, METRIC_PREFIX + name, help, read);
  counter(
    'speech_decoder_loads_total',
    'Speech decoders loaded (a model load, ~100 MB and 0.3-1 s of CPU): by sessions that found no idle decoder on their thread.',
    () => deps.pool.decoders().loads,
  );
  counter(
    'speech_decoders_lost_total',
    'Speech decoders that went with a pool thread terminated while holding them (a hung session): their memory is not freed.',
    () => deps.pool.decoders().lost,
  );
}
