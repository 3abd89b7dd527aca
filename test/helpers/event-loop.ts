/**
 * Long turns of this process's main thread (the in-process server's), in a chosen phase of the
 * event loop: how the tests make the threads' answers wait unread (pool/watchdog.ts).
 */
import { once } from 'node:events';
import net from 'node:net';

/**
 * Keeps the main thread busy for `ms`, as a long turn does: the pool threads go on meanwhile, and
 * what they post waits to be read.
 */
export function holdMainThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

/** A loopback connection: what `writer` writes is a data callback of `reader`, in a poll phase. */
async function loopback(): Promise<{ writer: net.Socket; reader: net.Socket; close(): void }> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const writer = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  await once(writer, 'connect');
  const [reader] = await accepted;
  return {
    writer,
    reader,
    close() {
      writer.destroy();
      reader.destroy();
      listener.close();
    },
  };
}

/**
 * Runs `turn` in a callback of the poll phase, where a client's frames are handled; `next(fn)`
 * runs `fn` in a callback of the next turn's poll phase (after what that phase read first, in
 * practice: the kernel lists what became ready in the order it did). Resolves with what `turn` or
 * a later callback passes to `done`.
 */
export async function inPollPhase<T>(turn: (done: (value: T) => void, next: (fn: () => void) => void) => void): Promise<T> {
  const first = await loopback();
  const second = await loopback();
  try {
    return await new Promise<T>((resolve) => {
      const next = (fn: () => void) => {
        second.reader.once('data', fn);
        second.writer.write('x');
      };
      first.reader.once('data', () => turn(resolve, next));
      first.writer.write('x');
    });
  } finally {
    first.close();
    second.close();
  }
}

/**
 * Holds the main thread `ms` twice: in a poll-phase callback, and again in a callback of the next
 * turn's poll phase, after that phase read what the pool threads posted during the first hold (in
 * practice: they were ready before the second callback's data was written). A watchdog timer that
 * fell due during the first hold runs between the two, so the check it asks for meets the second
 * hold, the long turn a client's frames can make, with the answers posted during it unread.
 */
export function holdTwoTurns(ms: number): Promise<void> {
  return inPollPhase<void>((done, next) => {
    holdMainThread(ms);
    next(() => {
      holdMainThread(ms);
      done();
    });
  });
}
