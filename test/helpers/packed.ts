import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';

/**
 * Sends what a codec packed across a real port, its numbers transferred, as a step channel does,
 * and returns what arrived: asserts the numbers were moved, not copied, and that an array travelled.
 */
export async function acrossAPort<T extends [Float64Array, ...unknown[]]>(packed: T): Promise<T> {
  const { port1, port2 } = new MessageChannel();
  try {
    const arrived = once(port2, 'message');
    port1.postMessage(packed, [packed[0].buffer as ArrayBuffer]);
    const [received] = (await arrived) as [T];
    assert.equal(packed[0].byteLength, 0, 'the numbers were transferred, not copied');
    assert.ok(Array.isArray(received), 'an array travels, not an object with keys');
    return received;
  } finally {
    port1.close();
    port2.close();
  }
}
