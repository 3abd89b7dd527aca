import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { clusterMetrics } from '../../src/metrics/cluster.js';
import { seriesValue } from '../helpers/exposition.js';

/** The value of one series in the registry's exposition text, or undefined when it is absent. */
async function sample(registry: Registry, series: string): Promise<number | undefined> {
  return seriesValue(await registry.metrics(), series);
}

describe('cluster metrics', () => {
  it('export every series at rest on a standalone instance: not clustered, one instance, no call', async () => {
    const registry = new Registry();
    clusterMetrics(registry);
    assert.equal(await sample(registry, 'tandem_cluster_enabled'), 0);
    assert.equal(await sample(registry, 'tandem_cluster_redis_up'), 0);
    assert.equal(await sample(registry, 'tandem_cluster_instances'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_instances_lost_total'), 0);
    for (const op of ['stop', 'inspect', 'relay', 'admit', 'index']) {
      assert.equal(await sample(registry, `tandem_cluster_call_timeouts_total{op="${op}"}`), 0, op);
      for (const outcome of ['ok', 'timeout', 'error']) {
        assert.equal(await sample(registry, `tandem_cluster_call_duration_seconds_count{op="${op}",outcome="${outcome}"}`), 0, `${op} ${outcome}`);
      }
    }
  });

  it('record what the cluster core reports: Redis health, calls and timeouts, instances seen and lost', async () => {
    const registry = new Registry();
    const observer = clusterMetrics(registry, { clustered: true });
    assert.equal(await sample(registry, 'tandem_cluster_enabled'), 1);
    observer.redisUp(true);
    observer.instances(3);
    observer.call('stop', 0.004, 'ok');
    observer.call('inspect', 2, 'timeout');
    observer.call('inspect', 0.01, 'error');
    observer.instanceLost();
    observer.instances(2);
    assert.equal(await sample(registry, 'tandem_cluster_redis_up'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_instances'), 2);
    assert.equal(await sample(registry, 'tandem_cluster_instances_lost_total'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_call_duration_seconds_count{op="stop",outcome="ok"}'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_call_duration_seconds_bucket{le="0.005",op="stop",outcome="ok"}'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_call_duration_seconds_count{op="inspect",outcome="timeout"}'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_call_timeouts_total{op="inspect"}'), 1);
    assert.equal(await sample(registry, 'tandem_cluster_call_timeouts_total{op="stop"}'), 0);
    observer.redisUp(false);
    assert.equal(await sample(registry, 'tandem_cluster_redis_up'), 0);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' });
    assert.equal(`${r.stdout}${r.stderr}`, '', 'promtool reports no problem');
    assert.equal(r.status, 0);
  });

  it('takes any report from the cluster core as proof that this instance is clustered', async () => {
    const registry = new Registry();
    clusterMetrics(registry).redisUp(false);
    assert.equal(await sample(registry, 'tandem_cluster_enabled'), 1);
  });
});
