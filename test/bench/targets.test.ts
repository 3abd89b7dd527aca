import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResumeResult } from '../../bench/resume.js';
import type { Row } from '../../bench/scenario.js';
import { checkTargets } from '../../bench/targets.js';
import type { TranscribeResult } from '../../bench/transcribe.js';

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
    coldStopCloseMs: null,
    stopsOver100Ms: 0,
    stopCpuUsPerStop: null,
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

  it("judges the measured storm, and names each server's first (cold) storm beside it", () => {
    const cold = (p99: number) => ({ coldStopCloseMs: { p50: p99 / 2, p99, max: p99 } });
    const c = find(checkTargets([row('storm-floor', { ...storm(160), ...cold(170) }), row('storm', { ...storm(190), ...cold(400) })], null), 'storm', 'STOP');
    assert.equal(c.value, 190);
    assert.equal(c.verdict, 'met');
    assert.match(c.note, /first \(cold\): 400\.0 ms, the floor's 170\.0 ms/);
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
    assert.doesNotMatch(cpu.note, /steady-handoff/, 'no hand-off floor ran');
    const hop = row('steady-handoff', { kind: 'bare-ws', resultsPerSecond: 660, serverCpuPercent: 3.3 });
    const withHop = find(checkTargets([floor, hop, steady], null), 'steady', 'server CPU');
    assert.match(withHop.note, /thread hop and two appends per result alone \(steady-handoff\): 50 µs/);
    assert.equal(withHop.verdict, 'not met', 'the hand-off floor is a figure to read beside, not the floor the verdict uses');
    // The wake-up floor's empty tick, shared by the results that fall due in one: 660/s × 5 ms = 3.3.
    const wake = [
      { shape: 'timer' as const, gapMs: 5, firings: 600, cpuUsPerFiring: 60 },
      { shape: 'hop' as const, gapMs: 5, firings: 600, cpuUsPerFiring: 165 },
      { shape: 'hop' as const, gapMs: 20, firings: 150, cpuUsPerFiring: 300 },
    ];
    const withWake = find(checkTargets([floor, hop, steady], null, null, wake), 'steady', 'server CPU');
    assert.match(withWake.note, /empty 5 ms tick \(STEP_TIMER_TICK_MS's default\) with a round trip to a thread \(wake-floor\): 165 µs, 50 µs per result at 3\.30 results a tick/);
    assert.match(withWake.note, /steady-handoff/, 'beside the hand-off floor, not instead of it');
    assert.doesNotMatch(withWake.note, /steady-thread/, 'no thread-shaped floor ran');
    const thread = row('steady-thread', { kind: 'bare-ws', resultsPerSecond: 660, serverCpuPercent: 2.64 });
    const withThread = find(checkTargets([floor, hop, thread, steady], null), 'steady', 'server CPU');
    assert.match(withThread.note, /thread keeping the schedule and sending, tandem's shape alone \(steady-thread\): 40 µs/);
    assert.match(withThread.note, /steady-handoff\): 50 µs; the same/, 'after the hand-off it varies');
    assert.equal(withThread.verdict, 'not met', 'a figure to read beside, not the floor the verdict uses');
    const log = row('steady-log', { kind: 'bare-ws', resultsPerSecond: 660, serverCpuPercent: 2.31 });
    const withLog = find(checkTargets([floor, hop, thread, log, steady], null), 'steady', 'server CPU');
    assert.match(withLog.note, /\(steady-thread\): 40 µs; that shape with one log per thread, a tick's records in two writes \(steady-log\): 35 µs/);
    assert.equal(withLog.verdict, 'not met', 'a figure to read beside, not the floor the verdict uses');
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

describe('bench transcribe targets', () => {
  // The 14:00 run of docs/PERFORMANCE.md, as runTranscribe returns it.
  const measured: TranscribeResult = {
    key: 'transcribe',
    name: 'transcribe',
    talkSeconds: 25.6,
    fast: { audioSeconds: 102.2, chunkMs: 200, wallSeconds: 16.94, firstResultMs: 901, ratioWithoutLoad: 0.157, serverCpuSeconds: 17.5, decoderThreadCpuSeconds: null, finals: 28, words: 279 },
    floor: { audioSeconds: 102.2, wallSeconds: 17.03, cpuSeconds: 16.99 },
    realtime: {
      audioSeconds: 25.6,
      chunkMs: 100,
      results: 257,
      serverLatencyMs: { p50: 18.5, p95: 117.1, max: 498.4, samples: 257 },
      clientLatencyMs: { p50: 19.6, p95: 118.1, max: 567.8 },
      clientLatencyWithFinalMs: { p50: 125.7, p95: 174.7, max: 174.7 },
      finalAfterWordEndMs: { p50: 670.1, p95: 794.7, max: 794.7 },
      finals: 7,
    },
    four: { sessions: 4, seconds: 60, chunkMs: 100, staggerMs: 700, samples: 880, lag: { p50: 3, p95: 20, max: 35 }, startupLagMax: 29, firstResultMsMax: 3905, results: 2684, latencyP95Ms: 2189 },
    churn: {
      rounds: 20,
      roundsWithSox: 10,
      rssColdBytes: 143.3e6,
      rssBeforeBytes: 143.2e6,
      rssAfterBytes: 119.8e6,
      rssBeforeUncollectedBytes: 170.1e6,
      rssAfterUncollectedBytes: 141.5e6,
      collected: true,
      threadsBefore: 13,
      threadsAfter: 13,
      childrenLeft: [],
      forced: 0,
      notEnded: 0,
    },
    failures: [],
  };

  it("gives each of issue 11's figures a row with its verdict", () => {
    const checks = checkTargets([], null, measured);
    assert.deepEqual(
      checks.map((c) => [c.figure.split(':')[0], c.verdict]),
      [
        ['pace fast, one session', 'met'],
        ['pace realtime, chunkMs 100', 'met'],
        ['pace realtime', 'met'],
        ['4 real-time sessions for 60 s', 'not met'],
        ['20 STARTs and STOPs mid-utterance', 'met'],
        ['the same', 'met'],
      ],
    );
    const fast = find(checks, 'transcribe', 'pace fast');
    assert.ok(Math.abs(fast.value! - 16.94 / 102.2) < 1e-9, 'START → completed over the audio length');
    assert.ok(Math.abs(fast.floorValue! - 17.03 / 102.2) < 1e-9, "pocketsphinx_continuous's is the floor");
    assert.ok(Math.abs(find(checks, 'transcribe', '20 STARTs').value! - -23.4) < 1e-9, 'RSS after − before, in MB');
  });

  it('says when pocketsphinx alone misses the fast target too', () => {
    const slow = { ...measured, fast: { ...measured.fast!, wallSeconds: 63.2 }, floor: { ...measured.floor!, wallSeconds: 43.4 } };
    assert.equal(find(checkTargets([], null, slow), 'transcribe', 'pace fast').verdict, 'not met, nor by the floor');
    const floorFast = { ...slow, floor: { ...measured.floor!, wallSeconds: 17 } };
    assert.equal(find(checkTargets([], null, floorFast), 'transcribe', 'pace fast').verdict, 'not met');
  });

  it('counts a thread, child or forced stop left behind against the churn, and a part that failed as not measured', () => {
    const leaky = { ...measured, churn: { ...measured.churn!, threadsAfter: 14, childrenLeft: ['sox 4242 (Z)'], forced: 1 } };
    const left = find(checkTargets([], null, leaky), 'transcribe', 'the same');
    assert.equal(left.value, 3);
    assert.equal(left.verdict, 'not met');
    assert.match(left.note, /sox 4242/);
    const failed = { ...measured, four: null, failures: ['four: a session ended (failed) before the window did'] };
    assert.equal(find(checkTargets([], null, failed), 'transcribe', '4 real-time').verdict, 'not measured');
  });
});
