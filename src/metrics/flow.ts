import { Gauge, type Registry } from 'prom-client';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { Session, SessionObserver } from '../sessions/session.js';
import { LATENCY_BUCKETS_SECONDS, METRIC_PREFIX } from './buckets.js';
import { TallyCounter, TallyHistogram } from './tally.js';
import { SAMPLE, SAMPLE_FIELDS } from '../pool/quiet-steps.js';

export interface FlowMetricsDeps {
  catalog: PipelineCatalog;
  /** The live sessions, read at scrape time. */
  sessions: () => Iterable<Session>;
}

type FlowHooks = Pick<SessionObserver, 'chunkProduced' | 'resultsConsumed' | 'resultDelivered' | 'quietSteps'>;

/**
 * What flows through sessions, by pipeline: chunks and bytes written, chunks consumed, results
 * delivered, consumer lag, and the latency of each hop a chunk takes. Counted per result on the
 * main thread, so counted as plain additions (tally.ts) and turned into metrics when scraped.
 */
export function flowMetrics(registry: Registry, deps: FlowMetricsDeps): FlowHooks {
  const labelNames = ['pipeline'] as const;
  const counter = (name: string, help: string) => new TallyCounter(registry, METRIC_PREFIX + name, help, 'pipeline');
  const histogram = (name: string, help: string) => new TallyHistogram(registry, METRIC_PREFIX + name, help, LATENCY_BUCKETS_SECONDS, 'pipeline');

  const produced = counter('chunks_produced_total', 'Chunks producers wrote to the spool.');
  const producedBytes = counter('chunks_produced_bytes_total', 'Bytes of the chunks producers wrote.');
  const consumed = counter('chunks_consumed_total', 'Chunks consumers turned into results.');
  const delivered = counter('results_delivered_total', 'Results sent to clients, in chunk order.');
  const pickup = histogram('chunk_pickup_seconds', 'Time from a chunk being written to its consumer starting on it.');
  const consumerRun = histogram('consumer_run_seconds', 'Time a consumer spent on one chunk.');
  const endToEnd = histogram('end_to_end_latency_seconds', 'Time from a chunk being written to its result being sent on the client socket.');

  const pipelines = deps.catalog.list().map((e) => e.name);
  // Both lag gauges come from one pass over the live sessions (a crowd's 10,000 are read once a
  // scrape, not once a gauge): the chunks gauge, registered first, sets the seconds gauge too, as
  // a scrape reads the gauges in the order they were registered (so does event-loop.ts).
  new Gauge({
    name: METRIC_PREFIX + 'consumer_lag_chunks',
    help: 'Chunks written but not yet delivered, summed over live sessions.',
    labelNames,
    registers: [registry],
    collect() {
      const byPipeline = new Map(pipelines.map((p) => [p, { chunks: 0, ageSeconds: 0 }]));
      for (const s of deps.sessions()) {
        const p = s.entry.name;
        let sum = byPipeline.get(p);
        if (!sum) byPipeline.set(p, (sum = { chunks: 0, ageSeconds: 0 }));
        const lag = s.lag();
        sum.chunks += lag.chunks;
        sum.ageSeconds = Math.max(sum.ageSeconds, lag.ageSeconds);
      }
      this.reset();
      lagSeconds.reset();
      for (const [pipeline, sum] of byPipeline) {
        this.set({ pipeline }, sum.chunks);
        lagSeconds.set({ pipeline }, sum.ageSeconds);
      }
    },
  });
  const lagSeconds = new Gauge({
    name: METRIC_PREFIX + 'consumer_lag_seconds',
    help: 'Age of the oldest chunk written but not yet delivered, over live sessions.',
    labelNames,
    registers: [registry],
  });

  for (const pipeline of pipelines) {
    for (const c of [produced, producedBytes, consumed, delivered]) c.zero(pipeline);
    for (const h of [pickup, consumerRun, endToEnd]) h.zero(pipeline);
  }

  return {
    chunkProduced(session, chunk) {
      const pipeline = session.entry.name;
      produced.add(pipeline);
      producedBytes.add(pipeline, chunk.sizeBytes);
    },
    resultsConsumed(session, results) {
      const pipeline = session.entry.name;
      consumed.add(pipeline, results.length);
      for (const r of results) consumerRun.observe(pipeline, Math.max(0, r.doneAt - r.takenAt) / 1000);
    },
    resultDelivered(session, latencyMs, pickupMs) {
      const pipeline = session.entry.name;
      delivered.add(pipeline);
      endToEnd.observe(pipeline, Math.max(0, latencyMs) / 1000);
      pickup.observe(pipeline, Math.max(0, pickupMs) / 1000);
    },
    quietSteps(session, q) {
      const pipeline = session.entry.name;
      produced.add(pipeline, q.chunks);
      producedBytes.add(pipeline, q.bytes);
      consumed.add(pipeline, q.results);
      delivered.add(pipeline, q.results);
      const s = q.samples;
      for (let at = 0, end = q.results * SAMPLE_FIELDS; at < end; at += SAMPLE_FIELDS) {
        consumerRun.observe(pipeline, Math.max(0, s[at + SAMPLE.CONSUMER_RUN]!) / 1000);
        endToEnd.observe(pipeline, Math.max(0, s[at + SAMPLE.LATENCY]!) / 1000);
        pickup.observe(pipeline, Math.max(0, s[at + SAMPLE.PICKUP]!) / 1000);
      }
    },
  };
}
