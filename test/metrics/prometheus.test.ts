import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { REPO_ROOT, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const JOB = 'tandem';
const DASHBOARDS_DIR = path.join(REPO_ROOT, 'grafana/dashboards');
const ALERTS_FILE = path.join(REPO_ROOT, 'grafana/prometheus/alerts.yml');
/** Prometheus can be slow to start on a busy machine; every wait below is generous. */
const WAIT_MS = 30_000;

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

describe('metrics seen through a real Prometheus', () => {
  let server: TestServer;
  let prom: RunningPrometheus;
  let instance: string;
  const clients: TestClient[] = [];
  const beganSeconds = Date.now() / 1000;
  let workloadDone = false;

  /** The single value of an instant query, or NaN when it returns nothing. */
  async function value(expr: string): Promise<number> {
    const result = await prom.query(expr);
    return result.length === 1 ? Number(result[0]!.value[1]) : NaN;
  }

  async function open(fields: Record<string, unknown>): Promise<{ client: TestClient; id: string }> {
    const client = await TestClient.open(server.wsUrl());
    clients.push(client);
    return { client, id: await client.start(fields) };
  }

  async function stop(client: TestClient): Promise<void> {
    client.send({ command: 'STOP' });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    await client.waitClose();
  }

  before(async () => {
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      POOL_MIN_THREADS: '1',
      POOL_MAX_THREADS: '2',
      // Short consumer tasks, so the sessions that should stop cooperatively do even on a busy machine.
      CONSUMER_BATCH_MAX: '2',
      STOP_GRACE_MS: '1000',
    });
    instance = `127.0.0.1:${server.port}`;
    prom = await startPrometheus({ job: JOB, targets: [instance], ruleFiles: [ALERTS_FILE] });
  });

  after(async () => {
    for (const c of clients) c.terminate();
    await prom?.close();
    await server?.close();
  });

  it('shows busy threads rise under load and fall back after', async () => {
    const busy = `sum(tandem_pool_busy_threads{job="${JOB}"})`;
    await eventually(async () => (await value(`up{job="${JOB}"}`)) === 1, 'Prometheus scrapes tandem', WAIT_MS);
    await eventually(async () => (await value(busy)) === 0, 'no busy thread before the load', WAIT_MS);

    // Load: two sessions whose consumers burn 30 ms of CPU per chunk (more than the chunks
    // coming in: the pool saturates and lag builds), two quick demo sessions, one bad frame.
    const burners = [
      await open({ pipeline: 'metrics-burn', options: { intervalMs: 20, burnMs: 30 } }),
      await open({ pipeline: 'metrics-burn', options: { intervalMs: 20, burnMs: 30 } }),
    ];
    const demos = [await open({ options: { intervalMs: 20 } }), await open({ options: { intervalMs: 50 } })];
    const junk = await TestClient.open(server.wsUrl());
    clients.push(junk);
    junk.send('not json');
    await junk.waitFor((m) => m.code === 'BAD_JSON', 'BAD_JSON');
    junk.close();

    await eventually(async () => (await value(busy)) >= 1, 'Prometheus sees busy threads under load', WAIT_MS);
    await eventually(
      async () => (await value(`sum(tandem_consumer_lag_chunks{job="${JOB}", pipeline="metrics-burn"})`)) > 0,
      'Prometheus sees consumer lag build up',
      WAIT_MS,
    );

    // A consumer that ignores the stop flag for seconds: its stop is forced after STOP_GRACE_MS.
    const stuck = await open({ pipeline: 'metrics-burn', options: { intervalMs: 1000, burnMs: 5000 } });
    await eventually(() => server.app.sessions.get(stuck.id)?.sideInfo('consumer').threadId != null, 'stuck consumer on a thread', WAIT_MS);
    await stop(stuck.client);

    // Let a few more scrapes see the load, then end it.
    const scrapedAfter = Date.now();
    await eventually(async () => (await prom.lastScrapes(JOB)).some((t) => t > scrapedAfter + 1000), 'two more scrapes', WAIT_MS);
    await Promise.all([...burners, ...demos].map(({ client }) => stop(client)));

    await eventually(async () => (await value(busy)) === 0, 'Prometheus sees busy threads fall back to zero', WAIT_MS);
    const peak = await value(`max_over_time(${busy}[5m:1s])`);
    assert.ok(peak >= 1, `busy threads peaked at ${peak}`);
    workloadDone = true;
  });

  it('counts in the end-to-end latency histogram exactly the results the clients received', async () => {
    assert.ok(workloadDone, 'the workload ran');
    const received = clients.reduce((n, c) => n + c.transcripts().length, 0);
    assert.ok(received > 0);
    let seen = NaN;
    await eventually(
      async () => {
        seen = await value(`sum(tandem_end_to_end_latency_seconds_count{job="${JOB}"})`);
        return seen === received;
      },
      `histogram count equal to ${received} results received`,
      WAIT_MS,
    ).catch((err: Error) => assert.fail(`${err.message}; last value ${seen}`));
    assert.equal(await value(`sum(tandem_results_delivered_total{job="${JOB}"})`), received);
    assert.equal(await value(`sum(tandem_sessions_started_total{job="${JOB}"})`), 5);
    // The stuck session's stop was forced; the others returned by themselves (timing on a busy
    // machine could force one of them too, so only the split's total is exact).
    const forced = await value(`sum(tandem_session_stop_seconds_count{job="${JOB}", outcome="forced"})`);
    const cooperative = await value(`sum(tandem_session_stop_seconds_count{job="${JOB}", outcome="cooperative"})`);
    assert.ok(forced >= 1 && cooperative >= 1, `forced ${forced}, cooperative ${cooperative}`);
    assert.equal(forced + cooperative, 5);
  });

  it('answers every query of every dashboard panel with data', async () => {
    assert.ok(workloadDone, 'the workload ran');
    const end = Date.now() / 1000;
    const files = fs.readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 4, 'at least four dashboards');
    const empty: string[] = [];
    let queries = 0;
    for (const file of files) {
      const dashboard = JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8')) as { panels: Panel[] };
      for (const panel of dashboard.panels) {
        for (const target of panel.targets ?? []) {
          const expr = target.expr
            .replaceAll('$job', JOB)
            .replaceAll('$instance', instance)
            .replaceAll('$__rate_interval', '4s')
            .replaceAll('$__interval', '1s');
          queries++;
          const series = await prom.queryRange(expr, beganSeconds, end, 1);
          const finite = series.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));
          if (!finite) empty.push(`${file} / ${panel.title}: ${expr}`);
        }
      }
    }
    assert.ok(queries >= 40, `${queries} queries`);
    assert.deepEqual(empty, [], 'queries without data');
  });

  it('evaluates every alert rule without error and fires the forced-stop alert', async () => {
    assert.ok(workloadDone, 'the workload ran');
    type Rules = { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    let rules: Rules['groups'][number]['rules'] = [];
    await eventually(
      async () => {
        rules = (await prom.api<Rules>('/api/v1/rules')).groups.flatMap((g) => g.rules);
        return rules.length > 0 && rules.every((r) => r.health !== 'unknown');
      },
      'every rule evaluated',
      WAIT_MS,
    );
    assert.deepEqual(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`), []);
    await eventually(
      async () => (await value(`count(ALERTS{alertname="TandemForcedStops", alertstate="firing", job="${JOB}"})`)) === 1,
      'TandemForcedStops firing',
      WAIT_MS,
    );
  });
});
