import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Parser } from '@asyncapi/parser';
import { assertServerMessage, TestClient } from './helpers/client.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from './helpers/server.js';
import { transcriptMessage } from '../src/ws/protocol.js';

const specFile = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));

describe('asyncapi.yaml', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
  });
  after(() => server.close());

  it('parses as a valid AsyncAPI 3 document describing both endpoints', async () => {
    const { document, diagnostics } = await new Parser().parse(fs.readFileSync(specFile, 'utf8'));
    const errors = diagnostics.filter((d) => d.severity === 0);
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.ok(document);
    assert.equal(document.version(), '3.0.0');
    assert.deepEqual(document.channels().all().map((c) => c.address()).sort(), ['/live-transcription', '/ws']);
    const names = document.components().messages().all().map((m) => m.name()).sort();
    assert.deepEqual(names, ['END', 'RESUME', 'START', 'STOP', 'audio', 'error', 'resumed', 'started', 'stopped', 'transcript']);
  });

  it('assembles a transcript frame whose numbers keep their values (written with toFixed, not as ${n})', () => {
    const madeFrom = Date.now() / 1000;
    const frame = transcriptMessage('s-1', 123456, '{"text":"a \\"b\\""}', 1764600000000.1236);
    const madeBy = Date.now() / 1000;
    const m = JSON.parse(frame) as { seq: number; producedAt: number; timestamp: number; data: unknown; session: string };
    assertServerMessage(m);
    assert.equal(m.session, 's-1');
    assert.equal(m.seq, 123456);
    assert.deepEqual(m.data, { text: 'a "b"' });
    assert.equal(m.producedAt, 1764600000000.124, 'producedAt to the microsecond');
    assert.ok(m.timestamp >= Math.floor(madeFrom * 1000) / 1000 && m.timestamp <= madeBy, `timestamp ${m.timestamp} is when it was made, in seconds`);
    assert.equal(JSON.parse(transcriptMessage('s', 1, 'null', 5)).producedAt, 5);
  });

  it('rejects a server message that breaks the schema (the check can fail)', () => {
    assert.throws(() => assertServerMessage({ type: 'transcript', session: 's', seq: 0, data: 1, producedAt: 1, timestamp: 1 }), /seq/);
    assert.throws(() => assertServerMessage({ type: 'stopped', session: 's', reason: 'tired', chunks: 1 }), /reason/);
    assert.throws(() => assertServerMessage({ type: 'hello' }), /unknown type/);
  });

  it('matches every kind of message the server sends', async () => {
    const client = await TestClient.open(server.wsUrl());
    client.send('{');
    await client.waitFor((m) => m.type === 'error', 'BAD_JSON');
    await client.start({ pipeline: 'throws', options: { failAt: 2 } });
    await client.waitClose();
    const types = new Set(client.messages.map((m) => m.type));
    assert.deepEqual([...types].sort(), ['error', 'started', 'stopped', 'transcript']);
    assert.deepEqual(client.invalid, []);
  });
});
