import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { PipelineCatalog } from '../../src/pipelines/catalog.js';
import type { Session } from '../../src/sessions/session.js';
import { flowMetrics } from '../../src/metrics/flow.js';
import { sessionMetrics } from '../../src/metrics/sessions.js';

/** What the gauges read of a session: its pipeline, state and lag. */
interface Fake {
  entry: { name: string };
  state: string;
  chunks: number;
  ageSeconds: number;
}

function registryOver(sessions: Fake[]): Registry {
  const registry = new Registry();
  const catalog = { list: () => [{ name: 'demo' }, { name: 'idle' }] } as unknown as PipelineCatalog;
  const live = () =>
    sessions.map((s) => ({ entry: s.entry, state: s.state, lag: () => ({ chunks: s.chunks, ageSeconds: s.ageSeconds }) })) as unknown as Session[];
  sessionMetrics(registry, { catalog, sessions: live });
  flowMetrics(registry, { catalog, sessions: live });
  return registry;
}

/** A scrape's samples of `name`, by their labels as written. */
async function samples(registry: Registry, name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await registry.metrics()).split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) out[m[1] ?? ''] = Number(m[2]);
  }
  return out;
}

describe('the gauges read from the live sessions', () => {
  it('count sessions by pipeline and state, every live state of every pipeline present', async () => {
    const sessions: Fake[] = [
      { entry: { name: 'demo' }, state: 'running', chunks: 0, ageSeconds: 0 },
      { entry: { name: 'demo' }, state: 'running', chunks: 0, ageSeconds: 0 },
      { entry: { name: 'demo' }, state: 'stopping', chunks: 0, ageSeconds: 0 },
    ];
    const registry = registryOver(sessions);
    assert.deepEqual(await samples(registry, 'tandem_sessions'), {
      '{pipeline="demo",state="starting"}': 0,
      '{pipeline="demo",state="running"}': 2,
      '{pipeline="demo",state="stopping"}': 1,
      '{pipeline="idle",state="starting"}': 0,
      '{pipeline="idle",state="running"}': 0,
      '{pipeline="idle",state="stopping"}': 0,
    });
    sessions.pop();
    sessions.push({ entry: { name: 'idle' }, state: 'starting', chunks: 0, ageSeconds: 0 });
    const next = await samples(registry, 'tandem_sessions');
    assert.equal(next['{pipeline="demo",state="stopping"}'], 0, 'a scrape counts afresh');
    assert.equal(next['{pipeline="idle",state="starting"}'], 1);
  });

  it('sum the chunks behind and take the oldest age, per pipeline, read afresh at every scrape', async () => {
    const sessions: Fake[] = [
      { entry: { name: 'demo' }, state: 'running', chunks: 3, ageSeconds: 0.5 },
      { entry: { name: 'demo' }, state: 'running', chunks: 4, ageSeconds: 2.5 },
      { entry: { name: 'idle' }, state: 'running', chunks: 1, ageSeconds: 0.25 },
    ];
    const registry = registryOver(sessions);
    assert.deepEqual(await samples(registry, 'tandem_consumer_lag_chunks'), { '{pipeline="demo"}': 7, '{pipeline="idle"}': 1 });
    assert.deepEqual(await samples(registry, 'tandem_consumer_lag_seconds'), { '{pipeline="demo"}': 2.5, '{pipeline="idle"}': 0.25 });
    sessions[1]!.chunks = 0;
    sessions[1]!.ageSeconds = 0;
    sessions.pop();
    assert.deepEqual(await samples(registry, 'tandem_consumer_lag_chunks'), { '{pipeline="demo"}': 3, '{pipeline="idle"}': 0 });
    assert.deepEqual(await samples(registry, 'tandem_consumer_lag_seconds'), { '{pipeline="demo"}': 0.5, '{pipeline="idle"}': 0 });
  });
});
