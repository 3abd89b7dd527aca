import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { SHORT_LEASES, startCluster, type TestCluster } from '../helpers/cluster.js';
import { api } from '../helpers/openapi.js';
import { REPO_ROOT, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/server.js';

const JOB = 'tandem';
const ALERTS_FILE = path.join(REPO_ROOT, 'grafana/prometheus/alerts.yml');
/** Prometheus can be slow to start on a busy machine; every wait below is generous. */
const WAIT_MS = 30_000;

describe('cluster: three instances seen through a real Prometheus', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  let prom: RunningPrometheus;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(3, redis.url, SHORT_LEASES);
    prom = await startPrometheus({ job: JOB, targets: cluster.instances.map((i) => `127.0.0.1:${i.port}`), ruleFiles: [ALERTS_FILE] });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await prom?.close();
    await cluster?.close();
    await redis?.stop();
  });

  /** The single value of an instant query, or NaN when it returns nothing. */
  async function value(expr: string): Promise<number> {
    const result = await prom.query(expr);
    return result.length === 1 ? Number(result[0]!.value[1]) : NaN;
  }

  async function running(onInstance: string): Promise<number> {
    return (await api(onInstance, 'GET', '/api/sessions?state=running')).body.total as number;
  }

  it("sums tandem_sessions over the instances to the cluster's count, and TandemInstanceLost fires when one is SIGKILLed", async () => {
    const [i1, i2, i3] = cluster.instances;
    const spread: Array<[typeof i1, number]> = [[i1, 2], [i2, 3], [i3, 1]];
    for (const [instance, n] of spread) {
      for (let k = 0; k < n; k++) {
        const client = await TestClient.open(instance!.wsUrl());
        clients.push(client);
        await client.start({ options: { intervalMs: 100 } });
      }
    }
    await eventually(async () => (await running(i2!.httpUrl(''))) === 6, 'the cluster lists 6 running sessions');
    await eventually(async () => (await value(`sum(tandem_sessions{job="${JOB}",state="running"})`)) === 6, 'Prometheus sums 6 running sessions over the three instances', WAIT_MS);
    // Each instance's own series says what runs there, not the cluster's total.
    const byInstance = await prom.query(`sum by (instance) (tandem_sessions{job="${JOB}",state="running"})`);
    assert.deepEqual(
      byInstance.map((r) => Number(r.value[1])).sort(),
      [1, 2, 3],
    );
    // Every START went through the cluster's admission, each counted as an 'admit' call.
    await eventually(
      async () => (await value(`sum(tandem_cluster_call_duration_seconds_count{job="${JOB}",op="admit",outcome="ok"})`)) >= 6,
      'six admissions counted',
      WAIT_MS,
    );
    // Nothing lost yet: the alert is quiet.
    assert.deepEqual(await prom.query('ALERTS{alertname="TandemInstanceLost"}'), []);

    i3!.kill('SIGKILL');
    await eventually(async () => (await running(i1!.httpUrl(''))) === 5, "i3's session is failed (instance_lost) and the cluster lists 5", 10_000 + WAIT_MS);
    await eventually(async () => (await value(`sum(tandem_sessions{job="${JOB}",state="running"})`)) === 5, 'Prometheus sums 5 over the instances still up', WAIT_MS);
    await eventually(
      async () => (await value(`count(ALERTS{alertname="TandemInstanceLost", alertstate="firing", job="${JOB}"})`)) === 1,
      'TandemInstanceLost firing',
      WAIT_MS,
    );
  });
});
