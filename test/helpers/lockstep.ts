/**
 * Checks on sessions of the lockstep fixture (test/fixtures/pipelines/lockstep.ts), whose every
 * result is "lockstep <seq>": a step lost or run twice from one state would show in the text.
 */
import assert from 'node:assert/strict';
import { assertInOrder, type TestClient } from './client.js';

/** Every result 1..n in order, each "lockstep <seq>". */
export function assertLockstep(client: TestClient): void {
  const ts = client.transcripts();
  assertInOrder(ts);
  for (const t of ts) assert.equal(t.data, `lockstep ${t.seq}`);
}

/** Waits until each client has `more` results than now. */
export async function goOn(clients: TestClient[], more: number): Promise<void> {
  const counts = clients.map((c) => c.transcripts().length);
  await Promise.all(clients.map((c, i) => c.waitForTranscripts(counts[i]! + more, 20_000)));
}

/** Stops each client; each got `stopped` counting every result it had, none twice, none lost. */
export async function stopAll(clients: TestClient[]): Promise<void> {
  for (const c of clients) {
    c.send({ command: 'STOP' });
    const stopped = await c.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assert.equal(stopped.chunks, c.transcripts().length);
    assertLockstep(c);
    assert.deepEqual(c.invalid, []);
  }
}

/** A victim whose step failed: `error` PIPELINE_FAILED matching `message`, then `stopped` (failed). */
export async function assertFailed(victim: TestClient, message: RegExp): Promise<void> {
  const error = await victim.waitFor((m) => m.type === 'error', 'error');
  assert.equal(error.code, 'PIPELINE_FAILED');
  assert.match(error.message!, message);
  assert.equal((await victim.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'failed');
}

/** A victim hung in its fifth step after four results: its STOP is answered, the hung step forced. */
export async function stopHung(victim: TestClient, session: { stop(reason: 'client'): Promise<{ forced: boolean }> }): Promise<void> {
  assert.equal(victim.transcripts().length, 4, 'the victim delivered its four steps before the hang');
  victim.send({ command: 'STOP' });
  assert.equal((await victim.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'client');
  assert.equal((await session.stop('client')).forced, true, 'the hung step was terminated');
}
