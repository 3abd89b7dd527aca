import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { skipRepeatedEnds } from '../../src/ws/repeated-ends.js';

/**
 * ws/repeated-ends.ts: a second `end()` on a finished socket or frame parser never reaches Node's
 * own `end()` (which builds an error nobody sees), and every other `end()` does.
 */

interface EndCall {
  args: number;
  finished: boolean;
}

/**
 * Records each call of `stream`'s end() as it is now (before the service's wrapping: what reaches
 * Node's own end(); after it: what ws calls), and whether the stream had finished.
 */
function recordEnds(stream: Writable, calls: EndCall[]): void {
  const end = stream.end as (this: Writable, ...args: unknown[]) => Writable;
  stream.end = function (this: Writable, ...args: unknown[]): Writable {
    calls.push({ args: args.length, finished: this.writableFinished });
    return end.apply(this, args);
  } as Writable['end'];
}

function sink(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
}

describe('repeated ends', () => {
  it('skips end() with no arguments on a finished stream, and passes every other end() through', async () => {
    const reached: EndCall[] = [];
    const w = sink();
    recordEnds(w, reached);
    skipRepeatedEnds({ _socket: w } as unknown as WebSocket);

    w.end();
    await once(w, 'finish');
    assert.deepEqual(reached, [{ args: 0, finished: false }], 'the first end() reaches the stream');

    assert.equal(w.end(), w, 'a repeated end() returns the stream, as Node does');
    assert.equal(reached.length, 1, 'a repeated end() with no arguments on a finished stream is skipped');

    const err = await new Promise<NodeJS.ErrnoException | null | undefined>((resolve) => w.end(resolve));
    assert.equal(reached.length, 2, 'an end() with a callback still reaches the stream');
    assert.equal(err?.code, 'ERR_STREAM_ALREADY_FINISHED', 'and its callback hears what Node says');
  });

  it('leaves a close handshake of ws as it was, without its repeated ends reaching the socket or the parser', async () => {
    const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const reached: EndCall[] = [];
    const calls: EndCall[] = [];
    const serverClosed = new Promise<number>((resolve) => {
      wss.on('connection', (ws: WebSocket) => {
        const internals = ws as unknown as { _socket: Writable; _receiver: Writable };
        for (const stream of [internals._socket, internals._receiver]) recordEnds(stream, reached);
        skipRepeatedEnds(ws);
        for (const stream of [internals._socket, internals._receiver]) recordEnds(stream, calls);
        ws.on('close', (code: number) => resolve(code));
        ws.send(JSON.stringify({ type: 'stopped' }));
        ws.close(1000);
      });
    });
    try {
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
      const messages: string[] = [];
      client.on('message', (m) => messages.push(String(m)));
      const [clientCode] = (await once(client, 'close')) as [number];
      assert.equal(clientCode, 1000, 'the client sees the close the server sent');
      assert.equal(await serverClosed, 1000, "the server's side closes with the client's answer");
      assert.deepEqual(messages, [JSON.stringify({ type: 'stopped' })], 'what was sent before the close arrived');
      assert.ok(
        calls.some((c) => c.args === 0 && c.finished),
        `ws ended a finished stream again during the close (if it no longer does, ws/repeated-ends.ts can go): ${JSON.stringify(calls)}`,
      );
      assert.deepEqual(
        reached.filter((c) => c.args === 0 && c.finished),
        [],
        'no end() with no arguments reached a finished socket or parser',
      );
    } finally {
      wss.close();
    }
  });
});
