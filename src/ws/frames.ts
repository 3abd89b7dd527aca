/**
 * The bytes of a `transcript` frame, made the same way on the main thread (through `ws`) and on
 * a step thread that writes it into the client's socket itself (ws/socket-slots.ts, pool/worker.ts): its JSON
 * text, and that text as one WebSocket text frame. Kept apart from protocol.ts, which loads the
 * protocol's schemas, so that a pool thread imports only this.
 */

/**
 * `data` is already JSON text (serialised in the pool thread): the frame is assembled, not
 * re-encoded. Its numbers are written with toFixed (`producedAt` to the microsecond), not as
 * `${n}`: V8 keeps every number it turns into text the ordinary way, and the text, in a cache
 * that lives in the old generation, so each frame's three numbers survived the young
 * generation's collections and were copied and promoted: at the crowd's 10,000 results a second
 * they were the largest part (43 %) of what the main thread's scavenges copied
 * (docs/PERFORMANCE.md, "What the main thread's scavenges copied").
 */
export function transcriptMessage(session: string, seq: number, data: string, producedAt: number): string {
  return `{"type":"transcript","session":${JSON.stringify(session)},"seq":${seq.toFixed(0)},"data":${data},"producedAt":${producedAt.toFixed(3)},"timestamp":${(Date.now() / 1000).toFixed(3)}}`;
}

/** A frame's header bytes for a payload of `n` bytes: 2, 4 or 10 (RFC 6455, section 5.2). */
function headerBytes(n: number): number {
  return n < 126 ? 2 : n < 0x1_0000 ? 4 : 10;
}

/**
 * Writes `text` as one unmasked, uncompressed WebSocket text frame, as a server sends it (tandem's
 * `ws` never compresses: src/ws/mount.ts), into `into` at `at`; returns the bytes written, or -1
 * when it does not fit.
 */
export function writeTextFrame(text: string, into: Buffer, at: number): number {
  const n = Buffer.byteLength(text);
  const head = headerBytes(n);
  if (at + head + n > into.length) return -1;
  into[at] = 0x81;
  if (head === 2) into[at + 1] = n;
  else if (head === 4) {
    into[at + 1] = 126;
    into.writeUInt16BE(n, at + 2);
  } else {
    into[at + 1] = 127;
    into.writeBigUInt64BE(BigInt(n), at + 2);
  }
  into.write(text, at + head, 'utf8');
  return head + n;
}

/** `text` as the bytes of one WebSocket text frame (see writeTextFrame). */
export function wsTextFrame(text: string): Buffer {
  const n = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(headerBytes(n) + n);
  writeTextFrame(text, frame, 0);
  return frame;
}
