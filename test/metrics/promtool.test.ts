import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { REPO_ROOT } from '../helpers/prometheus.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const PROMETHEUS_DIR = path.join(REPO_ROOT, 'grafana/prometheus');

function promtool(args: string[], input?: string) {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8', cwd: REPO_ROOT });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('promtool', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
  });
  after(() => server.close());

  it('accepts a real scrape of GET /metrics taken after sessions ran', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ options: { intervalMs: 5 } });
    await client.waitForTranscripts(5);
    client.send('not json');
    client.send({ command: 'STOP' });
    await client.waitClose();
    await fetch(server.httpUrl('/metrics')); // so the scrape below also holds an HTTP request
    const res = await fetch(server.httpUrl('/metrics'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of [
      'tandem_pool_busy_threads',
      'tandem_end_to_end_latency_seconds_bucket',
      'tandem_http_request_duration_seconds_count{method="GET",route="/metrics",status_class="2xx"}',
      'tandem_ws_errors_total{code="BAD_JSON"} 1',
      'tandem_nodejs_eventloop_lag_p99_seconds',
      'tandem_process_cpu_seconds_total',
      'tandem_cluster_enabled 0',
      'tandem_cluster_call_duration_seconds_count{op="relay",outcome="timeout"} 0',
    ]) {
      assert.ok(text.includes(name), `scrape has ${name}`);
    }
    assert.doesNotMatch(text, /session="|[0-9a-f]{8}-[0-9a-f]{4}-/, 'no session id in any label');
    const r = promtool(['check', 'metrics'], text);
    assert.equal(r.output, '', 'promtool reports no problem');
    assert.equal(r.status, 0);
  });

  it('passes the unit tests of the alert rules', () => {
    const r = promtool(['test', 'rules', path.join(PROMETHEUS_DIR, 'alerts.test.yml')]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  });

  it('accepts the shipped prometheus.yml and its rule file', () => {
    const r = promtool(['check', 'config', path.join(PROMETHEUS_DIR, 'prometheus.yml')]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: \d+ rules found/);
  });
});
