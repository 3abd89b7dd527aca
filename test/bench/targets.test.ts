import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResumeResult } from '../../bench/resume.js';
import type { Row } from '../../bench/scenario.js';
import { checkTargets } from '../../bench/targets.js';

function row(key: string, over: Partial<Row> = {}): Row {
  return {
    key,
    name: key,
    kind: key.endsWith('floor') || key === 'ceiling' ? 'bare-ws' : 'tandem',
    sessions: 1000,
    openSeconds: 1,
    windowSeconds: 10,
    results: 0,
    resultsPerSecond: 0,
    offeredPerSecond: null,
    latencyMs: null,
    gaps: 0,
    reorders: 0,
    duplicates: 0,
    negativeLatencies: 0,
    errors: [],
    rssBaseMiB: 50,
    rssPeakMiB: 60,
    rssPerSessionKiB: 10,
    threadsBase: 11,
    threadsPeak: 11,
    poolMaxThreads: null,
    eventLoopP99Ms: 1,
    stopCloseMs: null,
    stopStoppedMs: null,
    stopsOver100Ms: 0,
    serverCpuPercent: 0,
    clientCpuPercent: 0,
    ...over,
  };
}

const storm = (p99: number) => ({ windowSeconds: 0, stopCloseMs: { p50: p99 / 2, p99, max: p99 } });
const find = (checks: ReturnType<typeof checkTargets>, scenario: string, figure: string) => {
  const c = checks.find((x) => x.scenario === scenario && x.figure.startsWith(figure));
  assert.ok(c, `no check ${scenario} ${figure}`);
  return c;
};

describe('bench targets', () => {
  it('holds the stop storm to 100 ms while its bare ws floor is under 100 ms', () => {
    const c = find(checkTargets([row('storm-floor', storm(80)), row('storm', storm(120))], null), 'storm', 'STOP');
    assert.equal(c.limit, '≤ 100 ms');
    assert.equal(c.verdict, 'not met');
    assert.equal(c.floorValue, 80);
  });

  it("allows the stop storm 1.25 × its floor where the floor is above 100 ms", () => {
    const c = find(checkTargets([row('storm-floor', storm(160)), row('storm', storm(190))], null), 'storm', 'STOP');
    assert.equal(c.limit, '≤ 200 ms');
    assert.equal(c.verdict, 'met');
  });

  it('says when the bare ws floor of the same run misses a target too', () => {
    const offered = { offeredPerSecond: 10_000, latencyMs: { p50: 1, p99: 4, max: 50 } };
    const tandemLow = row('crowd', { ...offered, resultsPerSecond: 5_000 });
    const floorFull = row('crowd-floor', { ...offered, resultsPerSecond: 9_990 });
    const floorLow = row('crowd-floor', { ...offered, resultsPerSecond: 9_000 });
    assert.equal(find(checkTargets([floorFull, tandemLow], null), 'crowd', 'results delivered').verdict, 'not met');
    assert.equal(find(checkTargets([floorLow, tandemLow], null), 'crowd', 'results delivered').verdict, 'not met, nor by the floor');
    assert.equal(find(checkTargets([floorLow, tandemLow], null), 'crowd', 'latency p99').verdict, 'met');
  });

  it("counts the crowd's threads against the pool maximum plus an idle bare ws server's", () => {
    const checks = checkTargets([row('crowd-floor', { threadsBase: 11 }), row('crowd', { poolMaxThreads: 2, threadsPeak: 14 })], null);
    const c = find(checks, 'crowd', 'threads');
    assert.equal(c.limit, '≤ 13');
    assert.equal(c.verdict, 'not met');
    const alone = find(checkTargets([row('crowd', { poolMaxThreads: 2, threadsPeak: 13 })], null), 'crowd', 'threads');
    assert.equal(alone.verdict, 'not measured');
  });

  it("reads steady's targets against the bare ws floor of the same light load", () => {
    const steady = row('steady', { resultsPerSecond: 660, serverCpuPercent: 20, latencyMs: { p50: 1.2, p99: 8, max: 30 } });
    const floor = row('steady-floor', { resultsPerSecond: 660, serverCpuPercent: 3.3, latencyMs: { p50: 0.3, p99: 7, max: 12 } });
    const checks = checkTargets([floor, steady], null);
    const cpu = find(checks, 'steady', 'server CPU');
    assert.equal(cpu.verdict, 'not met');
    assert.equal(Math.round(cpu.floorValue!), 50);
    assert.equal(find(checks, 'steady', 'latency p99').verdict, 'not met, nor by the floor');
    assert.equal(find(checks, 'steady', 'latency p50').floorValue, 0.3);
  });

  it('does not judge saturation against a ceiling that was not measured', () => {
    const c = find(checkTargets([row('saturation', { resultsPerSecond: 5000, serverCpuPercent: 100 })], null), 'saturation', 'results/s');
    assert.equal(c.verdict, 'not measured');
    const withCeiling = checkTargets([row('ceiling', { resultsPerSecond: 100_000, serverCpuPercent: 90 }), row('saturation', { resultsPerSecond: 60_000, serverCpuPercent: 100 })], null);
    assert.equal(find(withCeiling, 'saturation', 'results/s').verdict, 'met');
    assert.equal(find(withCeiling, 'saturation', 'server CPU').value, 100 * 10_000 / 60_000);
  });

  it('checks only the scenarios that ran', () => {
    const checks = checkTargets([row('steady', { resultsPerSecond: 650, serverCpuPercent: 3, latencyMs: { p50: 0.4, p99: 2, max: 8 } })], null);
    assert.deepEqual(new Set(checks.map((c) => c.scenario)), new Set(['steady']));
    assert.deepEqual(
      checks.map((c) => c.verdict),
      ['met', 'met', 'met'],
    );
  });

  it('fails every resume target when RESUME is refused', () => {
    const refused: ResumeResult = {
      key: 'resume',
      name: 'resume',
      answer: 'RESUME_GAP',
      message: 'results after 486 are no longer kept',
      resultsBeforeDrop: 486,
      resumedAfter: 486,
      resultsAfterDrop: 0,
      gaps: 0,
      duplicates: 0,
      reorders: 0,
      firstResultMs: null,
      resultsPerSecondAfter: 0,
    };
    const checks = checkTargets([], refused);
    assert.deepEqual(
      checks.map((c) => c.verdict),
      ['not met', 'not met', 'not met'],
    );
    const clean = checkTargets([], { ...refused, answer: 'resumed', message: null, resultsAfterDrop: 3000 });
    assert.deepEqual(
      clean.map((c) => c.verdict),
      ['met', 'met', 'met'],
    );
    const twice = checkTargets([], { ...refused, answer: 'resumed', message: null, resultsAfterDrop: 3000, duplicates: 64 });
    assert.equal(find(twice, 'resume', 'duplicates').verdict, 'not met');
  });
});
